"""The 4D-fy scene: space-time features -> density and colour, plus the background, with named
parameter groups (`static`, `dynamic`, `mlp`, `background`) that training freezes and unfreezes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from method.background import BackgroundConfig, MLPBackground

from .config import FieldConfig
from .spacetime import build_spacetime

PARAM_GROUPS = ("static", "dynamic", "mlp", "background")


def bias_free_mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden, bias=False), nn.ReLU(), nn.Linear(n_hidden, n_out, bias=False))


def blob_density(raw: Tensor, x: Tensor, sigma: float, scale: float) -> Tensor:
    """softplus(raw + a * (1 - ||x|| / sigma)): a density blob at the origin that starts the shape."""
    return F.softplus(raw + scale * (1 - x.norm(dim=-1) / sigma))


class SceneField(nn.Module):
    """density, rgb = field(x, t, blob_sigma); x in world coordinates (N, 3), t in [0, 1] (N, 1)."""

    def __init__(self, cfg: FieldConfig = FieldConfig(), background: BackgroundConfig = BackgroundConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_spacetime(cfg)
        n = self.encoder.n_output_dims
        self.density_head = bias_free_mlp(n, cfg.mlp_hidden, 1)
        self.color_head = bias_free_mlp(n, cfg.mlp_hidden, 3)
        self.background = MLPBackground(background)

    def normalize(self, x: Tensor) -> Tensor:
        r = self.cfg.box_radius
        return ((x + r) / (2 * r)).clamp(0.0, 1.0)

    def features(self, x: Tensor, t: Tensor) -> Tensor:
        return self.encoder(self.normalize(x), t.to(x.dtype).reshape(-1, 1).expand(len(x), 1))

    def forward(self, x: Tensor, t: Tensor, blob_sigma: float) -> tuple[Tensor, Tensor]:
        h = self.features(x, t)
        density = blob_density(self.density_head(h).squeeze(-1), x, blob_sigma, self.cfg.blob_scale)
        rgb = torch.sigmoid(self.color_head(h))
        return density, rgb

    def density(self, x: Tensor, t: Tensor, blob_sigma: float) -> Tensor:
        h = self.features(x, t)
        return blob_density(self.density_head(h).squeeze(-1), x, blob_sigma, self.cfg.blob_scale)

    # --- parameter groups -------------------------------------------------------------------------
    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {
            "static": self.encoder.static_parameters(),
            "dynamic": self.encoder.dynamic_parameters(),
            "mlp": list(self.density_head.parameters()) + list(self.color_head.parameters()),
            "background": list(self.background.parameters()),
        }

    def set_trainable(self, groups: set[str] | list[str] | tuple[str, ...]) -> None:
        """Unfreeze exactly `groups` (others get requires_grad=False, so they receive no gradient)."""
        unknown = set(groups) - set(PARAM_GROUPS)
        if unknown:
            raise ValueError(f"unknown parameter groups {sorted(unknown)}; known: {PARAM_GROUPS}")
        for name, params in self.param_groups().items():
            for p in params:
                p.requires_grad_(name in groups)

    def freeze(self, *groups: str) -> None:
        self.set_trainable(set(self.trainable_groups()) - set(groups))

    def unfreeze(self, *groups: str) -> None:
        self.set_trainable(set(self.trainable_groups()) | set(groups))

    def trainable_groups(self) -> list[str]:
        return [n for n, ps in self.param_groups().items() if ps and all(p.requires_grad for p in ps)]

    def group_sizes(self) -> dict[str, int]:
        return {n: sum(p.numel() for p in ps) for n, ps in self.param_groups().items()}
