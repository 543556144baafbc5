"""`fourdfy power --out` and `fourdfy audit` (--out, --paper-dir) never replace a file silently: an existing
file needs --overwrite, and a file that is not the command's own kind of output (a votes CSV above all) is
never replaced, even with it: the rule of `simulate-votes --out`."""

from typer.testing import CliRunner

from pipelines.cli import app
from userstudy_helpers import one_error_line

runner = CliRunner()
VOTES = ("rater_id,question_id,prompt_id,method_left,method_right,criterion,choice,is_attention_check,answered_at\n"
         "rater-00001,mav3d__a_panda_dancing,a_panda_dancing,mav3d,4dfy,appearance,right,false,\n")
PAPER_CSVS = ["arxiv_v1_table2.csv", "cvpr2024_table2.csv", "cvpr2024_table3.csv", "reported_pvalues.csv"]
TITLE = "# Audit of the published user-study numbers (4D-fy)"


def _power(out, *extra):
    return runner.invoke(app, ["power", "--rate", "0.7", "--max-raters", "4", "--sims", "20", "--out", str(out),
                               *extra])


def _audit(out, paper_dir, *extra):
    return runner.invoke(app, ["audit", "--out", str(out), "--paper-dir", str(paper_dir), *extra])


def test_power_refuses_an_existing_file_without_overwrite(tmp_path):
    out = tmp_path / "power.csv"
    assert _power(out).exit_code == 0
    before = out.read_bytes()
    line = one_error_line(_power(out, "--seed", "1"))
    assert line == (f"error: --out {out} already exists (a power table of `fourdfy power`); give --overwrite to "
                    "replace it or choose another --out")
    assert out.read_bytes() == before
    res = _power(out, "--seed", "1", "--overwrite")
    assert res.exit_code == 0, res.output
    assert out.read_bytes() != before and out.read_text().startswith("n_raters,judgments,power_chi2,")


def test_power_never_replaces_a_votes_file(tmp_path):
    votes = tmp_path / "votes.csv"
    votes.write_text(VOTES)
    for extra in ((), ("--overwrite",)):
        line = one_error_line(_power(votes, *extra))
        assert line == (f"error: --out {votes} exists and is not a power table of `fourdfy power`; it is never "
                        "replaced, even with --overwrite: move it or choose another --out")
        assert votes.read_text() == VOTES


def test_audit_out_needs_overwrite_and_is_replaced_only_when_it_is_an_audit(tmp_path):
    out, paper = tmp_path / "audit.md", tmp_path / "paper"
    assert _audit(out, paper).exit_code == 0
    assert out.read_text(encoding="utf-8").splitlines()[0] == TITLE
    mine = out.read_text(encoding="utf-8") + "a note of mine\n"  # still an audit report: the title is line 1
    out.write_text(mine, encoding="utf-8")
    line = one_error_line(_audit(out, tmp_path / "paper2"))
    assert line == (f"error: --out {out} already exists (an audit report of `fourdfy audit`); give --overwrite to "
                    "replace it or choose another --out")
    assert out.read_text(encoding="utf-8") == mine and not (tmp_path / "paper2").exists()
    res = _audit(out, paper, "--overwrite")
    assert res.exit_code == 0, res.output
    assert "a note of mine" not in out.read_text(encoding="utf-8")
    # a votes file is not an audit report: never replaced, and nothing else is written either
    votes = tmp_path / "votes.csv"
    votes.write_text(VOTES)
    line = one_error_line(_audit(votes, tmp_path / "paper3", "--overwrite"))
    assert line == (f"error: --out {votes} exists and is not an audit report of `fourdfy audit`; it is never "
                    "replaced, even with --overwrite: move it or choose another --out")
    assert votes.read_text() == VOTES and not (tmp_path / "paper3").exists()


def test_paper_dir_replaces_only_its_own_earlier_tables_and_only_with_overwrite(tmp_path):
    paper = tmp_path / "paper"
    assert _audit(tmp_path / "a.md", paper).exit_code == 0
    assert sorted(p.name for p in paper.iterdir()) == PAPER_CSVS
    (paper / "notes.txt").write_text("mine\n")  # another file there is never touched
    earlier = {n: (paper / n).read_bytes() for n in PAPER_CSVS}
    line = one_error_line(_audit(tmp_path / "b.md", paper))
    assert line == (f"error: --paper-dir {paper} already holds cvpr2024_table2.csv, cvpr2024_table3.csv, "
                    "arxiv_v1_table2.csv, reported_pvalues.csv (published tables of an earlier `fourdfy audit`); "
                    "give --overwrite to replace them or choose another --paper-dir")
    assert not (tmp_path / "b.md").exists()  # checked before the first file is written
    res = _audit(tmp_path / "b.md", paper, "--overwrite")
    assert res.exit_code == 0, res.output
    assert {n: (paper / n).read_bytes() for n in PAPER_CSVS} == earlier  # the same tables, rewritten
    assert (paper / "notes.txt").read_text() == "mine\n"
    # a file of one of those names that the audit did not write: never replaced
    (paper / "cvpr2024_table3.csv").write_text(VOTES)
    line = one_error_line(_audit(tmp_path / "c.md", paper, "--overwrite"))
    assert line == (f"error: --paper-dir {paper} holds cvpr2024_table3.csv, not the published tables `fourdfy "
                    "audit` writes there; such a file is never replaced, even with --overwrite: move it or choose "
                    "another --paper-dir")
    assert (paper / "cvpr2024_table3.csv").read_text() == VOTES and not (tmp_path / "c.md").exists()


def test_audit_out_may_not_be_one_of_the_paper_csvs(tmp_path):
    paper = tmp_path / "paper"
    out = paper / "cvpr2024_table2.csv"
    line = one_error_line(_audit(out, paper))
    assert line == f"error: --out {out} is cvpr2024_table2.csv of --paper-dir {paper}; give --out another path"
    assert not paper.exists()


def test_n_boot_help_says_its_minimum():
    res = runner.invoke(app, ["analyze", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "Rater-bootstrap resamples per cell (at least 100)." in res.output


def test_first_line_is_read_when_the_read_limit_cuts_a_character_further_on(tmp_path):
    """The audit report holds non-ASCII text (chi-square, nabla): a two-byte character cut by the 4096-byte read
    limit must not make the command's own report look foreign."""
    from userstudy.outputs import first_line

    report = tmp_path / "audit.md"
    report.write_bytes(b"# Title\n" + b"x" * (4096 - 8 - 1) + "\u00b2".encode())  # '²' straddles the limit
    assert first_line(report) == "# Title"


def test_empty_or_headed_decides_from_one_read(tmp_path):
    from userstudy.outputs import empty_or_headed

    cases = {"empty": (b"", True), "own": (b"method,clip\r\nx,1\n", True), "blank_first": (b"\nmethod,clip\n", False),
             "other": (b"prompt,score\n", False), "binary": (b"\xff\xfe\x00", False)}
    for name, (data, expected) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert empty_or_headed(tmp_path / name, "method,clip") is expected, name
    assert empty_or_headed(tmp_path / "missing", "method,clip") is False
    assert empty_or_headed(tmp_path, "method,clip") is False  # a folder cannot be read as a file
