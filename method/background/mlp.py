"""Direction-conditioned background and its random-colour augmentation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from method.ranges import at_least, fraction, one_of

from .sh import SH_DEGREE_OUTPUTS, spherical_harmonics


@dataclass(frozen=True)
class BackgroundConfig:
    """Background MLP over a spherical-harmonics encoding of the view direction."""

    sh_degree: int = 3
    """SH bands (tcnn 'degree': 3 -> 9 coefficients)."""
    hidden: int = 16
    """Hidden units per layer."""
    n_hidden_layers: int = 2
    """Hidden layers (ReLU), no biases, sigmoid output."""
    random_color_prob: float = 0.5
    """Probability that a rendered image (or a whole clip) gets one uniform random colour instead."""

    def __post_init__(self) -> None:
        one_of("sh_degree", self.sh_degree, SH_DEGREE_OUTPUTS)
        at_least("hidden", self.hidden, 1)
        at_least("n_hidden_layers", self.n_hidden_layers, 0)
        fraction("random_color_prob", self.random_color_prob)


class MLPBackground(nn.Module):
    """rgb = sigmoid(MLP(SH(d))) for unit directions d (N, 3)."""

    def __init__(self, cfg: BackgroundConfig = BackgroundConfig()):
        super().__init__()
        self.cfg = cfg
        layers, n_in = [], SH_DEGREE_OUTPUTS[cfg.sh_degree]
        for _ in range(cfg.n_hidden_layers):
            layers += [nn.Linear(n_in, cfg.hidden, bias=False), nn.ReLU()]
            n_in = cfg.hidden
        layers.append(nn.Linear(n_in, 3, bias=False))
        self.mlp = nn.Sequential(*layers)

    def forward(self, dirs: Tensor) -> Tensor:
        # The release feeds (d + 1) / 2 to tcnn, which maps it back to d: the encoding sees d itself.
        d = torch.nn.functional.normalize(dirs, dim=-1)
        return torch.sigmoid(self.mlp(spherical_harmonics(d, self.cfg.sh_degree)))


def draw_random_backgrounds(n_images: int, frames_per_group: int, prob: float,
                            generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """One augmentation decision and colour per group of `frames_per_group` consecutive images
    (1 for independent images, 16 for a clip), repeated over the group's frames.

    Returns (use (n_images,) bool, colours (n_images, 3)). The release drew a colour per frame of a
    clip, which makes the background flicker; here a clip shares one.
    """
    if n_images % frames_per_group:
        raise ValueError(f"{n_images} images do not split into groups of {frames_per_group}")
    n_groups = n_images // frames_per_group
    use = torch.rand(n_groups, generator=generator) < prob
    colors = torch.rand(n_groups, 3, generator=generator)
    return use.repeat_interleave(frames_per_group), colors.repeat_interleave(frames_per_group, 0)
