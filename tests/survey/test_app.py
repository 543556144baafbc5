"""The whole survey flow through `streamlit.testing.v1.AppTest`: consent, answering, reload/resume,
completion, isolation, admin page refused without a password and with a wrong one."""

import pytest
from survey_helpers import app_run as run, app_start as start, app_token as _token

from userstudy.survey import store
from userstudy.survey.texts import CRITERIA_TEXT


def qkey(at):
    """The key part of the question shown (`<position>_<digest>`): its radios are `r_<qkey>_<criterion>`."""
    return next(b.key for b in at.button if b.key.startswith("submit_")).split("_", 1)[1]


def position(at):
    return int(qkey(at).split("_")[0])


def submit_key(at):
    return f"submit_{qkey(at)}"


def answer(at, picks):
    q = qkey(at)
    for crit, side in picks.items():
        at.radio(key=f"r_{q}_{crit}").set_value(side)
    return at.run()


def test_consent_answer_resume_complete(app_env, bundle):
    at = start({"PROLIFIC_PID": "p'); DROP TABLE raters;--"})
    token = _token(at)
    rater = store.get_rater(app_env, token)
    assert rater is not None and rater.external_id == "p'); DROP TABLE raters;--"
    n = len(bundle.questions)
    assert f"Question 1 of {n}" in at.get("progress")[0].proto.text
    assert len(at.get("video")) == 2
    assert [r.label for r in at.radio] == [t for t, _ in CRITERIA_TEXT.values()]
    assert all(r.value is None for r in at.radio)  # forced choice, no default

    # Submit stays disabled until all five are answered.
    sub0 = submit_key(at)
    picks = dict(zip(CRITERIA_TEXT, ["Left", "Right", "Left", "Left", "Right"]))
    answer(at, dict(list(picks.items())[:4]))
    assert at.button(key=sub0).disabled
    answer(at, {"overall": "Right"})
    assert not at.button(key=sub0).disabled
    at.button(key=sub0).click().run()
    assert f"Question 2 of {n}" in at.get("progress")[0].proto.text
    items, done = store.progress(app_env, rater)
    first = items[0]
    assert done == {first.question_id}
    votes = store.export_votes(app_env)
    assert list(votes["choice"]) == ["left", "right", "left", "left", "right"]
    assert set(votes["method_left"]) == {first.method_left}

    # A new session with the token (reload / reopened link) resumes at question 2.
    again = run({"t": token})
    assert f"Question 2 of {n}" in again.get("progress")[0].proto.text
    assert position(again) == 1
    for _ in range(n - 1):
        sub = submit_key(again)
        answer(again, dict.fromkeys(CRITERIA_TEXT, "Left"))
        again.button(key=sub).click().run()
    assert "Thank you!" in [t.value for t in again.title]
    assert "CODE-123" in [c.value for c in again.code]
    assert len(store.export_votes(app_env)) == 5 * n
    assert store.get_rater(app_env, token).completed
    # Reopening a completed link shows the completion page again, nothing is added.
    done_again = run({"t": token})
    assert "CODE-123" in [c.value for c in done_again.code]
    assert len(store.export_votes(app_env)) == 5 * n


def test_two_raters_are_isolated(app_env, bundle):
    a, b = start(), start()
    ta, tb = _token(a), _token(b)
    assert ta != tb and len(ta) >= 32
    sub = submit_key(a)
    answer(a, dict.fromkeys(CRITERIA_TEXT, "Right"))
    a.button(key=sub).click().run()
    rb = store.get_rater(app_env, tb)
    assert store.progress(app_env, rb)[1] == set()  # b still at its first question
    assert f"Question 1 of {len(bundle.questions)}" in b.run().get("progress")[0].proto.text


def test_crowd_id_continues_the_same_rater(app_env):
    first = start({"PROLIFIC_PID": "abc ü"})
    sub = submit_key(first)
    answer(first, dict.fromkeys(CRITERIA_TEXT, "Left"))
    first.button(key=sub).click().run()
    # the platform's link opened a second time: the same rater continues, without a second consent
    again = run({"PROLIFIC_PID": "abc ü"})
    assert not again.checkbox  # no consent page
    other = start({"PROLIFIC_PID": "xyz"})
    t1, t2, t3 = (_token(a) for a in (first, again, other))
    assert t1 == t2 and t3 != t1
    assert "Question 2 of" in again.get("progress")[0].proto.text


def test_bad_token(app_env):
    at = run({"t": "' OR '1'='1"})
    assert "not valid" in at.error[0].value
    assert not at.get("video")


