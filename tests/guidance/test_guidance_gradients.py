"""Gradient identity: what reaches the latents (and the render) is w(t)(eps_hat - eps), recomputed here
independently from the saved models with diffusers' own schedulers and hand-written CFG."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from method.cameras import cameras_from_spherical, sample_multiview_groups
from method.guidance.tiny import TINY_VIDEO_SIZE


def _text(folder, texts):
    from transformers import CLIPTextModel, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
    enc = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder").eval()
    ids = tok(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        return enc(ids).last_hidden_state


def _abar(folder, t, cls_name="DDPMScheduler"):
    import diffusers

    sched = getattr(diffusers, cls_name).from_pretrained(folder, subfolder="scheduler")
    return sched, sched.alphas_cumprod[t].view(-1, *([1] * 3))


def _close(actual, expected, rel=1e-4):
    scale = expected.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(actual, expected, rtol=rel, atol=rel * scale)


def _render_grad_check(rgb, latents, expected_latent_grad):
    """The render's gradient is the VAE-encoder VJP of the latent gradient, nothing else."""
    (vjp,) = torch.autograd.grad(latents, rgb, expected_latent_grad)
    _close(rgb.grad, vjp)


@pytest.mark.parametrize("loss", ["sds", "recon"])
def test_mvdream_gradient_identity(tiny_root, make_rgb, loss):
    from diffusers import UNet2DConditionModel

    from method.guidance import MVDreamGuidance
    from method.guidance.mvdream import RELEASE_NEGATIVE_PROMPT
    from method.guidance.mvdream_unet import install_multiview_attention
    from method.guidance.tiny import tiny_mvdream_config

    g = MVDreamGuidance(tiny_mvdream_config(loss=loss, anneal="none", t_range=(0.3, 0.6)))
    cams = sample_multiview_groups(2, generator=torch.Generator().manual_seed(1))
    rgb = make_rgb(8, 24, 24)
    out = g(rgb, cams, "a corgi", step=0, generator=torch.Generator().manual_seed(7))
    assert set(out) == {"loss_sds"}
    lat = g.last["latents"]
    lat.retain_grad()
    out["loss_sds"].backward(retain_graph=True)

    folder = tiny_root / "mvdream"
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet").eval()
    install_multiview_attention(unet)
    t, noise = g.last["t"], g.last["noise"]
    assert 300 <= t.item() <= 600
    sched, a = _abar(folder, t)
    z_t = sched.add_noise(lat.detach(), noise, t)
    cond, uncond = _text(tiny_root / "sd-base", ["a corgi", RELEASE_NEGATIVE_PROMPT]).split(1)
    c2w = cams.c2w.clone()
    c2w[:, :3, 3] /= c2w[:, :3, 3].norm(dim=-1, keepdim=True)
    cam = c2w.reshape(8, 16)
    with torch.no_grad():
        eps = unet(torch.cat([z_t, z_t]), t.expand(16), encoder_hidden_states=torch.cat([cond.expand(8, -1, -1),
                   uncond.expand(8, -1, -1)]), class_labels=torch.cat([cam, cam]),
                   cross_attention_kwargs={"num_views": 4}).sample
    eps_c, eps_u = eps.chunk(2)
    eps_hat = eps_u + 50.0 * (eps_c - eps_u)
    if loss == "sds":
        expected = (1 - a) * (eps_hat - noise) / 8
    else:
        x0 = (z_t - (1 - a).sqrt() * eps_hat) / a.sqrt()
        x0_c = (z_t - (1 - a).sqrt() * eps_c) / a.sqrt()
        std = lambda x: x.reshape(2, -1).std(dim=1).repeat_interleave(4).view(8, 1, 1, 1)  # noqa: E731
        x0_adj = 0.5 * x0 * (std(x0_c) + 1e-8) / (std(x0) + 1e-8) + 0.5 * x0
        expected = (lat.detach() - x0_adj) / 8
    _close(lat.grad, expected)
    _render_grad_check(rgb, lat, expected)


