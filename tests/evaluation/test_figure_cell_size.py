"""The cells of a figure take the largest width and height among its videos, not the first row's size: methods of
other native resolutions (a 16x16 render above a 32x32 import) show the sharper one as decoded and the smaller one
enlarged, letterboxed when its aspect ratio differs, whatever the order of the rows."""

from __future__ import annotations

import numpy as np
from eval_helpers import make_frames
from PIL import Image

from evaluation.artifacts import write_artifact
from evaluation.figure import BACKGROUND, RESAMPLE, FigureConfig, make_figures, select_artifacts

SOURCE = {"kind": "render", "run": "r", "config_hash": "0" * 16}
PANDA = "A panda dancing."


def add(root, method, n, h, w, seed):
    return write_artifact(root, method, PANDA, make_frames(n, h, w, seed=seed), source=SOURCE, trajectory="orbit",
                          fps=15)


def independent_decode(path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _cells(fig, row: int) -> list[np.ndarray]:
    image = np.asarray(Image.open(fig.path).convert("RGB"))
    out = []
    for c in range(len(fig.rows[row].frames)):
        left, top, right, bottom = fig.layout.cell_box(row, c)
        out.append(image[top:bottom, left:right])
    return out


def test_the_cell_is_the_largest_video_whatever_the_row_order(tmp_path):
    small = add(tmp_path / "a", "4dfy", 5, 16, 16, seed=1)  # the first row in registry order, the smaller video
    large = add(tmp_path / "a", "wo_hybrid", 5, 32, 32, seed=2)
    cfg = FigureConfig(columns=3)
    fig = make_figures(select_artifacts([tmp_path / "a"]), tmp_path / "o", cfg)[0]
    assert [r.method for r in fig.rows] == ["4dfy", "wo_hybrid"] and fig.layout.cell_size == (32, 32)
    # the larger video as decoded, every pixel
    decoded = independent_decode(large.folder / "video.mp4")
    for cell, k in zip(_cells(fig, 1), fig.rows[1].frames):
        assert np.array_equal(cell, decoded[k])
    # the smaller one enlarged to the whole cell (same aspect ratio: no margin), with the figure's own filter
    decoded = independent_decode(small.folder / "video.mp4")
    for cell, k in zip(_cells(fig, 0), fig.rows[0].frames):
        assert np.array_equal(cell, np.asarray(Image.fromarray(decoded[k]).resize((32, 32), RESAMPLE)))
    # the other row order: the same cells
    again = make_figures(select_artifacts([tmp_path / "a"], methods=["wo_hybrid", "4dfy"]), tmp_path / "p", cfg)[0]
    assert again.layout.cell_size == (32, 32)
    assert all(np.array_equal(a, b) for a, b in zip(_cells(again, 0), _cells(fig, 1)))
    # a figure of the small video alone keeps its size; an explicit cell_size still rules
    alone = make_figures(select_artifacts([tmp_path / "a"], methods=["4dfy"]), tmp_path / "q", cfg)[0]
    assert alone.layout.cell_size == (16, 16)
    fixed = make_figures(select_artifacts([tmp_path / "a"]), tmp_path / "r", FigureConfig(columns=3,
                                                                                        cell_size=(24, 24)))[0]
    assert fixed.layout.cell_size == (24, 24)


def test_other_aspect_ratios_are_letterboxed_in_the_largest_width_and_height(tmp_path):
    landscape = add(tmp_path / "a", "4dfy", 4, 32, 48, seed=3)
    portrait = add(tmp_path / "a", "wo_hybrid", 4, 48, 32, seed=4)
    fig = make_figures(select_artifacts([tmp_path / "a"]), tmp_path / "o", FigureConfig(columns=2))[0]
    assert fig.layout.cell_size == (48, 48)
    # both at their native size, neither shrunk: centred, the margins the background
    for row, art, (dx, dy) in ((0, landscape, (0, 8)), (1, portrait, (8, 0))):
        decoded = independent_decode(art.folder / "video.mp4")
        h, w = decoded.shape[1:3]
        for cell, k in zip(_cells(fig, row), fig.rows[row].frames):
            assert np.array_equal(cell[dy:dy + h, dx:dx + w], decoded[k])
            margin = np.ones(cell.shape[:2], bool)
            margin[dy:dy + h, dx:dx + w] = False
            assert margin.any() and (cell[margin] == BACKGROUND).all()
