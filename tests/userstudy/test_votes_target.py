"""SYNTHETIC votes never take the place of another file silently: `fourdfy simulate-votes` refuses an
existing --out unless --overwrite is given, and never replaces real votes; the DVC `votes` stage
replaces its own simulated file but not real votes."""

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipelines import stages
from pipelines.cli import app
from userstudy.outputs import OutputError
from userstudy.simulate import check_votes_target

runner = CliRunner()
SHORT = "primary: 4dfy\ncomparisons: [mav3d]\n"


def _one_error_line(res) -> str:
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def _simulate(tmp_path, out, *extra):
    design = tmp_path / "design.yaml"
    design.write_text(SHORT)
    return runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "2", "--checks", "0",
                               "--out", str(out), *extra])


@pytest.fixture()
def simulated(tmp_path):
    out = tmp_path / "votes.csv"
    assert _simulate(tmp_path, out, "--seed", "1").exit_code == 0
    return out


def _as_survey_export(frame: pd.DataFrame) -> pd.DataFrame:
    """The same rows as a real study's export: `rater-00001` ids, source=survey."""
    ids = {r: f"rater-{i:05d}" for i, r in enumerate(sorted(frame["rater_id"].unique()), 1)}
    return frame.assign(rater_id=frame["rater_id"].map(ids), source="survey")


def test_an_existing_file_needs_overwrite(tmp_path, simulated):
    before = simulated.read_bytes()
    line = _one_error_line(_simulate(tmp_path, simulated, "--seed", "2"))
    assert "already exists" in line and "--overwrite" in line
    assert simulated.read_bytes() == before
    res = _simulate(tmp_path, simulated, "--seed", "2", "--overwrite")
    assert res.exit_code == 0, res.output
    assert simulated.read_bytes() != before  # a simulated file is replaced when asked


def test_real_votes_are_never_replaced_even_with_overwrite(tmp_path, simulated):
    frame = pd.read_csv(simulated, dtype=str, keep_default_na=False)
    real = tmp_path / "real_votes.csv"
    _as_survey_export(frame).to_csv(real, index=False)
    # one real rater among simulated ones, and simulated-looking ids that a survey exported
    mixed = tmp_path / "mixed.csv"
    pd.concat([frame, _as_survey_export(frame).head(5)]).to_csv(mixed, index=False)
    relabelled = tmp_path / "relabelled.csv"
    frame.assign(source="survey").to_csv(relabelled, index=False)
    for path in (real, mixed, relabelled):
        before = path.read_bytes()
        for extra in ([], ["--overwrite"]):
            line = _one_error_line(_simulate(tmp_path, path, *extra))
            assert "holds real votes" in line and "never replace" in line, line
            assert path.read_bytes() == before
    assert "rater-00001" in _one_error_line(_simulate(tmp_path, real, "--overwrite"))


def test_a_file_that_is_not_a_votes_file_is_refused(tmp_path):
    notes = tmp_path / "notes.csv"
    notes.write_text("who,what\nanna,pilot study notes\n")
    line = _one_error_line(_simulate(tmp_path, notes, "--overwrite"))
    assert "not a votes CSV" in line
    assert notes.read_text() == "who,what\nanna,pilot study notes\n"
    empty = tmp_path / "empty.csv"
    empty.touch()
    assert "--overwrite" in _one_error_line(_simulate(tmp_path, empty))
    assert _simulate(tmp_path, empty, "--overwrite").exit_code == 0  # holds no votes to lose


def test_check_votes_target_new_file_is_fine(tmp_path):
    assert check_votes_target(tmp_path / "sub" / "new.csv") == tmp_path / "sub" / "new.csv"
    assert not (tmp_path / "sub").exists()  # checks only


def _params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 0, "generate": {"methods": ["4dfy"]}, "videos": {},
                                    "study": {"design": "userstudy/designs/paper.yaml", "raters": 2,
                                              "rates": "paper", "votes": ""}}))
    return path


def test_dvc_votes_stage_replaces_its_simulated_file_but_not_real_votes(tmp_path, capsys):
    params = _params(tmp_path)
    design = stages.write_design(params, tmp_path / "design.yaml")
    out = tmp_path / "data" / "votes.csv"
    stages.write_votes(params, design, out)
    out.write_text(out.read_text().replace("synthetic-", "synthetic-x"))  # still simulated
    stages.write_votes(params, design, out)  # a rerun outside DVC replaces its own output
    assert "synthetic-x" not in out.read_text()
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    _as_survey_export(frame).to_csv(out, index=False)
    before = out.read_bytes()
    with pytest.raises(OutputError, match="holds real votes"):
        stages.write_votes(params, design, out)
    args = ["votes", "--params", str(params), "--design", str(design), "--out", str(out)]
    with pytest.raises(SystemExit) as info:
        stages.main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and "real votes" in err[0]
    assert out.read_bytes() == before


def _with_trailing_commas(path):
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([header, *(r + "," for r in rows)]) + "\n", encoding="utf-8")


def test_a_trailing_comma_on_each_row_does_not_change_whose_votes_a_file_holds(tmp_path, simulated):
    """pandas would make the first field of such rows an index and shift rater_id onto another column's values."""
    real = tmp_path / "real_votes.csv"
    _as_survey_export(pd.read_csv(simulated, dtype=str, keep_default_na=False)).to_csv(real, index=False)
    _with_trailing_commas(real)
    before = real.read_bytes()
    line = _one_error_line(_simulate(tmp_path, real, "--overwrite"))
    assert "holds real votes" in line and "'rater-00001'" in line and real.read_bytes() == before
    # simulated votes with the same commas are still simulated: replaced with --overwrite, as the message says
    _with_trailing_commas(simulated)
    assert check_votes_target(simulated, overwrite=True) == simulated
    assert "already exists (simulated votes)" in _one_error_line(_simulate(tmp_path, simulated))