def test_vsd_gradient_identity_and_lora_loss(tiny_root, make_rgb, vsd):
    from diffusers import UNet2DConditionModel

    with torch.no_grad():  # make the LoRA matter (its B matrices start at zero)
        for n, p in vsd.unet_lora.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(hash(n) % 1000))
    cams = cameras_from_spherical(torch.tensor([0.0, 100.0]), 10.0, 2.7, 40.0)
    rgb = make_rgb(2, 32, 32)
    out = vsd(rgb, cams, "a corgi", step=0, generator=torch.Generator().manual_seed(3))
    assert set(out) == {"loss_vsd", "loss_lora"}
    lat = vsd.last["latents"]
    lat.retain_grad()
    (out["loss_vsd"] + out["loss_lora"]).backward(retain_graph=True)

    t, noise = vsd.last["t"], vsd.last["noise"]
    assert t.shape == (2,) and ((20 <= t) & (t <= 500)).all()
    sched, a = _abar(tiny_root / "sd-base", t)
    lsched, al = _abar(tiny_root / "sd-lora", t)
    assert lsched.config.prediction_type == "v_prediction"
    z_t = sched.add_noise(lat.detach(), noise, t)
    base = UNet2DConditionModel.from_pretrained(tiny_root / "sd-base", subfolder="unet").eval()
    cond_vd = _text(tiny_root / "sd-base", ["a corgi, front view", "a corgi, side view"])
    cond, uncond = _text(tiny_root / "sd-base", ["a corgi", ""]).split(1)
    cam = cams.c2w.reshape(2, 16)
    with torch.no_grad():
        e = base(torch.cat([z_t, z_t]), torch.cat([t, t]),
                 encoder_hidden_states=torch.cat([cond_vd, uncond.expand(2, -1, -1)])).sample
        e_c, e_u = e.chunk(2)
        eps_pre = e_u + 7.5 * (e_c - e_u)
        v = vsd.unet_lora(z_t, t, encoder_hidden_states=cond.expand(2, -1, -1), class_labels=cam).sample
    eps_lora = al.sqrt() * v + (1 - al).sqrt() * z_t
    expected = (1 - a) * (eps_pre - eps_lora) / 2
    _close(lat.grad, expected)
    _render_grad_check(rgb, lat, expected)  # loss_lora adds nothing to the render's gradient

    # Eq. 5 with the v-prediction target, recomputed
    tl, nl = vsd.last["t_lora"], vsd.last["noise_lora"]
    _, al2 = _abar(tiny_root / "sd-lora", tl)
    z0 = lat.detach()
    target = al2.sqrt() * nl - (1 - al2).sqrt() * z0
    cam_l = torch.zeros_like(cam) if bool(vsd.last["camera_dropped"]) else cam
    with torch.no_grad():
        pred = vsd.unet_lora(al2.sqrt() * z0 + (1 - al2).sqrt() * nl, tl,
                             encoder_hidden_states=cond.expand(2, -1, -1), class_labels=cam_l).sample
    torch.testing.assert_close(out["loss_lora"].detach(), torch.nn.functional.mse_loss(pred, target),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("form", ["paper", "release"])
def test_zeroscope_gradient_identity_both_cfg_forms(tiny_root, make_rgb, zeroscope, form):
    from diffusers import UNet3DConditionModel

    g = zeroscope
    g.cfg = dataclasses.replace(g.cfg, cfg_form=form)
    try:
        cams = cameras_from_spherical(torch.full((16,), 20.0), 5.0, 2.8, 40.0)
        rgb = make_rgb(16, 16, 24)
        out = g(rgb, cams, "a corgi running", step=0, generator=torch.Generator().manual_seed(5))
    finally:
        g.cfg = dataclasses.replace(g.cfg, cfg_form="release")
    lat = g.last["latents"]
    assert lat.shape == (1, 4, 16, TINY_VIDEO_SIZE[0] // 4, TINY_VIDEO_SIZE[1] // 4)  # VAE: /4
    lat.retain_grad()
    out["loss_sds_video"].backward(retain_graph=True)
    t, noise = g.last["t"], g.last["noise"]
    assert t.shape == (1,)
    sched, a = _abar(tiny_root / "zeroscope", t, "DDIMScheduler")
    a = a.view(1, 1, 1, 1, 1)
    z_t = a.sqrt() * lat.detach() + (1 - a).sqrt() * noise
    unet = UNet3DConditionModel.from_pretrained(tiny_root / "zeroscope", subfolder="unet").eval()
    cond, uncond = _text(tiny_root / "zeroscope", ["a corgi running, front view", ""]).split(1)
    with torch.no_grad():
        e = unet(torch.cat([z_t, z_t]), torch.cat([t, t]), encoder_hidden_states=torch.cat([cond, uncond])).sample
    e_c, e_u = e.chunk(2)
    eps_hat = e_u + 100.0 * (e_c - e_u) if form == "paper" else e_c + 100.0 * (e_c - e_u)
    expected = (1 - a) * (eps_hat - noise)
    _close(lat.grad, expected)
    _render_grad_check(rgb, lat, expected)
    other = e_c + 100.0 * (e_c - e_u) if form == "paper" else e_u + 100.0 * (e_c - e_u)
    assert (other - eps_hat).abs().max() > 1e-3  # the two forms really differ
