"""MVDream's multi-view UNet expressed with diffusers' UNet2DConditionModel.

MVDream = SD 2.1-base UNet plus
1. a camera MLP (flattened 4x4 camera-to-world, 16 -> 1280 -> SiLU -> 1280) added to the time
   embedding: diffusers' `class_embed_type="projection"` with `projection_class_embeddings_input_dim=16`;
2. self-attention (attn1) across the views of a group: the tokens of the F views of a group are
   concatenated, (B*F, L, C) -> (B, F*L, C), before attention and split again after. Cross-attention
   to the text stays per view. This lives in an attention processor, so the weights, the config and
   `save_pretrained` are plain diffusers.
"""

from __future__ import annotations

import torch
from torch import Tensor

MULTIVIEW_MARKER = "mvdream.json"
"""File written beside unet/ in our diffusers-style MVDream folders (holds the number of views)."""


def _attention(sdpa: bool):
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    return AttnProcessor2_0() if sdpa else AttnProcessor()


class MultiViewSelfAttnProcessor:
    """Self-attention over the tokens of all `num_views` views of each group (SDPA, or plain attention)."""

    def __init__(self, sdpa: bool = True):
        self._inner = _attention(sdpa)

    def __call__(self, attn, hidden_states: Tensor, encoder_hidden_states: Tensor | None = None,
                 attention_mask: Tensor | None = None, temb: Tensor | None = None, num_views: int = 1) -> Tensor:
        if num_views <= 1 or encoder_hidden_states is not None:
            return self._inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        bf, length, ch = hidden_states.shape
        if bf % num_views:
            raise ValueError(f"batch {bf} is not a multiple of num_views={num_views}")
        grouped = hidden_states.reshape(bf // num_views, num_views * length, ch)
        out = self._inner(attn, grouped, None, attention_mask, temb)
        return out.reshape(bf, length, -1)


class PerViewAttnProcessor:
    """Attention that accepts (and ignores) `num_views`, so cross-attention stays per view."""

    def __init__(self, sdpa: bool = True):
        self._inner = _attention(sdpa)

    def __call__(self, attn, hidden_states: Tensor, encoder_hidden_states: Tensor | None = None,
                 attention_mask: Tensor | None = None, temb: Tensor | None = None, num_views: int = 1) -> Tensor:
        return self._inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


def install_multiview_attention(unet, sdpa: bool = True) -> None:
    """Give every attn1 the multi-view processor and every other attention the per-view one
    (both on SDPA, or with sdpa=False on diffusers' plain matmul-softmax attention)."""
    procs = {name: MultiViewSelfAttnProcessor(sdpa) if name.endswith("attn1.processor") else PerViewAttnProcessor(sdpa)
             for name in unet.attn_processors}
    unet.set_attn_processor(procs)


def multiview_unet_config(base_config: dict, camera_dim: int = 16) -> dict:
    """A UNet2DConditionModel config plus MVDream's camera MLP as the projection class embedding."""
    cfg = {k: v for k, v in dict(base_config).items() if not k.startswith("_")}
    cfg.update(class_embed_type="projection", projection_class_embeddings_input_dim=camera_dim)
    return cfg


def build_multiview_unet(config: dict):
    """A randomly initialised multi-view UNet (UNet2DConditionModel + multi-view processors)."""
    from diffusers import UNet2DConditionModel

    if config.get("class_embed_type") != "projection":
        config = multiview_unet_config(config)
    unet = UNet2DConditionModel.from_config(config)
    install_multiview_attention(unet)
    return unet


def multiview_forward(unet, latents: Tensor, t: Tensor, context: Tensor, camera: Tensor | None,
                      num_views: int) -> Tensor:
    """eps for latents (B*F, C, h, w) laid out group after group; camera (B*F, 16) or None (no camera term).

    With camera None the class embedding is skipped, i.e. the camera contributes nothing (MVDream's
    `camera=None` path).
    """
    if latents.shape[0] % num_views:
        raise ValueError(f"batch {latents.shape[0]} is not a multiple of num_views={num_views}")
    kwargs = {"num_views": num_views}
    if camera is None:
        saved = unet.class_embedding
        unet.class_embedding = None
        try:
            return unet(latents, t, encoder_hidden_states=context, cross_attention_kwargs=kwargs).sample
        finally:
            unet.class_embedding = saved
    return unet(latents, t, encoder_hidden_states=context, class_labels=camera.to(latents.dtype),
                cross_attention_kwargs=kwargs).sample


def camera_condition(c2w: Tensor) -> Tensor:
    """MVDream's camera input: c2w with the translation scaled to unit length, flattened to (B, 16)."""
    from method.cameras import normalize_camera_translation

    return normalize_camera_translation(c2w.float()).reshape(c2w.shape[0], 16)


@torch.no_grad()
def zero_camera_embedding_(unet) -> None:
    """Set the camera MLP's output layer to zero, so the camera adds nothing to the time embedding."""
    unet.class_embedding.linear_2.weight.zero_()
    unet.class_embedding.linear_2.bias.zero_()
