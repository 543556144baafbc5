"""The multi-view UNet: plain UNet when given one view and no camera term; attention across views."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from method.guidance.mvdream_unet import (build_multiview_unet, multiview_forward, multiview_unet_config,
                                          zero_camera_embedding_)
from method.guidance.tiny import TINY_UNET_ARCH


def _unets():
    from diffusers import UNet2DConditionModel

    base_cfg = TINY_UNET_ARCH.diffusers_config(sample_size=8)
    torch.manual_seed(0)
    mv = build_multiview_unet(multiview_unet_config(base_cfg)).eval()
    plain = UNet2DConditionModel.from_config(base_cfg).eval()
    sd = {k: v for k, v in mv.state_dict().items() if not k.startswith("class_embedding.")}
    plain.load_state_dict(sd, strict=True)
    return mv, plain


def _inputs(b, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 4, 8, 8, generator=g)
    ctx = torch.randn(b, 77, 32, generator=g)
    cam = torch.randn(b, 16, generator=g)
    return x, ctx, cam


@torch.no_grad()
def test_single_view_with_zero_camera_embedding_equals_plain_unet():
    mv, plain = _unets()
    zero_camera_embedding_(mv)
    x, ctx, cam = _inputs(3)
    t = torch.tensor([10, 500, 900])
    ours = multiview_forward(mv, x, t, ctx, cam, num_views=1)
    ref = plain(x, t, encoder_hidden_states=ctx).sample
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    # without zeroing, the camera changes the output (the embedding is really added)
    mv2, _ = _unets()
    assert not torch.allclose(multiview_forward(mv2, x, t, ctx, cam, 1), ref, atol=1e-4)


@torch.no_grad()
def test_views_of_a_group_attend_to_each_other_and_groups_do_not():
    mv, _ = _unets()
    x, ctx, cam = _inputs(8)
    t = torch.full((8,), 400)
    out = multiview_forward(mv, x, t, ctx, cam, num_views=4)
    x2 = x.clone()
    x2[1] += 1.0  # change view 1 of group 0
    out2 = multiview_forward(mv, x2, t, ctx, cam, num_views=4)
    assert (out2[0] - out[0]).abs().max() > 1e-4  # view 0 sees view 1
    torch.testing.assert_close(out2[4:], out[4:])  # group 1 does not
    single = multiview_forward(mv, x, t, ctx, cam, num_views=1)
    single2 = multiview_forward(mv, x2, t, ctx, cam, num_views=1)
    torch.testing.assert_close(single2[0], single[0])  # per-view attention: no leak


@torch.no_grad()
def test_multiview_processor_matches_reference_attention():
    mv, _ = _unets()
    attn = mv.down_blocks[0].attentions[0].transformer_blocks[0].attn1
    g = torch.Generator().manual_seed(3)
    h = torch.randn(8, 16, 32, generator=g)  # 2 groups x 4 views, 16 tokens each
    out = attn(h, num_views=4)
    # reference: tokens of each group concatenated, plain multi-head softmax attention
    grouped = h.reshape(2, 64, 32)
    q, k, v = attn.to_q(grouped), attn.to_k(grouped), attn.to_v(grouped)
    heads = attn.heads

    def split(a):
        return a.reshape(2, 64, heads, -1).transpose(1, 2)

    w = torch.softmax(split(q) @ split(k).transpose(-1, -2) / split(q).shape[-1] ** 0.5, dim=-1)
    ref = attn.to_out[0]((w @ split(v)).transpose(1, 2).reshape(2, 64, -1)).reshape(8, 16, 32)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    cross = mv.down_blocks[0].attentions[0].transformer_blocks[0].attn2
    ctx = torch.randn(8, 77, 32, generator=g)
    per_view = cross(h, encoder_hidden_states=ctx, num_views=4)
    ref_cross = F.scaled_dot_product_attention(
        cross.to_q(h).reshape(8, 16, cross.heads, -1).transpose(1, 2),
        cross.to_k(ctx).reshape(8, 77, cross.heads, -1).transpose(1, 2),
        cross.to_v(ctx).reshape(8, 77, cross.heads, -1).transpose(1, 2)).transpose(1, 2).reshape(8, 16, -1)
    torch.testing.assert_close(per_view, cross.to_out[0](ref_cross), atol=1e-5, rtol=1e-5)
