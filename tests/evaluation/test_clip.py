"""CLIP score with a tiny open_clip model (same CLIP class and tokenizer as ViT-B-32, random weights)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import open_clip
import pandas as pd
import pytest
import torch
from eval_helpers import Stderr, make_frames, write_trimmed_video
from PIL import Image
from scipy import stats

from evaluation.clip import (ScoreConfig, clip_table, per_prompt, score_artifacts, score_frames, summarize,
                             text_embedding)
from evaluation.clip_models import TINY_MODEL_CFG, ClipConfig, _resolve_quick_gelu, load_clip
from method.guidance.loading import ModelNotFoundError


@pytest.fixture(scope="module")
def clip(tiny_clip):
    return load_clip(ClipConfig(model=str(tiny_clip), device="cpu"))


def reference_scores(model, preprocess, tokenizer, frames, prompt):
    """Encode each frame alone, normalise in float64 numpy, dot, clamp at 0, x100."""
    with torch.no_grad():
        t = model.encode_text(tokenizer([prompt]))[0].double().numpy()
        out = []
        for f in frames:
            e = model.encode_image(preprocess(Image.fromarray(f))[None])[0].double().numpy()
            out.append(100.0 * max(float(np.dot(e / np.linalg.norm(e), t / np.linalg.norm(t))), 0.0))
    return np.array(out)


def test_score_matches_an_independent_computation(clip, tiny_clip):
    frames = make_frames(5, 40, 40)
    frames[2] = 255 - frames[2]
    prompt = "A panda dancing."
    # a separately built model from the same folder, scored frame by frame
    model, _, pre = open_clip.create_model_and_transforms(f"local-dir:{tiny_clip}")
    model.eval()
    ref = reference_scores(model, pre, open_clip.get_tokenizer(f"local-dir:{tiny_clip}"), frames, prompt)
    got = score_frames(clip, frames, prompt, batch_size=3)
    assert got == pytest.approx(ref, rel=1e-5, abs=1e-5)
    assert (ref > 0).any()  # not all clamped: the comparison means something


def test_negative_cosines_clamp_to_zero(clip):
    from evaluation.clip import preprocess_frames

    frames = make_frames(6, 32, 32)
    with torch.no_grad():
        e = clip.model.encode_image(preprocess_frames(frames, clip.preprocess)).double()
    signs = set()
    for prompt in ("x", "A panda dancing.", "A cat"):
        cos = ((e / e.norm(dim=-1, keepdim=True)) @ text_embedding(clip, prompt)).numpy()
        scores = score_frames(clip, frames, prompt)
        assert np.all(scores[cos < 0] == 0.0)
        assert scores[cos > 0] == pytest.approx(100 * cos[cos > 0], rel=1e-6)
        signs |= set(np.sign(cos).tolist())
    assert {-1.0, 1.0} <= signs  # both branches were exercised


def test_batch_size_and_frame_order_do_not_change_scores(clip):
    frames = make_frames(7, 24, 36)
    base = score_frames(clip, frames, "A goat drinking beer.", batch_size=64)
    for bs in (1, 2, 5):
        assert score_frames(clip, frames, "A goat drinking beer.", batch_size=bs) == pytest.approx(base, rel=1e-5,
                                                                                                   abs=1e-5)
    perm = np.random.default_rng(0).permutation(7)
    assert score_frames(clip, frames[perm], "A goat drinking beer.") == pytest.approx(base[perm], rel=1e-5, abs=1e-5)


def test_flat_colour_and_unicode_prompts_give_finite_scores(clip):
    flat = np.full((2, 32, 32, 3), 128, np.uint8)
    black = np.zeros((1, 32, 32, 3), np.uint8)
    for prompt in ['A "quoted" panda — dancing, naïvely 🐼.', "A panda dancing.", "'"]:
        s = score_frames(clip, np.concatenate([flat, black]), prompt)
        assert np.all(np.isfinite(s)) and np.all((s >= 0) & (s <= 100))
    a = text_embedding(clip, 'A "quoted" panda — dancing 🐼.')
    b = text_embedding(clip, "A quoted panda dancing.")
    assert not torch.allclose(a, b)  # the unicode and quotes reach the tokenizer


def test_non_square_frames_are_centre_cropped(clip):
    """open_clip's preprocessing resizes the short side and crops the centre: side bands do not count."""
    square = make_frames(2, 32, 32)
    wide = np.zeros((2, 32, 96, 3), np.uint8)
    wide[:, :, 32:64] = square
    wide[:, :, :32] = 255
    wide[:, :, 64:] = 255
    assert score_frames(clip, wide, "A cat singing.") == pytest.approx(score_frames(clip, square, "A cat singing."),
                                                                       rel=1e-4, abs=1e-4)


