"""A finished run's manifest.json that is a JSON object but has fields of another type than the trainer writes (edited
by hand, written by another tool) used to crash the sweep's summary (`len(3)`, `sum(["a"])`), ending the whole sweep
after its jobs had run. Now such a field is unknown (None, "?" in the table) and the sweep says in one line which
fields of which run are odd."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.sweep import SweepSpec, plan, run_facts
from run_helpers import fake_finished_run

SLUG = "a_panda_dancing"
GOOD = {"resumes": [{"stage_index": 1, "step": 0, "from": "last.pt"}], "shared_from": {"stage": "stage1", "key": "k"},
        "timings_s": {"stage1": 1.5, "stage2": 2}}


def test_a_manifest_as_the_trainer_writes_it_gives_its_facts():
    assert run_facts(GOOD) == {"resumes": 1, "shared_from": "stage1", "seconds": 3.5, "odd": {}}
    # fields a run leaves out (no resume, nothing shared, an older manifest without timings)
    assert run_facts({"shared_from": None}) == {"resumes": 0, "shared_from": None, "seconds": 0, "odd": {}}


@pytest.mark.parametrize("field, value, unknown, says", [
    ("resumes", 3, "resumes", "a number, not a list"),
    ("resumes", None, "resumes", "null, not a list"),
    ("shared_from", "x", "shared_from", "a string, not an object"),
    ("shared_from", {"stage": 3}, "shared_from", "an object whose stage is a number, not a string"),
    ("timings_s", [1, 2], "seconds", "a list, not an object"),
    ("timings_s", {"a": "b"}, "seconds", "an object with a value that is not a number"),
    ("timings_s", {"a": True}, "seconds", "an object with a value that is not a number"),
])
def test_a_field_of_another_type_is_unknown_and_named(field, value, unknown, says):
    facts = run_facts({**GOOD, field: value})
    assert facts[unknown] is None
    assert facts["odd"] == {field: says}
    good = run_facts(GOOD)
    assert {k: facts[k] for k in ("resumes", "shared_from", "seconds") if k != unknown} == \
        {k: good[k] for k in ("resumes", "shared_from", "seconds") if k != unknown}  # the other fields still shown


def test_the_sweep_reports_odd_manifests_and_still_writes_its_summary(tmp_path):
    """Two finished runs of the sweep's configs (their manifests match config and prompt, so they are not submitted),
    each with odd fields: the sweep ends as done, prints one line per odd manifest, shows the odd fields as "?" and
    records them in sweep.json."""
    runs = tmp_path / "runs"
    jobs = plan(SweepSpec(methods=("4dfy", "wo_hybrid"), prompts=(SLUG,), runs=runs, max_steps=1))
    odd = {"4dfy": {"resumes": 3, "shared_from": "x", "timings_s": [1, 2]},
           "wo_hybrid": {"shared_from": {"stage": "stage1"}, "timings_s": {"a": "b"}}}
    for j in jobs:
        j.out.mkdir(parents=True)
        fake_finished_run(j.out, {"config_hash": j.config_hash, "prompt": j.prompt, **odd[j.method]})
    res = CliRunner().invoke(app, ["sweep", "--methods", "4dfy,wo_hybrid", "--prompts", SLUG, "--runs", str(runs),
                                   "--max-steps", "1"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith("sweep: 2 runs (2 already finished)"), lines[0]
    assert lines[1:3] == [
        f"odd manifest 4dfy-{SLUG}: 4dfy/{SLUG}/manifest.json: resumes is a number, not a list; shared_from is a "
        "string, not an object; timings_s is a list, not an object: shown as unknown",
        f"odd manifest wo_hybrid-{SLUG}: wo_hybrid/{SLUG}/manifest.json: timings_s is an object with a value that is "
        "not a number: shown as unknown"]
    assert not [line for line in lines if line.startswith("submitted ")]
    table = {line.split()[0]: line.split(None, 5)[1:] for line in lines[3:]}
    # job, state, resumes, shared, time, note
    assert table[f"4dfy-{SLUG}"][:4] == ["done", "?", "?", "?"], table
    assert table[f"4dfy-{SLUG}"][4].startswith("already finished (not submitted); odd manifest.json: resumes is")
    assert table[f"wo_hybrid-{SLUG}"][:4] == ["done", "0", "stage1", "?"], table
    written = {j["name"]: j for j in json.loads((runs / "tiny" / "sweep" / "sweep.json").read_text())["jobs"]}
    first = written[f"4dfy-{SLUG}"]
    assert (first["state"], first["resumes"], first["shared_from"]) == ("done", None, None)
    assert first["odd_manifest"] == {"resumes": "a number, not a list", "shared_from": "a string, not an object",
                                     "timings_s": "a list, not an object"}
    second = written[f"wo_hybrid-{SLUG}"]
    assert (second["resumes"], second["shared_from"]) == (0, "stage1")
    assert second["odd_manifest"] == {"timings_s": "an object with a value that is not a number"}
