"""The store on SQLite and on a real PostgreSQL server: raters, seeded layouts, idempotent submits,
isolation, verbatim text, schema version, export in the votes format (round trip through the reader)."""

import threading
from collections import Counter

import pytest
import sqlalchemy as sa
from survey_helpers import PROMPTS, at

from userstudy.survey import store
from userstudy.survey.store import StoreError
from userstudy.votes import CRITERIA, validate_votes

ALL_LEFT = dict.fromkeys(CRITERIA, "left")
INJECTION = "x'); DROP TABLE answers; -- \" OR 1=1 ; SELECT pg_sleep(5); ü 🐼 \\ %s %(x)s"


def test_sqlite_uses_wal(tmp_path, bundle):
    e = store.make_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    store.init_db(e, bundle.bundle_id)
    with e.connect() as conn:
        mode = conn.execute(sa.text("PRAGMA journal_mode")).scalar()
    assert mode == "wal"


def test_layout_is_seeded_per_rater(engine, bundle):
    ids = [q.question_id for q in bundle.questions]
    a = store.draw_layout(ids, 1)
    assert a == store.draw_layout(ids, 1)
    layouts = {tuple(store.draw_layout(ids, s)) for s in range(30)}
    assert len(layouts) > 20  # orders and sides differ between raters
    for s in range(30):
        lay = store.draw_layout(ids, s)
        assert sorted(q for q, _ in lay) == sorted(ids)
        # balanced sides for every rater, to within the odd question (5 questions here: 2 or 3 swapped)
        assert sum(sw for _, sw in lay) in (len(ids) // 2, (len(ids) + 1) // 2)
    r = store.create_rater(engine, bundle.questions, at(0), seed=1)
    items, done = store.progress(engine, r)
    assert done == set()
    by_id = bundle.by_id
    for item, (qid, swapped) in zip(items, a):
        q = by_id[qid]
        assert item.question_id == qid
        assert (item.method_left, item.method_right) == ((q.method_b, q.method_a) if swapped else (q.method_a, q.method_b))


def test_tokens_are_unguessable_and_distinct(engine, bundle):
    raters = [store.create_rater(engine, bundle.questions, at(0)) for _ in range(20)]
    tokens = {r.token for r in raters}
    assert len(tokens) == 20 and all(len(t) >= 32 for t in tokens)
    assert len({r.seed for r in raters}) == 20
    assert store.get_rater(engine, raters[0].token).id == raters[0].id
    for probe in ("", "1", str(raters[0].id), "' OR '1'='1", raters[0].token[:-1], INJECTION):
        assert store.get_rater(engine, probe) is None


def test_submit_is_idempotent_and_completes(engine, bundle):
    r = store.create_rater(engine, bundle.questions, at(0), seed=3)
    by_id = bundle.by_id
    item, n_done, n_all = store.next_assignment(engine, r)
    assert (n_done, n_all) == (0, len(bundle.questions))
    q = by_id[item.question_id]
    assert store.submit_answer(engine, r, q, ALL_LEFT, seconds=4.5, now=at(5)) is True
    # double click / resent message with other choices: the first answer stays
    assert store.submit_answer(engine, r, q, dict.fromkeys(CRITERIA, "right"), seconds=9, now=at(9)) is False
    votes = store.export_votes(engine)
    assert len(votes) == 5 and set(votes["choice"]) == {"left"} and set(votes["seconds"]) == {"4.500"}
    assert store.next_assignment(engine, r)[1] == 1
    # concurrent duplicates of the next question from several threads: stored once
    item2 = store.next_assignment(engine, r)[0]
    results = []
    threads = [threading.Thread(target=lambda: results.append(store.submit_answer(
        engine, r, by_id[item2.question_id], ALL_LEFT, seconds=1, now=at(7)))) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == [False] * 5 + [True]
    while (item := store.next_assignment(engine, r)[0]) is not None:
        store.submit_answer(engine, r, by_id[item.question_id], ALL_LEFT, seconds=1, now=at(10))
    assert store.get_rater(engine, r.token).completed
    assert len(store.export_votes(engine)) == 5 * len(bundle.questions)


def test_bad_submissions_refused(engine, bundle):
    r = store.create_rater(engine, bundle.questions, at(0), seed=4)
    q = bundle.questions[0]
    with pytest.raises(StoreError, match="all five"):
        store.submit_answer(engine, r, q, {"appearance": "left"}, seconds=1, now=at(1))
    with pytest.raises(StoreError, match="left or right"):
        store.submit_answer(engine, r, q, {**ALL_LEFT, "motion": "none"}, seconds=1, now=at(1))
    # a rater cannot write into another rater's assignments: a forged Rater with an unknown id
    ghost = store.Rater(id=10_000, token="x", seed=0, external_id="", completed=False)
    with pytest.raises(StoreError, match="not assigned"):
        store.submit_answer(engine, ghost, q, ALL_LEFT, seconds=1, now=at(1))
    assert store.export_votes(engine).empty


def test_raters_are_isolated(engine, bundle):
    a = store.create_rater(engine, bundle.questions, at(0), seed=5)
    b = store.create_rater(engine, bundle.questions, at(0), seed=6)
    qa = bundle.by_id[store.next_assignment(engine, a)[0].question_id]
    store.submit_answer(engine, a, qa, ALL_LEFT, seconds=1, now=at(1))
    assert store.progress(engine, b)[1] == set()
    assert store.next_assignment(engine, b)[1] == 0
    votes = store.export_votes(engine)
    assert set(votes["rater_id"]) == {f"rater-{a.id:05d}"}


def test_text_stored_verbatim(engine, bundle):
    r = store.create_rater(engine, bundle.questions, at(0), seed=7, external_id=INJECTION)
    by_id = bundle.by_id
    for q in bundle.questions:
        store.submit_answer(engine, r, by_id[q.question_id], ALL_LEFT, seconds=1, now=at(2))
    votes = store.export_votes(engine)
    assert set(votes["external_id"]) == {INJECTION}
    assert set(votes["prompt"]) == {q.prompt for q in bundle.questions} and set(PROMPTS.values()) <= set(votes["prompt"])
    with store.make_engine(str(engine.url.render_as_string(hide_password=False))).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.answers)).scalar_one() == len(votes)


