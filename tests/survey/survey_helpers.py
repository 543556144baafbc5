"""Helpers of the survey tests (a uniquely named module: `from conftest import ...` resolves to whichever
tests/*/conftest.py was imported first when several test folders run together)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from prompts import slugify


REPO = Path(__file__).resolve().parents[2]
APP = REPO / "userstudy" / "survey" / "app.py"
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


# Prompts of the test study: one with SQL-injection payloads and non-ASCII text, stored verbatim.
_TEXTS = ("A panda dancing.", "A goat drinking beer.",
          "Robert'); DROP TABLE answers;-- café 🐼 \"ünï\" \\ %s ${x} <script>alert(1)</script>")
PROMPTS = {slugify(t): t for t in _TEXTS}


def write_video(path: Path, seed: int, n_frames: int = 16, size: int = 32, fps: int = 8) -> None:
    """A tiny H.264 yuv420p mp4 (moving colour gradient) that Chromium can play."""
    import av

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=3)
    yy, xx = np.mgrid[0:size, 0:size]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for k in range(n_frames):
            img = np.stack([(xx * 8 + k * 16 + base[0]) % 256, (yy * 8 + base[1]) % 256,
                            np.full_like(xx, (base[2] + k * 8) % 256)], axis=-1).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def write_artifact(root: Path, method: str, slug: str, prompt: str, seed: int, **overrides) -> Path:
    """`<root>/<method>/<slug>/{video.mp4, manifest.json}` as the evaluation contract describes."""
    folder = root / method / slug
    write_video(folder / "video.mp4", seed)
    manifest = {"method": method, "prompt": prompt, "slug": slug, "source": "test", "trajectory": "orbit",
                "n_frames": 16, "height": 32, "width": 32, "fps": 8}
    manifest.update(overrides)
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return folder


STUDY = {"name": "test", "primary": "4dfy",
         "tables": {"t": {"sections": [{"prompt_set": "set3", "rows": ["4dfy", "mav3d"]},
                                       {"prompt_set": "set1", "rows": ["4dfy", "wo_3d"]}]}},
         "attention_check": {"correct_method": "4dfy", "decoys": ["attention_decoy"]}}


@contextmanager
def pg_data_dir():
    """A data folder for pgserver outside pytest's temporary tree: run as root, pgserver's server runs
    as another user that must traverse the path, and every new pytest session (any user of the
    machine) makes /tmp/pytest-of-<user> private again, which would break a server restart."""
    path = Path(tempfile.mkdtemp(prefix="fourdfy-survey-pg-"))
    try:
        yield path / "pgdata"
    finally:
        shutil.rmtree(path, ignore_errors=True)


def stop_pgserver_now(server) -> None:
    """Immediate shutdown (SIGQUIT): the data folder is deleted next, so the shutdown checkpoint a
    normal stop writes (tens of seconds on a busy disk) is wasted time."""
    from userstudy.survey.loadtest import wait_gone

    pid = server.get_pid()
    try:
        os.kill(pid, signal.SIGQUIT)
    except ProcessLookupError:
        return
    wait_gone(pid)


def start_pgserver(pgdata: Path):
    """A running pgserver, or a skip with the reason when PostgreSQL cannot start here."""
    try:
        import pgserver

        return pgserver.get_server(str(pgdata), cleanup_mode="stop")
    except Exception as err:  # pragma: no cover - depends on the machine
        pytest.skip(f"pgserver cannot start a PostgreSQL server here: {err}")


def at(seconds: float) -> datetime:
    """A fixed test clock."""
    return T0 + timedelta(seconds=seconds)


def answer_all(engine, bundle, rater, side_for, now: datetime, seconds: float = 3) -> None:
    """Answer every question left to `rater` through the store, all five criteria on the side
    `side_for(question, primary_side)` names (`primary_side`: where the question's method_a, the primary, is shown)."""
    from userstudy.survey import store
    from userstudy.votes import CRITERIA

    while (item := store.next_assignment(engine, rater)[0]) is not None:
        q = bundle.by_id[item.question_id]
        side = side_for(q, "left" if item.method_left == q.method_a else "right")
        store.submit_answer(engine, rater, q, dict.fromkeys(CRITERIA, side), seconds=seconds, now=now)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def partial_artifacts(arts: Path, dest: Path) -> Path:
    """A copy of the study's artifacts without one mav3d video and without the attention decoy."""
    shutil.copytree(arts, dest)
    shutil.rmtree(dest / "mav3d" / "a_panda_dancing")
    shutil.rmtree(dest / "attention_decoy")
    return dest


# --- the app under streamlit.testing.v1.AppTest -------------------------------------------------------------------

def app_run(query=None):
    """The survey app run once by AppTest, with `query` as the link's query parameters."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=30)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def app_token(at) -> str:
    """The rater token on the app's link (`?t=`)."""
    t = at.query_params["t"]
    return t[0] if isinstance(t, list) else t


def app_start(query=None):
    """A new rater: the consent page (Start disabled until consent), consent, Start."""
    at = app_run(query)
    assert at.button(key="start").disabled  # consent first
    at.checkbox(key="consent").check().run()
    at.button(key="start").click().run()
    return at


def one_error_line(res) -> str:
    """The one error line of a refused CLI command (no traceback, nothing else printed)."""
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return lines[0]


def answer_two_questions(db: Path, bundle):
    """A SQLite survey database at `db` holding one rater's answers to two questions of `bundle`; returns its engine,
    still open (as a running server's: the answers may sit in the WAL file too)."""
    from userstudy.survey import store
    from userstudy.votes import CRITERIA

    engine = store.make_engine(f"sqlite:///{db}")
    store.init_db(engine, bundle.bundle_id)
    r = store.create_rater(engine, bundle.questions, at(0), seed=3)
    for _ in range(2):
        item = store.next_assignment(engine, r)[0]
        store.submit_answer(engine, r, bundle.by_id[item.question_id], dict.fromkeys(CRITERIA, "left"), seconds=2,
                            now=at(1))
    return engine
