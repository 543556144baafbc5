"""benchmarks/compile_time.py runs on CPU (dynamo only, so it takes seconds per mode): the narrowed UNets keep
the real architectures' blocks, regional compilation wraps each of them and shares graphs between blocks of one
shape, and the table reports both modes against eager."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import compile_time  # noqa: E402


def test_narrowed_unets_keep_the_real_block_structure():
    import torch
    from diffusers import UNet2DConditionModel, UNet3DConditionModel

    from method.guidance.architectures import SD21_BASE_UNET, ZEROSCOPE_UNET

    for cls, config in ((UNet2DConditionModel, SD21_BASE_UNET), (UNet3DConditionModel, ZEROSCOPE_UNET)):
        narrow = cls(**compile_time.narrow(config, 32))
        with torch.device("meta"):  # the full size without its memory
            full = cls(**config)
        kinds = lambda m: [type(x).__name__ for x in m.modules()]  # noqa: E731
        assert kinds(narrow) == kinds(full), cls.__name__
        assert narrow.config.block_out_channels == [32, 64, 128, 128]


def test_cold_runs_report_whole_and_regional_against_eager(tmp_path):
    out = tmp_path / "table.md"
    assert compile_time.main(["--models", "sd", "--backend", "eager", "--repeats", "1", "--out", str(out)]) == 0
    rows = {r.split("|")[2].strip(): [c.strip() for c in r.split("|")[1:-1]]
            for r in out.read_text().splitlines() if r.startswith("| sd |")}
    assert set(rows) == {"eager", "whole", "regional"}
    graphs = {mode: int(row[4]) for mode, row in rows.items()}
    blocks = {mode: int(row[5]) for mode, row in rows.items()}
    assert graphs["eager"] == blocks["eager"] == 0
    assert graphs["whole"] == blocks["whole"] == 1
    # SD's 44 outermost blocks (22 ResNets, 16 transformers, 3 + 3 resamplers) in fewer graphs: shapes repeat
    assert blocks["regional"] == 44 and 1 < graphs["regional"] < blocks["regional"]
    assert all(float(row[6]) == 0.0 for row in rows.values())  # dynamo alone computes exactly what eager does
    # the last column is each mode's first call over whole's, as the first-call column gives them (printed to 0.1 s)
    first = {mode: float(row[2]) for mode, row in rows.items()}
    for mode in ("whole", "regional"):
        assert abs(float(rows[mode][7]) - first[mode] / first["whole"]) < 0.01 + 0.1 / first["whole"], mode
    assert rows["eager"][7] == ""  # nothing compiled, no ratio
