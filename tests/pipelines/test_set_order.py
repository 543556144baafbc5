"""A `--set` key given again wins over a wildcard given between the two, as the last value given of a key should:
a plain dict merge kept the key where it was first given, so `stages.*.steps=2` given after it won over its later
value; the same across sources (`--set-from` or params.yaml overrides, then `--set`)."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.generate import build_config, later_sets, parse_sets
from pipelines.sweep import SweepSpec

runner = CliRunner()


def _steps(sets: dict) -> dict[str, int]:
    cfg = build_config("tiny", "4dfy", device="cpu", sets=sets)
    return {s.name: s.steps for s in cfg.stages}


def test_a_key_given_again_after_a_wildcard_wins():
    sets = parse_sets(["stages.stage2.steps=4", "stages.*.steps=2", "stages.stage2.steps=4"])
    assert list(sets) == ["stages.*.steps", "stages.stage2.steps"]
    assert _steps(sets) == {"stage1": 2, "stage2": 4, "stage3": 2}
    assert _steps(parse_sets(["stages.stage2.steps=4", "stages.*.steps=2"])) == {"stage1": 2, "stage2": 2,
                                                                                "stage3": 2}


def test_set_wins_over_set_from_with_a_wildcard_between():
    file_sets = {"stages.stage3.steps": 100}
    sets = later_sets(file_sets, parse_sets(["stages.*.steps=5", "stages.stage3.steps=50"]))
    assert _steps(sets)["stage3"] == 50
    sweep = SweepSpec(methods=("4dfy",), prompts=("a_panda_dancing",), method_sets={"4dfy": file_sets},
                      sets=parse_sets(["stages.*.steps=5", "stages.stage3.steps=50"]))
    assert _steps(sweep.sets_for("4dfy"))["stage3"] == 50


def test_generate_trains_the_later_value_of_set_over_set_from(tmp_path):
    """Through `fourdfy generate`: --set-from's stage-3 steps, then a wildcard and the key again in --set."""
    import json

    params = tmp_path / "sf.yaml"
    params.write_text(yaml.safe_dump({"overrides": {"4dfy": {"stages.stage3.steps": 100}}}))
    out = tmp_path / "run"
    res = runner.invoke(app, ["generate", "--prompt", "a_panda_dancing", "--out", str(out), "--device", "cpu",
                              "--no-progress", "--set-from", f"{params}:overrides.4dfy", "--set", "stages.*.steps=1",
                              "--set", "stages.stage3.steps=2"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["steps"] for s in manifest["config"]["stages"]] == [1, 1, 2]
