"""The `methods` stage (`python -m pipelines.stages methods`): every method of params.yaml's generate blocks
that cannot be trained is reported at once, in one line naming the file, the key and why, before anything
is written."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines import stages

REPO = Path(__file__).resolve().parents[2]


def _params(tmp_path, methods, extra=()):
    params = {"seed": 0, "profile": "tiny",
              "generate": {"methods": list(methods), "prompts": ["a_panda_dancing"],
                           "extra": {"methods": list(extra), "prompts": ["a_cat_singing"] if extra else []}},
              "videos": {"mav3d": {"folder": "data/videos/mav3d", "trajectory": "orbit"}}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _earlier_output(tmp_path):
    """What an earlier successful run of the stage left: must survive a failing run unchanged."""
    out = tmp_path / "methods"
    (out / "config").mkdir(parents=True)
    (out / "config" / "4dfy.json").write_text("{}\n")
    (out / "labels.json").write_text('{"4dfy": ""}\n')
    return out, {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_every_bad_name_is_reported_in_one_line_with_its_key_and_reason(tmp_path, capsys):
    params = _params(tmp_path, ["4dfyy", "mav3d", "4dfy"], extra=["wo_hybird"])
    out, before = _earlier_output(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        stages.main(["methods", "--params", str(params), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    line = err[0]
    assert line.startswith(f"error: {params}: generate.methods names 2 methods the pipeline cannot train: ")
    assert "unknown method '4dfyy' (did you mean '4dfy'?)" in line
    assert "method 'mav3d' cannot be trained here (videos only: list it under `videos:`" in line
    assert "fourdfy import-videos SRC --method mav3d --out DIR" in line
    assert "generate.extra.methods names 1 method the pipeline cannot train: unknown method 'wo_hybird' " \
           "(did you mean 'wo_hybrid'?)" in line
    assert line.count("known methods: ") == 1 and "'4dfy'" not in line.split("(did you mean")[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing lost or rewritten


def test_a_videos_only_method_alone_is_reported_without_the_registry_list(tmp_path, capsys):
    params = _params(tmp_path, ["4dfy", "mav3d"])
    with pytest.raises(SystemExit) as exit_:
        stages.main(["methods", "--params", str(params), "--out", str(tmp_path / "methods")])
    line = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "generate.methods names 1 method" in line and "'mav3d'" in line
    assert "known methods" not in line and "'4dfy'" not in line  # a good name is not reported
    assert not (tmp_path / "methods").exists()


def test_the_stage_command_reports_them_as_dvc_runs_it(tmp_path):
    """The real command line of dvc.yaml's `methods` stage, in a subprocess: no traceback, exit 2."""
    params = _params(tmp_path, ["4dfyy", "mav3d"])
    res = subprocess.run([sys.executable, "-m", "pipelines.stages", "methods", "--params", str(params),
                          "--out", str(tmp_path / "methods")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "generate.methods" in lines[0] and "'4dfyy'" in lines[0] and "'mav3d'" in lines[0]
    assert not (tmp_path / "methods").exists()


def test_good_names_still_write_the_stage_output(tmp_path):
    params = _params(tmp_path, ["4dfy", "wo_hybrid"])
    out = stages.write_methods(params, tmp_path / "methods")
    assert sorted(p.name for p in (out / "config").iterdir()) == ["4dfy.json", "wo_hybrid.json"]