def test_schema_version_and_bundle_binding(engine, bundle, db_url):
    with engine.connect() as conn:
        assert conn.execute(sa.select(store.schema_version.c.version)).scalars().all() == [store.SCHEMA_VERSION]
    store.init_db(engine, bundle.bundle_id)  # idempotent
    with pytest.raises(StoreError, match=f"belongs to bundle {bundle.bundle_id} \\(no answers yet\\), not 0000"):
        store.init_db(engine, "0" * 16)
    r = store.create_rater(engine, bundle.questions, at(0), seed=5)
    store.submit_answer(engine, r, bundle.by_id[store.next_assignment(engine, r)[0].question_id], ALL_LEFT,
                        seconds=1, now=at(1))
    with pytest.raises(StoreError, match=f"holds answers of 1 rater\\(s\\) to bundle {bundle.bundle_id}, not 0000"):
        store.init_db(engine, "0" * 16)
    with engine.begin() as conn:
        conn.execute(sa.update(store.schema_version).values(version=99))
    with pytest.raises(StoreError, match="schema version"):
        store.init_db(engine, bundle.bundle_id)
    with pytest.raises(StoreError, match="schema version"):
        store.open_existing(db_url)


def test_export_round_trip(engine, bundle, study_design):
    by_id = bundle.by_id
    expected = Counter()
    for seed in range(4):
        r = store.create_rater(engine, bundle.questions, at(0), seed=seed)
        items, _ = store.progress(engine, r)
        for k, item in enumerate(items):
            q = by_id[item.question_id]
            choices = {c: ("left" if (seed + k + i) % 3 else "right") for i, c in enumerate(CRITERIA)}
            store.submit_answer(engine, r, q, choices, seconds=k, now=at(k))
            for c, side in choices.items():
                if not q.is_attention_check:
                    method = item.method_left if side == "left" else item.method_right
                    expected[(q.method_b, c)] += method == q.method_a
    frame = store.export_votes(engine)
    votes = validate_votes(frame.astype(str), study_design, source="export")
    f = votes.frame
    assert len(f) == 4 * 5 * len(bundle.questions) and votes.duplicates_merged == 0
    got = f[~f["is_attention_check"]].groupby(["comparison", "criterion"])["chose_primary"].sum()
    assert {k: int(v) for k, v in got.items()} == {k: v for k, v in expected.items()} | {
        k: 0 for k in got.index if k not in expected}
    checks = f[f["is_attention_check"]]
    side_of_correct = (checks["method_left"] == "4dfy").map({True: "left", False: "right"})
    assert (checks["expected_choice"] == side_of_correct).all()


def test_every_text_field_verbatim(db_url):
    """Payloads in every text column (ids, prompt, methods, participant id) come back unchanged."""
    from userstudy.survey.bundle import Question

    texts = [INJECTION + f" #{i}" for i in range(6)]
    q = Question(question_id=texts[0], prompt_id=texts[1], prompt=texts[2], method_a=texts[3], method_b=texts[4],
                 video_a="a.mp4", video_b="b.mp4")
    e = store.make_engine(db_url)
    store.init_db(e, "b'; DROP TABLE study;--")
    r = store.create_rater(e, [q], at(0), seed=0, external_id=texts[5])
    assert store.submit_answer(e, r, q, ALL_LEFT, seconds=2, now=at(1))
    row = store.export_votes(e).iloc[0]
    assert (row["question_id"], row["prompt_id"], row["prompt"], row["external_id"]) == (
        texts[0], texts[1], texts[2], texts[5])
    assert {row["method_left"], row["method_right"]} == {texts[3], texts[4]}
    with e.connect() as conn:
        assert conn.execute(sa.select(store.study.c.bundle_id)).scalar_one() == "b'; DROP TABLE study;--"
    e.dispose()