def test_weights_file_loads_into_a_quickgelu_model(tmp_path, tiny_clip):
    """The QuickGELU trap: weights trained with QuickGELU must not be run with GELU."""
    cfg_dir = tmp_path / "configs"
    cfg_dir.mkdir()
    model_cfg = {k: v for k, v in TINY_MODEL_CFG.items() if k != "quick_gelu"}  # the plain config builds GELU
    (cfg_dir / "Tiny-Test.json").write_text(json.dumps(model_cfg))
    open_clip.add_model_config(cfg_dir)
    weights = tiny_clip / "open_clip_pytorch_model.bin"
    qg = load_clip(ClipConfig(model="Tiny-Test", pretrained=str(weights), activation="quickgelu", device="cpu"))
    gelu = load_clip(ClipConfig(model="Tiny-Test", pretrained=str(weights), activation="gelu", device="cpu"))
    assert qg.quick_gelu and isinstance(qg.model.visual.transformer.resblocks[0].mlp.gelu,
                                        open_clip.transformer.QuickGELU)
    assert not gelu.quick_gelu and isinstance(gelu.model.visual.transformer.resblocks[0].mlp.gelu, torch.nn.GELU)
    # reference: the CLIP class built with QuickGELU and the same state dict
    ref = open_clip.model.CLIP(**TINY_MODEL_CFG).eval()
    ref.load_state_dict(torch.load(weights))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(qg.model.encode_image(x), ref.encode_image(x), atol=1e-6)
        assert not torch.allclose(gelu.model.encode_image(x), ref.encode_image(x), atol=1e-3)


def test_auto_activation_follows_the_weights(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"x")
    assert _resolve_quick_gelu(ClipConfig(), open_clip, None)  # ViT-B-32 / openai
    assert not _resolve_quick_gelu(ClipConfig(pretrained="laion2b_s34b_b79k"), open_clip, None)
    assert _resolve_quick_gelu(ClipConfig(pretrained=str(f)), open_clip, None)  # a file for an OpenAI architecture
    assert not _resolve_quick_gelu(ClipConfig(pretrained=str(f), activation="gelu"), open_clip, None)
    assert _resolve_quick_gelu(ClipConfig(model="hf-hub:org/repo"), open_clip, None) is None  # its config decides


def test_missing_weights_offline_name_model_option_and_fix(tmp_path, monkeypatch):
    import huggingface_hub.constants as hfc

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelNotFoundError) as err:
        load_clip(ClipConfig(device="cpu"))
    text = str(err.value)
    assert "'ViT-B-32'" in text and "'openai'" in text and "--pretrained" in text
    assert "hf download timm/vit_base_patch32_clip_224.openai" in text
    with pytest.raises(ModelNotFoundError, match="no such folder"):
        load_clip(ClipConfig(model=str(tmp_path / "nowhere") + "/", device="cpu"))
    with pytest.raises(ModelNotFoundError, match="no open_clip_config.json"):
        load_clip(ClipConfig(model=str(tmp_path), device="cpu"))
    with pytest.raises(ValueError, match="unknown pretrained tag"):
        load_clip(ClipConfig(pretrained="no_such_tag", device="cpu"))
    # a checkpoint file that is missing, or damaged: the architecture's OpenAI weights are named, and torch's advice
    # to load an unreadable file with weights_only=False is not passed on
    with pytest.raises(ModelNotFoundError, match="no such file") as err:
        load_clip(ClipConfig(pretrained=str(tmp_path / "gone.bin"), device="cpu"))
    assert "hf download timm/vit_base_patch32_clip_224.openai" in str(err.value)
    (tmp_path / "garbage.bin").write_bytes(b"not a checkpoint at all" * 100)
    with pytest.raises(ModelNotFoundError, match="is not a readable ViT-B-32 checkpoint") as err:
        load_clip(ClipConfig(pretrained=str(tmp_path / "garbage.bin"), device="cpu"))
    assert "hf download timm/vit_base_patch32_clip_224.openai" in str(err.value)
    assert "weights_only" not in str(err.value)


