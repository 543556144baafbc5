"""Fixtures shared by the pipeline tests."""

import pytest


@pytest.fixture
def methods_stage_error(capsys):
    """Run the DVC `methods` stage on a params.yaml that it must refuse; return its one `error:` line, after checking
    that it exits 2, names the file first and writes nothing."""
    from pipelines import stages

    def run(params, out) -> str:
        with pytest.raises(SystemExit) as exit_:
            stages.main(["methods", "--params", str(params), "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith(f"error: {params}: "), err
        assert not out.exists()  # refused before anything is written
        return err[0]

    return run
