"""Many raters at once through the store's own functions (the code path of the app), with faults.

A worker process (`python -m userstudy.survey.loadtest ...`) runs one thread per rater: create the
rater (or resume one by token), then answer question after question with `store.submit_answer`,
retrying while the database is unreachable (a submit is idempotent, so a retry never duplicates).
Each acknowledged commit is appended to a log (`A <token> <question_id>`) only after
`submit_answer` returned, so after a kill -9 the log lists answers the database must hold.
`verify` checks the database against the log: every acknowledged answer present, no rater with a
question answered twice, every logged rater complete.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from userstudy.survey import store
from userstudy.survey.bundle import Question
from userstudy.survey.store import CRITERIA, SIDES

BUNDLE_ID = "loadtest"


def synthetic_questions(n: int) -> tuple[Question, ...]:
    """n questions (every 10th an attention check) with made-up video names: the store never opens them."""
    return tuple(Question(question_id=f"q{i:03d}", prompt_id=f"prompt_{i:03d}", prompt=f"Prompt {i} ü'\";--",
                          method_a="4dfy", method_b="attention_decoy" if i % 10 == 9 else "mav3d",
                          video_a=f"a{i}.mp4", video_b=f"b{i}.mp4", is_attention_check=i % 10 == 9)
                 for i in range(n))


@dataclass(frozen=True)
class WorkerConfig:
    """One worker process of the load run."""

    db: str
    """Database URL."""
    n_questions: int
    """Questions per rater (synthetic, see `synthetic_questions`)."""
    n_raters: int
    """New raters to start (ignored with `resume_tokens`)."""
    seed: int
    """Seed of the simulated choices and rater seeds."""
    log: Path
    """Append-only log of created raters and acknowledged answers."""
    retry_s: float = 120.0
    """Give up when the database stays unreachable this long."""
    think_s: float = 0.0
    """Pause between a rater's questions (0 = as fast as possible)."""


class _Log:
    def __init__(self, path: Path):
        self._f = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, *fields: str) -> None:
        # write() reaches the kernel before it returns: a kill -9 of this process cannot lose the line
        with self._lock:
            self._f.write(" ".join(fields) + "\n")
            self._f.flush()


def _retry(fn, deadline_s: float, stats: dict):
    start = time.monotonic()
    while True:
        try:
            return fn()
        except sa.exc.DBAPIError as err:  # server down or restarting, pool connections gone, lock timeouts
            if time.monotonic() - start > deadline_s:
                raise
            stats["retries"] += 1
            stats["last_error"] = type(err.orig).__name__ if err.orig is not None else type(err).__name__
            time.sleep(0.2)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def run_worker(cfg: WorkerConfig, resume_tokens: list[str] | None = None) -> dict:
    """Run the raters in threads; returns counts and the latencies (s) of every submit that stored."""
    questions = synthetic_questions(cfg.n_questions)
    by_id = {q.question_id: q for q in questions}
    engine = store.make_engine(cfg.db)
    stats = {"retries": 0, "last_error": "", "stored": 0, "already": 0, "latencies": [], "errors": []}
    _retry(lambda: store.init_db(engine, BUNDLE_ID), cfg.retry_s, stats)
    log = _Log(cfg.log)
    lock = threading.Lock()
    master = random.Random(cfg.seed)
    # resume the logged raters; raters the killed run had not created yet start now
    resume = list(resume_tokens or [])
    jobs = resume + [None] * max(0, cfg.n_raters - len(resume))
    seeds = [master.getrandbits(62) for _ in jobs]

    def rater(token: str | None, seed: int) -> None:
        rng = random.Random(seed)
        try:
            if token is None:
                r = _retry(lambda: store.create_rater(engine, questions, _now(), seed=seed), cfg.retry_s, stats)
                log.write("R", r.token)
            else:
                r = _retry(lambda: store.get_rater(engine, token), cfg.retry_s, stats)
                if r is None:
                    raise RuntimeError(f"token {token} not found")
            while True:
                item = _retry(lambda: store.next_assignment(engine, r), cfg.retry_s, stats)[0]
                if item is None:
                    return
                choices = {c: rng.choice(SIDES) for c in CRITERIA}
                t0 = time.perf_counter()
                stored = _retry(lambda: store.submit_answer(engine, r, by_id[item.question_id], choices,
                                                            seconds=1.0, now=_now()), cfg.retry_s, stats)
                dt = time.perf_counter() - t0
                log.write("A", r.token, item.question_id)
                with lock:
                    stats["stored" if stored else "already"] += 1
                    if stored:
                        stats["latencies"].append(dt)
                if cfg.think_s:
                    time.sleep(rng.uniform(0, 2 * cfg.think_s))
        except Exception as err:  # reported, and the run fails in verify
            with lock:
                stats["errors"].append(f"{type(err).__name__}: {err}")

    threads = [threading.Thread(target=rater, args=(t, s), daemon=True) for t, s in zip(jobs, seeds)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats["wall_s"] = time.perf_counter() - t0
    engine.dispose()
    return stats


def read_log(path: Path) -> tuple[list[str], set[tuple[str, str]]]:
    """(rater tokens in creation order, acknowledged (token, question id) pairs)."""
    tokens, acked = [], set()
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split(" ")
            if parts[0] == "R" and len(parts) == 2:
                tokens.append(parts[1])
            elif parts[0] == "A" and len(parts) == 3:
                acked.add((parts[1], parts[2]))
    return tokens, acked


def verify(db: str, log: Path, n_questions: int, n_raters: int) -> dict:
    """Compare the database with the log; `ok` is True when nothing was lost or duplicated and every
    logged rater finished."""
    tokens, acked = read_log(log)
    engine = store.make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.raters.c.token, store.answers.c.question_id, store.answers.c.criterion)
                            .join(store.answers, store.answers.c.rater_id == store.raters.c.id)).all()
        completed = set(conn.execute(sa.select(store.raters.c.token)
                                     .where(store.raters.c.completed_at.is_not(None))).scalars())
    engine.dispose()
    per_sub = {}
    for token, qid, crit in rows:
        per_sub[(token, qid, crit)] = per_sub.get((token, qid, crit), 0) + 1
    questions = {}
    for token, qid, _ in rows:
        questions.setdefault((token, qid), 0)
        questions[(token, qid)] += 1
    lost = sorted(acked - set(questions))
    duplicated = sorted(k for k, v in per_sub.items() if v > 1)
    partial = sorted(k for k, v in questions.items() if v != len(CRITERIA))
    unfinished = sorted(set(tokens) - completed)
    expected = n_raters * n_questions * len(CRITERIA)
    answered = sum(1 for t, _ in questions if t in set(tokens)) * len(CRITERIA)
    return {"raters_logged": len(tokens), "acknowledged": len(acked), "judgments": len(rows),
            "judgments_expected": expected, "lost": len(lost), "duplicated": len(duplicated),
            "partial_questions": len(partial), "unfinished_raters": len(unfinished),
            "ok": not lost and not duplicated and not partial and not unfinished and len(tokens) == n_raters
                  and answered == expected and len(rows) == expected}


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def _count_acks(log: Path) -> int:
    try:
        with open(log, "rb") as f:
            return sum(1 for line in f if line.startswith(b"A "))
    except FileNotFoundError:
        return 0


