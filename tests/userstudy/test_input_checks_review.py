"""Input checks a review asked for: nothing given is silently dropped or counted twice.

- two exports of one survey database given to `analyze` (an early and the final one) are refused, not counted as
  twice the raters; independent files (other surveys, simulated panels, files without answer times) are not;
- a scalar `attention_check.decoys` is refused, not split into one-letter decoys;
- a key given twice in a design file is refused with its lines, not reduced to the last block;
- a comparison given twice in a `--rates` CSV is refused with both lines, not decided by the last row;
- a votes CSV whose rows have more fields than its header (a trailing comma) is named as such, not reported as
  every row's "unknown criterion".
"""

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.design import DesignError, design_from_dict, load_design
from userstudy.simulate import parse_rates
from userstudy.votes import CRITERIA, VotesError, load_votes, read_votes
from userstudy_helpers import one_error_line

runner = CliRunner()
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
DESIGN = {"name": "review", "primary": "4dfy", "comparisons": ["mav3d"]}
PROMPTS = ("a_panda_dancing", "a_goat_drinking_beer", "a_dog_riding_a_skateboard")


def _survey(db):
    """A new survey database (`userstudy.survey.store`); returns its engine."""
    from userstudy.survey import store

    engine = store.make_engine(f"sqlite:///{db}")
    store.init_db(engine, "review-bundle")
    return engine


def _questions():
    from userstudy.survey.bundle import Question

    return [Question(question_id=f"mav3d__{slug}", prompt_id=slug, prompt=slug.replace("_", " "), method_a="4dfy",
                     method_b="mav3d", video_a=f"a{i}.mp4", video_b=f"b{i}.mp4") for i, slug in enumerate(PROMPTS)]


def _answer(engine, rater, questions, clock: list[datetime], n: int | None = None) -> None:
    """The rater's next `n` questions (every one left: None) answered, each at the next second of `clock`."""
    from userstudy.survey import store

    by_id = {q.question_id: q for q in questions}
    while n is None or n > 0:
        item = store.next_assignment(engine, rater)[0]
        if item is None:
            return
        clock[0] += timedelta(seconds=1)
        store.submit_answer(engine, rater, by_id[item.question_id], dict.fromkeys(CRITERIA, "left"), seconds=4.0,
                            now=clock[0])
        n = None if n is None else n - 1


def _analyze(tmp_path, *votes, design=None):
    args = ["analyze", "--design", str(design or tmp_path / "design.yaml"), "--out", str(tmp_path / "report"),
            "--n-boot", "100"]
    for path in votes:
        args += ["--votes", str(path)]
    return runner.invoke(app, args)


@pytest.fixture()
def design_file(tmp_path):
    import yaml

    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(DESIGN), encoding="utf-8")
    return path


def test_an_early_and_the_final_export_of_one_survey_are_refused(tmp_path, design_file):
    """The review's case: a day-1 export and the final export of one database. Counted as two surveys, the raters
    of day 1 were counted twice (each a rater of its own, `@day1` and `@final`)."""
    from userstudy.survey import store

    questions = _questions()
    engine = _survey(tmp_path / "survey.sqlite")
    clock = [T0]
    first = [store.create_rater(engine, questions, clock[0], seed=s) for s in (1, 2)]
    _answer(engine, first[0], questions, clock)
    _answer(engine, first[1], questions, clock, n=1)  # day 1: the second rater has answered one question
    day1 = tmp_path / "day1.csv"
    store.write_votes_csv(engine, day1)
    later = store.create_rater(engine, questions, clock[0], seed=3)
    _answer(engine, first[1], questions, clock)
    _answer(engine, later, questions, clock)
    final = tmp_path / "final.csv"
    store.write_votes_csv(engine, final)
    shared = 5 * (len(PROMPTS) + 1)  # the first rater's questions and the second's first one, five criteria each

    res = _analyze(tmp_path, day1, final)
    line = one_error_line(res)
    assert line == (f"error: {final}: shares {shared} judgment(s) of 2 rater(s) with {day1} (the same rater, "
                    "question, criterion and answered_at): two exports of one survey, e.g. an early and the final "
                    "one, would count each of its raters twice; pass only the latest export of each survey; "
                    "nothing was analysed")
    assert not (tmp_path / "report").exists()
    # in the other order too (the earlier file named second)
    assert f"{day1}: shares {shared} judgment(s) of 2 rater(s) with {final}" in one_error_line(
        _analyze(tmp_path, final, day1))
    # the latest export alone: its three raters
    res = _analyze(tmp_path, final)
    assert res.exit_code == 0, res.output
    assert "from 3 raters" in res.output


