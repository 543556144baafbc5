"""`fourdfy methods --params FILE` on a file that is not a params.yaml: it used to print the registered methods and
exit 0 for dvc.yaml, a votes CSV, an empty YAML or a YAML list, and for a generate block naming an undefined
variant."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def _methods(path):
    res = runner.invoke(app, ["methods", "--params", str(path)])
    return res, [line for line in res.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("text, what", [
    ("stages:\n  generate:\n    cmd: fourdfy generate\n", "has neither overrides: nor generate:"),
    ("participant,question,choice\np1,q1,a\n", "holds a YAML str, not a mapping"),
    ("", "is empty"),
    ("- 4dfy\n- wo_hybrid\n", "holds a YAML list, not a mapping"),
])
def test_a_file_that_is_not_a_params_file_is_one_error_line(tmp_path, text, what):
    path = tmp_path / "file.yaml"
    path.write_text(text)
    res, lines = _methods(path)
    assert res.exit_code == 2, res.output
    assert lines == [f"error: --params: {path} {what}, so it is not a params file of the pipeline; give params.yaml "
                     "(or a copy of it), whose overrides: defines the variants"]
    assert res.stdout == ""  # no list that looks like an answer


def test_a_params_file_without_overrides_gets_a_note_and_the_list(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("generate:\n  methods: [4dfy, wo_hybrid]\n  prompts: [a_panda_dancing]\n")
    res, lines = _methods(path)
    assert res.exit_code == 0, res.output
    assert lines == [f"note: --params: {path} has no overrides: mapping, so it defines no variants; the list is the "
                     "registered methods only"]
    assert res.stdout.startswith("4dfy ")


def test_a_generate_method_that_is_neither_registered_nor_a_variant_is_named(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("generate:\n  methods: [4dfy, myv]\n  extra:\n    methods: [wo_hybird]\n"
                    "overrides:\n  myv: {base: 4dfy, weights.sds_video: 0.5}\n")
    res, lines = _methods(path)
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith(
        f"error: --params: {path}: generate.extra.methods: unknown method 'wo_hybird' (did you mean 'wo_hybrid'?), "
        "neither registered nor a variant of its overrides; known methods: "), lines
    path.write_text("generate:\n  methods: [4dfy, myv]\n  extra:\n    methods: [wo_hybrid]\n"
                    "overrides:\n  myv: {base: 4dfy, weights.sds_video: 0.5}\n")
    res, lines = _methods(path)
    assert res.exit_code == 0 and lines == [], res.output
    assert any(line.startswith("myv ") for line in res.stdout.splitlines())
