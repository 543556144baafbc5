"""`fourdfy render` on a (fake) trained run: frame count, size, manifest, determinism, wiring, depth map."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch
from eval_helpers import Stderr
from matplotlib import colormaps

from evaluation.artifacts import ArtifactError, validate_artifact
from evaluation.render import EvalRenderConfig, depth_to_rgb, render_frames, render_run
from evaluation.runs import RunError, eval_render_config, load_run
from evaluation.video import decode_video

SMALL = EvalRenderConfig(n_frames=3, size=12, device="cpu")


@pytest.fixture(scope="module")
def rendered(fake_run, tmp_path_factory):
    torch.set_num_threads(1)
    return render_run(fake_run, tmp_path_factory.mktemp("eval"), SMALL)


def test_artifact_has_frames_size_manifest(rendered, fake_run):
    a = rendered
    run_manifest = json.loads((fake_run / "manifest.json").read_text())
    assert a.folder.parts[-2:] == ("4dfy", "a_panda_dancing")
    assert (a.n_frames, a.height, a.width, a.trajectory, a.fps) == (3, 12, 12, "orbit", 15.0)
    # the fake run records no --set / --max-steps request and no update counts (tests/evaluation/test_provenance.py)
    assert a.source == {"kind": "render", "run": fake_run.name, "run_path": fake_run.name,
                        "config_hash": run_manifest["config_hash"], "profile": "tiny", "seed": 0, "set": None,
                        "max_steps": None, "variant": None, "steps": None}
    from method.cameras import OrbitConfig, orbit

    assert a.times == pytest.approx(orbit(OrbitConfig(n_frames=3))[1].tolist())  # the suite's orbit timing
    assert a.times[0] == 0.0 and all(0 <= t1 < t2 <= 1 for t1, t2 in zip(a.times, a.times[1:]))
    assert validate_artifact(a.folder) == []
    assert a.depth == "depth.mp4"
    assert a.manifest["extra"]["blob_sigma"] == pytest.approx(2.0)  # the end of the last stage's anneal
    text = (a.folder / "manifest.json").read_text()
    assert str(fake_run.parent) not in text  # no absolute paths


def test_cameras_follow_the_mav3d_orbit(rendered):
    """Frame k: azimuth 360 k / N, elevation 15, distance 3, looking at the origin (OpenGL -z forward)."""
    for k, c2w in enumerate(np.asarray(rendered.cameras)):
        az, el = math.radians(360.0 * k / 3), math.radians(15.0)
        pos = 3.0 * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        assert c2w[:3, 3] == pytest.approx(pos, abs=1e-5)
        assert c2w[:3, 2] == pytest.approx(pos / 3.0, abs=1e-5)  # +z points away from the origin
        assert c2w[2, 1] > 0  # camera up has a world +z component


def test_same_run_same_frames_and_video_matches(fake_run, rendered):
    torch.set_num_threads(1)
    cfg, field, _ = load_run(fake_run)
    a = render_frames(field, cfg, SMALL)
    b = render_frames(field, cfg, EvalRenderConfig(n_frames=3, size=12, device="cpu", frames_per_chunk=1))
    c = render_frames(field, cfg, EvalRenderConfig(n_frames=3, size=12, device="cpu", chunk_rays=50))
    assert np.array_equal(a["rgb"], b["rgb"]) and np.array_equal(a["rgb"], c["rgb"])  # whatever the chunking
    assert a["rgb"].std() > 1.0  # a scene, not a blank
    # luma is not subsampled by yuv420p: compare it (BT.601 weights), the 12x12 noise-like scene has
    # more colour detail than 4:2:0 chroma keeps
    luma = lambda x: x.astype(float) @ np.array([0.299, 0.587, 0.114])  # noqa: E731
    video = decode_video(rendered.video_path)
    assert np.abs(luma(video) - luma(a["rgb"])).mean() < 3.0


def test_frames_are_the_renderer_at_each_camera_and_time(fake_run):
    """Independent wiring check: frame 1 = render_images at azimuth 120 deg, its time, the final sigma."""
    from method.cameras import cameras_from_spherical
    from method.render import render_images

    torch.set_num_threads(1)
    cfg, field, _ = load_run(fake_run)
    out = render_frames(field, cfg, SMALL)
    cam = cameras_from_spherical(120.0, 15.0, 3.0, 40.0)
    rcfg = eval_render_config(cfg)
    for sigma, same in ((2.0, True), (0.5, False)):
        with torch.no_grad():
            ref = render_images(lambda x, t: field(x, t, sigma), field.background, cam, torch.tensor([out["times"][1]]), 12, 12,
                                rcfg)["rgb"][0]
        ref8 = np.round(ref.clamp(0, 1).numpy() * 255).astype(np.uint8)
        assert np.array_equal(out["rgb"][1], ref8) == same


def test_depth_colour_map():
    near, far = 1.0, 5.0
    depth_sum = np.array([[[2.0, 0.0, 4.0, 2.0]]])
    opacity = np.array([[[1.0, 0.0, 1.0, 0.5]]])
    got = depth_to_rgb(depth_sum, opacity, near, far).astype(float)
    turbo = colormaps["turbo"]
    ref = [np.array(turbo(0.75)[:3]) * 255, np.zeros(3), np.array(turbo(0.25)[:3]) * 255,
           np.array(turbo(0.25)[:3]) * 0.5 * 255]  # pixel 4: expected depth 4 at half opacity
    assert got[0, 0] == pytest.approx(np.stack(ref), abs=0.51)


def test_motion_smooth_frame_count(fake_run, tmp_path):
    torch.set_num_threads(1)
    cfg, field, _ = load_run(fake_run)
    out = render_frames(field, cfg, EvalRenderConfig(trajectory="motion_smooth", n_frames=8, size=4, device="cpu"))
    # 4 holds of 2*8/8 = 2 frames + 4 turns of 1 frame = 12 azimuths; times loop twice over 6 samples
    assert out["rgb"].shape == (12, 4, 4, 3)
    assert out["times"] == pytest.approx(np.tile(np.linspace(0, 1, 8)[:6], 2))


def test_run_errors(fake_run, tmp_path):
    with pytest.raises(RunError, match="no manifest.json"):
        load_run(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    m = json.loads((fake_run / "manifest.json").read_text())
    (bad / "manifest.json").write_text(json.dumps({**m, "config_hash": "0" * 16}))
    with pytest.raises(RunError, match="rebuilds to hash"):
        load_run(bad)
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(RunError, match="checkpoint not found"):
        load_run(bad)
    with pytest.raises(ValueError, match="even"):
        EvalRenderConfig(size=15)
    with pytest.raises(ValueError, match="unknown trajectory"):
        EvalRenderConfig(trajectory="spiral")


def test_eval_occupancy_grid_covers_every_frame_time():
    """The CUDA path's grid, built on CPU (nerfacc's estimator is plain torch) against a brute force."""
    import nerfacc

    from evaluation.render import build_eval_grid

    res = 16
    est = nerfacc.OccGridEstimator(roi_aabb=[-1, -1, -1, 1, 1, 1], resolution=res, levels=1)

    def density(x, t):  # a ball of radius 0.3 at the origin before t = 0.5, at (0.5, 0, 0) after
        centre = torch.where(t >= 0.5, torch.tensor([0.5, 0.0, 0.0]), torch.tensor([0.0, 0.0, 0.0]))
        return 1000.0 * ((x - centre).norm(dim=-1) < 0.3).float()

    build_eval_grid(est, density, torch.tensor([0.0, 1.0]), step_size=0.01, occ_thre=0.01, dilate=1)
    # brute force in numpy: cell centres inside either ball, then every cell with an occupied neighbour
    c = (np.stack(np.meshgrid(*[np.arange(res)] * 3, indexing="ij"), -1) + 0.5) / res * 2 - 1
    inside = (np.linalg.norm(c, axis=-1) < 0.3) | (np.linalg.norm(c - [0.5, 0, 0], axis=-1) < 0.3)
    ref = np.zeros_like(inside)
    for i, j, k in zip(*np.nonzero(inside)):
        ref[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2, max(k - 1, 0):k + 2] = True
    assert inside.sum() > 0 and ref.sum() < res ** 3 / 4
    assert np.array_equal(est.binaries[0].numpy(), ref)


def test_an_existing_artifact_is_refused_before_rendering(rendered, fake_run, monkeypatch):
    import evaluation.render as render_mod

    def no_render(*args, **kwargs):
        raise AssertionError("rendered although the artifact folder exists")

    monkeypatch.setattr(render_mod, "render_frames", no_render)
    with pytest.raises(ArtifactError, match=r"a_panda_dancing already exists \(pass --overwrite to replace it\)"):
        render_run(fake_run, rendered.folder.parent.parent, SMALL)
    with pytest.raises(AssertionError, match="rendered although"):  # overwrite goes on to render
        render_run(fake_run, rendered.folder.parent.parent, SMALL, overwrite=True)


def test_a_missing_run_folder_is_named_as_such(tmp_path):
    with pytest.raises(RunError, match=r"nope: no such run folder$"):
        render_run(tmp_path / "nope", tmp_path / "eval", SMALL)
    with pytest.raises(RunError, match="no such run folder"):
        load_run(tmp_path / "nope")


def test_the_progress_bar_shows_on_a_terminal_only(fake_run, monkeypatch):
    torch.set_num_threads(1)
    cfg, field, _ = load_run(fake_run)
    tiny = EvalRenderConfig(n_frames=2, size=4, device="cpu")
    for tty, progress, shown in ((True, True, True), (False, True, False), (True, False, False)):
        stream = Stderr(tty)
        monkeypatch.setattr(sys, "stderr", stream)
        render_frames(field, cfg, tiny, progress=progress)
        monkeypatch.undo()
        assert ("render orbit" in stream.getvalue()) == shown, (tty, progress)


def test_too_few_frames_names_the_option_and_its_minimum():
    from evaluation.render import EvalRenderConfig

    with pytest.raises(ValueError, match="^--frames must be at least 2 for the orbit trajectory, got 1$"):
        EvalRenderConfig(n_frames=1)