def test_two_surveys_and_two_simulated_panels_are_still_analysed_together(tmp_path, design_file):
    """Not every shared rater id is a shared survey: two databases number their raters from 1, and simulated panels
    stamp their answers from one fixed clock, so two panels of one design share rater ids, questions and times."""
    from userstudy.survey import store

    questions = _questions()
    exports = []
    for name, start in (("a", T0), ("b", T0 + timedelta(days=3))):
        engine = _survey(tmp_path / f"{name}.sqlite")
        clock = [start]
        for seed in (1, 2):
            _answer(engine, store.create_rater(engine, questions, clock[0], seed=seed), questions, clock)
        exports.append(tmp_path / f"survey_{name}.csv")
        store.write_votes_csv(engine, exports[-1])
    assert set(pd.read_csv(exports[0])["rater_id"]) == set(pd.read_csv(exports[1])["rater_id"])
    res = _analyze(tmp_path, *exports)
    assert res.exit_code == 0, res.output
    assert "from 4 raters" in res.output

    panels = []
    for seed in (1, 2):
        panels.append(tmp_path / f"panel{seed}.csv")
        res = runner.invoke(app, ["simulate-votes", "--design", str(design_file), "--raters", "3", "--seed",
                                  str(seed), "--checks", "0", "--out", str(panels[-1])])
        assert res.exit_code == 0, res.output
    one, two = (pd.read_csv(p, dtype=str) for p in panels)
    key = ["rater_id", "question_id", "criterion", "answered_at"]
    assert len(one.merge(two, on=key)) > 0  # the same rater ids, questions and times in both
    res = _analyze(tmp_path / "sim", *panels, design=design_file)
    assert res.exit_code == 0, res.output
    assert "from 6 raters" in res.output


@pytest.mark.parametrize("decoys", ["attention_decoy", {"name": "attention_decoy"}, ["attention_decoy", 3]])
def test_decoys_must_be_a_list_of_method_names(decoys):
    data = {**DESIGN, "attention_check": {"correct_method": "4dfy", "decoys": decoys}}
    with pytest.raises(DesignError, match=r"^review.yaml: attention_check.decoys must be a list of method names, "
                                          r"e.g. decoys: \[attention_decoy\]; got "):
        design_from_dict(data, source="review.yaml")
    ok = design_from_dict({**DESIGN, "attention_check": {"correct_method": "4dfy", "decoys": ["attention_decoy"]}})
    assert ok.check.decoys == ("attention_decoy",)


def test_a_scalar_decoy_is_refused_by_simulate_votes_and_analyze(tmp_path):
    """The review's case: `decoys: attention_decoy` became decoys a, t, t, e, ... (simulate-votes wrote check rows
    for a method `a`)."""
    design = tmp_path / "design.yaml"
    design.write_text("primary: 4dfy\ncomparisons: [mav3d]\n"
                      "attention_check: {correct_method: 4dfy, decoys: attention_decoy}\n", encoding="utf-8")
    out = tmp_path / "votes.csv"
    line = one_error_line(runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "2",
                                              "--out", str(out)]))
    assert "design.yaml: attention_check.decoys must be a list of method names" in line
    assert "got 'attention_decoy'" in line and not out.exists()


