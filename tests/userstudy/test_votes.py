"""The votes format: validation errors list the offending rows; nothing is dropped silently."""

from pathlib import Path

import pandas as pd
import pytest

from userstudy.votes import COLUMNS, VotesError, load_votes, survey_labels, validate_votes


def _error(raw, design) -> VotesError:
    with pytest.raises(VotesError) as info:
        validate_votes(raw, design, source="votes.csv")
    return info.value


def test_valid_votes_are_typed_and_scored(tiny_votes, small_design):
    v = validate_votes(tiny_votes, small_design)
    f = v.frame
    assert len(f) == len(tiny_votes) and v.duplicates_merged == 0
    assert f["is_attention_check"].dtype == bool
    # r3 saw MAV3D on the left and chose right: a vote for 4D-fy.
    row = f[(f.rater_id == "r3") & (f.question_id == "q1") & (f.criterion == "appearance")].iloc[0]
    assert row["primary_side"] == "right" and row["comparison"] == "mav3d" and row["chose_primary"] == 1.0
    # Unanswered: not a vote either way.
    row = f[(f.rater_id == "r2") & (f.question_id == "q1") & (f.criterion == "motion")].iloc[0]
    assert not row["answered"] and pd.isna(row["chose_primary"])
    checks = f[f["is_attention_check"]]
    assert list(checks["expected_choice"]) == ["left"] * 3
    assert list(checks["check_passed"]) == [1.0, 1.0, 0.0]
    assert not v.synthetic


def test_missing_column_is_named(tiny_votes, small_design):
    err = _error(tiny_votes.drop(columns=["criterion"]), small_design)
    assert "missing column(s) criterion" in str(err)
    assert "comma-separated" not in str(err)


def test_a_votes_file_with_another_delimiter_says_so(tiny_votes, small_design, tmp_path):
    path = tmp_path / "votes.csv"
    tiny_votes.to_csv(path, sep=";", index=False)
    with pytest.raises(VotesError) as info:
        load_votes(path, small_design)
    assert "one cell split by ';': votes files are comma-separated" in str(info.value)


@pytest.mark.parametrize("column,value,message", [
    ("criterion", "realism", "unknown criterion"),
    ("choice", "both", "unknown choice"),
    ("choice", "L", "unknown choice"),  # shown as written, not lowered to 'l'
    ("is_attention_check", "maybe", "is_attention_check is not true/false"),
    ("answered_at", "yesterday", "answered_at is not an ISO 8601 time"),
])
def test_bad_values_list_their_lines(tiny_votes, small_design, column, value, message):
    raw = tiny_votes.copy()
    raw.loc[[1, 4], column] = value
    err = _error(raw, small_design)
    assert message in str(err)
    assert list(err.rows["line"]) == [3, 6]  # CSV lines: header = 1, first data row = 2
    assert value in str(err)
    if column in err.rows.columns:
        assert set(err.rows[column]) == {value}


def test_method_not_in_design(tiny_votes, small_design):
    raw = tiny_votes.copy()
    raw.loc[2, "method_right"] = "dreamfusion"
    raw.loc[5, ["method_left", "method_right"]] = ["mav3d", "wo_3d"]  # no primary on either side
    err = _error(raw, small_design)
    assert "method not in the design" in str(err)
    assert sorted(err.rows["line"]) == [4, 7]
    assert "dreamfusion" in str(err)


def test_conflicting_repeat_fails_identical_repeat_is_merged(tiny_votes, small_design):
    same = pd.concat([tiny_votes, tiny_votes.iloc[[0]]], ignore_index=True)
    v = validate_votes(same, small_design)
    assert v.duplicates_merged == 1 and len(v.frame) == len(tiny_votes)

    changed = tiny_votes.iloc[[0]].assign(choice="right")
    err = _error(pd.concat([tiny_votes, changed], ignore_index=True), small_design)
    assert "more than once, differently" in str(err)
    assert sorted(err.rows["line"]) == [2, len(tiny_votes) + 2]


