"""MVDream checkpoint converter: LDM layout <-> diffusers, one-to-one and lossless."""

from __future__ import annotations

import pytest
import torch

from method.guidance import ldm_arch as la
from method.guidance import mvdream_convert as mc
from method.guidance.architectures import MVDREAM_UNET, SD21_BASE_SCHEDULER, SD_VAE
from method.guidance.loading import ConversionError
from method.guidance.tiny import TINY_MVDREAM_ARCH, TINY_VAE_ARCH

# Key names of the real `sd-v2.1-base-4view.pt` (stable-diffusion openaimodel layout + camera MLP), with
# their shapes for SD 2.1-base: facts of the public checkpoint, checked against the generated list.
REAL_UNET_KEYS = {
    "time_embed.0.weight": (1280, 320),
    "camera_embed.0.weight": (1280, 16),
    "camera_embed.2.bias": (1280,),
    "input_blocks.0.0.weight": (320, 4, 3, 3),
    "input_blocks.1.1.proj_in.weight": (320, 320),
    "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
    "input_blocks.3.0.op.weight": (320, 320, 3, 3),
    "input_blocks.4.0.skip_connection.weight": (640, 320, 1, 1),
    "input_blocks.11.0.out_layers.3.weight": (1280, 1280, 3, 3),
    "middle_block.1.transformer_blocks.0.ff.net.0.proj.weight": (10240, 1280),
    "output_blocks.2.1.conv.weight": (1280, 1280, 3, 3),
    "output_blocks.5.2.conv.weight": (1280, 1280, 3, 3),
    "output_blocks.11.1.proj_out.weight": (320, 320),
    "output_blocks.11.0.skip_connection.weight": (320, 640, 1, 1),
    "out.2.weight": (4, 320, 3, 3),
}
REAL_VAE_KEYS = {
    "encoder.down.0.block.0.conv1.weight": (128, 128, 3, 3),
    "encoder.down.1.block.0.nin_shortcut.weight": (256, 128, 1, 1),
    "encoder.mid.attn_1.q.weight": (512, 512, 1, 1),
    "decoder.up.3.upsample.conv.weight": (512, 512, 3, 3),
    "decoder.up.0.block.2.conv2.weight": (128, 128, 3, 3),
    "quant_conv.weight": (8, 8, 1, 1),
    "post_quant_conv.weight": (4, 4, 1, 1),
}


def _meta_model_shapes(cls, config):
    with torch.device("meta"):
        m = cls.from_config(config)
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


def test_full_size_key_list_maps_one_to_one_onto_the_diffusers_model():
    from diffusers import AutoencoderKL, UNet2DConditionModel

    unet_keys = la.LDMUNetArch().keys()
    assert len(unet_keys) == 686 + 4  # SD 2.x UNet + camera MLP
    for k, shape in REAL_UNET_KEYS.items():
        assert unet_keys[k] == shape, k
    vae_keys = la.LDMVAEArch().keys()
    for k, shape in REAL_VAE_KEYS.items():
        assert vae_keys[k] == shape, k
    # reference diffusers models built on the meta device from the public configs (no memory)
    unet_ref = _meta_model_shapes(UNet2DConditionModel, MVDREAM_UNET)
    vae_ref = _meta_model_shapes(AutoencoderKL, SD_VAE)
    umap, vmap = mc.unet_key_map(la.LDMUNetArch()), mc.vae_key_map(la.LDMVAEArch())
    assert sorted(d for d, _ in umap.values()) == sorted(unet_ref)  # every parameter exactly once
    assert sorted(d for d, _ in vmap.values()) == sorted(vae_ref)
    assert umap["camera_embed.0.weight"][0] == "class_embedding.linear_1.weight"
    assert umap["camera_embed.2.weight"][0] == "class_embedding.linear_2.weight"
    for lkey, (dkey, _) in umap.items():
        assert unet_ref[dkey] == unet_keys[lkey]
    for lkey, (dkey, _) in vmap.items():
        assert torch.Size(vae_ref[dkey]).numel() == torch.Size(vae_keys[lkey]).numel()


def test_full_checkpoint_layout_converts_without_missing_or_unexpected_keys():
    """All keys of the real file: UNet, VAE, the OpenCLIP text tower and the schedule buffers."""
    import open_clip

    sd = {}
    for prefix, keys in ((la.UNET_PREFIX, la.LDMUNetArch().keys()), (la.VAE_PREFIX, la.LDMVAEArch().keys())):
        for i, (k, s) in enumerate(keys.items()):
            sd[prefix + k] = torch.tensor(float(i)).expand(s)  # stride-0: no memory for 1.3e9 numbers
    with torch.device("meta"):
        clip = open_clip.create_model("ViT-H-14", pretrained=None, device="meta")
    text = [k for k in clip.state_dict() if not k.startswith("visual.")]
    for k in text:
        sd[la.TEXT_PREFIX + "model." + k] = torch.zeros(())
    for k in la.SCHEDULE_BUFFERS:
        sd[k] = torch.zeros(1000)
    conv = mc.ldm_to_diffusers(sd)
    assert len(conv.unet) == 690 and len(conv.vae) == 248
    assert len(conv.skipped) == len(text) + len(la.SCHEDULE_BUFFERS)
    values = [int(v[(0,) * v.dim()]) for v in conv.unet.values()]
    assert sorted(values) == list(range(690))  # each source tensor used exactly once
    assert conv.unet_config["class_embed_type"] == "projection"
    assert conv.unet["class_embedding.linear_1.weight"].shape == (1280, 16)


