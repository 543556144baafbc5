"""Priors whose denoiser is exact for the known scene: SDS then reduces to a weighted photometric pull.

The "data distribution" given (camera, time) is a point mass at the scene's true render x*, so the
optimal noise prediction for z_t = sqrt(a) x + sqrt(1-a) eps is eps_hat = (z_t - sqrt(a) x*) / sqrt(1-a),
and w(t)(eps_hat - eps) = w(t) sqrt(a / (1-a)) (x - x*). It runs in pixel space (x = 2 rgb - 1)
through the same schedule, timestep sampling and loss form as the real priors.
"""

from __future__ import annotations

import torch
from torch import Tensor

from method.cameras import Cameras
from method.guidance.common import randn, scaled_linear_alphas_cumprod, sds_loss

from .scene import OracleScene


class OracleGuidance:
    """Same call interface as the real priors; needs the render times (`uses_times`)."""

    uses_times = True

    def __init__(self, loss_name: str = "sds", scene: OracleScene | None = None,
                 t_range: tuple[float, float] = (0.02, 0.98), target_samples: int = 96):
        self.loss_name = loss_name
        self.scene = scene or OracleScene()
        self.t_range = t_range
        self.target_samples = target_samples
        self.alphas_cumprod = scaled_linear_alphas_cumprod()

    @torch.no_grad()
    def target(self, cameras: Cameras, times: Tensor, height: int, width: int) -> Tensor:
        from method.render import RenderConfig, render_images

        cfg = RenderConfig(num_samples=self.target_samples, randomized=False)
        return render_images(self.scene.field, self.scene.background_fn, cameras, times.to(cameras.device),
                             height, width, cfg)["rgb"]

    def __call__(self, rgb: Tensor, cameras: Cameras, prompt: str, step: int,
                 generator: torch.Generator | None = None, stage: str | None = None,
                 times: Tensor | None = None) -> dict[str, Tensor]:
        if times is None:
            raise ValueError("the oracle prior needs the render times")
        b, h, w, _ = rgb.shape
        x_star = self.target(cameras, times, h, w) * 2 - 1
        x = rgb * 2 - 1
        n = len(self.alphas_cumprod)
        lo, hi = int(self.t_range[0] * n), int(self.t_range[1] * n)
        t = torch.randint(lo, hi + 1, (1,), generator=generator)
        a = self.alphas_cumprod[t].to(x.dtype).to(x.device)
        eps = randn(x.shape, generator, x)
        with torch.no_grad():
            z_t = a.sqrt() * x + (1 - a).sqrt() * eps
            eps_hat = (z_t - a.sqrt() * x_star) / (1 - a).sqrt()
            grad = (1 - a) * (eps_hat - eps)
        return {f"loss_{self.loss_name}": sds_loss(x, grad)}

    def trainable_parameters(self) -> list:
        return []

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def update(self, step: int) -> None:
        pass