@pytest.mark.parametrize("change", ["sides", "prompt", "attention_flag"])
def test_a_repeat_with_the_same_choice_but_other_sides_or_prompt_is_a_conflict(tiny_votes, small_design, change):
    """`left` under A|B is a vote for A, under B|A for B: the same choice word is not the same answer. Such a repeat
    was merged as identical (and counted once, for whichever row came first)."""
    row = tiny_votes.iloc[[0]].copy()
    if change == "sides":
        row[["method_left", "method_right"]] = row[["method_right", "method_left"]].to_numpy()
    elif change == "prompt":
        row["prompt_id"] = "another_prompt"
    else:
        row["is_attention_check"] = "true" if row["is_attention_check"].iloc[0].lower() in ("false", "0") else "false"
    err = _error(pd.concat([tiny_votes, row], ignore_index=True), small_design)
    assert err.problems[0][0].startswith("the same rater answered the same sub-question more than once, differently")
    assert sorted(err.problems[0][1]["line"]) == [2, len(tiny_votes) + 2]
    # a second submission of the very same answer (another time stamp) is still one judgment
    again = tiny_votes.iloc[[0]].assign(answered_at="2030-01-01T00:00:00Z")
    v = validate_votes(pd.concat([tiny_votes, again], ignore_index=True), small_design)
    assert v.duplicates_merged == 1 and len(v.frame) == len(tiny_votes)


def test_every_problem_is_reported_at_once(tiny_votes, small_design):
    raw = tiny_votes.copy()
    raw.loc[0, "criterion"] = "realism"
    raw.loc[3, "choice"] = "both"
    raw.loc[6, "method_left"] = "nope"
    err = _error(raw, small_design)
    assert len(err.problems) == 3
    assert {"unknown criterion", "unknown choice"} <= {p[0].split(" (")[0] for p in err.problems}


def test_question_must_be_one_prompt_and_one_pair(tiny_votes, small_design):
    raw = tiny_votes.copy()
    raw.loc[0, "prompt_id"] = "another_prompt"
    err = _error(raw, small_design)
    assert "question_id with more than one prompt" in str(err)
    assert 2 in set(err.rows["line"])


def test_one_layout_per_rater_and_question(tiny_votes, small_design):
    raw = tiny_votes.copy()
    i = raw.index[(raw.rater_id == "r1") & (raw.question_id == "q1") & (raw.criterion == "motion")][0]
    raw.loc[i, ["method_left", "method_right"]] = ["mav3d", "4dfy"]
    err = _error(raw, small_design)
    assert "two different left/right layouts" in str(err)


def test_attention_check_needs_a_right_answer(tiny_votes, small_design):
    raw = tiny_votes.copy()
    checks = raw.index[raw.is_attention_check == "true"]
    raw.loc[checks, ["method_left", "method_right"]] = ["broken", "mav3d"]
    err = _error(raw, small_design)
    assert "attention check without a right answer" in str(err)
    # An explicit expected_choice column settles it.
    raw["expected_choice"] = ""
    raw.loc[checks, "expected_choice"] = "right"
    v = validate_votes(raw, small_design)
    assert list(v.frame.loc[v.frame.is_attention_check, "check_passed"]) == [0.0, 0.0, 1.0]


def test_empty_and_unreadable_files(tmp_path, small_design):
    path = tmp_path / "votes.csv"
    path.write_text(",".join(COLUMNS) + "\n")
    with pytest.raises(VotesError, match="no judgments"):
        load_votes(path, small_design)
    with pytest.raises(VotesError, match="not found") as err:
        load_votes(tmp_path / "missing.csv", small_design)
    # one file-level problem is one line naming the file as given (the CLI prints it as its one error line)
    assert str(err.value) == f"{tmp_path / 'missing.csv'}: votes file not found; nothing was analysed"


