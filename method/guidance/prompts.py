"""Text conditioning: CLIP text embeddings computed once and cached, and view-dependent prompts.

View-dependent prompting (threestudio / the release): every view starts as "side"; azimuths within
`front` deg of 0 become "front", within `back` deg of 180 "back", and elevations above `overhead`
"overhead" (later rules win); `ViewPromptOptions` holds the switch and the three angles. The
prompt gets the suffix ", <dir> view"; the negative prompt is the same for every direction.
Azimuth 0 is the +x axis (method.cameras).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .loading import load_pretrained, place, resolve_model

DIRECTIONS = ("side", "front", "back", "overhead")

# (text source, text) -> {(encoder dtype, device): embedding (1, L, D) on the CPU in float32}. Shared by all priors,
# so a prompt is encoded once per text encoder per process. The encoder's precision and device are part of the key:
# MVDream (fp32) and VSD (fp16 on CUDA) share SD 2.1-base's text encoder, and each must get its own precision's
# embedding whichever prior encoded the prompt first.
_CACHE: dict[tuple[str, str], dict[tuple[torch.dtype, str], Tensor]] = {}


def clear_cache() -> None:
    _CACHE.clear()


@dataclass(frozen=True)
class ViewPromptOptions:
    """View-dependent prompting: whether to add ', <direction> view', and the angles (degrees) that decide it."""

    enabled: bool = False
    """Add the direction suffix to the prompt (the negative prompt never gets one)."""
    front: float = 30.0
    """|azimuth| below this: 'front'."""
    back: float = 30.0
    """|azimuth| above 180 - this: 'back'."""
    overhead: float = 60.0
    """Elevation above this: 'overhead'."""


def wrap_azimuth(azimuth_deg: Tensor) -> Tensor:
    """Azimuth in [-180, 180)."""
    return torch.remainder(azimuth_deg + 180.0, 360.0) - 180.0


def view_directions(azimuth_deg: Tensor, elevation_deg: Tensor,
                    thresholds: ViewPromptOptions = ViewPromptOptions()) -> Tensor:
    """(B,) indices into DIRECTIONS."""
    az = wrap_azimuth(azimuth_deg.float())
    idx = torch.zeros(az.shape, dtype=torch.long, device=az.device)
    idx[(az > -thresholds.front) & (az < thresholds.front)] = DIRECTIONS.index("front")
    idx[(az > 180.0 - thresholds.back) | (az < -180.0 + thresholds.back)] = DIRECTIONS.index("back")
    idx[elevation_deg.to(az.device) > thresholds.overhead] = DIRECTIONS.index("overhead")
    return idx


def view_prompt(prompt: str, direction: str) -> str:
    return f"{prompt}, {direction} view"


class PromptProcessor:
    """A frozen CLIP text encoder (tokenizer/ + text_encoder/ of a diffusers folder) with a cache."""

    def __init__(self, source: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 role: str = "text encoder", field: str = "text_model", tokenizer=None, text_encoder=None,
                 default_id: str = ""):
        """Loads tokenizer/ and text_encoder/ from `source` unless both objects are given (then `source`
        is only the cache key)."""
        from transformers import CLIPTextModel, CLIPTokenizer

        self.source = str(source)
        self.device = torch.device(device)
        self.dtype = dtype
        if tokenizer is None or text_encoder is None:
            self.source = resolve_model(self.source, field)  # cache per folder, not per alias
            kw = dict(role=role, field=field, default_id=default_id)
            tokenizer = load_pretrained(CLIPTokenizer, self.source, "tokenizer", **kw)
            text_encoder = load_pretrained(CLIPTextModel, self.source, "text_encoder", **kw)
        self._tokenizer = tokenizer
        self._encoder = text_encoder
        place(self._encoder.requires_grad_(False).eval(), self.device, self.dtype)

    @property
    def width(self) -> int | None:
        """Width of the embeddings (the encoder's hidden size), None when its config does not say."""
        width = getattr(getattr(self._encoder, "config", None), "hidden_size", None)
        return width if isinstance(width, int) else None

    @torch.no_grad()
    def encode(self, texts: list[str]) -> Tensor:
        """(N, L, D) last hidden states (what SD / Zeroscope condition on), cached per text."""
        how = (self.dtype, str(self.device))
        todo = [t for t in dict.fromkeys(texts) if how not in _CACHE.get((self.source, t), {})]
        if todo:
            tok = self._tokenizer(todo, padding="max_length", max_length=self._tokenizer.model_max_length,
                                  truncation=True, return_tensors="pt")
            out = self._encoder(tok.input_ids.to(self.device))[0].float().cpu()
            for i, t in enumerate(todo):
                _CACHE.setdefault((self.source, t), {})[how] = out[i: i + 1]
        return torch.cat([_CACHE[(self.source, t)][how] for t in texts]).to(self.device, self.dtype)

    def embeddings(self, prompt: str, negative_prompt: str, n: int, azimuth_deg: Tensor | None = None,
                   elevation_deg: Tensor | None = None,
                   view: ViewPromptOptions = ViewPromptOptions()) -> tuple[Tensor, Tensor]:
        """(cond, uncond), each (n, L, D); view-dependent prompts (view.enabled) need the n azimuths and
        elevations."""
        if view.enabled:
            if azimuth_deg is None or elevation_deg is None:
                raise ValueError("view-dependent prompting needs azimuths and elevations")
            dirs = view_directions(azimuth_deg.reshape(-1)[:n].cpu(), elevation_deg.reshape(-1)[:n].cpu(), view)
            texts = [view_prompt(prompt, DIRECTIONS[i]) for i in dirs.tolist()]
        else:
            texts = [prompt] * n
        cond = self.encode(texts)
        uncond = self.encode([negative_prompt]).expand(n, -1, -1)
        return cond, uncond
