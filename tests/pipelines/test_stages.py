"""The DVC glue (`python -m pipelines.stages`): the design the pipeline uses, its votes, and the summary
that reports every row, missing ones included."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from evaluation.artifacts import write_artifact
from pipelines import stages
from userstudy.design import load_design


def _params(tmp_path, **study):
    (tmp_path / "x").mkdir(exist_ok=True)  # a `videos:` folder must exist (the methods step checks it)
    params = {"seed": 0, "profile": "tiny",
              "generate": {"methods": ["4dfy", "wo_hybrid", "my_plugin"], "prompts": ["a_panda_dancing"]},
              "videos": {"mav3d": {"folder": "data/videos/mav3d", "trajectory": "orbit"},
                         "other_system": {"folder": str(tmp_path / "x"), "trajectory": "unknown"}},
              "study": {"design": "userstudy/designs/paper.yaml", "raters": 2, "rates": "paper", **study},
              "overrides": {"4dfy": {}, "wo_hybrid": {}, "my_plugin": {}}}  # each generate stage reads its entry
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_methods_the_design_lacks_get_rows_without_editing_it(tmp_path):
    out = stages.write_design(_params(tmp_path), tmp_path / "design.yaml")
    design = load_design(out)
    paper = load_design("userstudy/designs/paper.yaml")
    assert set(design.comparisons) == set(paper.comparisons) | {"my_plugin", "other_system"}
    added = design.tables[0].sections[-1]
    assert added.heading == stages.ADDED_HEADING and added.rows == ("4dfy", "my_plugin", "other_system")
    assert added.prompt_set == "ablation_5"


def test_an_added_method_shows_the_label_it_registers(tmp_path, monkeypatch):
    from baselines import METHODS, Method

    monkeypatch.setitem(METHODS, "my_plugin", Method("my_plugin", "a plug-in", label="w/ my loss"))
    design = load_design(stages.write_design(_params(tmp_path), tmp_path / "design.yaml"))
    assert design.label("my_plugin") == "w/ my loss"
    assert design.label("other_system") == "other_system"  # videos only, registered nowhere: its name
    assert design.label("mav3d") == "MAV3D"  # the design's own labels stay
    # the pipeline's design stage reads the labels the `methods` stage wrote (what DVC tracks), not the registry
    labels = tmp_path / "labels.json"
    stages.write_methods(_params(tmp_path), tmp_path / "methods")
    written = json.loads((tmp_path / "methods" / "labels.json").read_text())
    assert written["my_plugin"] == "w/ my loss"
    labels.write_text(json.dumps({**written, "my_plugin": "as the file says"}))
    design = load_design(stages.write_design(_params(tmp_path), tmp_path / "d2.yaml", labels))
    assert design.label("my_plugin") == "as the file says" and design.label("mav3d") == "MAV3D"


def test_a_design_of_your_own_takes_the_labels_it_does_not_give(tmp_path):
    """A study.design listing a plug-in without a label shows the label labels.json holds: renaming it there (what
    DVC tracks) changes build/design.yaml, so the tables follow. A label the design gives stays."""
    own = tmp_path / "mine.yaml"
    own.write_text(yaml.safe_dump({"name": "mine", "primary": "4dfy", "comparisons": ["my_plugin", "wo_hybrid"],
                                   "methods": {"wo_hybrid": {"label": "mine says"}}}))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"4dfy": "", "wo_hybrid": "", "my_plugin": "w/ my loss", "mav3d": ""}))
    params = _params(tmp_path, design=str(own))
    design = load_design(stages.write_design(params, tmp_path / "design.yaml", labels))
    assert design.label("my_plugin") == "w/ my loss" and design.label("wo_hybrid") == "mine says"
    labels.write_text(json.dumps({"4dfy": "", "wo_hybrid": "", "my_plugin": "renamed", "mav3d": ""}))
    design = load_design(stages.write_design(params, tmp_path / "design.yaml", labels))
    assert design.label("my_plugin") == "renamed"


def test_a_method_trained_only_in_the_extra_block_gets_a_row_too(tmp_path):
    path = _params(tmp_path)
    params = yaml.safe_load(path.read_text())
    params["generate"]["extra"] = {"methods": ["4dfy", "extra_only"], "prompts": ["a_cat_singing"]}
    path.write_text(yaml.safe_dump(params))
    design = load_design(stages.write_design(path, tmp_path / "design.yaml"))
    assert design.tables[0].sections[-1].rows == ("4dfy", "my_plugin", "extra_only", "other_system")


def test_votes_are_simulated_and_labelled_unless_a_real_export_is_named(tmp_path):
    design_path = stages.write_design(_params(tmp_path), tmp_path / "design.yaml")
    votes = stages.write_votes(_params(tmp_path), design_path, tmp_path / "votes.csv")
    frame = pd.read_csv(votes, dtype=str)
    assert frame["rater_id"].str.startswith("synthetic-").all() and frame["rater_id"].nunique() == 2
    real = tmp_path / "real.csv"
    frame.assign(rater_id=frame["rater_id"].str.replace("synthetic-", "lab-"), source="survey").to_csv(real, index=False)
    out = stages.write_votes(_params(tmp_path, votes=str(real)), design_path, tmp_path / "v2.csv")
    assert out.read_bytes() == real.read_bytes()
    bad = tmp_path / "bad.csv"
    frame.assign(criterion="beauty").to_csv(bad, index=False)
    with pytest.raises(ValueError, match="criterion"):
        stages.write_votes(_params(tmp_path, votes=str(bad)), design_path, tmp_path / "v3.csv")
    assert not (tmp_path / "v3.csv").exists()


def test_a_list_of_exports_is_combined_with_each_surveys_raters_apart_and_must_lie_where_dvc_looks(tmp_path):
    """study.votes may name one export per survey: the votes stage writes them as one file whose rater ids name
    their survey (both surveys' `lab-r001` stay two raters), validated as `analyze` reads it. With `--exports`,
    a file outside the folder DVC tracks is refused, naming the folder, and nothing is written."""
    from userstudy.design import load_design
    from userstudy.votes import load_votes

    design_path = stages.write_design(_params(tmp_path), tmp_path / "design.yaml")
    frame = pd.read_csv(stages.write_votes(_params(tmp_path), design_path, tmp_path / "sim.csv"), dtype=str)
    exports = tmp_path / "study"
    exports.mkdir()
    real = frame.assign(rater_id=frame["rater_id"].str.replace("synthetic-", "lab-"), source="survey")
    mav3d = real["method_left"].eq("mav3d") | real["method_right"].eq("mav3d")
    checks = real["is_attention_check"].eq("true")
    real[mav3d | checks].to_csv(exports / "table2.csv", index=False)
    real[~mav3d].to_csv(exports / "ablations.csv", index=False)  # its own copy of the checks
    named = [str(exports / "table2.csv"), str(exports / "ablations.csv")]
    out = stages.write_votes(_params(tmp_path, votes=named), design_path, tmp_path / "v.csv", exports=exports)
    combined = pd.read_csv(out, dtype=str)
    assert len(combined) == (mav3d | checks).sum() + (~mav3d).sum()
    assert set(combined["rater_id"]) == {f"{r}@{s}" for r in real["rater_id"].unique() for s in ("table2", "ablations")}
    votes = load_votes(out, load_design(design_path))
    assert votes.frame["rater_id"].nunique() == 2 * real["rater_id"].nunique() and not votes.synthetic

    elsewhere = tmp_path / "elsewhere.csv"
    real.to_csv(elsewhere, index=False)
    with pytest.raises(ValueError, match=f"not under {exports}/"):
        stages.write_votes(_params(tmp_path, votes=str(elsewhere)), design_path, tmp_path / "v4.csv", exports=exports)
    assert not (tmp_path / "v4.csv").exists()


def test_summary_lists_rows_without_videos_and_plots_clip_with_intervals(tmp_path):
    params = _params(tmp_path)
    design_path = stages.write_design(params, tmp_path / "design.yaml")
    arts = tmp_path / "artifacts"
    frames = np.zeros((4, 16, 16, 3), dtype=np.uint8)
    for method in ("4dfy", "wo_hybrid"):
        write_artifact(arts, method, "A panda dancing.", frames, source={"kind": "import", "file": "x.mp4", "sha256": "0" * 64}, trajectory="orbit", fps=15)
    clip = tmp_path / "clip"
    clip.mkdir()
    pd.DataFrame({"method": ["4dfy", "wo_hybrid"], "clip": [30.0, 29.0]}).to_csv(clip / "clip.csv", index=False)
    pd.DataFrame({"method": ["4dfy", "wo_hybrid"], "clip": [30.0, 29.0], "ci_low": [29.0, None],
                  "ci_high": [31.0, None]}).to_csv(clip / "summary.csv", index=False)
    votes = stages.write_votes(params, design_path, tmp_path / "votes.csv")
    summary = stages.write_summary(params, design_path, [arts, tmp_path / "nothing"], clip / "clip.csv", votes,
                                   tmp_path / "reports" / "summary.md", tmp_path / "pipeline.json")
    rows = {r["method"]: r for r in summary["rows"]}
    assert rows["wo_hybrid"]["status"] == "ok" and rows["wo_hybrid"]["videos"] == 1
    assert rows["mav3d"]["status"] == "missing videos" and rows["mav3d"]["votes"] > 0  # kept, not dropped
    assert summary["synthetic_votes"] is True
    text = (tmp_path / "reports" / "summary.md").read_text()
    assert "SYNTHETIC" in text and "MAV3D" in text.split("Rows without videos")[1]
    assert json.loads((tmp_path / "pipeline.json").read_text()) == summary
    assert (tmp_path / "reports" / "clip_scores.png").stat().st_size > 1000


def test_the_documented_paper_params_train_the_papers_63_runs():
    """docs/pipeline.md's params for the paper: the ablations on the 5 ablation prompts, 4dfy also on the 23
    other MAV3D prompts, every trainable built-in method, and no run in both blocks."""
    import re
    from pathlib import Path

    from baselines import METHODS
    from prompts import load_prompts

    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "pipeline.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "extra:" in b)
    gen = yaml.safe_load(block)["generate"]
    mav3d = list(load_prompts(root / "prompts" / "mav3d_28.txt"))
    five = list(load_prompts(root / "prompts" / "ablation_5.txt"))
    assert gen["prompts"] == five
    assert gen["extra"] == {"methods": ["4dfy"], "prompts": [s for s in mav3d if s not in five]}
    assert set(gen["methods"]) == {n for n, m in METHODS.items() if m.trainable and m.source == "built-in"}
    runs = {(m, p) for m in gen["methods"] for p in gen["prompts"]} | {(m, p) for m in gen["extra"]["methods"]
                                                                       for p in gen["extra"]["prompts"]}
    assert len(runs) == 63 == len(gen["methods"]) * 5 + 23


def test_the_methods_step_writes_each_trained_methods_config_and_every_label(tmp_path, monkeypatch):
    """`build/methods/`: one resolved config per trained method (what its generate stage depends on) and the
    labels (what the design depends on). Changing one method's definition changes its file alone; a method no
    longer named loses its file."""
    from baselines import METHODS, Method

    monkeypatch.setitem(METHODS, "my_plugin", Method("my_plugin", "a plug-in", overrides={"weights.sds_video": 0.3},
                                                     label="w/ my loss"))
    params = _params(tmp_path)
    out = stages.write_methods(params, tmp_path / "methods")
    files = sorted(p.name for p in (out / "config").iterdir())
    assert files == ["4dfy.json", "my_plugin.json", "wo_hybrid.json"]
    written = json.loads((out / "config" / "my_plugin.json").read_text())
    # the profile's values with the plug-in's change, as a fixed expectation (not the code's own resolution)
    assert written["weights"]["sds_video"] == 0.3 and written["method"] == "my_plugin" and written["profile"] == "tiny"
    assert {k: v for k, v in written.items() if k not in ("method", "weights")} == {
        k: v for k, v in json.loads((out / "config" / "4dfy.json").read_text()).items() if k not in ("method", "weights")}
    # the built-ins' labels are the paper's (mav3d: under videos:)
    assert json.loads((out / "labels.json").read_text()) == {"4dfy": "4D-fy", "wo_hybrid": "w/o hybrid SDS",
                                                             "my_plugin": "w/ my loss", "mav3d": "MAV3D"}
    before = {p.name: p.read_bytes() for p in (out / "config").iterdir()}

    monkeypatch.setitem(METHODS, "my_plugin", Method("my_plugin", "a plug-in", overrides={"weights.sds_video": 0.5},
                                                     label="w/ my loss"))
    stages.write_methods(params, out)
    after = {p.name: p.read_bytes() for p in (out / "config").iterdir()}
    assert [n for n in before if before[n] != after[n]] == ["my_plugin.json"]
    assert (out / "labels.json").read_text() == json.dumps({"4dfy": "4D-fy", "mav3d": "MAV3D",
                                                            "my_plugin": "w/ my loss", "wo_hybrid": "w/o hybrid SDS"},
                                                           indent=1) + "\n"

    raw = yaml.safe_load(params.read_text())
    raw["generate"]["methods"] = ["4dfy"]
    raw["profile"] = "paper"
    params.write_text(yaml.safe_dump(raw))
    stages.write_methods(params, out)
    assert sorted(p.name for p in (out / "config").iterdir()) == ["4dfy.json"]
    assert json.loads((out / "config" / "4dfy.json").read_text())["profile"] == "paper"


@pytest.mark.parametrize("method, says", [("no_such_method", "unknown method 'no_such_method'; known methods: 4dfy"),
                                           ("no_such_method", "needs its package installed in this environment"),
                                           ("mav3d", "cannot be trained")])
def test_the_methods_step_refuses_a_method_it_cannot_train_in_one_line(tmp_path, capsys, method, says):
    params = _params(tmp_path)
    raw = yaml.safe_load(params.read_text())
    raw["generate"]["methods"] = ["4dfy", method]
    raw["overrides"] = {"4dfy": {}, method: {}}
    params.write_text(yaml.safe_dump(raw))
    with pytest.raises(SystemExit) as exit_:
        stages.main(["methods", "--params", str(params), "--out", str(tmp_path / "methods")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and says in err[0], err