def _random_ldm(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {la.UNET_PREFIX + k: torch.randn(s, generator=g) for k, s in TINY_MVDREAM_ARCH.keys().items()}
    sd.update({la.VAE_PREFIX + k: torch.randn(s, generator=g) for k, s in TINY_VAE_ARCH.keys().items()})
    return sd


def test_tiny_random_checkpoint_loads_strictly_and_round_trips_losslessly():
    from diffusers import AutoencoderKL, UNet2DConditionModel

    sd = _random_ldm()
    conv = mc.ldm_to_diffusers(sd, num_head_channels=8)
    assert conv.unet_config == TINY_MVDREAM_ARCH.diffusers_config()
    unet = UNet2DConditionModel.from_config(conv.unet_config)
    vae = AutoencoderKL.from_config(conv.vae_config)
    result = unet.load_state_dict(conv.unet, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    vae.load_state_dict(conv.vae, strict=True)
    torch.testing.assert_close(unet.class_embedding.linear_1.weight,
                               sd[la.UNET_PREFIX + "camera_embed.0.weight"], rtol=0, atol=0)
    torch.testing.assert_close(vae.encoder.mid_block.attentions[0].to_q.weight,
                               sd[la.VAE_PREFIX + "encoder.mid.attn_1.q.weight"][:, :, 0, 0], rtol=0, atol=0)
    back = mc.diffusers_to_ldm(unet.state_dict(), vae.state_dict(), dict(unet.config), dict(vae.config))
    assert set(back) == set(sd)
    for k, v in sd.items():
        assert back[k].shape == v.shape and torch.equal(back[k], v), k


def test_converter_rejects_missing_unexpected_and_reshaped_keys():
    sd = _random_ldm()
    broken = dict(sd)
    del broken[la.UNET_PREFIX + "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"]
    with pytest.raises(ConversionError, match="1 missing"):
        mc.ldm_to_diffusers(broken, num_head_channels=8)
    extra = dict(sd, **{"model_ema.decay": torch.zeros(())})
    with pytest.raises(ConversionError, match="no known part"):
        mc.ldm_to_diffusers(extra, num_head_channels=8)
    extra_unet = dict(sd, **{la.UNET_PREFIX + "input_blocks.1.1.extra.weight": torch.zeros(3)})
    with pytest.raises(ConversionError, match="1 unexpected"):
        mc.ldm_to_diffusers(extra_unet, num_head_channels=8)
    bad = dict(sd)
    bad[la.UNET_PREFIX + "camera_embed.0.weight"] = torch.zeros(64, 12)
    with pytest.raises(ConversionError):
        mc.ldm_to_diffusers(bad, num_head_channels=8)


def test_ldm_file_and_converted_folder_give_the_same_model(tiny_root, mvdream):
    from method.guidance import MVDreamGuidance
    from method.guidance.tiny import tiny_mvdream_config

    from_ldm = MVDreamGuidance(tiny_mvdream_config(model=str(tiny_root / "mvdream-ldm")))
    a, b = mvdream.unet.state_dict(), from_ldm.unet.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    va, vb = mvdream.vae.state_dict(), from_ldm.vae.state_dict()
    assert all(torch.equal(va[k], vb[k]) for k in va)


def test_convert_file_writes_a_folder_the_guidance_loads(tiny_root, tmp_path):
    from method.guidance import MVDreamGuidance
    from method.guidance.tiny import tiny_mvdream_config

    out = mc.convert_file(tiny_root / "mvdream-ldm" / "sd-v2.1-base-4view.pt", tmp_path / "mv", num_head_channels=8)
    assert (out / "unet" / "config.json").is_file() and (out / "mvdream.json").is_file()
    g = MVDreamGuidance(tiny_mvdream_config(model=str(out)))
    assert g.unet.config.class_embed_type == "projection"
    sd = mc.load_state_dict_file(tiny_root / "mvdream-ldm" / "sd-v2.1-base-4view.pt")
    mc.check_schedule(sd, SD21_BASE_SCHEDULER)  # the file's buffers match SD's schedule
    sd["alphas_cumprod"] = sd["alphas_cumprod"] * 0.5
    with pytest.raises(ConversionError, match="noise schedule"):
        mc.check_schedule(sd, SD21_BASE_SCHEDULER)