def test_admin_off_without_password(app_env):
    at = run({"view": "admin"})
    assert "admin page is off" in at.error[0].value
    assert not at.text_input and not at.get("download_button")


def test_admin_password_from_the_secrets_file(app_env, tmp_path):
    """`admin_password` in ./.streamlit/secrets.toml (app_env's cwd) opens the page, read as `db_url` is."""
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('admin_password = "from-file"\n')
    at = run({"view": "admin"})
    assert not at.error
    at.text_input(key="admin_password").input("from-file")  # in the login form: sent with its button
    at.button(key="admin_login").click().run()
    assert {m.label for m in at.metric} >= {"Raters started", "Judgments"}


def test_admin_wrong_and_right_password(app_env, monkeypatch):
    monkeypatch.setenv("FOURDFY_SURVEY_ADMIN_PASSWORD", "s3cret-ü")
    rater = start()
    sub = submit_key(rater)
    answer(rater, dict.fromkeys(CRITERIA_TEXT, "Left"))
    rater.button(key=sub).click().run()

    at = run({"view": "admin"})
    at.text_input(key="admin_password").input("wrong")  # in the login form: sent with its button
    at.button(key="admin_login").click().run()
    assert "Wrong password." in [e.value for e in at.error]
    assert not at.dataframe and not at.metric
    at.text_input(key="admin_password").input("s3cret-ü")  # in the login form: sent with its button
    at.button(key="admin_login").click().run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Raters started"] == "1" and metrics["Raters completed"] == "0" and metrics["Judgments"] == "5"
    votes = store.export_votes(app_env)
    table = at.dataframe[0].value
    checks = at.dataframe[1].value
    if votes["is_attention_check"].iloc[0] == "true":  # the first question this rater drew was the check
        assert table.empty
        failed = (votes["choice"] != votes["expected_choice"]).sum()
        assert len(checks) == (1 if failed else 0)
    else:
        primary_left = votes["method_left"].iloc[0] == "4dfy"
        assert list(table["Judgments"]) == [1] * 5 and list(table["For 4dfy"]) == [int(primary_left)] * 5
        assert list(table["% for 4dfy"]) == [100.0 * primary_left] * 5
    assert at.get("download_button")


def test_a_database_error_shows_raters_a_note_and_loses_nothing(app_env, bundle):
    """While the database fails (a PostgreSQL restart, a lock held too long; here the answers table is gone, which
    SQLite reports as the OperationalError a lost server raises), a rater sees one plain note, not Streamlit's
    error page; the answers stored before are kept, and once the database is back the same link resumes."""
    from sqlalchemy import text

    from userstudy.survey.app import UNAVAILABLE

    at = start()
    token = _token(at)
    sub = submit_key(at)
    at = answer(at, dict(zip(CRITERIA_TEXT, ["Left"] * 5)))
    at.button(key=sub).click().run()
    assert len(store.export_votes(app_env)) == 5
    saved = store.export_votes(app_env)
    with app_env.begin() as conn:  # the database fails: the answers table is renamed away
        conn.execute(text("ALTER TABLE answers RENAME TO answers_away"))
    at = run({"t": token})
    assert not at.exception, at.exception
    assert [w.value for w in at.warning] == [UNAVAILABLE]
    with app_env.begin() as conn:  # back
        conn.execute(text("ALTER TABLE answers_away RENAME TO answers"))
    at = run({"t": token})
    assert not at.warning and f"Question 2 of {len(bundle.questions)}" in at.get("progress")[0].proto.text
    assert store.export_votes(app_env).equals(saved)


@pytest.mark.parametrize("placeholder", ["{{%PROLIFIC_PID%}}", "%PROLIFIC_PID%", "${workerId}", "{pid}", "[pid]",
                                         "<PID>"])
def test_an_unfilled_crowd_id_placeholder_is_no_id(app_env, placeholder, capfd):
    """A study link whose id placeholder the platform never filled in: every participant would carry the same text
    and be merged into one rater. Each gets a rater of their own, without a crowd id, and the server log says why."""
    first = start({"PROLIFIC_PID": placeholder})
    second = start({"PROLIFIC_PID": placeholder})
    t1, t2 = _token(first), _token(second)
    assert t1 != t2 and store.get_rater(app_env, t1).external_id == "" == store.get_rater(app_env, t2).external_id
    assert "is a placeholder" in capfd.readouterr().err


def test_an_id_that_only_holds_such_characters_inside_is_kept():
    from userstudy.survey.app import external_id_of

    assert external_id_of({"PROLIFIC_PID": " 5f3a{1}b "}) == "5f3a{1}b"
    assert external_id_of({"workerId": "A1%2B"}) == "A1%2B" and external_id_of({}) == ""
