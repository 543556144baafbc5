"""What a user sees when `fourdfy analyze | simulate-votes | audit | power` write their outputs: no
output replaces another, no stale files of an earlier run, the short design simulates, and an
output path that cannot be written is one `error:` line with exit code 2."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from prompts import PROMPT_DIR, load_prompts
from userstudy.outputs import listed_files
from userstudy_helpers import one_error_line

runner = CliRunner()
SHORT = ("primary: 4dfy\ncomparisons: [mav3d, wo_3d]\n"
         "attention_check: {correct_method: 4dfy, decoys: [attention_decoy]}\n")


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def short_votes(tmp_path_factory):
    """Votes for mav3d and wo_3d (the paper's design, 28 and 5 prompts) and a short design of them."""
    folder = tmp_path_factory.mktemp("short")
    design = folder / "design.yaml"
    design.write_text(SHORT)
    votes = folder / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--comparisons", "mav3d,wo_3d", "--raters", "6", "--out", str(votes)])
    assert res.exit_code == 0, res.output
    return design, votes


def test_short_design_simulates_the_paper_prompts(tmp_path):
    """Issue 15 item 3: the documented short form used to be refused by simulate-votes."""
    design = tmp_path / "design.yaml"
    design.write_text(SHORT)
    votes = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "3", "--out", str(votes)])
    assert res.exit_code == 0, res.output
    v = pd.read_csv(votes, dtype=str, keep_default_na=False)
    main = v[v["is_attention_check"] == "false"]
    paper_prompts = list(load_prompts(PROMPT_DIR / "mav3d_28.txt"))
    for comp in ("mav3d", "wo_3d"):
        rows = main[(main["method_left"] == comp) | (main["method_right"] == comp)]
        assert sorted(rows["prompt_id"].unique()) == sorted(paper_prompts)
    assert (v["is_attention_check"] == "true").any()
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out",
                              str(tmp_path / "res"), "--n-boot", "100"])
    assert res.exit_code == 0, res.output


def test_the_minimal_short_design_simulates(tmp_path):
    """`primary` + `comparisons` and nothing else: no decoy, so no attention checks unless asked."""
    design = tmp_path / "design.yaml"
    design.write_text("primary: 4dfy\ncomparisons: [mav3d]\n")
    votes = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "2", "--out", str(votes)])
    assert res.exit_code == 0, res.output
    assert "no attention checks" in res.output
    v = pd.read_csv(votes, dtype=str)
    assert (v["is_attention_check"] == "false").all() and v["prompt_id"].nunique() == 28
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--checks", "1", "--out", str(votes)])
    assert "--checks 0" in one_error_line(res)


def test_short_design_prompt_count_from_the_design(tmp_path):
    design = tmp_path / "design.yaml"
    design.write_text("primary: 4dfy\ncomparisons: [mav3d]\nprompt_set: ablation_5\n")
    votes = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "2", "--checks", "0",
                              "--out", str(votes)])
    assert res.exit_code == 0, res.output
    got = set(pd.read_csv(votes, dtype=str)["prompt_id"])
    assert got == set(load_prompts(PROMPT_DIR / "ablation_5.txt"))
    design.write_text("primary: 4dfy\ncomparisons: [mav3d]\nn_prompts: 3\n")
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "2", "--checks", "0",
                              "--out", str(votes), "--overwrite"])  # replaces the simulated file above
    assert res.exit_code == 0, res.output
    assert pd.read_csv(votes, dtype=str)["prompt_id"].nunique() == 3


def test_short_design_analysis_keeps_every_output(short_votes, tmp_path):
    design, votes = short_votes
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out),
                              "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    stats = pd.read_csv(out / "table.csv")  # the statistics, not the layout table
    assert {"n", "k", "chi2", "p_chi2", "ci_low", "ci_high", "p_holm"} <= set(stats.columns)
    assert len(stats) == 2 * 5
    layout = pd.read_csv(out / "comparisons.csv")
    assert list(layout["method"]) == ["4dfy", "mav3d", "wo_3d"]
    assert "`table.csv`" in (out / "comparisons.md").read_text()  # the footnote points at the statistics
    on_disk = _files(out)
    listed = listed_files(out / "report.md")
    assert sorted(listed) == on_disk and len(set(listed)) == len(listed)
    assert f"wrote {len(on_disk)} files to {out}" in res.output


def test_layout_table_may_not_take_a_fixed_output_name(short_votes, tmp_path):
    _, votes = short_votes
    design = tmp_path / "design.yaml"
    design.write_text("primary: 4dfy\ntables:\n  raters: {sections: [{rows: [4dfy, mav3d, wo_3d]}]}\n"
                      "attention_check: {correct_method: 4dfy, decoys: [attention_decoy]}\n")
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out)])
    line = one_error_line(res)
    assert "tables.raters" in line and "fixed output" in line and "rename the table" in line
    assert not out.exists()


