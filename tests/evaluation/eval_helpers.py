"""Helpers of the evaluation tests: small videos the tests write themselves, a fake trained run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
import torch


def make_frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth moving colour gradients (compress well, so decoded values stay close)."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((n, h, w, 3), np.uint8)
    for k in range(n):
        out[k, ..., 0] = xx * 160 // max(w - 1, 1) + (4 * k + seed) % 64
        out[k, ..., 1] = 40 + yy * 160 // max(h - 1, 1)
        out[k, ..., 2] = 60 + (4 * k) % 128
    return out


def tiny_train_config():
    """A TrainConfig with toy grids and one short stage (no priors are built: the run is faked)."""
    from method.fields import FieldConfig
    from method.fields.config import HashGridConfig
    from method.training.config import Anneal, StageConfig, TrainConfig

    grid = HashGridConfig(n_levels=4, n_features_per_level=2, log2_hashmap_size=10, base_resolution=4,
                          per_level_scale=1.5)
    kwargs = dict(profile="tiny", method="4dfy", seed=0, device="cpu",
                  stages=(StageConfig("stage1", 4, 1.0, 0.0, False), StageConfig("stage3", 6, 0.5, 0.5, True)),
                  field=FieldConfig(static_grid=grid, dynamic_grid=grid, mlp_hidden=16, grid_backend="torch"),
                  blob_sigma={"stage3": Anneal(0.5, 2.0, 6)})
    cfg = TrainConfig(**kwargs)
    if hasattr(cfg, "renderer"):
        import dataclasses

        cfg = dataclasses.replace(cfg, renderer=dataclasses.replace(cfg.renderer, num_samples=64))
    else:
        import dataclasses

        cfg = dataclasses.replace(cfg, render=dataclasses.replace(cfg.render, num_samples=64))
    return cfg


def write_fake_run(folder: Path, prompt: str = "A panda dancing.", seed: int = 0) -> Path:
    """A run folder as `fourdfy generate` leaves it (manifest + ckpt/last.pt) with a random field."""
    from method.fields import SceneField

    cfg = tiny_train_config()
    torch.manual_seed(seed)
    field = SceneField(cfg.field, cfg.background)
    with torch.no_grad():  # a visible, time-dependent scene instead of the near-empty init
        for p in field.parameters():
            p.add_(0.5 * torch.randn_like(p))
    (folder / "ckpt").mkdir(parents=True, exist_ok=True)
    # a finished run's state, as `ckpt.load` expects of a run's checkpoint
    state = {"stage_index": len(cfg.stages), "step": 0, "counts": {}}
    torch.save({"config_hash": cfg.config_hash(), "field": field.state_dict(), "occupancy": None, "state": state},
               folder / "ckpt" / "last.pt")
    manifest = {"method": cfg.method, "prompt": prompt, "profile": cfg.profile, "seed": cfg.seed,
                "config_hash": cfg.config_hash(), "config": cfg.to_dict()}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return folder


class Stderr(io.StringIO):
    """A stand-in for sys.stderr that is, or is not, a terminal (tqdm's `disable=None` asks `isatty()`)."""

    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def write_cut_faststart_video(path: Path, n: int = 24, size: int = 32) -> int:
    """An H.264 mp4 of `n` noise frames with its index at the front (`movflags=faststart`, remuxed with PyAV),
    cut to half its bytes: it still opens and decodes its first frames without an error. Returns `n`, the
    frame count its container still declares."""
    import av

    from evaluation.video import encode_video

    path = Path(path)
    whole, fast = path.with_suffix(".whole.mp4"), path.with_suffix(".fast.mp4")
    encode_video(whole, np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8))
    with av.open(str(whole)) as src, av.open(str(fast), "w", format="mp4", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:  # the demuxer's final empty packet
                packet.stream = stream
                dst.mux(packet)
    data = fast.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # the index is at the front, as in the tester's file
    path.write_bytes(data[:len(data) // 2])
    whole.unlink()
    fast.unlink()
    return n


def write_trimmed_video(path: Path, n: int = 30, drop: int = 5, size: int = 32) -> None:
    """What a stream-copy trim (`ffmpeg -ss ... -c copy`) writes: an H.264 mp4 of `n` noise frames whose first
    `drop` samples lie before the start, so its edit list tells the decoder to drop them. The file declares `n`
    frames, decodes `n - drop` and is whole."""
    import av

    from evaluation.video import encode_video

    path = Path(path)
    whole = path.with_suffix(".whole.mp4")
    encode_video(whole, np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8))
    with av.open(str(whole)) as src, av.open(str(path), "w", format="mp4") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        shift = None
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is None:  # the demuxer's final empty packet
                continue
            shift = drop * packet.duration if shift is None else shift
            packet.pts, packet.dts = packet.pts - shift, packet.dts - shift
            packet.stream = stream
            dst.mux(packet)
    whole.unlink()


def error_lines(res) -> list[str]:
    """The non-blank stderr lines of a CLI result (each refusal is one `error:` line)."""
    return [ln for ln in res.stderr.splitlines() if ln.strip()]


def write_with_codec(path, frames, codec, pix_fmt, fps=15):
    """A video in another codec / container, written with PyAV directly."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def copy_run(fake_run: Path, root: Path, **extra) -> Path:
    """A copy of the fake run at `<root>/tiny/4dfy/a_panda_dancing` (the pipeline's layout), its manifest with
    `extra` keys (none of them in the config, so the config hash is unchanged)."""
    import shutil

    run = root / "tiny" / "4dfy" / "a_panda_dancing"
    shutil.copytree(fake_run, run)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, **extra}))
    return run


def panda_and_cat_videos(folder, n_frames: int):
    """`folder` made with two small videos named by library slugs, a_panda_dancing.mp4 and a_cat_singing.mp4 (unlike
    frames), as a source folder of `import-videos`."""
    from evaluation.video import encode_video

    folder = Path(folder)
    folder.mkdir()
    encode_video(folder / "a_panda_dancing.mp4", make_frames(n_frames, 16, 16))
    encode_video(folder / "a_cat_singing.mp4", make_frames(n_frames, 16, 16, seed=7))
    return folder
