"""A small version of the load benchmark: concurrent raters through the store's own functions, with a
kill -9 in the middle (of the writing process on SQLite, of the PostgreSQL server); afterwards every
acknowledged answer is present, nothing is duplicated and every rater finished by resuming."""

from survey_helpers import pg_data_dir, start_pgserver, stop_pgserver_now

from userstudy.survey.loadtest import read_log, restart_pgserver, run_scenario, verify

N_RATERS, N_QUESTIONS = 20, 5


def _check(report):
    assert report["worker_errors"] == []
    assert report["lost"] == 0 and report["duplicated"] == 0 and report["partial_questions"] == 0
    assert report["unfinished_raters"] == 0 and report["raters_logged"] == N_RATERS
    assert report["judgments"] == report["judgments_expected"] == N_RATERS * N_QUESTIONS * 5
    assert report["ok"]


def test_sqlite_writer_killed(tmp_path):
    db = f"sqlite:///{tmp_path / 'load.sqlite'}"
    report = run_scenario(db, tmp_path / "run", n_raters=N_RATERS, n_questions=N_QUESTIONS, kill="writer")
    before = report["fault"]["acknowledged_before_kill"]
    assert before is not None and 0 < before < N_RATERS * N_QUESTIONS  # killed mid-run
    _check(report)


def test_verify_detects_loss(tmp_path):
    """verify() is not vacuous: an acknowledged answer missing from the database is reported."""
    db = f"sqlite:///{tmp_path / 'load.sqlite'}"
    run_scenario(db, tmp_path / "run", n_raters=2, n_questions=2)
    log = tmp_path / "run" / "acks.log"
    tokens, _ = read_log(log)
    with open(log, "a") as f:
        f.write(f"A {tokens[0]} q999\n")
    report = verify(db, log, n_questions=2, n_raters=2)
    assert report["lost"] == 1 and not report["ok"]


def test_postgres_server_killed(tmp_path):
    with pg_data_dir() as pgdata:
        server = start_pgserver(pgdata)
        try:
            server.psql("CREATE DATABASE load;")
            db = "postgresql+psycopg://" + server.get_uri("load").split("://", 1)[1]
            report = run_scenario(db, tmp_path / "run", n_raters=N_RATERS, n_questions=N_QUESTIONS, kill="server",
                                  server_pid=server.get_pid, restart_server=lambda: restart_pgserver(server),
                                  down_s=0.3)
            before = report["fault"]["acknowledged_before_kill"]
            assert before is not None and 0 < before < N_RATERS * N_QUESTIONS
            assert report["retries"] > 0  # the raters really hit the dead server
            _check(report)
        finally:
            stop_pgserver_now(server)