def _cached_tag(tmp_path, monkeypatch, name: str, content: bytes):
    """An offline Hugging Face cache holding `content` as the ViT-B-32 openai tag's file `name`; its snapshot folder."""
    import huggingface_hub.constants as hfc

    repo = tmp_path / "hub" / "models--timm--vit_base_patch32_clip_224.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / name).write_bytes(content)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return snapshot


def test_a_cached_file_that_reads_is_not_blamed_for_another_failure(tmp_path, monkeypatch):
    """A readable cached file of the wrong weights (a state dict of other keys), or a tokenizer that fails after the
    weights loaded: the loader's own reason, not "damaged, delete it" nor "not in the local cache"."""
    from safetensors.torch import save as save_safetensors

    _cached_tag(tmp_path, monkeypatch, "open_clip_model.safetensors", save_safetensors({"w": torch.zeros(2)}))
    with pytest.raises(ModelNotFoundError) as err:
        load_clip(ClipConfig(device="cpu"))
    text = str(err.value)
    assert "RuntimeError: " in text and "state_dict" in text
    assert "delete that file" not in text and "not in the local Hugging Face cache" not in text

    def no_tokenizer(*args, **kwargs):
        raise OSError("couldn't connect to the hub (tokenizer)")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", lambda *a, **k: (None, None, None))
    monkeypatch.setattr(open_clip, "get_tokenizer", no_tokenizer)
    with pytest.raises(ModelNotFoundError) as err:
        load_clip(ClipConfig(device="cpu"))
    text = str(err.value)
    assert "OSError: couldn't connect to the hub (tokenizer)" in text and "delete that file" not in text


@pytest.mark.parametrize("name", ["open_clip_pytorch_model.bin", "open_clip_model.safetensors"])
@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all" * 100])
def test_a_damaged_cached_file_of_a_tag_is_named_with_the_fix(tmp_path, monkeypatch, name, content):
    """The tag's file is in the Hugging Face cache but does not load (an empty or damaged download): the message
    names that file and how to replace it, not a bare EOFError / SafetensorError or "not in the cache"."""
    snapshot = _cached_tag(tmp_path, monkeypatch, name, content)
    with pytest.raises(ModelNotFoundError) as err:
        load_clip(ClipConfig(device="cpu"))
    text = str(err.value)
    assert f"{snapshot / name} is not a readable ViT-B-32 checkpoint" in text
    assert ("empty (0 bytes" in text) == (content == b"")
    assert "delete that file" in text and "not in the local Hugging Face cache" not in text
    assert "hf download timm/vit_base_patch32_clip_224.openai" in text


# --- statistics ----------------------------------------------------------------------------------------

def _prompts_table():
    rows = []
    rng = np.random.default_rng(1)
    slugs = ["a_panda_dancing", "a_goat_drinking_beer", "a_cat_singing", "a_dog_riding_a_skateboard", "a_bear_driving_a_car"]
    for m, n in (("4dfy", 5), ("mav3d", 4), ("wo_3d", 2), ("hexplane", 1)):
        for s in slugs[:n] if m != "wo_3d" else [slugs[0], slugs[4]]:
            rows.append({"method": m, "slug": s, "prompt": s, "n_frames": 4, "clip": float(20 + 10 * rng.random())})
    return pd.DataFrame(rows)


