"""Simulated panels: labelled synthetic, the model does what it says, and the intervals cover."""

import numpy as np
import pandas as pd
import pytest

from userstudy import stats
from userstudy.analysis import AnalysisConfig, ExclusionRule, _seed_for, analyze
from userstudy.design import design_from_dict
from userstudy.simulate import (DEFAULT_ATTENTION_CHECKS, PanelConfig, checks_per_rater, panel_config,
                                simulate_counts, simulate_votes)
from userstudy.votes import validate_votes
from userstudy_helpers import ideal_panel

N_SIMS = 200


def _coverage(lo, hi, p):
    return float(np.mean((lo <= p) & (p <= hi)))


def _rater_bootstrap(k, n, n_boot, rng):
    """The analysis's interval (`stats.cluster_bootstrap`, BCa over raters) for each simulated panel."""
    return np.array([stats.cluster_bootstrap(k[i], n[i], n_boot, rng) for i in range(len(k))]).T


@pytest.mark.parametrize("p", [0.41, 0.52, 0.67, 0.92])
def test_wilson_covers_with_homogeneous_raters(p):
    rng = np.random.default_rng(100)
    k, n = simulate_counts(p, 26, 28, ideal_panel(unanswered=0.02), N_SIMS, rng)
    lo, hi = stats.wilson(k.sum(1), n.sum(1))
    assert _coverage(lo, hi, p) >= 0.90


# The paper's rates: vs MAV3D (28 judgments per rater) and the ablations (5 per rater).
@pytest.mark.parametrize("p,prompts", [(0.41, 28), (0.52, 28), (0.67, 28), (0.92, 28), (0.70, 5), (0.88, 5)])
def test_rater_bootstrap_covers_with_heterogeneous_raters(p, prompts):
    rng = np.random.default_rng(200)
    cfg = ideal_panel(rater_icc=0.05, position_bias=0.2, unanswered=0.02)
    k, n = simulate_counts(p, 26, prompts, cfg, N_SIMS, rng)
    lo, hi = _rater_bootstrap(k, n, 1000, rng)
    assert _coverage(lo, hi, p) >= 0.90


def test_wilson_alone_undercovers_when_raters_differ():
    """Why the rater bootstrap is there: with strong heterogeneity the independence interval is too narrow."""
    rng = np.random.default_rng(300)
    k, n = simulate_counts(0.67, 26, 28, ideal_panel(rater_icc=0.2), N_SIMS, rng)
    lo, hi = stats.wilson(k.sum(1), n.sum(1))
    assert _coverage(lo, hi, 0.67) < 0.8
    blo, bhi = _rater_bootstrap(k, n, 1000, rng)
    assert _coverage(blo, bhi, 0.67) >= 0.90


def test_analysis_intervals_are_the_tested_ones(paper_design):
    """The cells of `analyze` use exactly the interval functions the coverage tests check."""
    raw = simulate_votes(paper_design, ideal_panel(rater_icc=0.1, default_rate=0.7, comparisons=("mav3d",), seed=5))
    v = validate_votes(raw, paper_design)
    a = analyze(v, paper_design, AnalysisConfig(n_boot=300, seed=9))
    f = v.frame
    for crit in ("appearance", "overall"):
        cell = a.table[(a.table.comparison == "mav3d") & (a.table.criterion == crit)].iloc[0]
        sub = f[(f.criterion == crit) & f.answered]
        per = sub.groupby("rater_id")["chose_primary"].agg(["sum", "size"])
        lo, hi = stats.cluster_bootstrap(per["sum"], per["size"], 300, _seed_for(9, "mav3d", crit))
        assert (cell.boot_low, cell.boot_high) == pytest.approx((100 * lo, 100 * hi))
        wlo, whi = stats.wilson([per["sum"].sum()], [per["size"].sum()])
        assert (cell.ci_low, cell.ci_high) == pytest.approx((100 * wlo[0], 100 * whi[0]))


