"""A design whose two tables share a row label (docs/userstudy.md: "the same label in two tables is fine") builds a
survey bundle that loads, serves and tallies; a bundle that would not load is never left at --out; bundles of
earlier versions, which stored the design in the short form, still load and keep their id."""

import hashlib
import json
import os
import socket
from datetime import datetime, timezone

import numpy as np
import pytest
from typer.testing import CliRunner

from evaluation.artifacts import write_artifact
from pipelines.cli import app
from userstudy.design import design_from_dict
from userstudy.survey import bundle as bundle_module
from userstudy.survey import build_bundle, load_bundle, store

runner = CliRunner()

PROMPT = "A panda dancing."  # prompts/ablation_5.txt holds it: the only prompt given videos (--allow-missing)
SHARED = """\
primary: 4dfy
methods: {wo_3d: {label: ablation}, hexplane: {label: ablation}}
tables:
  t_a: {sections: [{prompt_set: ablation_5, rows: [4dfy, wo_3d]}]}
  t_b: {sections: [{prompt_set: ablation_5, rows: [4dfy, hexplane]}]}
attention_check: {correct_method: 4dfy, decoys: [attention_decoy]}
"""


def _frames(seed: int) -> np.ndarray:
    """Four small frames, different per seed (so no question shows one video twice)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared") / "artifacts"
    for seed, method in enumerate(("4dfy", "wo_3d", "hexplane", "attention_decoy")):
        write_artifact(root, method, PROMPT, _frames(seed), trajectory="orbit", fps=8.0,
                       source={"kind": "render", "run": "test", "config_hash": "0"})
    return root


def _build(tmp_path, artifacts, out_name="study"):
    design = tmp_path / "shared.yaml"
    design.write_text(SHARED, encoding="utf-8")
    out = tmp_path / out_name
    res = runner.invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(artifacts),
                              "--out", str(out), "--allow-missing"])
    return res, out


def test_a_label_two_tables_share_builds_a_bundle_that_loads(tmp_path, artifacts):
    res, out = _build(tmp_path, artifacts)
    assert res.exit_code == 0, res.output
    bundle = load_bundle(out)
    assert [t.name for t in bundle.design.tables] == ["t_a", "t_b"]
    assert bundle.design.label("wo_3d") == bundle.design.label("hexplane") == "ablation"
    assert bundle.design.comparisons == ("wo_3d", "hexplane")
    assert {q.question_id for q in bundle.questions} == {"wo_3d__a_panda_dancing", "hexplane__a_panda_dancing",
                                                         "check__attention_decoy__a_panda_dancing"}
    assert f"-> {out}" in res.output
    # the bundle's design is stored as its tables, without the prompt sets the questions already fixed
    stored = json.loads((out / "bundle.json").read_text(encoding="utf-8"))["design"]
    assert stored["tables"] == {"t_a": {"caption": "", "sections": [{"heading": "", "rows": ["4dfy", "wo_3d"]}]},
                                "t_b": {"caption": "", "sections": [{"heading": "", "rows": ["4dfy", "hexplane"]}]}}
    assert "comparisons" not in stored


def test_the_bundle_serves_and_tallies(tmp_path, artifacts, monkeypatch):
    """`survey serve` reads it and gets as far as starting Streamlit (exec recorded, not run); the admin tally
    checks the votes against the bundle's design without an error."""
    res, out = _build(tmp_path, artifacts)
    assert res.exit_code == 0, res.output
    started = []

    def fake_execve(path, args, env):
        started.append(env)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", fake_execve)
    monkeypatch.delenv(store.DB_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no operator's secrets.toml
    monkeypatch.chdir(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = runner.invoke(app, ["survey", "serve", str(out), "--port", str(port)])
    assert res.exit_code == 0, res.output
    assert len(started) == 1 and started[0]["FOURDFY_SURVEY_BUNDLE"] == str(out.resolve())

    bundle = load_bundle(out)  # what the app's `_bundle` returns
    engine = store.make_engine(f"sqlite:///{out / 'survey.sqlite'}")
    store.init_db(engine, bundle.bundle_id)
    now = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rater = store.create_rater(engine, bundle.questions, now, seed=1)
    while (item := store.next_assignment(engine, rater)[0]) is not None:
        q = bundle.by_id[item.question_id]
        side = "left" if item.method_left == q.method_a else "right"  # always the primary (passes the check)
        store.submit_answer(engine, rater, q, dict.fromkeys(store.CRITERIA, side), seconds=3, now=now)
    tally = store.tally(engine, bundle.design)
    assert tally["exclusion_error"] == "" and tally["judgments"] == 5 * len(bundle.questions)
    assert set(tally["table"]["comparison"]) == {"wo_3d", "hexplane"}
    assert (tally["table"]["pct_primary"] == 100.0).all()


def test_a_bundle_that_would_not_load_is_never_left_in_place(tmp_path, artifacts, monkeypatch):
    """With the design stored as before (every comparison in one table, so two rows labelled 'ablation'), the build
    fails with one line before --out exists, leaves no temporary beside it, and a build after it works."""

    def folded(design):  # the short form bundle.json held before it stored the tables
        return {"name": design.name or "survey", "primary": design.primary, "comparisons": list(design.comparisons),
                "attention_check": {"correct_method": design.check.correct_method,
                                    "decoys": list(design.check.decoys)},
                "methods": {m: {"label": lab.label, "latex": lab.latex} for m, lab in design.labels.items()}}

    monkeypatch.setattr(bundle_module, "_design_data", folded)
    res, out = _build(tmp_path, artifacts)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: the bundle built for "), res.output
    assert "would not load, so nothing was written there" in lines[0]
    assert "would have two rows labelled 'ablation'" in lines[0]
    assert ".tmp" not in lines[0]  # named as the folder it was built for, not by its temporary
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["shared.yaml"]

    monkeypatch.undo()
    res, out = _build(tmp_path, artifacts)  # the same --out: not taken by the failed build
    assert res.exit_code == 0, res.output
    load_bundle(out)


def test_a_bundle_of_an_earlier_version_still_loads_with_its_id(tmp_path, artifacts):
    """A bundle.json holding the design in the short form (earlier versions) loads; and a bundle built now has the id
    an earlier version gave it (the same questions and short-form design hashed), so its database still serves it."""
    design = design_from_dict({"primary": "4dfy", "comparisons": ["wo_3d", "hexplane"],
                               "attention_check": {"correct_method": "4dfy", "decoys": ["attention_decoy"]}})
    built = build_bundle(design, [artifacts], tmp_path / "b", allow_missing=True)
    file = built.root / "bundle.json"
    data = json.loads(file.read_text(encoding="utf-8"))
    old_design = {"name": "survey", "primary": "4dfy", "comparisons": ["wo_3d", "hexplane"],
                  "attention_check": {"correct_method": "4dfy", "decoys": ["attention_decoy"]}, "methods": {}}
    old_id = hashlib.sha256(json.dumps({"questions": data["questions"], "design": old_design}, sort_keys=True)
                            .encode()).hexdigest()[:16]
    assert built.bundle_id == old_id
    data["design"] = old_design
    file.write_text(json.dumps(data), encoding="utf-8")
    old = load_bundle(built.root)
    assert old.bundle_id == built.bundle_id and old.questions == built.questions
    assert old.design.comparisons == built.design.comparisons == ("wo_3d", "hexplane")
