"""Architecture configs of the real priors (diffusers config dicts), for random-weight full-size
builds (benchmarks, key-layout tests) and as the reference the tiny priors shrink.

Values are those of the public configs: Stable Diffusion 2.1-base (512, eps) and 2.1 (768, v),
the SD VAE, the SD 2.x text encoder (OpenCLIP ViT-H/14 text tower up to its penultimate layer),
MVDream = SD 2.1-base UNet + camera MLP, and Zeroscope v2 576w (ModelScope's UNet3DConditionModel).
"""

from __future__ import annotations

SD21_BASE_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    # diffusers' historical name: these are the numbers of heads per level (head size 64)
    "attention_head_dim": [5, 10, 20, 20],
    "cross_attention_dim": 1024,
    "use_linear_projection": True,
    "norm_num_groups": 32,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
}

SD21_UNET = {**SD21_BASE_UNET, "sample_size": 96}

# MVDream: SD 2.1-base plus camera_embed = Linear(16, 1280) -> SiLU -> Linear(1280, 1280) added to
# the time embedding, which is exactly diffusers' "projection" class embedding.
MVDREAM_UNET = {**SD21_BASE_UNET, "sample_size": 32, "class_embed_type": "projection",
                "projection_class_embeddings_input_dim": 16}

SD_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}

SD2_TEXT_ENCODER = {
    "vocab_size": 49408,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 23,
    "num_attention_heads": 16,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 512,
}

ZEROSCOPE_UNET = {
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"],
    "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "attention_head_dim": 64,
    "cross_attention_dim": 1024,
    "norm_num_groups": 32,
}

SCALED_LINEAR = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                 "beta_schedule": "scaled_linear", "clip_sample": False, "set_alpha_to_one": False,
                 "steps_offset": 1}
SD21_BASE_SCHEDULER = {**SCALED_LINEAR, "prediction_type": "epsilon"}
SD21_SCHEDULER = {**SCALED_LINEAR, "prediction_type": "v_prediction"}
ZEROSCOPE_SCHEDULER = {**SCALED_LINEAR, "prediction_type": "epsilon"}
