"""Priors whose denoiser is exact for a known scene: SDS then reduces to a weighted photometric pull.

The "data distribution" given (camera, time) is a point mass at the scene's true render x*, so the
optimal noise prediction for z_t = sqrt(a) x + sqrt(1-a) eps is eps_hat = (z_t - sqrt(a) x*) / sqrt(1-a),
and w(t)(eps_hat - eps) = w(t) sqrt(a / (1-a)) (x - x*). It runs in pixel space (x = 2 rgb - 1)
through the same noise schedule, step-dependent timestep ranges and loss form as the real priors.
x* is the scene's exact render (`OracleScene.render_exact`), not a render by the suite's renderer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from method.cameras import Cameras
from method.guidance.base import PRIOR_LOSS_WEIGHTS, Guidance, PriorConfig
from method.guidance.common import TimestepRange, randn, scaled_linear_alphas_cumprod, sds_loss
from method.ranges import RangeError, at_least

from .scene import OracleScene

# The IMG prior's scene: the white marker blob turned magenta. Same densities, so the 3D and IMG
# targets differ only where the marker shows (away from the moving blob), and a model can tell which
# prior trained it.
RECOLORED_BLOB = 3
RECOLORED_COLOR = (0.95, 0.1, 0.9)
SCENES = ("base", "recolored")


def oracle_scene(name: str) -> OracleScene:
    """'base': the default blobs; 'recolored': the same with the marker blob magenta instead of white."""
    if name == "base":
        return OracleScene()
    if name == "recolored":
        return OracleScene().recolored(RECOLORED_BLOB, RECOLORED_COLOR)
    raise ValueError(f"unknown oracle scene {name!r}; known: {', '.join(SCENES)}")


@dataclass(frozen=True)
class OracleConfig(PriorConfig):
    """An exact prior for a known blob scene (the `fourdfy oracle` check; no pretrained weights)."""

    target: ClassVar[str] = "method.oracle.prior:OracleGuidance"
    timestep_ranges: ClassVar[tuple[str, ...]] = ("t_range", "t_anneal_start")
    kind: str = "oracle"
    """Discriminator of the prior configs."""
    loss_name: str = "sds"
    """The loss is returned as `loss_<loss_name>` and weighted by that LossWeights field (one of PRIOR_LOSS_WEIGHTS)."""
    scene: str = "base"
    """Target scene: 'base' or 'recolored' (marker blob magenta), so that different priors can pull differently."""
    t_range: tuple[float, float] = (0.02, 0.98)
    """Timestep fractions [min, max] after the ramp and outside `anneal_stages`."""
    t_anneal_start: tuple[float, float] | None = None
    """Fractions at step 0 of a ramp to `t_range` over `t_anneal_steps` (None: no ramp)."""
    t_anneal_steps: int = 0
    """Length of the ramp in stage steps."""
    anneal_stages: tuple[str, ...] = ("stage1",)
    """Stages in which the ramp runs (a call without a stage counts as one), each a stage of the run while there is a
    ramp; others use `t_range`."""
    quadrature_nodes: int = 48
    """Gauss-Legendre nodes per blob of the exact target render."""

    @property
    def loss_weights(self) -> tuple[str, ...]:
        return (self.loss_name,)

    def validate(self) -> None:
        super().validate()
        if self.loss_name not in PRIOR_LOSS_WEIGHTS:  # a regulariser's weight is not a prior's
            raise RangeError("loss_name", f"must be one of ({', '.join(PRIOR_LOSS_WEIGHTS)})", self.loss_name)
        if self.scene not in SCENES:
            raise RangeError("scene", f"must be one of ({', '.join(SCENES)})", self.scene)
        at_least("t_anneal_steps", self.t_anneal_steps, 0)
        at_least("quadrature_nodes", self.quadrature_nodes, 1)

    def stage_refs(self) -> dict[str, tuple[str, ...]]:
        """`anneal_stages` while there is a ramp (`t_anneal_start` set; without one the names select nothing)."""
        return {} if self.t_anneal_start is None else {"anneal_stages": tuple(self.anneal_stages)}

    def timestep_range(self, stage: str | None) -> TimestepRange:
        """The range used at `stage` (the ramp only in `anneal_stages`)."""
        if self.t_anneal_start is None or (stage is not None and stage not in self.anneal_stages):
            return TimestepRange(end=tuple(self.t_range))
        return TimestepRange(end=tuple(self.t_range), start=tuple(self.t_anneal_start), steps=self.t_anneal_steps)


class OracleGuidance(Guidance):
    """Same call interface as the real priors, plus the render times the target needs.

    `draws` lists (stage, step, t) of every call, so a check can see which timestep schedule the
    trainer drove (they are diagnostics: not saved in checkpoints).
    """


    def __init__(self, cfg: OracleConfig = OracleConfig(), device: torch.device | str = "cpu"):
        super().__init__()
        self.cfg = cfg
        self.loss_names = (f"loss_{cfg.loss_name}",)
        self.scene = oracle_scene(cfg.scene)
        self.alphas_cumprod = scaled_linear_alphas_cumprod()
        self.draws: list[tuple[str | None, int, int]] = []

    @torch.no_grad()
    def target(self, cameras: Cameras, times: Tensor, height: int, width: int) -> Tensor:
        """The scene's exact render (B, H, W, 3) in [0, 1]."""
        return self.scene.render_exact(cameras, times, height, width, self.cfg.quadrature_nodes)

    def __call__(self, rgb: Tensor, cameras: Cameras, prompt: str, step: int,
                 generator: torch.Generator | None = None, stage: str | None = None,
                 times: Tensor | None = None) -> dict[str, Tensor]:
        if times is None:
            raise ValueError("the oracle prior needs the render times")
        b, h, w, _ = rgb.shape
        x_star = self.target(cameras, times, h, w).to(rgb.device, rgb.dtype) * 2 - 1
        x = rgb * 2 - 1
        t = self.cfg.timestep_range(stage).sample(step, 1, len(self.alphas_cumprod), generator)
        a = self.alphas_cumprod[t].to(x.dtype).to(x.device)
        eps = randn(x.shape, generator, x)
        with torch.no_grad():
            z_t = a.sqrt() * x + (1 - a).sqrt() * eps
            eps_hat = (z_t - a.sqrt() * x_star) / (1 - a).sqrt()
            grad = (1 - a) * (eps_hat - eps)
        self.draws.append((stage, int(step), int(t)))
        self.last = {"t": t, "noise": eps, "target": x_star, "grad": grad}
        return {f"loss_{self.cfg.loss_name}": sds_loss(x, grad)}
