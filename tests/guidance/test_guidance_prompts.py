"""View-dependent prompts, the offline tokenizer and the embedding cache."""

from __future__ import annotations

import torch

from method.guidance import prompts as P


def test_view_directions_follow_azimuth_and_elevation():
    az = torch.tensor([0.0, 29.0, 31.0, 90.0, -90.0, 151.0, 180.0, -170.0, 200.0, 0.0])
    el = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 70.0])
    names = [P.DIRECTIONS[i] for i in P.view_directions(az, el)]
    assert names == ["front", "front", "side", "side", "side", "back", "back", "back", "back", "overhead"]
    wide = P.ViewPromptOptions(enabled=True, front=45.0, back=45.0)
    assert P.DIRECTIONS[P.view_directions(torch.tensor([40.0]), torch.tensor([0.0]), wide)[0]] == "front"
    assert P.view_prompt("a corgi", "back") == "a corgi, back view"


def test_offline_tokenizer_matches_open_clip():
    import open_clip

    from method.guidance.tiny import build_tokenizer

    tok = build_tokenizer()
    text = "a panda dancing, front view"
    ours = tok([text], padding="max_length", max_length=77, return_tensors="pt").input_ids[0]
    ref = open_clip.tokenize([text])[0]  # open_clip pads with 0, we pad with <|endoftext|>
    n = int((ref != 0).sum())
    assert ours.shape == (77,) and torch.equal(ours[:n], ref[:n])
    assert ours[0].item() == 49406 and ours[n - 1].item() == 49407


def test_embeddings_are_cached_and_view_dependent(tiny_root):
    P.clear_cache()
    proc = P.PromptProcessor(str(tiny_root / "sd-base"))
    calls = []
    original = proc._encoder.forward
    proc._encoder.forward = lambda *a, **k: calls.append(1) or original(*a, **k)
    cond, uncond = proc.embeddings("a corgi", "", 3, torch.tensor([0.0, 90.0, 180.0]), torch.zeros(3),
                                   view=P.ViewPromptOptions(enabled=True))
    assert cond.shape == (3, 77, 32) and uncond.shape == (3, 77, 32)
    assert not torch.allclose(cond[0], cond[1]) and not torch.allclose(cond[1], cond[2])
    n_first = len(calls)
    again, _ = proc.embeddings("a corgi", "", 3, torch.tensor([0.0, 90.0, 180.0]), torch.zeros(3),
                               view=P.ViewPromptOptions(enabled=True))
    assert len(calls) == n_first and torch.equal(again, cond)  # served from the cache
    plain, _ = proc.embeddings("a corgi", "", 2)
    assert torch.equal(plain[0], plain[1])
    ref = proc.encode(["a corgi, front view"])
    torch.testing.assert_close(cond[0:1], ref)
    assert (str(tiny_root / "sd-base"), "a corgi, side view") in P._CACHE