DUPLICATED = """\
primary: 4dfy
tables:
  table2:
    sections:
      - {prompt_set: mav3d_28, rows: [4dfy, mav3d]}
  table2:
    sections:
      - {prompt_set: ablation_5, rows: [4dfy, wo_3d]}
"""


def test_a_key_given_twice_in_a_design_is_refused_with_both_lines(tmp_path):
    design = tmp_path / "design.yaml"
    design.write_text(DUPLICATED, encoding="utf-8")
    with pytest.raises(DesignError) as info:
        load_design(design)
    assert str(info.value) == (f"{design}: cannot parse as YAML: line 6, column 3: duplicate key 'table2' (only this "
                               "one would be kept): rename one of them or merge the two (key 'table2' first given at "
                               "line 3, column 3); fix the file (docs/userstudy.md, \"Design file\")")
    # through the CLI: one error line, nothing written
    line = one_error_line(runner.invoke(app, ["audit", "--design", str(design), "--out", str(tmp_path / "a.md")]))
    assert "line 6, column 3: duplicate key 'table2'" in line and not (tmp_path / "a.md").exists()
    # a key deeper down, and a JSON design
    design.write_text("primary: 4dfy\ncomparisons: [mav3d]\nattention_check:\n  correct_method: 4dfy\n"
                      "  correct_method: mav3d\n", encoding="utf-8")
    with pytest.raises(DesignError, match="line 5, column 3: duplicate key 'correct_method'"):
        load_design(design)
    as_json = tmp_path / "design.json"
    as_json.write_text('{"primary": "4dfy", "primary": "mav3d", "comparisons": ["wo_3d"]}', encoding="utf-8")
    with pytest.raises(DesignError, match=f"^{as_json}: duplicate key 'primary' in one object"):
        load_design(as_json)


def test_a_key_overriding_a_merged_one_is_not_a_duplicate(tmp_path):
    """YAML's merge key (`<<: *anchor`) gives keys that the mapping itself may override: not a key given twice."""
    design = tmp_path / "design.yaml"
    design.write_text("primary: 4dfy\ntables:\n  table2:\n    sections:\n      - &base {prompt_set: mav3d_28, rows: "
                      "[4dfy, mav3d]}\n      - {<<: *base, rows: [4dfy, wo_3d]}\n", encoding="utf-8")
    d = load_design(design)
    assert d.comparisons == ("mav3d", "wo_3d") and d.tables[0].sections[1].prompt_set == "mav3d_28"


