"""The survey app (AppTest) across one browser tab's session: the link without its token (the browser's Back
button) continues the rater, a finished platform link shows the code at once, a question answered in another
tab is replaced with a notice and no choice carried over, the personal link, and the admin tally (the design's
labels, one decimal, the raters `fourdfy analyze` excludes left out)."""

import json

import pandas as pd
import pytest
import sqlalchemy as sa
from survey_helpers import STUDY, answer_all, app_run as run, app_start as start, app_token as token_of, at as t_at
from typer.testing import CliRunner

from pipelines.cli import app as cli
from userstudy.survey import store
from userstudy.survey.app import ANSWERED_ELSEWHERE
from userstudy.survey.texts import CRITERIA_TEXT


def qkey(at):
    return next(b.key for b in at.button if b.key.startswith("submit_")).split("_", 1)[1]


def shown(at):
    return at.get("progress")[0].proto.text


def answer_and_submit(at, side="Left"):
    q = qkey(at)
    for crit in CRITERIA_TEXT:
        at.radio(key=f"r_{q}_{crit}").set_value(side)
    at.run()
    at.button(key=f"submit_{q}").click().run()
    return at


def n_raters(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(store.raters)).scalar_one()


def test_link_without_token_in_the_same_session_continues_the_rater(app_env, bundle):
    """The browser's Back button after a submit returns to the bare link in the same Streamlit session: the
    rater continues where they were (token back on the link), and no second rater is created."""
    at = start()
    token = token_of(at)
    answer_and_submit(at)
    assert shown(at).startswith("Question 2 of")
    at.query_params.clear()  # Back: the link as it was before Start
    at.run()
    assert not at.checkbox, "the consent page came back"
    assert shown(at).startswith("Question 2 of") and token_of(at) == token
    answer_and_submit(at)
    assert shown(at).startswith("Question 3 of")
    assert n_raters(app_env) == 1
    assert set(store.export_votes(app_env)["rater_id"]) == {"rater-00001"}
    # another browser (a new session) on the bare link is a new participant: consent first
    other = run()
    assert len(other.checkbox) == 1 and not other.get("progress")
    assert n_raters(app_env) == 1


def test_platform_link_reopened_goes_straight_to_the_rater(app_env, bundle):
    """A finished participant reopening the platform's link sees the completion code at once (no consent page
    first); an unknown id on a tab that showed another rater gets the consent page, not that rater."""
    at = start({"PROLIFIC_PID": "P-1"})
    token = token_of(at)
    for _ in bundle.questions:
        answer_and_submit(at)
    assert "CODE-123" in [c.value for c in at.code]
    again = run({"PROLIFIC_PID": "P-1"})
    assert not again.checkbox and "Thank you!" in [t.value for t in again.title]
    assert "CODE-123" in [c.value for c in again.code] and token_of(again) == token
    at.query_params.clear()
    at.query_params["PROLIFIC_PID"] = "P-2"  # another participant's link on the same tab
    at.run()
    assert len(at.checkbox) == 1 and not at.get("progress")
    assert n_raters(app_env) == 1 and len(store.export_votes(app_env)) == 5 * len(bundle.questions)


def test_question_answered_in_another_tab(app_env, bundle):
    """Tab B still shows question 1 when tab A submits it. B's next click shows question 2 with a notice and
    fresh widgets: the choices made on question 1 in B are not recorded, nor carried to question 2."""
    a = start()
    token = token_of(a)
    b = run({"t": token})
    q1 = qkey(b)
    assert qkey(a) == q1
    for crit in list(CRITERIA_TEXT)[:4]:
        b.radio(key=f"r_{q1}_{crit}").set_value("Right")
    b.run()
    answer_and_submit(a, "Left")
    q2 = qkey(a)
    assert q2 != q1 and q2.split("_")[0] != q1.split("_")[0]
    first = store.export_votes(app_env)
    assert list(first["choice"]) == ["left"] * 5

    b.radio(key=f"r_{q1}_overall").set_value("Right").run()  # B's click on question 1's widgets
    assert shown(b).startswith("Question 2 of") and qkey(b) == q2
    assert [i.value for i in b.info] == [ANSWERED_ELSEWHERE]
    assert all(r.value is None for r in b.radio), "a choice carried over to the next question"
    assert b.button(key=f"submit_{q2}").disabled
    assert store.export_votes(app_env).equals(first)
    # the notice stays while question 2 is shown (no layout jump under the rater's finger), then goes
    b.radio(key=f"r_{q2}_appearance").set_value("Right").run()
    assert [i.value for i in b.info] == [ANSWERED_ELSEWHERE]
    answer_and_submit(b, "Right")
    assert shown(b).startswith("Question 3 of") and not b.info
    votes = store.export_votes(app_env)
    assert list(votes["choice"]) == ["left"] * 5 + ["right"] * 5 and votes["position"].tolist() == ["0"] * 5 + ["1"] * 5

    # a full set of choices submitted from a stale tab after the question was answered elsewhere: not recorded
    c = run({"t": token})
    q3 = qkey(c)
    for crit in CRITERIA_TEXT:
        c.radio(key=f"r_{q3}_{crit}").set_value("Left")
    c.run()
    answer_and_submit(b, "Right")  # question 3 answered in tab B
    c.button(key=f"submit_{q3}").click().run()
    assert shown(c).startswith("Question 4 of") and [i.value for i in c.info] == [ANSWERED_ELSEWHERE]
    votes = store.export_votes(app_env)
    assert len(votes) == 15 and list(votes["choice"][10:]) == ["right"] * 5


