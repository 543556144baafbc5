"""`fourdfy survey export` marks each row with `rater_completed`, so finished raters can be told from abandoned
ones, and the file still goes through `fourdfy analyze`."""

import json

import pandas as pd
from survey_helpers import answer_all, at
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.survey import store
from userstudy.votes import COLUMNS, CRITERIA

runner = CliRunner()


def test_export_marks_finished_and_abandoned_raters(bundle, tmp_path):
    db = f"sqlite:///{tmp_path / 'survey.sqlite'}"
    engine = store.make_engine(db)
    store.init_db(engine, bundle.bundle_id)
    finished = store.create_rater(engine, bundle.questions, at(0), seed=1)
    answer_all(engine, bundle, finished, lambda q, primary: primary, now=at(1))  # the primary: passes the check
    abandoned = store.create_rater(engine, bundle.questions, at(0), seed=2)
    item = store.next_assignment(engine, abandoned)[0]
    store.submit_answer(engine, abandoned, bundle.by_id[item.question_id], dict.fromkeys(CRITERIA, "left"),
                        seconds=3, now=at(1))

    out = tmp_path / "votes.csv"
    res = runner.invoke(app, ["survey", "export", "--db", db, "--out", str(out)])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(frame.columns[:len(COLUMNS)]) == list(COLUMNS) and "rater_completed" in frame.columns
    by_rater = frame.groupby("rater_id")["rater_completed"].agg(lambda s: set(s)).to_dict()
    assert by_rater == {f"rater-{finished.id:05d}": {"true"}, f"rater-{abandoned.id:05d}": {"false"}}
    assert len(frame) == 5 * (len(bundle.questions) + 1)

    design = tmp_path / "design.json"
    design.write_text(json.dumps(json.loads((bundle.root / "bundle.json").read_text())["design"]))
    res = runner.invoke(app, ["analyze", "--votes", str(out), "--design", str(design), "--out",
                              str(tmp_path / "report"), "--n-boot", "200"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report" / "table.csv").is_file()