def test_summary_means_intervals_and_paired_differences():
    pp = _prompts_table()
    cfg = ScoreConfig(n_resamples=2000, seed=3)
    s = summarize(pp, cfg).set_index("method")
    for m, g in pp.groupby("method"):
        assert s.loc[m, "clip"] == pytest.approx(g["clip"].mean())
    x = pp[pp.method == "mav3d"]["clip"].to_numpy()
    ref = stats.bootstrap((x,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(3))
    assert (s.loc["mav3d", "ci_low"], s.loc["mav3d", "ci_high"]) == pytest.approx(
        (ref.confidence_interval.low, ref.confidence_interval.high))
    # paired difference on shared prompts only (wo_3d shares 2 of its prompts with 4dfy)
    prim = pp[pp.method == "4dfy"].set_index("slug")["clip"]
    mine = pp[pp.method == "wo_3d"].set_index("slug")["clip"]
    d = [mine[k] - prim[k] for k in ("a_bear_driving_a_car", "a_panda_dancing")]
    assert s.loc["wo_3d", "n_shared"] == 2 and s.loc["wo_3d", "diff_vs_primary"] == pytest.approx(np.mean(d))
    assert s.loc["wo_3d", "diff_ci_low"] <= np.mean(d) <= s.loc["wo_3d", "diff_ci_high"]
    assert math.isnan(s.loc["hexplane", "ci_low"]) and s.loc["hexplane", "n_prompts"] == 1
    assert math.isnan(s.loc["4dfy", "diff_vs_primary"])


def test_clip_table_rows_per_prompt_set():
    pp = _prompts_table()
    sets = {"five": list(pp.slug.unique()), "two": ["a_panda_dancing", "a_cat_singing"]}
    t = clip_table(pp, sets).set_index(["method", "prompt_set"])
    every = t.xs("all", level="prompt_set")  # the rows over every prompt scored (tests/evaluation/test_clip_table.py)
    assert list(every.index) == sorted(pp.method.unique())
    t = t.drop(index="all", level="prompt_set")
    for (m, name), row in t.iterrows():
        g = pp[(pp.method == m) & pp.slug.isin(sets[name])]
        assert row["clip"] == pytest.approx(g["clip"].mean()) and row["n_prompts"] == len(g)
        assert row["n_set"] == len(sets[name])
    assert ("wo_3d", "two") in t.index and t.loc[("wo_3d", "two"), "n_prompts"] == 1
    assert len(t) == 4 + 4


def test_score_artifacts_uses_the_decoded_videos(clip, tmp_path):
    from evaluation.artifacts import find_artifacts, write_artifact
    from evaluation.video import decode_video

    src = {"kind": "import", "file": "x.mp4", "sha256": "0"}
    for m, seed in (("4dfy", 0), ("mav3d", 5)):
        write_artifact(tmp_path, m, "A panda dancing.", make_frames(3, 32, 32, seed=seed), source=src,
                       trajectory="orbit", fps=15)
    arts = find_artifacts([tmp_path])
    pf = score_artifacts(arts, clip)
    assert list(pf.columns) == ["method", "slug", "prompt", "frame", "score"] and len(pf) == 6
    for (m, _), a in arts.items():
        ref = score_frames(clip, decode_video(a.video_path), a.prompt)
        assert pf[pf.method == m]["score"].to_numpy() == pytest.approx(ref)
    pp = per_prompt(pf)
    assert pp.set_index("method").loc["mav3d", "clip"] == pytest.approx(pf[pf.method == "mav3d"].score.mean())


def test_the_progress_bar_shows_on_a_terminal_only(clip, tmp_path, monkeypatch):
    from evaluation.artifacts import find_artifacts, write_artifact

    write_artifact(tmp_path, "4dfy", "A panda dancing.", make_frames(2, 32, 32), trajectory="orbit", fps=15,
                   source={"kind": "import", "file": "x.mp4", "sha256": "0"})
    arts = find_artifacts([tmp_path])
    for tty, progress, shown in ((True, True, True), (False, True, False), (True, False, False)):
        stream = Stderr(tty)
        monkeypatch.setattr(sys, "stderr", stream)
        score_artifacts(arts, clip, progress=progress)
        monkeypatch.undo()
        assert ("clipscore" in stream.getvalue()) == shown, (tty, progress)


def test_the_tiny_clip_id_loads_the_cached_random_model(tmp_path, monkeypatch):
    from evaluation.clip_models import TINY_CLIP_ID, ClipConfig, load_clip, tiny_clip_folder

    monkeypatch.setenv("FOURDFY_CACHE", str(tmp_path))
    loaded = load_clip(ClipConfig(model=TINY_CLIP_ID, device="cpu"))
    folder = tiny_clip_folder()
    assert folder.is_relative_to(tmp_path) and (folder / "open_clip_config.json").is_file()
    import torch

    saved = torch.load(folder / "open_clip_pytorch_model.bin", map_location="cpu")
    got = loaded.model.state_dict()
    assert saved.keys() == got.keys() and all(torch.equal(saved[k], got[k].cpu()) for k in saved)


def test_bf16_image_tower_is_close_to_fp32_and_labelled(tiny_clip, tmp_path):
    from evaluation.clip import write_outputs

    fp32 = load_clip(ClipConfig(model=str(tiny_clip), device="cpu"))
    bf16 = load_clip(ClipConfig(model=str(tiny_clip), device="cpu", precision="bf16"))
    assert next(bf16.model.visual.parameters()).dtype == torch.bfloat16
    assert next(bf16.model.transformer.parameters()).dtype == torch.float32  # the text tower stays fp32
    assert "bf16" in bf16.description and "bf16" not in fp32.description
    prompt = "A panda dancing."
    assert torch.equal(text_embedding(bf16, prompt), text_embedding(fp32, prompt))
    frames = make_frames(6, 32, 32)
    a, b = score_frames(fp32, frames, prompt), score_frames(bf16, frames, prompt)
    assert b.dtype == np.float64 and np.all(np.isfinite(b))
    assert not np.array_equal(a, b)  # the image tower really ran in bf16
    assert np.abs(a - b).max() < 1.5  # ... and stays close (scores are in [0, 100])
    per_frame = pd.DataFrame({"method": "m", "slug": "s", "prompt": prompt, "frame": range(6), "score": b})
    write_outputs(tmp_path, per_frame, ScoreConfig(n_resamples=100), bf16.description, precision="bf16")
    assert json.loads((tmp_path / "clipscore.json").read_text())["precision"] == "bf16"
    with pytest.raises(ValueError, match="precision"):
        ClipConfig(precision="fp16")


def test_score_cache_reuses_a_trimmed_video_copied_at_import(clip, tmp_path, monkeypatch):
    """A stream-copy trim declares frames its edit list drops. The import copies it as is; the cache's guard
    against cut files counts the samples in the file, so the second run does not decode it again."""
    import evaluation.clip as clip_module
    from evaluation.artifacts import find_artifacts
    from evaluation.clip import ScoreCache
    from evaluation.importer import import_videos

    src = tmp_path / "src"
    src.mkdir()
    write_trimmed_video(src / "a_panda_dancing.mp4", n=12, drop=4)
    import_videos(src, "mav3d", tmp_path / "art", prompts={"a_panda_dancing": "A panda dancing."})
    arts = find_artifacts([tmp_path / "art"])
    (art,) = arts.values()
    assert art.manifest["extra"]["copied"] and art.n_frames == 8  # copied as is: it declares 12
    first = score_artifacts(arts, clip, cache=ScoreCache(tmp_path / "cache", clip))

    def no_decoding(path):
        raise AssertionError(f"{path} decoded although cached")

    monkeypatch.setattr(clip_module, "decode_video", no_decoding)
    again = ScoreCache(tmp_path / "cache", clip)
    pd.testing.assert_frame_equal(first, score_artifacts(arts, clip, cache=again))
    assert (again.hits, again.misses) == (1, 0)


def test_score_cache_reuses_unchanged_videos_and_misses_on_any_change(clip, tiny_clip, tmp_path, monkeypatch):
    import evaluation.clip as clip_module
    from evaluation.artifacts import find_artifacts, write_artifact
    from evaluation.clip import ScoreCache

    src = {"kind": "import", "file": "x.mp4", "sha256": "0"}
    for m, seed in (("4dfy", 0), ("mav3d", 5)):
        write_artifact(tmp_path / "art", m, "A panda dancing.", make_frames(3, 32, 32, seed=seed), source=src,
                       trajectory="orbit", fps=15)
    arts = find_artifacts([tmp_path / "art"])
    cache = ScoreCache(tmp_path / "cache", clip)
    first = score_artifacts(arts, clip, cache=cache)
    assert (cache.hits, cache.misses) == (0, 2) and len(list((tmp_path / "cache").rglob("*.json"))) == 2

    def no_decoding(path):
        raise AssertionError(f"{path} decoded although cached")

    with monkeypatch.context() as mp:
        mp.setattr(clip_module, "decode_video", no_decoding)
        again = ScoreCache(tmp_path / "cache", clip)
        second = score_artifacts(arts, clip, cache=again)
    assert again.hits == 2
    pd.testing.assert_frame_equal(first, second)  # exactly: the cache stores repr floats

    # a changed video, a changed prompt, another precision or batch size: all misses
    write_artifact(tmp_path / "art", "mav3d", "A panda dancing.", make_frames(3, 32, 32, seed=9), source=src,
                   trajectory="orbit", fps=15, overwrite=True)
    arts = find_artifacts([tmp_path / "art"])
    c = ScoreCache(tmp_path / "cache", clip)
    score_artifacts(arts, clip, cache=c)
    assert (c.hits, c.misses) == (1, 1)
    art = arts[("4dfy", "a_panda_dancing")]
    key = c.key(art.video_path, art.prompt, 16)  # 16: score_artifacts' default batch
    assert key != c.key(art.video_path, "A panda singing.", 16) and key != c.key(art.video_path, art.prompt, 32)
    bf16 = load_clip(ClipConfig(model=str(tiny_clip), device="cpu", precision="bf16"))
    assert key != ScoreCache(tmp_path / "cache", bf16).key(art.video_path, art.prompt, 16)
    # the batch the scores are computed with is the one keyed: another batch is a miss, not a stale hit
    c4 = ScoreCache(tmp_path / "cache", clip)
    score_artifacts(arts, clip, batch_size=2, cache=c4)
    assert (c4.hits, c4.misses) == (0, 2)
    # a torn entry is a miss, and is rewritten
    entry = c._path(c.key(art.video_path, art.prompt, 16))
    entry.write_text('{"scores": [1.0, ')
    c2 = ScoreCache(tmp_path / "cache", clip)
    third = score_artifacts(arts, clip, cache=c2)
    assert (c2.hits, c2.misses) == (1, 1) and json.loads(entry.read_text())["scores"]
    assert third[third.method == "4dfy"].score.tolist() == first[first.method == "4dfy"].score.tolist()
    # an entry of the wrong length is a miss, not a hit; a missing video is the usual one-line error
    entry.write_text(json.dumps({"scores": [1.0, 2.0]}))
    c3 = ScoreCache(tmp_path / "cache", clip)
    assert c3.get(c3.key(art.video_path, art.prompt, 16), art.n_frames) is None and (c3.hits, c3.misses) == (0, 1)
    art.video_path.unlink()
    from evaluation.artifacts import ArtifactError

    with pytest.raises(ArtifactError, match="video.mp4"):
        score_artifacts(arts, clip, cache=ScoreCache(tmp_path / "cache", clip))


def test_cuda_identity_reads_tf32_whichever_api_set_it():
    """The score cache's CUDA identity holds the TF32 state: the legacy flags as before, and in a process that
    set its precisions through PyTorch's per-backend API (where reading the legacy flags raises) the per-backend
    values, so a key is still made and TF32 on / off still differ. Run in a subprocess: the flags are global."""
    import subprocess
    from pathlib import Path

    code = """
import json, torch
from evaluation.clip import _device_identity
torch.cuda.get_device_name = lambda device=None: "a GPU"
out = [_device_identity(torch.device("cuda"))]
torch.backends.cuda.matmul.allow_tf32 = True
out.append(_device_identity(torch.device("cuda")))
torch.backends.cuda.matmul.fp32_precision = "tf32"
torch.backends.cudnn.conv.fp32_precision = "ieee"
out.append(_device_identity(torch.device("cuda")))
torch.backends.cuda.matmul.fp32_precision = "ieee"
out.append(_device_identity(torch.device("cuda")))
print(json.dumps(out))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stderr[-2000:]
    plain, legacy_on, split_on, split_off = json.loads(res.stdout.splitlines()[-1])
    assert plain[:2] == ["cuda", "a GPU"] and plain[2] is False and legacy_on[2] is True
    assert split_on[2:] == ["tf32", "ieee"] and split_off[2:] == ["ieee", "ieee"]