def test_widget_keys_name_no_question(app_env, bundle):
    """Keys are written into the page's class names: they carry a digest, never a question id or method."""
    at = start()
    keys = [w.key for w in list(at.radio) + list(at.button)]
    words = {q.question_id for q in bundle.questions} | {m for q in bundle.questions for m in (q.method_a, q.method_b)}
    assert keys and not [k for k in keys for w in words if w in k]


def test_personal_link_on_the_question_page(app_env):
    at = run()
    assert "personal link" in " ".join(m.value for m in at.markdown)  # the consent page says where it is
    at.checkbox(key="consent").check().run()
    at.button(key="start").click().run()
    token = token_of(at)
    assert [c.value for c in at.code] == [f"?t={token}"]  # AppTest has no browser URL: the link's query
    assert any("continue later" in c.value for c in at.caption)
    answer_and_submit(at)
    assert [c.value for c in at.code] == [f"?t={token}"]


@pytest.fixture()
def labelled_bundle(study_inputs, tmp_path):
    """The test study built with method labels in its design (`methods:` of the design file); built, since a
    bundle.json edited by hand is refused."""
    from userstudy.design import design_from_dict
    from userstudy.survey import build_bundle

    arts, prompts_dir, _ = study_inputs
    design = design_from_dict({**STUDY, "methods": {"4dfy": {"label": "4D-fy"}, "mav3d": {"label": "MAV3D"},
                                                    "wo_3d": "w/o L_3D"}})
    return build_bundle(design, [arts], tmp_path / "labelled", prompts_dir=prompts_dir)


def test_admin_tally_labels_rounding_and_exclusion(app_env, labelled_bundle, tmp_path, monkeypatch):
    """The admin table uses the design's labels, one decimal, and leaves out the raters `fourdfy analyze`
    excludes by default, so its percentages are analyze's."""
    b = labelled_bundle
    db = f"sqlite:///{tmp_path / 'admin.sqlite'}"
    monkeypatch.setenv("FOURDFY_SURVEY_BUNDLE", str(b.root))
    monkeypatch.setenv("FOURDFY_SURVEY_DB", db)
    monkeypatch.setenv("FOURDFY_SURVEY_ADMIN_PASSWORD", "pw")
    engine = store.make_engine(db)
    store.init_db(engine, b.bundle_id)
    for k in range(4):
        r = store.create_rater(engine, b.questions, t_at(0), seed=k)
        def side_for(q, primary_side, k=k):
            other_side = "right" if primary_side == "left" else "left"
            if q.is_attention_check:  # rater 3 fails the check (and is excluded by analyze's default rule)
                return other_side if k == 3 else primary_side
            if q.method_b == "mav3d":  # raters 0 and 3 prefer MAV3D: 2 of 3 kept raters for 4D-fy
                return other_side if k in (0, 3) else primary_side
            return primary_side

        answer_all(engine, b, r, side_for, now=t_at(1), seconds=2)

    at = run({"view": "admin"})
    at.text_input(key="admin_password").input("pw")
    at.button(key="admin_login").click().run()
    table = at.dataframe[0].value
    assert list(table.columns) == ["Comparison", "Criterion", "Judgments", "For 4D-fy", "% for 4D-fy"]
    mav = table[table["Comparison"] == "4D-fy vs MAV3D"]
    assert list(mav["Criterion"]) == [t for t, _ in CRITERIA_TEXT.values()]
    assert list(mav["Judgments"]) == [9] * 5 and list(mav["% for 4D-fy"]) == [66.7] * 5  # not 50.0 (all raters)
    assert set(table["Comparison"]) == {"4D-fy vs MAV3D", "4D-fy vs w/o L_3D"}
    assert any("1 rater(s)" in c.value and "excludes" in c.value for c in at.caption)
    failures = at.dataframe[1].value
    assert list(failures["Rater"]) == ["rater-00004"] and list(failures["Excluded"]) == [True]

    # the same numbers as `fourdfy analyze` with its defaults
    votes = tmp_path / "votes.csv"
    res = CliRunner().invoke(cli, ["survey", "export", "--db", db, "--out", str(votes)])
    assert res.exit_code == 0, res.output
    design = tmp_path / "design.json"
    design.write_text(json.dumps(json.loads((b.root / "bundle.json").read_text())["design"]))
    res = CliRunner().invoke(cli, ["analyze", "--votes", str(votes), "--design", str(design), "--out",
                                   str(tmp_path / "report"), "--n-boot", "200"])
    assert res.exit_code == 0, res.output
    report = pd.read_csv(tmp_path / "report" / "table.csv")
    got = report[report["comparison"] == "mav3d"]["pct_primary"].round(1).tolist()
    assert got == [66.7] * 5


def test_admin_wrong_password_then_enter(app_env, monkeypatch):
    """The password field is in a form (Enter submits it in a browser): a wrong one is refused and shows nothing."""
    monkeypatch.setenv("FOURDFY_SURVEY_ADMIN_PASSWORD", "pw")
    at = run({"view": "admin"})
    at.text_input(key="admin_password").input("nope")
    at.button(key="admin_login").click().run()
    assert "Wrong password." in [e.value for e in at.error] and not at.metric
    at.text_input(key="admin_password").input("pw")
    at.button(key="admin_login").click().run()
    assert {m.label for m in at.metric} >= {"Raters started", "Judgments"}
    assert at.caption and at.dataframe[0].value.empty