def test_rate_is_preserved_and_position_bias_shows_as_left_share(paper_design):
    rng = np.random.default_rng(7)
    k, n = simulate_counts(0.7, 400, 28, ideal_panel(rater_icc=0.1, position_bias=0.3), 1, rng)
    assert k.sum() / n.sum() == pytest.approx(0.7, abs=0.015)
    raw = simulate_votes(paper_design, ideal_panel(n_raters=200, default_rate=0.7, position_bias=0.3,
                                                   comparisons=("mav3d",), seed=3))
    a = analyze(validate_votes(raw, paper_design), paper_design, AnalysisConfig(n_boot=100))
    t = a.table[a.table.n > 0]
    assert len(t) == 5
    left = (t.left_share * t.n).sum() / t.n.sum()
    assert left == pytest.approx(0.5 + 0.3 * 0.3, abs=0.02)  # 0.5 + b min(p, 1-p)
    assert (t.pct_primary_when_left > t.pct_primary_when_right).all()
    unbiased = simulate_votes(paper_design, ideal_panel(n_raters=200, default_rate=0.7, comparisons=("mav3d",),
                                                        seed=3))
    u = analyze(validate_votes(unbiased, paper_design), paper_design, AnalysisConfig(n_boot=100)).table
    u = u[u.n > 0]
    assert ((u.left_share * u.n).sum() / u.n.sum()) == pytest.approx(0.5, abs=0.02)


def test_attention_checks_remove_careless_raters(paper_design):
    cfg = ideal_panel(n_raters=60, rates={"mav3d": 0.92}, careless_share=0.3, lapse=0.0, attention_checks=2,
                      comparisons=("mav3d",), seed=4)
    v = validate_votes(simulate_votes(paper_design, cfg), paper_design)
    with_rule = analyze(v, paper_design, AnalysisConfig(n_boot=100))
    no_rule = analyze(v, paper_design, AnalysisConfig(n_boot=100, exclusion=ExclusionRule(max_failed_share=1.0)))
    assert 10 <= with_rule.summary["raters_excluded"] <= 30
    err = lambda a: abs(a.table.pct_primary - 92).mean()  # noqa: E731
    assert err(with_rule) < 2.5 < err(no_rule)


def test_labelled_synthetic_and_deterministic(paper_design):
    cfg = ideal_panel(n_raters=5, attention_checks=1, unanswered=0.1, seed=1)
    a, b = simulate_votes(paper_design, cfg), simulate_votes(paper_design, cfg)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(simulate_votes(paper_design, ideal_panel(n_raters=5, attention_checks=1, seed=2)))
    assert a.rater_id.str.startswith("synthetic-").all() and (a.source == "synthetic").all()
    assert validate_votes(a, paper_design).synthetic
    # Questions: 28 vs MAV3D + 5 per ablation x 7 + 1 check; each with five criteria.
    assert a.question_id.nunique() == 28 + 35 + 1 and len(a) == 5 * 5 * (28 + 35 + 1)
    assert "a_panda_dancing" in set(a.prompt_id)
    assert (a.loc[a.choice == "none", "answered_at"] == "").all()


def test_global_layout_confounds_position(paper_design):
    cfg = ideal_panel(n_raters=10, layout="global", comparisons=("mav3d",), seed=0)
    a = analyze(validate_votes(simulate_votes(paper_design, cfg), paper_design), paper_design,
                AnalysisConfig(n_boot=100))
    assert a.summary["questions_fixed_layout"] == a.summary["questions"] == 28
    cfg = ideal_panel(n_raters=10, comparisons=("mav3d",), seed=0)
    b = analyze(validate_votes(simulate_votes(paper_design, cfg), paper_design), paper_design,
                AnalysisConfig(n_boot=100))
    assert b.summary["questions_fixed_layout"] == 0


@pytest.mark.parametrize("cfg,message", [
    (PanelConfig(comparisons=("dreamfusion",)), "not in the design: dreamfusion \\(the design.s: mav3d"),
    (PanelConfig(rates={"dreamfusion": 0.6}), "not in the design"),
    (PanelConfig(rates={"mav3d": {"looks": 0.6}}), "unknown criterion"),
    (PanelConfig(rater_icc=1.0), "below 1"),
    (PanelConfig(layout="random"), "unknown layout"),
])
def test_bad_panel_settings(paper_design, cfg, message):
    with pytest.raises(ValueError, match=message):
        simulate_votes(paper_design, cfg)