def test_a_folder_given_to_the_readers_is_named_as_such(tmp_path, small_design):
    """The Python readers say so too, not only the CLI (which checks before calling them)."""
    from userstudy.design import DesignError, load_design
    from userstudy.tables import ClipError, load_clip

    with pytest.raises(VotesError) as err:
        load_votes(tmp_path, small_design)
    assert str(err.value) == f"{tmp_path}: is a folder, not a votes file; nothing was analysed"
    with pytest.raises(DesignError, match=r"is a folder, not a design file \(the paper's is paper.yaml"):
        load_design(tmp_path)
    with pytest.raises(ClipError) as err:
        load_clip(tmp_path)
    assert str(err.value) == f"{tmp_path} is a folder, not a CLIP file (clipscore writes clip.csv in its --out folder)"
    with pytest.raises(ClipError, match="CLIP file not found"):
        load_clip(tmp_path / "clip.csv")


def test_an_empty_file_says_so_and_lists_the_header_it_needs(tmp_path, small_design):
    for text in ("", "\n\n"):  # 0 bytes, or blank lines only: pandas' own words are "No columns to parse"
        path = tmp_path / "votes.csv"
        path.write_text(text)
        with pytest.raises(VotesError) as err:
            load_votes(path, small_design)
        message = str(err.value)
        assert message.startswith(f"{path}: the votes file is empty")  # a read error names the path as given
        assert ",".join(COLUMNS) in message and "No columns" not in message and "\n" not in message


def test_csv_round_trip_keeps_every_row(tmp_path, tiny_votes, small_design):
    path = tmp_path / "votes.csv"
    tiny_votes.assign(extra="kept").to_csv(path, index=False)
    v = load_votes(path, small_design)
    assert len(v.frame) == len(tiny_votes) and (v.frame["extra"] == "kept").all()
    assert v.source == "votes.csv"


def test_several_files_keep_their_raters_apart_and_their_own_errors(tiny_votes, small_design, tmp_path):
    """Each survey's export is validated on its own, so an error names its file and its line there; the
    combination marks every rater id with its file, so `r1` of two surveys is two raters."""
    first, second, bad = tmp_path / "survey_a.csv", tmp_path / "survey_b.csv", tmp_path / "survey_c.csv"
    tiny_votes.to_csv(first, index=False)
    tiny_votes.assign(answered_at="").to_csv(second, index=False)
    v = load_votes([first, second], small_design)
    assert len(v.frame) == 2 * len(tiny_votes) and v.source == "survey_a.csv, survey_b.csv"
    assert v.frame["rater_id"].nunique() == 2 * tiny_votes["rater_id"].nunique()
    assert {r.split("@")[1] for r in v.frame["rater_id"]} == {"survey_a", "survey_b"}
    broken = tiny_votes.copy()
    broken.loc[3, "criterion"] = "beauty"
    broken.to_csv(bad, index=False)
    with pytest.raises(VotesError) as info:
        load_votes([first, bad], small_design)
    assert info.value.source == "survey_c.csv" and list(info.value.rows["line"]) == [5]
    again = tmp_path / "again.csv"
    again.write_bytes(first.read_bytes())
    with pytest.raises(VotesError, match="the same votes as .*survey_a.csv"):
        load_votes([first, again], small_design)


def test_files_of_one_name_are_told_apart_by_their_folders_never_by_a_whole_path(tiny_votes, small_design,
                                                                                   tmp_path, monkeypatch):
    """Each survey's export as `votes.csv` in its own folder: the rater ids name the folders, the same whether the
    paths were given absolute or relative (the outputs must not depend on where the files lie)."""
    for name, votes in (("a", tiny_votes), ("b", tiny_votes.assign(answered_at=""))):  # two surveys' answers
        (tmp_path / "study" / name).mkdir(parents=True)
        votes.to_csv(tmp_path / "study" / name / "votes.csv", index=False)
    monkeypatch.chdir(tmp_path)
    relative = load_votes([Path("study/a/votes.csv"), Path("study/b/votes.csv")], small_design)
    absolute = load_votes([tmp_path / "study/a/votes.csv", tmp_path / "study/b/votes.csv"], small_design)
    assert {r.split("@")[1] for r in relative.frame["rater_id"]} == {"a/votes", "b/votes"}
    assert relative.frame["rater_id"].tolist() == absolute.frame["rater_id"].tolist()
    assert not any(str(tmp_path) in r for r in absolute.frame["rater_id"])
    # names that differ stay as they are; only the files sharing a name get folders
    assert survey_labels([tmp_path / "study/a/votes.csv", tmp_path / "x/a/votes.csv", Path("study/t3.csv")]) == \
        ["study/a/votes", "x/a/votes", "t3"]


