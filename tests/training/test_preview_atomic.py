"""A preview PNG is written as every file of a run is: through a temporary, so a stop while writing (SIGTERM) leaves
the previous file whole and no partial one under the final name."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from method.training.outputs import write_preview


def _flat(value):
    return lambda cams, times, h, w: torch.full((len(cams), h, w, 3), value)


def test_a_preview_is_a_whole_png_and_a_failed_write_leaves_the_earlier_one(tmp_path, monkeypatch):
    path = tmp_path / "previews" / "stage1_000010.png"
    write_preview(_flat(0.5), path, 8, 0.0)
    first = path.read_bytes()
    image = iio.imread(path)
    assert image.shape == (8, 32, 3) and np.all(image == 128)

    def cut_short(uri, pixels, **kwargs):  # a stop halfway through the file
        with open(uri, "wb") as f:
            f.write(first[:20])
        raise KeyboardInterrupt

    monkeypatch.setattr(iio, "imwrite", cut_short)
    with pytest.raises(KeyboardInterrupt):
        write_preview(_flat(1.0), path, 8, 0.0)
    assert path.read_bytes() == first and sorted(p.name for p in path.parent.iterdir()) == [path.name]