def test_checks_need_a_decoy():
    d = design_from_dict({"primary": "4dfy", "comparisons": ["mav3d"]})
    with pytest.raises(ValueError, match="decoy"):
        simulate_votes(d, PanelConfig(attention_checks=1))
    # A prompt set without a prompt file needs n_prompts (the short form without either uses the
    # paper's 28 prompts: tests/userstudy/test_userstudy_cli.py).
    d = design_from_dict({"primary": "4dfy", "comparisons": ["mav3d"], "prompt_set": "my_own_prompts"})
    with pytest.raises(ValueError, match="n_prompts"):
        simulate_votes(d, PanelConfig())
    d = design_from_dict({"primary": "4dfy", "comparisons": ["mav3d"], "prompt_set": "ablation_5", "n_prompts": 6})
    with pytest.raises(ValueError, match="n_prompts 6 is more than the 5 prompts of ablation_5.txt"):
        simulate_votes(d, PanelConfig())


def test_the_default_panel_asks_for_checks_only_when_the_design_has_a_decoy(paper_design):
    """One rule for the default number of attention checks, used by the CLI and the votes stage alike."""
    no_decoy = design_from_dict({"primary": "4dfy", "comparisons": ["mav3d"]})
    assert PanelConfig().attention_checks is None
    assert checks_per_rater(PanelConfig(), paper_design) == DEFAULT_ATTENTION_CHECKS == 2
    assert checks_per_rater(PanelConfig(), no_decoy) == 0
    assert checks_per_rater(PanelConfig(attention_checks=1), paper_design) == 1
    raw = simulate_votes(paper_design, PanelConfig(n_raters=2, comparisons=("mav3d",)))
    assert raw.loc[raw.is_attention_check == "true", "question_id"].nunique() == 2
    raw = simulate_votes(no_decoy, PanelConfig(n_raters=2))
    assert (raw.is_attention_check == "false").all()


def test_panel_config_takes_only_panel_settings():
    cfg = panel_config({"rater_icc": 0, "layout": "global"}, n_raters=3, seed=2)
    assert (cfg.rater_icc, cfg.layout, cfg.n_raters, cfg.seed, cfg.careless_share) == (0.0, "global", 3, 2, 0.05)
    with pytest.raises(ValueError, match=r"^study.panel: unknown key n_raters \(valid: rater_icc, position_bias, "):
        panel_config({"n_raters": 3})
    with pytest.raises(ValueError, match=r"^study.panel.lapse must be a number, got True"):
        panel_config({"lapse": True})


def test_panels_simulated_per_table_are_analysed_together_like_survey_exports(tmp_path):
    """`simulate-votes --tables` simulates the survey of those tables, with the survey bundle's question ids
    (`<method>__<slug>`, `check__<decoy>__...`): the paper's Table 2 survey has 53 questions, and two panels, one
    per table, are analysed together with two --votes as two exports are (numbered q01... in every file, they
    clashed)."""
    from typer.testing import CliRunner

    from pipelines.cli import app

    runner = CliRunner()
    t2, t3 = tmp_path / "t2.csv", tmp_path / "t3.csv"
    for table, out, seed in (("table2", t2, "0"), ("table3", t3, "1")):
        res = runner.invoke(app, ["simulate-votes", "--tables", table, "--raters", "3", "--seed", seed, "--out",
                                  str(out)])
        assert res.exit_code == 0, res.output
    first = pd.read_csv(t2, dtype=str)
    plain = first[first["is_attention_check"] == "false"]
    assert plain["question_id"].nunique() == 53
    assert (plain["question_id"] == plain["method_left"].where(plain["method_left"] != "4dfy", plain["method_right"])
            + "__" + plain["prompt_id"]).all()
    third = pd.read_csv(t3, dtype=str).query("is_attention_check == 'false'")
    assert set(third["method_left"]) | set(third["method_right"]) == {"4dfy", "single_stage", "single_grid"}
    res = runner.invoke(app, ["analyze", "--votes", str(t2), "--votes", str(t3), "--out", str(tmp_path / "o"),
                              "--n-boot", "200"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "o" / "table.csv")
    assert set(table.loc[table["n"] > 0, "comparison"]) == {"mav3d", "wo_3d_img", "wo_3d", "wo_img", "wo_hybrid",
                                                             "hexplane", "single_stage", "single_grid"}
    import re

    kept, excluded = map(int, re.search(r"from (\d+) raters analysed \((\d+) excluded", res.output).groups())
    assert kept + excluded == 6  # each file's 3 raters are their own
