"""Link tokens and participant ids as a rater's browser may send them: a NUL or other control character is "not a
valid link" (or no crowd id) on SQLite and PostgreSQL alike, never a database error; and a participant id that a
spreadsheet would run as a formula in the exported votes.csv (`=HYPERLINK(...)`) is not taken."""

import pytest
from survey_helpers import app_run, app_start, app_token, at

from userstudy.survey import StoreError, store
from userstudy.survey.app import external_id_of


@pytest.mark.parametrize("token", ["abc\x00", "\x00", "a b", "tok\n", "é" * 10, "x" * 65, ""])
def test_get_rater_refuses_tokens_outside_the_token_alphabet(engine, token):
    """`engine` runs on SQLite and on PostgreSQL (pgserver), whose driver raised DataError for a NUL."""
    assert store.get_rater(engine, token) is None


def test_get_rater_still_finds_real_tokens(engine, bundle):
    rater = store.create_rater(engine, bundle.questions, at(0), seed=1)
    assert store.get_rater(engine, rater.token) == rater


@pytest.mark.parametrize("external_id", ["x\x00y", "a\nb", "tab\there", "del\x7f"])
def test_a_participant_id_with_a_control_character_is_no_id(engine, bundle, external_id, capfd):
    assert external_id_of({"PROLIFIC_PID": external_id}) == ""
    assert "control character" in capfd.readouterr().err
    # the store refuses it on both backends alike (a lookup finds nobody; storing one is a StoreError)
    assert store.rater_for_external_id(engine, external_id) is None
    with pytest.raises(StoreError, match="control character"):
        store.rater_for_participant(engine, bundle.questions, at(0), external_id)


@pytest.mark.parametrize("external_id", ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1)",
                                         " =1+1"])
def test_a_participant_id_a_spreadsheet_would_run_is_no_id(external_id, capfd):
    assert external_id_of({"PROLIFIC_PID": external_id}) == ""
    assert "formula" in capfd.readouterr().err


@pytest.mark.parametrize("external_id", ["5f3a9c0e1b2d4a6f8e7c9b0a", "A1B2C3D4E5F6G7", "P-1", "abc ü", "x=1", "a@b"])
def test_platform_ids_are_kept(external_id):
    assert external_id_of({"PROLIFIC_PID": external_id}) == external_id


def test_a_nul_on_the_link_is_not_a_valid_link(app_env):
    page = app_run({"t": "abc\x00"})
    assert not page.exception and "not valid" in page.error[0].value


def test_a_formula_id_never_reaches_the_export(app_env, bundle):
    page = app_start({"PROLIFIC_PID": '=HYPERLINK("http://evil.example","x")'})
    rater = store.get_rater(app_env, app_token(page))
    assert rater is not None and rater.external_id == ""
    store.init_db(app_env, bundle.bundle_id)
    item = store.next_assignment(app_env, rater)[0]
    store.submit_answer(app_env, rater, bundle.by_id[item.question_id], dict.fromkeys(store.CRITERIA, "left"),
                        seconds=1, now=at(1))
    assert set(store.export_votes(app_env)["external_id"]) == {""}
