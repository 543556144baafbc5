"""A bundle.json edited by hand is refused by `serve` (one `error:` line saying to build it again): its id, read from
the file, would otherwise bind it to the database of the bundle it was built as, whose raters would meet an error
page at a question it no longer holds. A database assigning questions the bundle lacks is refused too, and `build`
refuses a bundle of attention checks alone."""

import json
import shutil

import pytest
import sqlalchemy as sa
import yaml
from survey_helpers import STUDY, at, free_port, one_error_line
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.survey import BundleError, load_bundle, store

runner = CliRunner()


def _copy(bundle, dest):
    shutil.copytree(bundle.root, dest, ignore=shutil.ignore_patterns("survey.sqlite*"))
    return dest


def _edit(root, change):
    file = root / "bundle.json"
    data = json.loads(file.read_text(encoding="utf-8"))
    change(data)
    file.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")


def _serve(root, db):
    return runner.invoke(app, ["survey", "serve", str(root), "--db", db, "--port", str(free_port())])


def test_a_question_dropped_by_hand_is_refused_on_the_old_database(bundle, tmp_path, fake_exec):
    """The reviewer's case: a served bundle, a rater started, one question then removed from bundle.json."""
    root = _copy(bundle, tmp_path / "copy")
    db = f"sqlite:///{tmp_path / 'survey.sqlite'}"
    assert _serve(root, db).exit_code == 0 and len(fake_exec) == 1
    engine = store.make_engine(db)
    rater = store.create_rater(engine, bundle.questions, at(0), seed=1)
    dropped = store.next_assignment(engine, rater)[0].question_id  # the question this rater is shown next
    engine.dispose()
    _edit(root, lambda d: d.update(questions=[q for q in d["questions"] if q["question_id"] != dropped]))

    line = one_error_line(_serve(root, db))
    assert f"{root / 'bundle.json'}: its questions or design are not those of bundle {bundle.bundle_id}" in line
    assert "fourdfy survey build" in line and "instead of editing bundle.json" in line
    assert len(fake_exec) == 1  # no server started
    with pytest.raises(BundleError, match="edited after `survey build`"):
        load_bundle(root)


def _drop_plain(d):
    d["questions"] = [q for q in d["questions"] if q["is_attention_check"]]


@pytest.mark.parametrize("change, says", [
    (lambda d: d.update(questions=[]), "it holds no questions"),
    (lambda d: d["questions"].append(dict(d["questions"][0])), "question id(s) listed more than once: mav3d__"),
    (lambda d: d["questions"][0].update(method_b="hexplane"),
     "method_b 'hexplane' is not among the design's comparisons (mav3d, wo_3d)"),
    (lambda d: d["questions"][0].update(method_a="mav3d"), "method_a is 'mav3d', the design's primary is '4dfy'"),
    (lambda d: d["questions"][-1].update(is_attention_check="yes"),
     "is_attention_check must be true or false, not 'yes'"),
    (lambda d: d["questions"][0].update(video_a="../bundle.json"), "video '../bundle.json' is not a name"),
    (lambda d: d["questions"][0].update(prompt=None), "prompt must be non-empty text"),
    (_drop_plain, "it holds only attention checks"),
    (lambda d: d["questions"][0].update(prompt="Another prompt."), "edited after `survey build`"),
    (lambda d: d["design"]["methods"].update(mav3d={"label": "M"}), "edited after `survey build`"),
], ids=["empty", "duplicate", "unlisted-method", "wrong-primary", "flag-not-bool", "video-path", "prompt-null",
        "checks-only", "prompt-text", "label"])
def test_serve_refuses_an_edited_bundle_in_one_line(bundle, tmp_path, fake_exec, change, says):
    root = _copy(bundle, tmp_path / "copy")
    _edit(root, change)
    line = one_error_line(_serve(root, f"sqlite:///{tmp_path / 'survey.sqlite'}"))
    assert line.startswith(f"error: {root / 'bundle.json'}: ") and says in line, line
    assert line.endswith("build the bundle again with `fourdfy survey build` (into a new folder) instead of editing "
                         "bundle.json"), line
    assert fake_exec == [] and not (tmp_path / "survey.sqlite").exists()  # refused before the database is made


def test_edits_outside_what_raters_see_still_load(bundle, tmp_path):
    """What the bundle id leaves out (the lists of what was missing, a table's caption) may change."""
    root = _copy(bundle, tmp_path / "copy")
    _edit(root, lambda d: (d.update(missing=["x"]), d["design"]["tables"]["t"].update(caption="Table")))
    assert load_bundle(root).bundle_id == bundle.bundle_id


def test_a_database_assigning_questions_the_bundle_lacks_is_refused(bundle, db_url, tmp_path, fake_exec):
    engine = store.make_engine(db_url)
    ids = [q.question_id for q in bundle.questions]
    store.init_db(engine, bundle.bundle_id, ids)
    rater = store.create_rater(engine, bundle.questions, at(0), seed=1)
    with engine.begin() as conn:
        conn.execute(sa.insert(store.assignments).values(rater_id=rater.id, position=len(ids), question_id="gone__x",
                                                         method_left="4dfy", method_right="gone"))
    store.init_db(engine, bundle.bundle_id)  # without the ids: as before
    with pytest.raises(store.StoreError, match=r"assigns 1 question\(s\) that bundle \w+ does not hold \(gone__x\)"):
        store.init_db(engine, bundle.bundle_id, ids)
    engine.dispose()
    line = one_error_line(_serve(bundle.root, db_url))
    assert "does not hold (gone__x)" in line and "give this bundle its own database" in line
    assert fake_exec == []


def test_build_refuses_a_bundle_of_attention_checks_alone(study_inputs, tmp_path):
    """Table 3's videos missing (`--tables table3 --allow-missing`): only the check has both its videos."""
    arts, prompts_dir, _ = study_inputs
    own = tmp_path / "arts"
    shutil.copytree(arts, own)
    for method in ("mav3d", "wo_3d"):
        shutil.rmtree(own / method)
    design = tmp_path / "design.yaml"
    design.write_text(yaml.safe_dump(STUDY, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "b"
    res = runner.invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(own), "--prompts-dir",
                              str(prompts_dir), "--out", str(out), "--allow-missing"])
    assert res.exit_code == 2, res.output
    err = " ".join(res.stderr.split())
    assert "no question has videos of both its methods, attention checks aside (checks alone are no survey" in err, err
    assert "would not load" not in err and not out.exists()