def wait_gone(pid: int, timeout_s: float = 30.0) -> None:
    """Return once process `pid` has exited (or after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def run_scenario(db: str, workdir: Path, *, n_raters: int, n_questions: int, seed: int = 0, kill: str = "none",
                 kill_at: float = 0.4, server_pid=None, restart_server=None, down_s: float = 1.0,
                 think_s: float = 0.0, timeout_s: float = 600.0) -> dict:
    """One load run in worker processes. `kill`: "none"; "writer" (kill -9 the worker once `kill_at` of
    the answers are acknowledged, then start a worker that resumes its raters by token); "server"
    (kill -9 the database server's process `server_pid()`, wait `down_s`, `restart_server()`; the
    worker keeps retrying). Returns throughput, commit latencies and the `verify` report."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "acks.log"
    log.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "userstudy.survey.loadtest", "--db", db, "--questions", str(n_questions),
           "--raters", str(n_raters), "--seed", str(seed), "--log", str(log), "--think", str(think_s)]
    total = n_raters * n_questions
    fault = {"kind": kill, "acknowledged_before_kill": None, "down_s": None}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill != "none":
        while proc.poll() is None and _count_acks(log) < kill_at * total:
            time.sleep(0.02)
        if proc.poll() is None:
            if kill == "writer":
                proc.kill()  # SIGKILL: no cleanup, no rollback handlers
                proc.wait()
                fault["acknowledged_before_kill"] = _count_acks(log)
                proc = subprocess.Popen(cmd + ["--resume"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            elif kill == "server":
                pid = server_pid()
                t_kill = time.perf_counter()
                os.kill(pid, signal.SIGKILL)
                fault["acknowledged_before_kill"] = _count_acks(log)
                wait_gone(pid)
                time.sleep(down_s)
                restart_server()
                fault["down_s"] = round(time.perf_counter() - t_kill, 2)
            else:
                raise ValueError(f"kill must be none, writer or server, not {kill!r}")
    out, err = proc.communicate(timeout=timeout_s)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"load worker failed ({proc.returncode}):\n{err[-3000:]}")
    stats = json.loads(out)
    report = verify(db, log, n_questions, n_raters)
    lat = stats.pop("latencies")
    return {**report, "fault": fault, "wall_s": round(wall, 2), "worker_errors": stats["errors"],
            "retries": stats["retries"], "questions_per_s": round(total / wall, 1),
            "worker_wall_s": round(stats["wall_s"], 2),
            "worker_questions_per_s": round((stats["stored"] + stats["already"]) / stats["wall_s"], 1),
            "judgments_per_s": round(total * len(CRITERIA) / wall, 1),
            "commit_p50_ms": round(1000 * percentile(lat, 50), 1), "commit_p95_ms": round(1000 * percentile(lat, 95), 1),
            "commits_timed": len(lat)}


def restart_pgserver(server, timeout_s: float = 90.0) -> None:
    """Start a pgserver `PostgresServer` again on its data folder after its postmaster was killed (the
    killed server's backends may hold its shared memory for a moment, and crash recovery takes time
    on a busy machine: retry until `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            server.ensure_postgres_running()
            return
        except Exception as err:
            if time.monotonic() > deadline:
                log = Path(server.pgdata) / "log"
                tail = log.read_text(errors="replace").splitlines()[-15:] if log.is_file() else []
                raise RuntimeError(f"PostgreSQL did not restart: {err}\n" + "\n".join(tail)) from err
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--questions", type=int, default=10)
    p.add_argument("--raters", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", type=Path, required=True)
    p.add_argument("--resume", action="store_true", help="continue the raters of --log instead of new ones")
    p.add_argument("--think", type=float, default=0.0)
    a = p.parse_args(argv)
    cfg = WorkerConfig(db=a.db, n_questions=a.questions, n_raters=a.raters, seed=a.seed, log=a.log, think_s=a.think)
    tokens = read_log(a.log)[0] if a.resume else None
    stats = run_worker(cfg, resume_tokens=tokens)
    json.dump(stats, sys.stdout)


if __name__ == "__main__":
    main()
