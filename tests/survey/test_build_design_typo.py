"""`survey build` warns, in one line, about a design method close to a method of the --artifacts (a typo would be
surveyed as a method without videos, its videos left out), and builds as before."""

from survey_helpers import write_artifact
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
PANDA = "a_panda_dancing"


def test_a_near_miss_of_a_method_of_the_artifacts_is_warned_about(tmp_path):
    arts = tmp_path / "arts"
    for seed, method in enumerate(("4dfy", "mybaseline")):
        write_artifact(arts, method, PANDA, "A panda dancing.", seed)
    typo = tmp_path / "typo.yaml"
    typo.write_text("primary: 4dfy\ncomparisons: [mybaselin]\nattention_check: {decoys: []}\n")
    res = runner.invoke(app, ["survey", "build", "--design", str(typo), "--artifacts", str(arts), "--out",
                              str(tmp_path / "b1"), "--allow-missing"])
    warned = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:") and "names method" in ln]
    assert len(warned) == 1, res.output
    assert warned[0].startswith("warning: typo.yaml names method 'mybaselin', which is no registered method")
    assert warned[0].endswith("no method of the --artifacts; did you mean 'mybaseline'? (a new method's name is fine)")
    # spelt right: no warning, and the bundle is built
    right = tmp_path / "right.yaml"
    right.write_text("primary: 4dfy\ncomparisons: [mybaseline]\nattention_check: {decoys: []}\n")
    res = runner.invoke(app, ["survey", "build", "--design", str(right), "--artifacts", str(arts), "--out",
                              str(tmp_path / "b2")])
    assert res.exit_code == 0, res.output
    assert "names method" not in res.stderr and (tmp_path / "b2" / "bundle.json").is_file()
