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
              "videos": {"mav3d": {"folder": "data/videos/mav3d", "trajectory": "orbit"}},
              "overrides": {str(m): {} for m in [*methods, *extra]}}  # each generate stage reads its entry
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_every_bad_name_is_reported_in_one_line_with_its_key_and_reason(tmp_path, capsys, earlier_methods_output):
    params = _params(tmp_path, ["4dfyy", "mav3d", "4dfy"], extra=["wo_hybird"])
    out, before = earlier_methods_output
    with pytest.raises(SystemExit) as exit_:
        stages.main(["methods", "--params", str(params), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    line = err[0]
    assert line.startswith(f"error: {params}: generate.methods names 2 methods the pipeline cannot train: ")
    assert "unknown method '4dfyy' (did you mean '4dfy'?)" in line
    # mav3d is under `videos:` already (see _params): the fix is to drop it from the generate block
    assert "method 'mav3d' is a `videos:` method (videos only) and cannot be trained: remove it from " \
           "generate.methods" in line
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



def test_a_misspelt_overrides_entry_is_refused_with_a_did_you_mean(tmp_path, capsys, registry,
                                                                  earlier_methods_output):
    """`wo_hybird:` under overrides: was ignored without a word (only `generate@wo_hybrid` failed, later, on
    `--set-from ... has no key`); a variant, a registered method and a name of `videos:` are entries of methods."""
    params = _params(tmp_path, ["4dfy", "wo_hybrid", "video03"])
    raw = yaml.safe_load(params.read_text())
    raw["overrides"] = {"4dfy": {}, "wo_hybird": {"weights.sds_video": 0.3}, "wo_hybrid": {},
                        "video03": {"base": "4dfy", "weights.sds_video": 0.3}, "mav3d": {"label": "MAV3D (ours)"}}
    params.write_text(yaml.safe_dump(raw))
    out, before = earlier_methods_output
    with pytest.raises(SystemExit) as exit_:
        stages.main(["methods", "--params", str(params), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {params}: overrides: has 1 entry of no registered method or variant, which "
                             "would be ignored: unknown method 'wo_hybird' (did you mean 'wo_hybrid'?)"), err[0]
    assert "video03" not in err[0].split("known methods")[0] and "mav3d" not in err[0].split("known methods")[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_trained_method_without_an_overrides_entry_is_named_with_the_key_to_add(tmp_path, capsys):
    """Its generate stage passes --set-from params.yaml:overrides.<method> and DVC needs the key as a parameter:
    both fail on a missing entry, DVC only after the run; the methods stage says it first."""
    params = _params(tmp_path, ["4dfy", "wo_hybrid", "mav3d"])
    raw = yaml.safe_load(params.read_text())
    raw["overrides"] = {"4dfy": {}, "mav3d": {}}
    params.write_text(yaml.safe_dump(raw))
    with pytest.raises(SystemExit) as exit_:
        stages.main(["methods", "--params", str(params), "--out", str(tmp_path / "methods")])
    line = capsys.readouterr().err.strip()
    assert exit_.value.code == 2, line
    assert "generate names 1 method with no entry under overrides: (wo_hybrid)" in line, line
    assert "add `wo_hybrid: {}` under overrides:" in line
    assert "method 'mav3d' is a `videos:` method (videos only) and cannot be trained" in line  # not as missing an entry
    assert not (tmp_path / "methods").exists()
    raw["overrides"]["wo_hybrid"] = None  # `wo_hybrid:` with nothing after it is an entry (DVC sees the key)
    raw["generate"]["methods"] = ["4dfy", "wo_hybrid"]
    params.write_text(yaml.safe_dump(raw))
    stages.write_methods(params, tmp_path / "methods")


@pytest.mark.parametrize("step", ["methods", "design"])
def test_a_params_file_that_is_not_yaml_is_one_error_line_from_the_stage_command(tmp_path, step):
    """As dvc.yaml runs it, in a subprocess: no traceback, the file with line and column, exit 2."""
    params = tmp_path / "params.yaml"
    params.write_text("profile: tiny\ngenerate:\n  methods: [4dfy\n  prompts: [a_panda_dancing]\n")
    res = subprocess.run([sys.executable, "-m", "pipelines.stages", step, "--params", str(params),
                          "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith(f"error: {params} is not valid YAML: line 4, column 10: expected ',' or ']'"), lines
    binary = tmp_path / "blob.yaml"
    binary.write_bytes(b"\xac\xed\x00\x05")
    with pytest.raises(SystemExit) as exit_:
        stages.main([step, "--params", str(binary), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert not (tmp_path / "out").exists()