def test_an_error_names_the_rows_true_line_after_a_value_spanning_lines_or_a_blank_line(tmp_path, tiny_votes,
                                                                                        small_design):
    """An external id with a newline in it (quoted in the export) or a blank line before a row: the line an error
    names is the line the row starts on in the file, not its index + 2."""
    frame = tiny_votes.assign(external_id="")
    frame.loc[0, "external_id"] = "a\nb"  # a crowd id from ?PROLIFIC_PID=a%0Ab
    frame.loc[5, "criterion"] = "beauty"
    path = tmp_path / "votes.csv"
    text = frame.to_csv(index=False, lineterminator="\n")
    lines = text.splitlines()
    path.write_text("\n".join([*lines[:4], "", *lines[4:]]) + "\n", encoding="utf-8")  # a blank line after row 2
    want = 1 + 1 + 5 + 1 + 1  # the header, row 0's two lines, rows 1-4, the blank line, then row 5
    assert path.read_text(encoding="utf-8").splitlines()[want - 1].count("beauty") == 1
    with pytest.raises(VotesError) as info:
        load_votes(path, small_design)
    assert list(info.value.rows["line"]) == [want]


def test_a_row_with_fewer_fields_than_the_header_is_named_as_such(tmp_path, tiny_votes, small_design):
    path = tmp_path / "votes.csv"
    header, *rows = tiny_votes.to_csv(index=False, lineterminator="\n").splitlines()
    rows[2] = rows[2].rsplit(",", 2)[0]  # the last two fields left out
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    with pytest.raises(VotesError) as info:
        load_votes(path, small_design)
    message = str(info.value)
    assert "1 row(s) have fewer fields than its header line (9 columns)" in message and "4 (7)" in message
    assert "is_attention_check" not in message
    # an optional column left out at the end of a row is no short row
    path.write_text("\n".join([header + ",source", *rows[:2], *(r + ",survey" for r in rows[3:])])
                    + "\n", encoding="utf-8")
    assert len(load_votes(path, small_design).frame) == len(rows) - 1


def test_two_surveys_in_one_folder_differing_by_suffix_stay_two_surveys(tiny_votes, small_design, tmp_path):
    """`votes.csv` and `votes.txt` (or `votes.CSV`) in one folder: no folder tells them apart, their full names do;
    the rater ids never hold the folders above."""
    tiny_votes.to_csv(tmp_path / "votes.csv", index=False)
    tiny_votes.assign(answered_at="").to_csv(tmp_path / "votes.txt", index=False)
    v = load_votes([tmp_path / "votes.csv", tmp_path / "votes.txt"], small_design)
    assert {r.split("@")[1] for r in v.frame["rater_id"]} == {"votes.csv", "votes.txt"}
    assert v.frame["rater_id"].nunique() == 2 * tiny_votes["rater_id"].nunique()
    assert survey_labels([tmp_path / "s/votes.csv", tmp_path / "s/votes.CSV", tmp_path / "o/votes.csv"]) == \
        ["s/votes.csv", "s/votes.CSV", "o/votes.csv"]


def test_a_row_of_empty_fields_is_a_row_and_keeps_the_lines_after_it(tmp_path, tiny_votes, small_design):
    """A spreadsheet's empty row (`,,,,`) is a row to pandas, unlike a blank line: the line numbers count it."""
    frame = tiny_votes.copy()
    frame.loc[3, "criterion"] = "beauty"
    header, *rows = frame.to_csv(index=False, lineterminator="\n").splitlines()
    path = tmp_path / "votes.csv"
    path.write_text("\n".join([header, rows[0], "", rows[1], rows[2], rows[3], "," * 8, *rows[4:]]) + "\n",
                    encoding="utf-8")
    with pytest.raises(VotesError) as info:
        load_votes(path, small_design)
    lines = set(info.value.rows["line"])
    assert 6 in lines and 7 in lines, info.value.rows  # row 3 (beauty) on line 6, the empty row on line 7