def test_metrics_inside_the_output_folder_is_listed_once(short_votes, tmp_path, monkeypatch):
    import userstudy.analysis
    from userstudy.design import load_design
    from userstudy.tables import output_names

    design, votes = short_votes
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out),
                              "--n-boot", "100", "--metrics", str(out / "dvc" / "metrics.json")])
    assert res.exit_code == 0, res.output
    on_disk = _files(out)
    assert "dvc/metrics.json" in on_disk and "metrics.json" not in on_disk
    assert sorted(listed_files(out / "report.md")) == on_disk
    assert f"wrote {len(on_disk)} files" in res.output
    assert set(on_disk) - {"dvc/metrics.json"} == output_names(load_design(design))  # what the early check knows
    # refused before the analysis runs (it used to be refused after the bootstrap)
    monkeypatch.setattr(userstudy.analysis, "analyze", lambda *a, **k: pytest.fail("the analysis ran"))
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out),
                              "--n-boot", "100", "--metrics", str(out / "table.csv")])
    assert "would replace the output table.csv" in one_error_line(res)
    assert (out / "dvc" / "metrics.json").is_file()  # the earlier outputs are untouched


def test_a_second_analysis_leaves_no_stale_files(short_votes, tmp_path):
    design, votes = short_votes
    out = tmp_path / "res"
    two = tmp_path / "two_tables.yaml"  # the same comparisons laid out as Table 2 and Table 3
    two.write_text("primary: 4dfy\ntables:\n  table2: {sections: [{rows: [mav3d, 4dfy]}]}\n"
                   "  table3: {sections: [{rows: [4dfy, wo_3d]}]}\n"
                   "attention_check: {correct_method: 4dfy, decoys: [attention_decoy]}\n")
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(two), "--out", str(out),
                              "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    assert {"table2.md", "table3.tex"} <= set(_files(out))
    two.unlink()
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out),
                              "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    on_disk = _files(out)
    assert not [n for n in on_disk if n.startswith(("table2", "table3"))]
    assert sorted(listed_files(out / "report.md")) == on_disk
    assert [p.name for p in tmp_path.iterdir()] == ["res"]  # no temporary folders left beside it


def test_a_folder_with_other_files_is_never_replaced(short_votes, tmp_path):
    design, votes = short_votes
    out = tmp_path / "res"
    args = ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out), "--n-boot", "100"]
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    assert "not empty and holds no report" in one_error_line(runner.invoke(app, args))
    (out / "thesis.tex").unlink()
    assert runner.invoke(app, args).exit_code == 0
    (out / "notes.txt").write_text("mine")  # added by hand after the analysis
    line = one_error_line(runner.invoke(app, args))
    assert "did not write (notes.txt)" in line
    assert (out / "notes.txt").read_text() == "mine" and (out / "report.md").is_file()


# --- output paths that cannot be written: one line, exit 2, nothing half-written ---

def test_a_file_in_the_way(short_votes, tmp_path):
    design, votes = short_votes
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    cases = [
        ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(blocker / "res")],
        ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(blocker)],
        ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(tmp_path / "ok"),
         "--metrics", str(blocker / "m.json")],
        ["simulate-votes", "--design", str(design), "--out", str(blocker / "votes.csv")],
        ["simulate-votes", "--design", str(design), "--out", str(tmp_path)],  # a folder where the file goes
        ["audit", "--out", str(blocker / "audit.md")],
        ["audit", "--out", str(tmp_path / "a" / "audit.md"), "--paper-dir", str(blocker)],
        ["audit", "--out", str(tmp_path)],
        ["power", "--rate", "0.7", "--max-raters", "4", "--sims", "100", "--out", str(blocker / "p.csv")],
    ]
    for args in cases:
        res = runner.invoke(app, args)
        line = one_error_line(res)
        assert "blocker" in line or str(tmp_path) in line, line
    assert blocker.read_text() == "a file, not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]  # nothing half-written


def _unprivileged(cmd: list[str]) -> list[str]:
    """Run as an unprivileged user when the tests run as root (root writes into read-only folders)."""
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only folder cannot be made")
    drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*drop, sys.executable, "-c", "import userstudy.outputs"], capture_output=True,
                           cwd=tempfile.gettempdir())
    if probe.returncode != 0:
        pytest.skip("running as root and an unprivileged user cannot run this Python/checkout")
    return [*drop, *cmd]


def test_read_only_output_folder_subprocess():
    """The user's view: a real read-only folder, the real `fourdfy` process, stderr only one line."""
    base = Path(tempfile.mkdtemp(prefix="fourdfy-ro-"))
    try:
        base.chmod(0o755)
        design = base / "design.yaml"
        design.write_text(SHORT)
        votes = base / "votes.csv"
        assert runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "3",
                                   "--out", str(votes)]).exit_code == 0
        ro = base / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        env = {**os.environ, "MPLCONFIGDIR": str(base / "mpl"), "PYTHONDONTWRITEBYTECODE": "1"}
        for args in (["analyze", "--votes", str(votes), "--design", str(design), "--out", str(ro / "res"),
                      "--n-boot", "100"],
                     ["simulate-votes", "--design", str(design), "--out", str(ro / "votes.csv")],
                     # a file in an existing read-only folder is refused before the simulation, not after it
                     ["power", "--rate", "0.7", "--max-raters", "4", "--sims", "100", "--out", str(ro / "p.csv")]):
            proc = subprocess.run(_unprivileged([sys.executable, "-m", "pipelines.cli", *args]), env=env,
                                  capture_output=True, text=True, cwd=base)
            assert proc.returncode == 2, proc.stderr
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: ") and str(ro) in lines[0], proc.stderr
            assert f"{ro} is not writable" in lines[0], lines[0]
            assert proc.stdout == "", proc.stdout  # nothing was computed or printed first
        assert list(ro.iterdir()) == []
    finally:
        if (base / "ro").exists():
            (base / "ro").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
