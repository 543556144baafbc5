"""Shared fixtures of the user-study tests: designs and a small hand-made votes table."""

import pandas as pd
import pytest

from userstudy.design import design_from_dict, load_design

COLS = ["rater_id", "question_id", "prompt_id", "method_left", "method_right", "criterion", "choice",
        "is_attention_check", "answered_at"]


@pytest.fixture(scope="session")
def paper_design():
    return load_design()


@pytest.fixture(scope="session")
def small_design():
    return design_from_dict({"name": "small", "primary": "4dfy", "comparisons": ["mav3d", "wo_3d"],
                             "attention_check": {"correct_method": "4dfy", "decoys": ["broken"]}})


def votes_frame(rows):
    """rows: (rater, question, prompt, left, right, criterion, choice[, is_check]) -> raw string table."""
    out = []
    for i, r in enumerate(rows):
        rater, q, prompt, left, right, crit, choice = r[:7]
        check = r[7] if len(r) > 7 else "false"
        out.append({"rater_id": rater, "question_id": q, "prompt_id": prompt, "method_left": left,
                    "method_right": right, "criterion": crit, "choice": choice, "is_attention_check": check,
                    "answered_at": f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z"})
    return pd.DataFrame(out, columns=COLS)


@pytest.fixture()
def make_votes():
    return votes_frame


@pytest.fixture()
def tiny_votes():
    """Three raters, two mav3d questions, one wo_3d question, appearance + motion, one unanswered,
    one attention check (r3 fails it)."""
    rows = []
    # q1: a_panda (mav3d); r1, r2 see 4dfy left, r3 sees it right.
    layouts = {"r1": ("4dfy", "mav3d"), "r2": ("4dfy", "mav3d"), "r3": ("mav3d", "4dfy")}
    picks = {  # (rater, question, criterion) -> choice
        ("r1", "q1", "appearance"): "left", ("r2", "q1", "appearance"): "left", ("r3", "q1", "appearance"): "right",
        ("r1", "q1", "motion"): "right", ("r2", "q1", "motion"): "none", ("r3", "q1", "motion"): "right",
        ("r1", "q2", "appearance"): "left", ("r2", "q2", "appearance"): "right", ("r3", "q2", "appearance"): "left",
        ("r1", "q2", "motion"): "left", ("r2", "q2", "motion"): "left", ("r3", "q2", "motion"): "left",
    }
    for (rater, q, crit), choice in picks.items():
        left, right = layouts[rater]
        prompt = "a_panda_dancing" if q == "q1" else "a_goat_drinking_beer"
        rows.append((rater, q, prompt, left, right, crit, choice))
    for rater in ("r1", "r2", "r3"):
        rows.append((rater, "q3", "a_panda_dancing", "wo_3d", "4dfy", "appearance", "right"))
        rows.append((rater, "q9", "check", "4dfy", "broken", "overall", "right" if rater == "r3" else "left",
                     "true"))
    return votes_frame(rows)


@pytest.fixture(scope="module")
def mav3d_wo3d_votes(tmp_path_factory):
    """A simulated votes CSV (4 raters, MAV3D and w/o 3D, seed 1), written by `fourdfy simulate-votes`."""
    from typer.testing import CliRunner

    from pipelines.cli import app

    path = tmp_path_factory.mktemp("votes") / "votes.csv"
    res = CliRunner().invoke(app, ["simulate-votes", "--out", str(path), "--raters", "4", "--comparisons",
                                   "mav3d,wo_3d", "--seed", "1"])
    assert res.exit_code == 0, res.output
    return path
