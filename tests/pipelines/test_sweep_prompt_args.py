"""`fourdfy sweep --prompts`: a prompt's text with commas is one prompt (one job), a comma-separated list of slugs is
still a list, and a value mixing the two is refused rather than cut into prompts nobody asked for."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def _jobs(tmp_path, *prompt_args: str) -> list[str]:
    args = ["sweep", "--methods", "4dfy", "--runs", str(tmp_path / "runs"), "--dry-run"]
    for value in prompt_args:
        args += ["--prompts", value]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].split()[0] == "job"  # the plan table's header, then one row per job
    return [line.split()[0] for line in lines[1:]]


def test_prompt_text_with_commas_is_one_job(tmp_path):
    assert _jobs(tmp_path, "A cat, dancing.") == ["4dfy-a_cat_dancing"]  # was 4dfy-a_cat and 4dfy-dancing


def test_comma_separated_slugs_and_repeated_values_are_still_lists(tmp_path):
    assert _jobs(tmp_path, "a_panda_dancing,a_goat_drinking_beer") == ["4dfy-a_panda_dancing",
                                                                       "4dfy-a_goat_drinking_beer"]
    assert _jobs(tmp_path, "a_panda_dancing, a_goat_drinking_beer", "A cat, dancing.") == [
        "4dfy-a_panda_dancing", "4dfy-a_goat_drinking_beer", "4dfy-a_cat_dancing"]


def test_a_misspelt_slug_in_a_list_is_still_an_unknown_slug(tmp_path):
    """Every piece looks like a slug, so the value is a list: the typo is named, not trained as text
    'a_panda_dancing,a_goat_drinkin_beer'."""
    res = runner.invoke(app, ["sweep", "--methods", "4dfy", "--prompts", "a_panda_dancing,a_goat_drinkin_beer",
                              "--runs", str(tmp_path / "runs"), "--dry-run"])
    assert res.exit_code == 2
    assert "no prompt with slug 'a_goat_drinkin_beer' (did you mean 'a_goat_drinking_beer'?)" in res.output


@pytest.mark.parametrize("value", ["a_panda_dancing, A dog running.", "A dog running.,a_panda_dancing"])
def test_slugs_mixed_with_text_are_refused_saying_how_to_pass_each(tmp_path, value):
    res = runner.invoke(app, ["sweep", "--methods", "4dfy", "--prompts", value, "--runs", str(tmp_path / "runs"),
                              "--dry-run"])
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert line.startswith(f"error: --prompts {value!r} mixes library slugs (a_panda_dancing) with prompt text")
    assert "give each prompt as its own --prompts" in line and len(line.splitlines()) == 1
    assert not (tmp_path / "runs").exists()
