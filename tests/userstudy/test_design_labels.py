"""`fourdfy analyze` and `fourdfy survey build` refuse a design whose table would have two rows with one label, in
one line naming both rows (only the DVC pipeline's `methods` stage refused it, so by hand such tables were printed,
two rows that could not be told apart)."""

from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
DESIGN = ("primary: 4dfy\nmethods:\n  mav3d: {label: Baseline}\n  wo_3d: Baseline\n"
          "tables:\n  t2:\n    sections:\n      - {rows: [mav3d, 4dfy]}\n      - {rows: [4dfy, wo_3d]}\n")
SAYS = ("error: twice.yaml: t2 would have two rows labelled 'Baseline': 'mav3d' (methods.mav3d.label) and 'wo_3d' "
        "(methods.wo_3d.label); give one of them another label: under methods: in the design (methods.<name>.label)")


def _design(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text(DESIGN)
    return path


def test_analyze_refuses_a_design_with_one_label_on_two_rows(tmp_path):
    votes = tmp_path / "votes.csv"
    votes.write_text("rater_id\n")  # never read: the design is refused first
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(_design(tmp_path)),
                              "--out", str(tmp_path / "tables")])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [SAYS], res.output
    assert not (tmp_path / "tables").exists()


def test_survey_build_refuses_a_design_with_one_label_on_two_rows(tmp_path):
    (tmp_path / "artifacts").mkdir()
    res = runner.invoke(app, ["survey", "build", "--design", str(_design(tmp_path)), "--artifacts",
                              str(tmp_path / "artifacts"), "--out", str(tmp_path / "study"), "--allow-missing"])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [SAYS], res.output
    assert not (tmp_path / "study").exists()
