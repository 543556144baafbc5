"""`fourdfy survey` commands: build a survey bundle, serve the Streamlit app, export the votes."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path

import typer

survey_app = typer.Typer(help="The user-study survey: build a bundle, serve it, export the votes.",
                         no_args_is_help=True)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@survey_app.command("build")
def build(
    artifacts: list[Path] = typer.Option(..., "--artifacts", help="Artifact folder(s) <root>/<method>/<slug>/"
                                         "{video.mp4,manifest.json}; repeat the option for several."),
    out: Path = typer.Option(..., "--out", help="New bundle folder (must not exist: an existing one may hold the "
                             "survey's votes, in survey.sqlite)."),
    design: Path = typer.Option(None, "--design", help="Design YAML/JSON (default: the paper's, "
                                "userstudy/designs/paper.yaml)."),
    prompts_dir: Path = typer.Option(None, "--prompts-dir", help="Folder of the <prompt_set>.txt files the "
                                     "design names (default: the project's prompts/)."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Leave out questions without both videos "
                                       "and list them in the bundle (the pipeline's few-prompt demo runs)."),
    tables: list[str] = typer.Option([], "--tables", metavar="<name>", help="Only the comparisons of these tables of the design "
                                     "(repeatable; default: all). The paper's survey: --tables table2."),
) -> None:
    """Build a survey bundle: questions from the design, attention checks, videos under opaque names."""
    from pipelines.commands.userstudy import warn_design_methods, with_registered_labels
    from method.fileio import folder_blocker
    from prompts import PROMPT_DIR
    from userstudy.design import PAPER_DESIGN, DesignError, load_design
    from userstudy.survey.bundle import BundleError, artifact_pairs, build_bundle

    if out.exists():  # before any work; the votes a served bundle holds are named, never lost to a rebuild
        _fail(existing_out_message(out))
    # and where it cannot be made, said of --out (the build writes into a hidden temporary folder beside it first)
    if (blocked := folder_blocker(out)) is not None:
        base, why = blocked
        _fail(f"--out {out} cannot be made: {base} is a file, not a folder" if why == "file"
              else f"--out {out} cannot be made: {base} is not writable; give --out a folder you can write to")
    try:
        full = d = load_design(design)
        # `fourdfy analyze` labels a method the design leaves unlabelled with its registered (plug-in) label and
        # refuses a table with two rows alike: refused here, as analyze names it, before a survey is run for nothing.
        # The whole design, as analyze reads it; the bundle keeps the design's own labels
        with_registered_labels(full, Path(design or PAPER_DESIGN).name)
        # a misspelt method (`mav3dd`) would be a method without videos, its artifacts left out: one warning line
        # (where the --artifacts cannot be read, the build names that among its other problems, and warns of none)
        with contextlib.suppress(BundleError):
            warn_design_methods(full, Path(design or PAPER_DESIGN).name, {m for m, _ in artifact_pairs(artifacts)},
                                "method of the --artifacts")
        if tables:
            d = d.select_tables(tables)
        # the other tables' methods are listed by the design: their artifacts are left out by --tables, not unlisted
        bundle = build_bundle(d, artifacts, out, prompts_dir=prompts_dir or PROMPT_DIR, allow_missing=allow_missing,
                              listed_methods=(*full.methods, full.check.correct_method))
    except (DesignError, BundleError) as err:
        _fail(str(err))
    n_checks = sum(q.is_attention_check for q in bundle.questions)
    n_videos = len({v for q in bundle.questions for v in (q.video_a, q.video_b)})  # = the files in media/
    def count(n: int, what: str) -> str:
        return f"{n} {what}{'' if n == 1 else 's'}"

    typer.echo(f"bundle {bundle.bundle_id}: {count(len(bundle.questions), 'question')} "
               f"({count(n_checks, 'attention check')}), {count(n_videos, 'video')} -> {out}")
    for line in bundle.notes:  # unlike videos are allowed (published videos of another method) but shown
        typer.echo(f"note: {line}", err=True)
    for line in build_warnings(bundle, out):
        typer.secho(f"warning: {line}", fg=typer.colors.YELLOW, err=True)


def existing_out_message(out: Path) -> str:
    """Why `build --out` refuses an existing folder, in one line: a served bundle folder holds the survey's
    database (`serve`'s default SQLite file), whose votes would go with the folder; the line says how many
    and how to export them before anything is removed."""
    from userstudy.survey.store import DEFAULT_SQLITE, SQLITE_SUFFIXES, answer_counts

    dbs = sorted((p for p in out.iterdir() if p.is_file() and p.suffix.lower() in SQLITE_SUFFIXES),
                 key=lambda p: (p.name != DEFAULT_SQLITE, p.name)) if out.is_dir() else []
    if not dbs:
        return f"--out {out} already exists (a bundle may be in use): build into a new folder, e.g. --out {out}-2"
    db = dbs[0]
    counts = answer_counts(db)
    if counts is None:
        held = "a database file"
    elif counts[2]:
        held = (f"the survey database with {counts[2]} judgment(s) ({counts[1]} answered question(s)) of "
                f"{counts[0]} rater(s)")
    else:
        held = f"the survey database, with no answers yet ({counts[0]} rater(s) started)"
    others = f" (and {len(dbs) - 1} other database file(s))" if len(dbs) > 1 else ""
    return (f"--out {out} already exists and holds {held} ({db}{others}): removing the folder deletes it. "
            f"Build into a new folder (e.g. --out {out}-2); to keep the votes, export them first: "
            f"fourdfy survey export --db sqlite:///{db.as_posix()} --out {(out.parent / 'votes.csv').as_posix()}")


def build_warnings(bundle, out: Path) -> list[str]:
    """What a partial bundle lacks: left-out questions and missing attention checks, one line each
    (a demo bundle must not pass for the full study); and questions showing the same video twice."""
    from userstudy.outputs import few
    from userstudy.design import CHECK_ID_PREFIX
    from userstudy.survey.bundle import BUNDLE_FILE

    warnings = []
    # same remuxed bytes on both sides: raters would judge one clip against itself
    same = [q.question_id for q in bundle.questions if q.video_a == q.video_b]
    if same:
        warnings.append(f"{len(same)} question(s) show the same video twice ({few(same, 3)}): the two methods' videos are "
                        "byte-identical (a run whose method change never took effect, e.g. a video-only change with "
                        "too few steps?); render them again or leave the method out")
    listed = out / BUNDLE_FILE
    dropped = [q for q in bundle.left_out if not q.startswith(CHECK_ID_PREFIX)]
    if dropped:
        n_plain = sum(not q.is_attention_check for q in bundle.questions)
        warnings.append(f"--allow-missing left out {len(dropped)} of {len(dropped) + n_plain} questions (a video "
                        f"missing); this is a partial demo bundle, not the full study: the list is under "
                        f"\"left_out\" and \"missing\" in {listed}")
    n_checks = sum(q.is_attention_check for q in bundle.questions)
    dropped_checks = len(bundle.left_out) - len(dropped)
    decoys = bundle.design.check.decoys
    if n_checks == 0:
        why = (f"no question of the decoy(s) {', '.join(decoys)} has both videos" if decoys
               else "the design names no attention_check.decoys")
        warnings.append(f"the bundle has NO attention checks ({why}): careless raters cannot be detected and "
                        "`fourdfy analyze` will exclude nobody")
    elif dropped_checks:
        warnings.append(f"--allow-missing left out {dropped_checks} of {dropped_checks + n_checks} attention "
                        f"checks (a video missing); see \"left_out\" in {listed}")
    return warnings


@survey_app.command("serve")
def serve(
    ctx: typer.Context,
    bundle: Path = typer.Argument(..., help="Bundle folder from `fourdfy survey build`."),
    db: str = typer.Option(None, "--db", help="Database URL (default: $FOURDFY_SURVEY_DB, else db_url in "
                           ".streamlit/secrets.toml, else sqlite:///<bundle>/survey.sqlite); e.g. "
                           "postgresql+psycopg://user:pw@host/db."),
    port: int = typer.Option(8501, "--port", help="HTTP port."),
    address: str = typer.Option("127.0.0.1", "--address", help="Interface to listen on (0.0.0.0 = all; put "
                                "a TLS reverse proxy in front for a public study)."),
    completion_code: str = typer.Option(None, "--completion-code", help="Code shown when a rater finishes "
                                        "(crowd platforms); default $FOURDFY_SURVEY_COMPLETION_CODE."),
) -> None:
    """Serve the survey with `streamlit run` (admin page at /?view=admin when a password is set).

    The admin password is $FOURDFY_SURVEY_ADMIN_PASSWORD, else admin_password in .streamlit/secrets.toml (of the folder you serve from, else of your home); with neither, the admin page is off.
    """
    from userstudy.survey.bundle import BundleError, load_bundle, verify_media
    from userstudy.survey.hosting import dvc_bundle_message, dvc_database_message
    from userstudy.survey.store import (DB_ENV, StoreError, check_secrets, default_url, init_db, make_engine,
                                        memory_sqlite, redact, shown_url, sqlite_files, sqlite_folder_reason,
                                        url_source)

    if not 1 <= port <= 65535:
        _fail(f"--port {port} is not a TCP port: give one from 1 to 65535 (e.g. 8501)")
    try:
        b = load_bundle(bundle)
        # every video's bytes against its name, once here (the app does not hash them on its page runs)
        verify_media(b)
    except BundleError as err:
        _fail(str(err))
    except OSError as err:
        _fail(f"cannot read the bundle {bundle}: {err.strerror or err}")
    # before the database is created and anything is announced: Streamlit's own failures here are a
    # traceback (bad address) or come after "survey on ..." (busy port)
    _check_listen(address, port)
    url, source = "", ""
    try:
        # read now even with --db: the app reads its admin password and completion code from them later
        check_secrets()
        url, source = db or default_url(b.root), url_source(db)
    except StoreError as err:
        _fail(str(err))
    if memory_sqlite(url):  # each of Streamlit's threads would get its own empty database: no rater could go on
        _fail(f"the database {shown_url(url)} (from {source}) is an in-memory SQLite database: each connection of the "
              "server gets its own, empty one, and the votes would be lost; give a database file, "
              "sqlite:///PATH/survey.sqlite, or a PostgreSQL URL")
    # a database inside a DVC stage's output (the pipeline's build/survey, served without --db) is deleted with it
    # by the next `dvc repro`: never created there; one served before this check is only warned about
    placement = dvc_database_message(url, source)
    if placement is not None and placement[0]:
        _fail(placement[1])
    warnings = [] if placement is None else [placement[1]]
    # so are the bundle's videos, under the running server: warned about (a study may run from it already)
    files = sqlite_files(url)
    inside = bool(warnings) and bool(files) and b.root.resolve() in files[0].resolve().parents
    note = dvc_bundle_message(b.root, database_inside=inside)
    if note is not None and inside:
        warnings[0] += f"; {note}"  # one line: the database's warning names the folder already
    elif note is not None:
        warnings.append(note)
    for line in warnings:
        typer.secho(f"warning: {line}", fg=typer.colors.YELLOW, err=True)
    try:
        engine = make_engine(url, source=source)
        folder = sqlite_folder_reason(engine)  # as `export` says it: the driver's reply would not name the folder
        if folder:
            raise StoreError(f"cannot use the database {shown_url(url)}: {folder} (`serve` creates it when new)")
        init_db(engine, b.bundle_id, [q.question_id for q in b.questions])  # one line here, not an error page later
    except StoreError as err:
        _fail(str(err))
    except Exception as err:  # a database that cannot be reached: name it, no traceback
        # the URL's password never reaches the terminal (it may come from $FOURDFY_SURVEY_DB or secrets.toml)
        _fail(redact(f"cannot open the database {shown_url(url)}: {type(err).__name__}: "
                     f"{str(err).splitlines()[0] if str(err) else ''}", url))
    env = {**os.environ, "FOURDFY_SURVEY_BUNDLE": str(b.root.resolve()), DB_ENV: url}
    if source.startswith("db_url in "):
        # The app reads the same secrets file itself (same folder, same home): the URL, which may hold a
        # password, stays out of the server's environment (readable in /proc/<pid>/environ).
        del env[DB_ENV]
    if ctx.find_root().params.get("verbose"):  # `fourdfy --verbose`: database errors' tracebacks in the server log
        env["FOURDFY_VERBOSE"] = "1"
    if completion_code is not None:
        env["FOURDFY_SURVEY_COMPLETION_CODE"] = completion_code
    app = Path(__file__).resolve().parents[2] / "userstudy" / "survey" / "app.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
           "--server.address", address, "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--server.runOnSave", "false",
           "--client.showErrorDetails", "none", "--client.toolbarMode", "minimal",
           # no "magic": a bare expression or string left in the app's code is never written onto raters' pages
           "--runner.magicEnabled", "false"]
    host = f"[{address}]" if ":" in address else address  # an IPv6 address in a URL
    typer.echo(f"survey on http://{host}:{port}/ (admin: /?view=admin), database {shown_url(url)}; Ctrl-C stops it",
               err=True)
    sys.stdout.flush()
    # Become the streamlit process, so that Ctrl-C and a supervisor's SIGTERM reach the server itself.
    os.execve(sys.executable, cmd, env)


def _check_listen(address: str, port: int) -> None:
    """Fail with one line unless the server can listen on `address`:`port`: checked by binding a socket
    briefly as Streamlit's server binds its own (one socket, IPv6 when the address has a colon,
    SO_REUSEADDR, so a port in TIME_WAIT still passes), then closing it."""
    import errno
    import socket

    if not address.strip():
        _fail("--address is empty: give the interface to listen on, e.g. 127.0.0.1 (this machine) or 0.0.0.0 (all)")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        socket.getaddrinfo(address, port, family, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        _fail(f"--address {address} does not resolve ({getattr(err, 'strerror', None) or err}): give an IP address "
              "of this machine, e.g. 127.0.0.1 or 0.0.0.0")
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            if os.name != "nt":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            _fail(f"--port {port} is already in use on {address} (another server?): stop it or choose another --port")
        if err.errno == errno.EADDRNOTAVAIL:
            _fail(f"--address {address} is not an address of this machine: give one of its IP addresses, e.g. "
                  "127.0.0.1 or 0.0.0.0")
        _fail(f"cannot listen on {address} port {port}: {err.strerror or err}; choose another --port (ports below "
              "1024 need root) or --address")


@survey_app.command("export")
def export(
    db: str = typer.Option(None, "--db", help="Database URL (default: $FOURDFY_SURVEY_DB, else db_url in "
                           ".streamlit/secrets.toml). A SQLite file is sqlite:///PATH; `survey serve` without "
                           "--db kept the votes in sqlite:///<bundle>/survey.sqlite."),
    out: Path = typer.Option(..., "--out", help="Votes CSV to write (the format `fourdfy analyze` reads)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file that is a votes CSV "
                                   "(e.g. an earlier export of the same study) or empty; any other file is never "
                                   "replaced."),
) -> None:
    """Export every stored answer as a votes CSV (with `rater_completed`: whether its rater finished)."""
    from userstudy.outputs import OutputError, check_own_file, same_file
    from userstudy.survey.store import (VOTES_KIND, StoreError, default_url, is_votes_file, open_existing, redact,
                                        shown_url, sqlite_files, url_source, write_votes_csv)

    try:
        url = db or default_url(None)
    except StoreError as err:
        _fail(str(err))
    # Writing the CSV over the database (or its journal) would destroy every answer: refused even with --overwrite.
    db_files = sqlite_files(url)
    if any(same_file(out, f) for f in db_files):
        _fail(f"--out {out} is the survey database {db_files[0]} itself (or its journal): exporting there would "
              "replace every stored answer; choose another --out, e.g. votes.csv")
    if out.is_dir():
        _fail(f"--out {out} is a folder; the export writes one CSV file: give a file path, e.g. {out / 'votes.csv'}")
    # An existing file may hold another study's votes: replaced only with --overwrite, and only when it is a votes
    # CSV (or empty); a bundle's bundle.json, params.yaml or any other file is never replaced by an export.
    try:
        check_own_file(out, overwrite, is_votes_file, VOTES_KIND, describe=_seems)
    except OutputError as err:
        _fail(str(err))
    try:
        n = write_votes_csv(open_existing(url, source=url_source(db)), out)
    except (StoreError, OutputError) as err:
        _fail(str(err))
    except Exception as err:  # unreachable server, not a survey database
        _fail(redact(f"cannot read the survey database {shown_url(url)}: {type(err).__name__}: "
                     f"{str(err).splitlines()[0] if str(err) else ''}", url))
    typer.echo(f"{n} judgments -> {out}")


_BUNDLE_ID = re.compile(rb'"bundle_id"\s*:\s*"([0-9a-f]+)"')


def _seems(path: Path) -> str:
    """What a file that `export` refuses to replace seems to be, from its first bytes and name (its content is
    never echoed: a config may hold a password)."""
    import codecs

    from userstudy.survey.bundle import BUNDLE_FILE
    from userstudy.votes import COLUMNS

    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as err:
        return f"a file that cannot be read ({err.strerror or err})"
    if head.startswith(b"SQLite format 3\x00"):
        return "an SQLite database"
    bundle = _BUNDLE_ID.search(head)
    if bundle:  # `build` writes bundle_id second, so it is within the first bytes
        return f"a survey bundle's {BUNDLE_FILE} (bundle {bundle.group(1).decode()}; `survey serve` reads it)"
    try:  # an incremental decoder: the 4096 bytes may end inside a character
        text = codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        return "a binary file"
    if "\x00" in text:
        return "a binary file"
    suffix = path.suffix.lower()
    named = {".json": "a JSON file", ".yaml": "a YAML file", ".yml": "a YAML file", ".toml": "a TOML file",
             ".md": "a Markdown file", ".py": "a Python file"}
    if suffix in named:
        return named[suffix]
    first = text.split("\n", 1)[0]
    if suffix == ".csv" or first.count(",") >= 2:
        header = {c.strip() for c in first.split(",")}
        missing = [c for c in COLUMNS if c not in header]
        more = ", ..." if len(missing) > 3 else ""
        return f"a CSV file without the votes columns (no {', '.join(missing[:3])}{more})"
    return "a text file"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root `fourdfy` app."""
    app.add_typer(survey_app, name="survey")