def test_a_comparison_given_twice_in_a_rates_csv_is_refused(tmp_path, small_design):
    rates = tmp_path / "rates.csv"
    rates.write_text("comparison,rate\nmav3d,0.7\nwo_3d,0.6\nmav3d,0.3\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        parse_rates(str(rates), small_design)
    assert str(info.value) == (f"{rates}: the rate of 'mav3d' (every criterion) is given twice, on lines 2 and 4; "
                               "keep one of them")
    rates.write_text("comparison,rate,criterion\nmav3d,0.7,\nmav3d,0.8,motion\nmav3d,0.3,motion\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"the rate of 'mav3d' \(motion\) is given twice, on lines 3 and 4"):
        parse_rates(str(rates), small_design)
    # a criterion's row beside the comparison's row is the documented override, not a repeat
    rates.write_text("comparison,rate,criterion\nmav3d,0.7,\nmav3d,0.8,motion\n", encoding="utf-8")
    assert parse_rates(str(rates), small_design)["mav3d"] == {**dict.fromkeys(CRITERIA, 0.7), "motion": 0.8}
    # through the CLI: one error line, nothing written
    rates.write_text("comparison,rate\nmav3d,0.7\nmav3d,0.3\n", encoding="utf-8")
    out = tmp_path / "votes.csv"
    line = one_error_line(runner.invoke(app, ["simulate-votes", "--rates", str(rates), "--comparisons", "mav3d",
                                              "--raters", "2", "--out", str(out)]))
    assert "the rate of 'mav3d' (every criterion) is given twice, on lines 2 and 3" in line and not out.exists()


def test_rows_with_a_trailing_comma_are_named_not_misread(tmp_path, tiny_votes, small_design):
    path = tmp_path / "votes.csv"
    text = tiny_votes.to_csv(index=False, lineterminator="\n")
    header, *rows = text.splitlines()
    path.write_text("\n".join([header, *(r + "," for r in rows)]) + "\n", encoding="utf-8")
    want = (f"{path}: its rows have 1 more field(s) than its header line (9 columns), e.g. a trailing comma at the "
            "end of each row; remove the extra field(s) from the rows, or name them in the header; nothing was "
            "analysed")
    with pytest.raises(VotesError) as info:
        read_votes(path)
    assert str(info.value) == want
    with pytest.raises(VotesError) as info:
        load_votes(path, small_design)
    assert "unknown criterion" not in str(info.value) and "more field(s) than its header" in str(info.value)
    # the CLI: the same one line
    design = tmp_path / "design.yaml"
    design.write_text("primary: 4dfy\ncomparisons: [mav3d, wo_3d]\n"
                      "attention_check: {correct_method: 4dfy, decoys: [broken]}\n", encoding="utf-8")
    assert one_error_line(_analyze(tmp_path, path, design=design)) == f"error: {want}"
    # the header with the trailing comma too: an extra, empty column, kept as extra columns are
    path.write_text("\n".join(r + "," for r in [header, *rows]) + "\n", encoding="utf-8")
    assert len(load_votes(path, small_design).frame) == len(tiny_votes)


def test_an_export_with_its_times_spelled_otherwise_is_still_the_same_survey(tmp_path, tiny_votes, small_design):
    """An earlier export written with `+00:00` where the later writes `Z` (or edited by a spreadsheet) names the
    same answers: the times are compared as times."""
    early, final = tmp_path / "early.csv", tmp_path / "final.csv"
    tiny_votes.iloc[:6].assign(answered_at=tiny_votes["answered_at"].str.replace("Z", "+00:00")).to_csv(early,
                                                                                                     index=False)
    tiny_votes.to_csv(final, index=False)
    with pytest.raises(VotesError, match=f"^{final}: shares 6 judgment\\(s\\) of 3 rater\\(s\\) with {early} "):
        load_votes([early, final], small_design)


def test_two_surveys_sharing_an_attention_check_at_one_time_are_two_surveys(tmp_path, tiny_votes, small_design):
    """Two surveys may ask the same attention check, with raters numbered from 1 in each, and a frozen test clock
    gives both one time: a rater with other judgments in each file is two raters, not one exported twice."""
    a, b = tmp_path / "survey_a.csv", tmp_path / "survey_b.csv"
    tiny_votes[tiny_votes["question_id"].isin(["q1", "q9"])].to_csv(a, index=False)
    tiny_votes[tiny_votes["question_id"].isin(["q3", "q9"])].to_csv(b, index=False)
    votes = load_votes([a, b], small_design)
    assert votes.frame["rater_id"].nunique() == 6
    assert (votes.frame["question_id"] == "q9").sum() == 6  # each survey's check, once per rater


def test_blanks_around_the_fields_of_a_rates_csv_are_not_part_of_names_or_rates(tmp_path, small_design):
    rates = tmp_path / "rates.csv"
    rates.write_text("comparison, rate, criterion\nmav3d, 0.7,\n mav3d , 0.8 , motion\nwo_3d,0.6 ,\n",
                     encoding="utf-8")
    assert parse_rates(str(rates), small_design) == {"mav3d": {**dict.fromkeys(CRITERIA, 0.7), "motion": 0.8},
                                                     "wo_3d": dict.fromkeys(CRITERIA, 0.6)}
    # a repeat that differs only in blanks is still a repeat
    rates.write_text("comparison,rate\nmav3d,0.7\n mav3d,0.3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"the rate of 'mav3d' \(every criterion\) is given twice, on lines 2 and 3"):
        parse_rates(str(rates), small_design)


def _table_design(section: dict, **top) -> dict:
    return {"primary": "4dfy", "tables": {"t": {"sections": [section]}}, **top}


@pytest.mark.parametrize("key, value", [("prompt_set", ["mav3d_28"]), ("heading", {"a": 1}), ("prompt_set", True)])
def test_a_section_text_given_as_a_list_mapping_or_true_is_refused(key, value):
    """A list as prompt_set became the set "['mav3d_28']", which has no file and so let any prompt through."""
    with pytest.raises(DesignError) as info:
        design_from_dict(_table_design({"rows": ["4dfy", "mav3d"], key: value}), source="d.yaml")
    assert str(info.value).startswith(f"d.yaml: tables.t.sections[0]: '{key}' must be text, got {value!r}")
    with pytest.raises(DesignError, match=r"^d\.yaml: 'prompt_set' must be text, got \['mav3d_28'\]$"):
        design_from_dict({"primary": "4dfy", "comparisons": ["mav3d"], "prompt_set": ["mav3d_28"]}, source="d.yaml")


def test_labels_captions_and_names_must_be_text_and_numbers_are_taken_as_written():
    rows = {"rows": ["4dfy", "mav3d"]}
    for data, want in [(_table_design(rows, methods={"mav3d": {"label": [1, 2]}}), "methods.mav3d: 'label'"),
                       (_table_design(rows, methods={"mav3d": {"label": "M", "latex": False}}),
                        "methods.mav3d: 'latex'"),
                       (_table_design(rows, name=["x"]), "'name'"),
                       ({"primary": "4dfy", "tables": {"t": {"sections": [rows], "caption": ["c"]}}},
                        "tables.t: 'caption'"),
                       (_table_design(rows, attention_check={"correct_method": ["4dfy"], "decoys": ["x"]}),
                        "attention_check: 'correct_method'")]:
        with pytest.raises(DesignError) as info:
            design_from_dict(data, source="d.yaml")
        assert str(info.value).startswith(f"d.yaml: {want} must be text"), info.value
    d = design_from_dict(_table_design({**rows, "heading": 2024}, methods={"mav3d": {"label": 7}}))
    assert d.tables[0].sections[0].heading == "2024" and d.labels["mav3d"].label == "7"


@pytest.mark.parametrize("sections", [5, True, {"rows": ["4dfy", "mav3d"]}, "4dfy, mav3d"])
def test_sections_that_are_not_a_list_are_named(sections, tmp_path):
    with pytest.raises(DesignError) as info:
        design_from_dict({"primary": "4dfy", "tables": {"table2": {"sections": sections}}}, source="d.yaml")
    assert str(info.value) == (f"d.yaml: tables.table2: 'sections' must be a list of {{rows: [...]}}, one per "
                               f"section, got {sections!r}")
    # through the CLI: one error line naming the file and the key
    design = tmp_path / "design.yaml"
    design.write_text("primary: 4dfy\ntables:\n  table2:\n    sections: 5\n", encoding="utf-8")
    line = one_error_line(runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "2",
                                              "--out", str(tmp_path / "v.csv")]))
    assert "tables.table2: 'sections' must be a list" in line and not (tmp_path / "v.csv").exists()


def test_a_date_read_by_yaml_is_taken_as_written(tmp_path):
    design = tmp_path / "design.yaml"
    design.write_text("name: 2024-06-01\nprimary: 4dfy\ntables:\n  t:\n    caption: 2024-06-01\n    sections:\n"
                      "      - {rows: [4dfy, mav3d]}\n", encoding="utf-8")
    d = load_design(design)
    assert d.name == "2024-06-01" and d.tables[0].caption == "2024-06-01"
