"""Storage of the survey with SQLAlchemy 2 Core: SQLite by default (WAL, busy timeout), PostgreSQL
by URL. Every function takes an Engine, so the app, the tests and the load benchmark share one code
path. Statements are built with SQLAlchemy expressions only (no SQL from strings).

Tables: `schema_version` (one row), `study` (the bundle this database serves), `raters` (token,
seed, times), `assignments` (each rater's question order and left/right), `answers` (one row per
rater, question and criterion, unique).
"""

from __future__ import annotations

import os
import random
import re
import secrets
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from userstudy.survey.bundle import Question
from userstudy.votes import COLUMNS, CRITERIA, OPTIONAL_COLUMNS

SIDES = ("left", "right")
SCHEMA_VERSION = 1
DB_ENV = "FOURDFY_SURVEY_DB"
BUSY_TIMEOUT_MS = 30_000
DEFAULT_SQLITE = "survey.sqlite"
"""The database file `serve` uses in the bundle folder when no other database is named."""
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
DEFAULT_SOURCE = "the default SQLite file"
"""What `url_source` says when no URL was given anywhere and `serve` uses the bundle's own database."""

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
)

study = sa.Table(
    "study", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("bundle_id", sa.String(64), nullable=False),
)

raters = sa.Table(
    "raters", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("external_id", sa.Text, nullable=False, default=""),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
)

assignments = sa.Table(
    "assignments", metadata,
    sa.Column("rater_id", sa.Integer, sa.ForeignKey("raters.id"), primary_key=True, autoincrement=False),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("question_id", sa.Text, nullable=False),
    sa.Column("method_left", sa.Text, nullable=False),
    sa.Column("method_right", sa.Text, nullable=False),
    sa.UniqueConstraint("rater_id", "question_id", name="uq_assignment"),
)

