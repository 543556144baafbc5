"""Fixtures of the survey tests: tiny H.264 artifacts, a design and prompt files, bundles, SQLite and a
real PostgreSQL server (pgserver), and a live `streamlit run` server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from prompts import slugify
from userstudy.design import design_from_dict

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


@pytest.fixture(scope="session")
def study_design():
    return design_from_dict(STUDY)


@pytest.fixture(scope="session")
def study_inputs(tmp_path_factory):
    """(artifacts root, prompts dir, design) for 3 mav3d + 1 wo_3d questions and 1 attention check."""
    root = tmp_path_factory.mktemp("study")
    prompts_dir = root / "prompts"
    prompts_dir.mkdir()
    (prompts_dir / "set3.txt").write_text("\n".join(PROMPTS.values()) + "\n", encoding="utf-8")
    (prompts_dir / "set1.txt").write_text("# one prompt\nA panda dancing.\n", encoding="utf-8")
    arts = root / "artifacts"
    seed = 0
    for method in ("4dfy", "mav3d"):
        for slug, text in PROMPTS.items():
            seed += 1
            write_artifact(arts, method, slug, text, seed)
    write_artifact(arts, "wo_3d", "a_panda_dancing", PROMPTS["a_panda_dancing"], 50)
    write_artifact(arts, "attention_decoy", "a_goat_drinking_beer", PROMPTS["a_goat_drinking_beer"], 60)
    return arts, prompts_dir, design_from_dict(STUDY)


@pytest.fixture(scope="session")
def bundle(study_inputs, tmp_path_factory):
    from userstudy.survey import build_bundle

    arts, prompts_dir, design = study_inputs
    return build_bundle(design, [arts], tmp_path_factory.mktemp("b") / "bundle", prompts_dir=prompts_dir)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real PostgreSQL server from PyPI's pgserver (skipped with the reason when it cannot start)."""
    with pg_data_dir() as pgdata:
        server = start_pgserver(pgdata)
        yield server
        stop_pgserver_now(server)


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


_DB_COUNTER = iter(range(10**6))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'survey.sqlite'}"
    server = request.getfixturevalue("pg_server")
    name = f"t{os.getpid()}_{next(_DB_COUNTER)}"
    server.psql(f"CREATE DATABASE {name};")
    uri = server.get_uri(name)
    return "postgresql+psycopg://" + uri.split("://", 1)[1]


def at(seconds: float) -> datetime:
    """A fixed test clock."""
    return T0 + timedelta(seconds=seconds)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def live_server(bundle, tmp_path):
    """`streamlit run` on the app, on a free localhost port, with a SQLite database; yields (url, db url)."""
    import urllib.request

    port = free_port()
    db = f"sqlite:///{tmp_path / 'live.sqlite'}"
    env = {**os.environ, "FOURDFY_SURVEY_BUNDLE": str(bundle.root), "FOURDFY_SURVEY_DB": db,
           "FOURDFY_SURVEY_COMPLETION_CODE": "C0DE-42"}
    env.pop("FOURDFY_SURVEY_ADMIN_PASSWORD", None)
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--client.showErrorDetails", "none"]
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("streamlit did not start:\n" + (tmp_path / "streamlit.log").read_text())
        time.sleep(0.3)
    yield url, db
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
