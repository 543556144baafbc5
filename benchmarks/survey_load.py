"""Load and faults of the survey store: N concurrent raters (one thread each, in a worker process)
answering through `userstudy.survey.store` (the app's own code path) on SQLite and on PostgreSQL
(a real server from pgserver), without faults and with a kill -9 in the middle:

- sqlite / writer: the process that writes is killed, a new one resumes every rater by token;
- postgresql / server: the PostgreSQL postmaster is killed, restarted after a pause; raters retry;
- postgresql / writer: as for SQLite.

Reports answers (questions) per second, judgments per second, p50/p95 commit latency of
`submit_answer`, and the check that no acknowledged answer was lost or duplicated and every rater
finished. Ratios are against SQLite without faults in the same run.

    .venv/bin/python benchmarks/survey_load.py --raters 100 --questions 10
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from userstudy.survey.loadtest import restart_pgserver, run_scenario


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raters", type=int, default=100)
    p.add_argument("--questions", type=int, default=10)
    p.add_argument("--kill-at", type=float, default=0.4, help="fraction of answers acknowledged before the kill")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    a = p.parse_args()

    import pgserver

    rows = []
    with tempfile.TemporaryDirectory(prefix="survey_load_") as tmp:
        tmp = Path(tmp)
        server = pgserver.get_server(str(tmp / "pgdata"), cleanup_mode="stop")
        try:
            runs = [("sqlite", "none"), ("sqlite", "writer"), ("postgresql", "none"), ("postgresql", "writer"),
                    ("postgresql", "server")]
            for i, (backend, kill) in enumerate(runs):
                if backend == "sqlite":
                    db = f"sqlite:///{tmp / f'run{i}.sqlite'}"
                else:
                    server.psql(f"CREATE DATABASE run{i};")
                    db = "postgresql+psycopg://" + server.get_uri(f"run{i}").split("://", 1)[1]
                r = run_scenario(db, tmp / f"run{i}", n_raters=a.raters, n_questions=a.questions, kill=kill,
                                 kill_at=a.kill_at, server_pid=server.get_pid,
                                 restart_server=lambda: restart_pgserver(server), down_s=1.0)
                rows.append({"backend": backend, "kill": kill, **r})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            server.cleanup()

    base = rows[0]["worker_questions_per_s"]
    print(f"\n{a.raters} raters x {a.questions} questions (x5 judgments), 2-core machine\n")
    print("| backend | kill -9 | ok | lost | duplicated | acknowledged before kill | answers/s (worker) | "
          "vs sqlite | judgments/s | p50 commit ms | p95 commit ms | retries | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['kill']} | {r['ok']} | {r['lost']} | {r['duplicated']} | "
              f"{r['fault']['acknowledged_before_kill'] or '-'} | {r['worker_questions_per_s']} | "
              f"{r['worker_questions_per_s'] / base:.2f} | {r['judgments_per_s']} | {r['commit_p50_ms']} | "
              f"{r['commit_p95_ms']} | {r['retries']} | {r['wall_s']} |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    if not all(r["ok"] for r in rows):
        raise SystemExit("FAILED: answers lost, duplicated or raters unfinished (see the rows above)")


if __name__ == "__main__":
    main()