answers = sa.Table(
    "answers", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rater_id", sa.Integer, sa.ForeignKey("raters.id"), nullable=False),
    sa.Column("question_id", sa.Text, nullable=False),
    sa.Column("criterion", sa.String(16), nullable=False),
    sa.Column("choice", sa.String(8), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("prompt_id", sa.Text, nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("method_left", sa.Text, nullable=False),
    sa.Column("method_right", sa.Text, nullable=False),
    sa.Column("is_attention_check", sa.Boolean, nullable=False),
    sa.Column("expected_choice", sa.String(8), nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("rater_id", "question_id", "criterion", name="uq_answer"),
)


class StoreError(ValueError):
    """Bad input to the store (unknown token, a question not assigned to this rater, bad choices) or a
    database that belongs to another bundle or schema version."""


@dataclass(frozen=True)
class Rater:
    """A rater as the store knows them."""

    id: int
    """Internal id (exported as `rater-<id>`; never shown in a URL)."""
    token: str
    """Unguessable secret in the rater's link."""
    seed: int
    """Seed of this rater's question order and left/right sides."""
    external_id: str
    """Crowd-platform participant id (may be empty)."""
    completed: bool
    """All questions answered."""


@dataclass(frozen=True)
class Assignment:
    """One question as one rater sees it."""

    position: int
    """0-based place in this rater's order."""
    question_id: str
    """The question."""
    method_left: str
    """Method of the left video for this rater."""
    method_right: str
    """Method of the right video for this rater."""


def secrets_files() -> list[Path]:
    """The files Streamlit reads its secrets from, the later one winning: `~/.streamlit/secrets.toml`, then
    `.streamlit/secrets.toml` in the current folder."""
    return [Path.home() / ".streamlit" / "secrets.toml", Path.cwd() / ".streamlit" / "secrets.toml"]


def _read_secrets(path: Path) -> dict:
    """One secrets file's keys; StoreError, in one line, for a file that is not valid TOML or cannot be read."""
    import tomllib  # Python 3.11+, as Streamlit itself needs

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise StoreError(f"{path} is not valid TOML: {str(err).splitlines()[0] if str(err) else err}; fix it (the "
                         "survey reads db_url, admin_password and completion_code from it)") from None
    except OSError as err:
        raise StoreError(f"cannot read {path}: {err.strerror or err}") from None


def secret(key: str, files: Sequence[Path] | None = None) -> str:
    """`key` of the secrets files (`secrets_files()`), as the survey app reads it, else ''."""
    value = ""
    for path in secrets_files() if files is None else files:
        if path.is_file():
            value = str(_read_secrets(path).get(key, "") or "").strip() or value
    return value


def check_secrets(files: Sequence[Path] | None = None) -> None:
    """StoreError, in one line, unless every secrets file there is reads: `serve` checks them before it starts, even
    with --db, since the app reads its admin password and completion code from them later (a broken file found
    only then would cost a finished rater their completion code)."""
    for path in secrets_files() if files is None else files:
        if path.is_file():
            _read_secrets(path)


def default_url(bundle_root: Path | str | None = None) -> str:
    """`$FOURDFY_SURVEY_DB`, else `db_url` in the secrets files (`secrets_files()`), else a SQLite file
    `survey.sqlite` in the bundle folder (an error where there is no bundle: export)."""
    url = os.environ.get(DB_ENV, "").strip() or secret("db_url")
    if url:
        return url
    if bundle_root is None:
        raise StoreError(f"no database given: pass --db URL, set {DB_ENV} or db_url in .streamlit/secrets.toml")
    return f"sqlite:///{Path(bundle_root) / DEFAULT_SQLITE}"


def url_source(db_option: str | None = None, files: Sequence[Path] | None = None) -> str:
    """Where `default_url` (or a `--db` option) took the database URL from, for messages that cannot echo the URL
    itself: '--db', '$FOURDFY_SURVEY_DB', 'db_url in <secrets file>', or 'the default SQLite file'."""
    if db_option:
        return "--db"
    if os.environ.get(DB_ENV, "").strip():
        return f"${DB_ENV}"
    for path in reversed(secrets_files() if files is None else files):  # the later file wins, as in `secret`
        if path.is_file() and secret("db_url", [path]):
            return f"db_url in {path}"
    return DEFAULT_SOURCE


def sqlite_files(url: str) -> list[Path]:
    """The files of a SQLite database URL: the database, then its -wal, -shm and -journal siblings
    (none for another backend, an in-memory database or a URL that does not parse)."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        return []
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return []
    db = Path(parsed.database)
    return [db] + [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def memory_sqlite(url: str) -> bool:
    """Whether `url` is an in-memory SQLite database (`sqlite://`, `sqlite:///:memory:`, a `file:` URI with
    `mode=memory`): every connection of a server gets its own, empty one, and all of it is gone when it stops."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        return False
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    return (database in ("", ":memory:") or database.startswith("file::memory:")
            or parsed.query.get("mode") == "memory")


def shown_url(url: str | sa.URL) -> str:
    """A database URL as messages show it: the password masked (`user:***@host`). A URL that does not parse
    cannot be masked, so it is not shown at all (it may hold a password)."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "(a database URL that does not parse)"


def redact(text: str, url: str | sa.URL) -> str:
    """`text` (e.g. a driver's error message) with the URL's password masked wherever it appears."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        return text
    if parsed.password:
        text = text.replace(str(url), shown_url(parsed))
        if len(str(parsed.password)) >= 4:  # a shorter one would mask letters all over the message
            text = text.replace(str(parsed.password), "***")
    return text


def path_hint(value: str) -> str:
    """For a database option given as a file path instead of a URL (`--db study/survey.sqlite`): the
    `sqlite:///` URL to write instead ('' when the value does not look like a path: it is never echoed
    then, since a URL may hold a password). A bundle folder points at its default database."""
    if "://" in value or not value.strip():
        return ""
    path = Path(value)
    if path.is_dir() and (path / DEFAULT_SQLITE).is_file():
        path = path / DEFAULT_SQLITE
    elif not (path.is_file() or (path.suffix.lower() in SQLITE_SUFFIXES and "@" not in value)):
        return ""  # ("@": rather a URL without its scheme, whose password must not be echoed)
    return f"sqlite:///{path.as_posix()}"


def answer_counts(path: Path | str) -> tuple[int, int, int] | None:
    """(raters, answered questions, judgments) of the SQLite survey database at `path`, for messages about a
    folder that holds one; None when it is no survey database or cannot be read. Only reads (its content stays
    as it is; closing the last connection may checkpoint its WAL, as any reader's does)."""
    import sqlite3
    from urllib.parse import quote

    # read-write but never created (mode=rw): a read-only connection to a WAL database leaves -wal/-shm files behind
    uri = f"file:{quote(Path(path).resolve().as_posix())}?mode=rw"
    engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, timeout=5))
    try:
        with engine.connect() as conn:
            n_raters = conn.execute(sa.select(sa.func.count()).select_from(raters)).scalar_one()
            pairs = sa.select(answers.c.rater_id, answers.c.question_id).distinct().subquery()
            n_questions = conn.execute(sa.select(sa.func.count()).select_from(pairs)).scalar_one()
            n_judgments = conn.execute(sa.select(sa.func.count()).select_from(answers)).scalar_one()
    except sa.exc.DBAPIError:  # not a survey database (no such table), locked, not a database at all
        return None
    finally:
        engine.dispose()
    return n_raters, n_questions, n_judgments


def _driver_missing(parsed: sa.URL, err: ImportError) -> StoreError:
    """One line for a URL whose DBAPI module is not installed (`postgresql+psycopg2://` without psycopg2)."""
    module = err.name or parsed.get_driver_name()
    if parsed.get_backend_name() == "postgresql":
        fix = (f"this project uses psycopg 3, so write the URL as postgresql+psycopg://... "
               f"({shown_url(parsed.set(drivername='postgresql+psycopg'))}), or install {module}")
    else:
        fix = f"install {module}, or use sqlite:///FILE (Python's own sqlite3) or postgresql+psycopg://..."
    return StoreError(f"the database driver of {shown_url(parsed)} is not installed (no Python module {module!r}): "
                      f"{fix}")


def make_engine(url: str, busy_timeout_ms: int = BUSY_TIMEOUT_MS, source: str = "") -> sa.Engine:
    """Engine for a SQLite or PostgreSQL URL (`postgresql://` is given the psycopg 3 driver); `source` names
    where the URL came from (`url_source`) in the error for one that does not parse."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as err:  # ValueError: a port that is not a number
        # not echoed: a URL that does not parse cannot have its password masked
        where = f" (from {source})" if source else ""
        hint = path_hint(url)
        if hint:  # a file path, not a URL: say the URL to write
            raise StoreError(f"the database{where} must be a URL, not a file path: write {hint}") from err
        raise StoreError(f"the database URL{where} does not parse (e.g. sqlite:///survey.sqlite or "
                         "postgresql+psycopg://user:password@host:5432/db)") from err
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        try:
            engine = sa.create_engine(parsed, connect_args={"timeout": busy_timeout_ms / 1000})
        except ImportError as err:
            raise _driver_missing(parsed, err) from None

        @sa.event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # transactions are begun below, as IMMEDIATE when writing
            # (the busy timeout is sqlite3's `timeout` connect argument)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # A deferred transaction that reads and then writes can fail at once with SQLITE_BUSY when
            # another writer got in between; IMMEDIATE takes the write lock up front and waits for it.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

        return engine
    if backend == "postgresql":
        try:
            return sa.create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=40)  # < max_connections 100
        except ImportError as err:
            raise _driver_missing(parsed, err) from None
    raise StoreError(f"unsupported database {backend!r}: use sqlite:///FILE or postgresql+psycopg://...")


@contextmanager
def _write(engine: sa.Engine):
    """A write transaction (committed on exit, rolled back on error)."""
    with engine.connect() as conn:
        conn.execution_options(write=True)
        with conn.begin():
            yield conn


def init_db(engine: sa.Engine, bundle_id: str, question_ids: Sequence[str] | None = None) -> None:
    """Create the tables if needed and bind the database to a bundle; refuse a database of another
    bundle or schema version, and (with `question_ids`, the bundle's) one that assigns its raters a question the
    bundle does not hold: they would meet an error page at that question."""
    metadata.create_all(engine)
    with _write(engine) as conn:
        version = conn.execute(sa.select(schema_version.c.version)).scalars().all()
        if not version:
            conn.execute(sa.insert(schema_version).values(version=SCHEMA_VERSION))
        elif version != [SCHEMA_VERSION]:
            raise StoreError(f"database schema version {version} but this code uses {SCHEMA_VERSION}")
        bound = conn.execute(sa.select(study.c.bundle_id)).scalar_one_or_none()
        if bound is None:
            conn.execute(sa.insert(study).values(id=1, bundle_id=bundle_id))
        elif bound != bundle_id:
            n = conn.execute(sa.select(sa.func.count(sa.distinct(answers.c.rater_id)))).scalar_one()
            held = (f"holds answers of {n} rater(s) to bundle {bound}" if n
                    else f"belongs to bundle {bound} (no answers yet)")
            raise StoreError(f"the database {shown_url(engine.url)} {held}, not {bundle_id}: give each bundle its "
                             "own database")
        if question_ids is not None:
            assigned = conn.execute(sa.select(assignments.c.question_id).distinct()).scalars().all()
            unknown = sorted(set(assigned) - set(question_ids))
            if unknown:
                from userstudy.outputs import few

                raise StoreError(f"the database {shown_url(engine.url)} assigns {len(unknown)} question(s) that bundle "
                                 f"{bundle_id} does not hold ({few(unknown, 3)}): serve it with the bundle folder "
                                 "`survey build` wrote for it, or give this bundle its own database")


def sqlite_folder_reason(engine: sa.Engine) -> str:
    """'' unless `engine` is a SQLite URL naming a folder (the driver's own reply is "unable to open database
    file"), else what to say: the folder is not a SQLite file, and which URL to give instead."""
    path = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not path or not Path(path).is_dir():
        return ""
    # `serve` without --db keeps the votes in <bundle>/survey.sqlite: name that file, else another database file
    try:
        found = sorted((p for p in Path(path).iterdir() if p.is_file() and p.suffix.lower() in SQLITE_SUFFIXES),
                       key=lambda p: (p.name != DEFAULT_SQLITE, p.name))
    except OSError:
        found = []
    hint = (f"it holds {found[0].name}: give --db sqlite:///{found[0].as_posix()}" if found
            else "give the database file in the URL, sqlite:///PATH/survey.sqlite")
    return f"{path} is a folder, not a SQLite file; {hint}"


def open_existing(url: str, source: str = "") -> sa.Engine:
    """Engine of a survey database that must already exist (for export): a missing SQLite file or a
    database without the survey tables is an error, not silently created. `source` as for `make_engine`."""
    engine = make_engine(url, source=source)  # first: a URL that does not parse is named by its source
    if engine.url.get_backend_name() == "sqlite":
        path = engine.url.database
        folder = sqlite_folder_reason(engine)
        if folder:
            engine.dispose()
            raise StoreError(f"no survey database at {shown_url(url)}: {folder}")
        if not path or path == ":memory:" or not Path(path).is_file():
            engine.dispose()
            raise StoreError(f"no survey database at {shown_url(url)} (the file does not exist)")
    if not sa.inspect(engine).has_table(schema_version.name):
        raise StoreError(f"{shown_url(url)} is not a survey database (no {schema_version.name} table)")
    with engine.connect() as conn:
        version = conn.execute(sa.select(schema_version.c.version)).scalars().all()
    if version != [SCHEMA_VERSION]:
        raise StoreError(f"database schema version {version} but this code reads {SCHEMA_VERSION}")
    return engine


def draw_layout(question_ids: Sequence[str], seed: int) -> list[tuple[str, bool]]:
    """A rater's order and sides: (question id, swapped) per position. Half the questions show the first
    method on the right, so every rater sees each side equally often; with an odd number, the odd
    question's side is drawn at random too (each rater balanced to within one question, and every
    question swapped for half the raters in expectation: a fixed side would confound a 1-question
    survey's method with its position)."""
    rng = random.Random(seed)
    order = list(question_ids)
    rng.shuffle(order)
    n = len(order)
    swaps = [i < n // 2 for i in range(n)]
    if n % 2:  # drawn only for odd n, so even-sized layouts stay what they were for a seed
        swaps[-1] = rng.random() < 0.5
    rng.shuffle(swaps)
    return list(zip(order, swaps))


def create_rater(engine: sa.Engine, questions: Sequence[Question], now: datetime, *, seed: int | None = None,
                 external_id: str = "") -> Rater:
    """A new rater with an unguessable token and their own seeded order and sides (one transaction).
    `seed=None` draws one from `secrets`. A crowd participant's rater is found or created by `rater_for_participant`,
    which never makes a second one."""
    if not questions:
        raise StoreError("the bundle has no questions")
    with _write(engine) as conn:
        return _insert_rater(conn, questions, now, seed, external_id)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FORMULA_START = ("=", "+", "-", "@")
"""First characters that make a spreadsheet (Excel, LibreOffice, Google Sheets) read a votes.csv cell as a formula."""


def external_id_problem(value: str) -> str:
    """Why a participant id from a study link is not taken ('' when it is): a control character (PostgreSQL cannot
    store a NUL, and none belongs in an id), or a first character that makes a spreadsheet opening the exported
    votes.csv run the cell as a formula (`=HYPERLINK(...)`). Ids of the crowd platforms (Prolific's hex, MTurk's
    A1B2..., a lab's P-1) pass."""
    if _CONTROL.search(value):
        return "holds a control character"
    if value.startswith(_FORMULA_START):
        return f"starts with {value[0]!r}, which a spreadsheet opening votes.csv would run as a formula"
    return ""


def _check_external_id(external_id: str) -> None:
    """Refuse a participant id with a control character before any statement, on both backends alike (PostgreSQL's
    driver raises DataError for a NUL, SQLite would store it); the app never passes one (`external_id_problem`)."""
    if _CONTROL.search(str(external_id)):
        raise StoreError(f"a participant id with a control character is not stored: {external_id!r}")


def _insert_rater(conn: sa.Connection, questions: Sequence[Question], now: datetime, seed: int | None,
                  external_id: str) -> Rater:
    _check_external_id(external_id)
    token = secrets.token_urlsafe(24)
    seed = secrets.randbits(62) if seed is None else int(seed)
    layout = draw_layout([q.question_id for q in questions], seed)
    by_id = {q.question_id: q for q in questions}
    rater_id = conn.execute(sa.insert(raters).values(token=token, seed=seed, external_id=str(external_id),
                                                     started_at=now).returning(raters.c.id)).scalar_one()
    rows = []
    for position, (qid, swapped) in enumerate(layout):
        q = by_id[qid]
        left, right = (q.method_b, q.method_a) if swapped else (q.method_a, q.method_b)
        rows.append({"rater_id": rater_id, "position": position, "question_id": qid,
                     "method_left": left, "method_right": right})
    conn.execute(sa.insert(assignments), rows)
    return Rater(id=rater_id, token=token, seed=seed, external_id=str(external_id), completed=False)


def _rater(row: Mapping) -> Rater:
    return Rater(id=row["id"], token=row["token"], seed=row["seed"], external_id=row["external_id"],
                 completed=row["completed_at"] is not None)


def _first_with_external_id(conn: sa.Connection, external_id: str) -> Rater | None:
    row = conn.execute(sa.select(raters).where(raters.c.external_id == external_id)
                       .order_by(raters.c.id).limit(1)).mappings().one_or_none()
    return None if row is None else _rater(row)


_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What a token may be: `secrets.token_urlsafe`'s alphabet. Anything else is no rater's, and is never sent to the
database (PostgreSQL refuses a NUL in text with an error, where SQLite finds no row)."""


def get_rater(engine: sa.Engine, token: str) -> Rater | None:
    """The rater holding this token, or None."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    with engine.connect() as conn:
        row = conn.execute(sa.select(raters).where(raters.c.token == token)).mappings().one_or_none()
    return None if row is None else _rater(row)


def rater_for_external_id(engine: sa.Engine, external_id: str) -> Rater | None:
    """The first rater started with this crowd-platform id ('' never matches): a participant who opens
    the platform's link again continues instead of starting a second, duplicate panel member."""
    if not external_id or _CONTROL.search(external_id):  # no rater holds one (`_insert_rater`)
        return None
    with engine.connect() as conn:
        return _first_with_external_id(conn, external_id)


def rater_for_participant(engine: sa.Engine, questions: Sequence[Question], now: datetime, external_id: str, *,
                          seed: int | None = None) -> Rater:
    """The rater of this crowd-platform id, created (as `create_rater` creates one) when there is none; a new rater
    for ''. One write transaction that looks up and inserts, so that one participant clicking Start in two tabs at
    once (or a resent request) stays one rater: SQLite's BEGIN IMMEDIATE admits one writer at a time, and on
    PostgreSQL the lock on the `study` row queues the other lookups until this one has committed. (A lock rather than
    a unique index on `external_id`: databases made before keep their schema, even one that already holds such a
    pair.)"""
    if not external_id:
        return create_rater(engine, questions, now, seed=seed)
    _check_external_id(external_id)
    if not questions:
        raise StoreError("the bundle has no questions")
    with _write(engine) as conn:
        conn.execute(sa.select(study.c.id).with_for_update())  # PostgreSQL: FOR UPDATE; SQLite: a plain read
        found = _first_with_external_id(conn, external_id)
        return found if found is not None else _insert_rater(conn, questions, now, seed, external_id)


def progress(engine: sa.Engine, rater: Rater) -> tuple[list[Assignment], set[str]]:
    """This rater's assignments in order and the question ids they have answered."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(assignments).where(assignments.c.rater_id == rater.id)
                            .order_by(assignments.c.position)).mappings().all()
        done = conn.execute(sa.select(answers.c.question_id).where(answers.c.rater_id == rater.id)
                            .distinct()).scalars().all()
    return ([Assignment(r["position"], r["question_id"], r["method_left"], r["method_right"]) for r in rows],
            set(done))


def next_assignment(engine: sa.Engine, rater: Rater) -> tuple[Assignment | None, int, int]:
    """(first unanswered assignment or None, number answered, number of questions)."""
    items, done = progress(engine, rater)
    todo = [a for a in items if a.question_id not in done]
    return (todo[0] if todo else None), len(items) - len(todo), len(items)


def _insert_ignore(conn: sa.Connection, table: sa.Table, rows: list[dict], keys: list[str]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL; returns the number of rows inserted."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # RETURNING yields only the rows really inserted (rowcount is not reliable across drivers here)
    stmt = insert(table).values(rows).on_conflict_do_nothing(index_elements=keys).returning(table.c[keys[0]])
    return len(conn.execute(stmt).all())


def submit_answer(engine: sa.Engine, rater: Rater, question: Question, choices: Mapping[str, str],
                  seconds: float, now: datetime) -> bool:
    """Store one question's five choices in one transaction. Returns False when this rater had already
    answered it (a double click, a resent message, a reload): the first answer stays, nothing changes."""
    if set(choices) != set(CRITERIA):
        raise StoreError(f"answer all five criteria ({', '.join(CRITERIA)}); got {', '.join(sorted(choices))}")
    bad = {c: v for c, v in choices.items() if v not in SIDES}
    if bad:
        raise StoreError(f"choices must be left or right; got {bad}")
    with _write(engine) as conn:
        # The question must be assigned to the rater who holds the token: no rater reaches another's rows.
        a = conn.execute(sa.select(assignments).where(assignments.c.rater_id == rater.id,
                                                      assignments.c.question_id == question.question_id)
                         ).mappings().one_or_none()
        if a is None:
            raise StoreError(f"question {question.question_id!r} is not assigned to this rater")
        expected = ""
        if question.is_attention_check:
            expected = "left" if a["method_left"] == question.method_a else "right"
        rows = [{"rater_id": rater.id, "question_id": question.question_id, "criterion": c, "choice": choices[c],
                 "position": a["position"], "prompt_id": question.prompt_id, "prompt": question.prompt,
                 "method_left": a["method_left"], "method_right": a["method_right"],
                 "is_attention_check": question.is_attention_check, "expected_choice": expected,
                 "seconds": float(seconds), "answered_at": now} for c in CRITERIA]
        inserted = _insert_ignore(conn, answers, rows, ["rater_id", "question_id", "criterion"])
        n_done = conn.execute(sa.select(sa.func.count(sa.distinct(answers.c.question_id)))
                              .where(answers.c.rater_id == rater.id)).scalar_one()
        n_all = conn.execute(sa.select(sa.func.count()).select_from(assignments)
                             .where(assignments.c.rater_id == rater.id)).scalar_one()
        if n_done == n_all:
            conn.execute(sa.update(raters).where(raters.c.id == rater.id, raters.c.completed_at.is_(None))
                         .values(completed_at=now))
    return inserted > 0


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:  # SQLite returns naive datetimes; everything is stored in UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# OPTIONAL_COLUMNS include `rater_completed` (true/false): whether the rater finished the survey, so that an
# analysis can tell finished raters from abandoned ones
VOTES_COLUMNS = COLUMNS + OPTIONAL_COLUMNS + ("position", "seconds", "external_id", "prompt")


def export_votes(engine: sa.Engine):
    """Every stored answer as a votes table (the format `fourdfy analyze` reads, strings only),
    ordered by rater, position and criterion. Raters appear as `rater-<id>`, never by token."""
    import pandas as pd

    order = {c: i for i, c in enumerate(CRITERIA)}
    stmt = (sa.select(answers, raters.c.external_id, raters.c.completed_at.label("rater_completed_at"))
            .join(raters, raters.c.id == answers.c.rater_id).order_by(answers.c.rater_id, answers.c.position))
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    records = [{
        "rater_id": f"rater-{r['rater_id']:05d}", "question_id": r["question_id"], "prompt_id": r["prompt_id"],
        "method_left": r["method_left"], "method_right": r["method_right"], "criterion": r["criterion"],
        "choice": r["choice"], "is_attention_check": "true" if r["is_attention_check"] else "false",
        "answered_at": _iso(r["answered_at"]), "expected_choice": r["expected_choice"], "source": "survey",
        "position": str(r["position"]), "seconds": f"{r['seconds']:.3f}", "external_id": r["external_id"],
        "prompt": r["prompt"], "rater_completed": "false" if r["rater_completed_at"] is None else "true",
        "_k": (r["rater_id"], r["position"], order[r["criterion"]])} for r in rows]
    records.sort(key=lambda rec: rec["_k"])
    return pd.DataFrame([{k: v for k, v in rec.items() if k != "_k"} for rec in records], columns=list(VOTES_COLUMNS))


VOTES_KIND = "a votes CSV with the columns `fourdfy analyze` reads"
"""What `export --out --overwrite` replaces (`is_votes_file`), as messages name it."""


def is_votes_file(path: Path | str) -> bool:
    """True when `path` is empty or a votes CSV: its header line has every column of `userstudy.votes.COLUMNS`
    (an earlier export, or another file in the format `fourdfy analyze` reads). The only files
    `survey export --overwrite` replaces: a bundle's bundle.json or a config is never a votes file."""
    import csv

    from userstudy.outputs import first_line

    path = Path(path)
    try:
        if path.stat().st_size == 0:  # checked by size: a file that only starts with a blank line is not empty
            return True
    except OSError:
        return False
    line = first_line(path)
    if not line:
        return False
    header = {c.strip() for c in next(csv.reader([line]), [])}
    return set(COLUMNS) <= header


def write_votes_csv(engine: sa.Engine, out: Path | str) -> int:
    """Write the export atomically (temporary file renamed); returns the number of judgments."""
    out = Path(out)
    frame = export_votes(engine)
    if frame.empty:
        raise StoreError("the database holds no answers yet: nothing to export")
    from userstudy.outputs import atomic_write

    atomic_write(out, lambda tmp: frame.to_csv(tmp, index=False))
    return len(frame)


def tally(engine: sa.Engine, design) -> dict:
    """What the admin page shows: raters started/completed, per comparison and criterion the share of
    answers for the primary, attention-check failures, median seconds per question. The raters that
    `fourdfy analyze` excludes by default (`ExclusionRule()`) are left out of the preference table, as there;
    `excluded` lists them, `rule` says the rule, `exclusion_error` why it could not be applied ('' if it was:
    otherwise the table holds all raters)."""
    import pandas as pd

    from userstudy.analysis import ExclusionRule, rule_text, rater_summary
    from userstudy.votes import VotesError, validate_votes

    with engine.connect() as conn:
        started = conn.execute(sa.select(sa.func.count()).select_from(raters)).scalar_one()
        completed = conn.execute(sa.select(sa.func.count()).select_from(raters)
                                 .where(raters.c.completed_at.is_not(None))).scalar_one()
    votes = export_votes(engine)
    rule = ExclusionRule()
    out = {"raters_started": started, "raters_completed": completed, "judgments": len(votes),
           "table": pd.DataFrame(columns=["comparison", "criterion", "n", "for_primary", "pct_primary"]),
           "check_failures": pd.DataFrame(columns=["rater_id", "failed", "checks", "excluded"]),
           "median_seconds": float("nan"), "excluded": [], "rule": rule_text(rule), "exclusion_error": ""}
    if votes.empty:
        return out
    try:
        summary = rater_summary(validate_votes(votes, design, source="survey database"), rule)
        excluded = set(summary.loc[summary["excluded"], "rater_id"])
    except VotesError as err:  # e.g. a design edited after the bundle was built: still show every answer
        out["exclusion_error"] = str(err).splitlines()[0]
        excluded = set()
    out["excluded"] = sorted(excluded)
    primary = design.primary
    main = votes[(votes["is_attention_check"] == "false") & ~votes["rater_id"].isin(excluded)]
    if len(main):
        comparison = main["method_left"].where(main["method_left"] != primary, main["method_right"])
        primary_side = (main["method_left"] == primary).map({True: "left", False: "right"})
        frame = pd.DataFrame({"comparison": comparison, "criterion": main["criterion"],
                              "for_primary": (main["choice"] == primary_side).astype(int)})
        table = frame.groupby(["comparison", "criterion"], sort=False).agg(
            n=("for_primary", "size"), for_primary=("for_primary", "sum")).reset_index()
        table["pct_primary"] = 100.0 * table["for_primary"] / table["n"]
        out["table"] = table
    checks = votes[votes["is_attention_check"] == "true"]
    if len(checks):
        failed = (checks["choice"] != checks["expected_choice"]).groupby(checks["rater_id"]).agg(["sum", "size"])
        failed = failed.reset_index().rename(columns={"sum": "failed", "size": "checks"})
        failed["excluded"] = failed["rater_id"].isin(excluded)
        out["check_failures"] = failed[failed["failed"] > 0].reset_index(drop=True)
    per_question = votes.drop_duplicates(["rater_id", "question_id"])["seconds"].astype(float)
    out["median_seconds"] = float(per_question.median())
    return out
