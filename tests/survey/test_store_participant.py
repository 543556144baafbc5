"""One crowd participant is one rater: `rater_for_participant` finds or creates the rater of a platform id in one
transaction, so that two Start clicks at once (two tabs, a resent request) never make two, on SQLite and on a real
PostgreSQL server."""

import threading

import pytest
import sqlalchemy as sa
from survey_helpers import at

from userstudy.survey import store

N_THREADS = 6


def _raters_of(engine, external_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(store.raters.c.id).where(store.raters.c.external_id == external_id)).all()


@pytest.mark.parametrize("attempt", range(3))
def test_simultaneous_starts_of_one_participant_make_one_rater(engine, bundle, attempt):
    barrier = threading.Barrier(N_THREADS)
    got, errors = [], []

    def start():
        try:
            barrier.wait()
            got.append(store.rater_for_participant(engine, bundle.questions, at(0), "P1"))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=start) for _ in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(_raters_of(engine, "P1")) == 1
    assert len({r.token for r in got}) == 1 and len(got) == N_THREADS
    items, _ = store.progress(engine, got[0])
    assert len(items) == len(bundle.questions)  # the rater's assignments, once


def test_a_participant_continues_and_no_id_starts_a_new_rater(engine, bundle):
    first = store.rater_for_participant(engine, bundle.questions, at(0), "P2", seed=5)
    assert first.external_id == "P2" and first.seed == 5
    assert store.rater_for_participant(engine, bundle.questions, at(1), "P2") == first
    assert store.rater_for_external_id(engine, "P2") == first
    anonymous = {store.rater_for_participant(engine, bundle.questions, at(0), "").token for _ in range(3)}
    assert len(anonymous) == 3 and first.token not in anonymous
