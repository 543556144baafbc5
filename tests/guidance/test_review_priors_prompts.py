"""The text-embedding cache keeps one entry per encoder precision: a prior gets its own precision's embedding
whichever prior encoded the prompt first (MVDream in fp32 and VSD in fp16 share SD 2.1-base's text encoder)."""

from __future__ import annotations

import torch

from method.guidance import prompts as P


def test_an_embedding_cached_at_half_precision_is_not_served_to_a_float32_encoder(tiny_root):
    source = str(tiny_root / "sd-base")
    P.clear_cache()
    reference = P.PromptProcessor(source).encode(["a corgi"])
    P.clear_cache()
    half = P.PromptProcessor(source, dtype=torch.bfloat16).encode(["a corgi"])  # encoded first, at half precision
    full = P.PromptProcessor(source).encode(["a corgi"])
    assert half.dtype == torch.bfloat16 and not torch.equal(half.float(), reference)  # the precisions differ
    assert full.dtype == torch.float32 and torch.equal(full, reference)  # was: the bf16 values, cast to float32
    again = P.PromptProcessor(source, dtype=torch.bfloat16).encode(["a corgi"])
    assert torch.equal(again, half)  # each precision is still cached
    P.clear_cache()
