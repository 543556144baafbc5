"""Streamlit's "magic" writes any bare expression or string of the page script onto the page: app.py holds none
(a string under an assignment once showed a developer's note above the title of every page), and `survey serve`
turns magic off so that one added later still reaches no rater."""

import ast
import os

from streamlit import config
from streamlit.runtime.scriptrunner import magic
from survey_helpers import APP, app_run as run, free_port
from typer.testing import CliRunner

from pipelines.cli import app


def test_the_consent_page_shows_only_what_the_app_writes_with_magic_on(app_env, bundle):
    """As a plain `streamlit run userstudy/survey/app.py` runs it (magic on, Streamlit's default): the title comes
    first, then the instructions, the consent box and Start; no other text."""
    config.set_option("runner.magicEnabled", True)  # conftest's no_streamlit_magic puts it back
    at = run()
    # in page order; the empty container main() keeps for a database notice left out
    elements = [e for e in at.main.children.values() if not (e.type == "flex_container" and not e.children)]
    assert elements[0].type == "title" and elements[0].value == "Video comparison study", elements[:2]
    assert [e.type for e in elements[1:]] == ["markdown"] * 7 + ["checkbox", "button"], [e.type for e in elements]
    assert elements[1].value.startswith(f"You will see **{len(bundle.questions)} questions**")
    text = " ".join(str(getattr(e, "value", "")) for e in at.main)
    assert "placeholder" not in text and "PROLIFIC_PID" not in text, text


def test_the_app_script_holds_nothing_magic_would_write():
    """Every page, not only the one above: Streamlit's own magic pass over app.py inserts no write."""
    tree = magic.add_magic(APP.read_text(encoding="utf-8"), str(APP))
    writes = [node.lineno for node in ast.walk(tree)
              if isinstance(node, ast.Attribute) and node.attr == "transparent_write"]
    assert writes == [], f"app.py lines {writes} would be written onto the page by Streamlit's magic"


def test_serve_runs_streamlit_without_magic(bundle, tmp_path, monkeypatch):
    calls = []

    def _exec(path, args, env):
        calls.append(args)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", _exec)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["survey", "serve", str(bundle.root), "--db", f"sqlite:///{tmp_path / 's.sqlite'}",
                                   "--port", str(free_port())])
    assert res.exit_code == 0, res.output
    args = calls[-1]
    assert args[args.index("--runner.magicEnabled") + 1] == "false", args
