"""The paper audit: published numbers, implied chi-square/p, reported p-values, contradicted claims."""

import math
from pathlib import Path

import pandas as pd
import pytest

from userstudy import audit, published

REPO = Path(__file__).resolve().parents[2]

# Independent transcription of protocol.md / the paper (AQ, SQ, MQ, TA, Overall; CLIP).
CVPR = {
    "mav3d": (33.9, (92, 89, 41, 52, 67)), "wo_3d_img": (29.3, (100, 100, 78, 86, 94)),
    "wo_3d": (35.1, (88, 89, 95, 92, 91)), "wo_img": (34.5, (70, 68, 68, 69, 70)),
    "wo_hybrid": (33.8, (100, 100, 78, 88, 95)), "hexplane": (34.5, (95, 92, 90, 92, 95)),
    "single_stage": (29.7, (100, 100, 88, 97, 100)), "single_grid": (25.5, (100, 100, 99, 100, 100)),
}
ARXIV_V1_OTHER = (5, 8, 52, 44, 28)  # % of votes for MAV3D


def p_paper(k, n):
    chi2 = 2 * (k - n / 2) ** 2 / (n / 2)
    return math.erfc(math.sqrt(chi2 / 2))


def test_published_numbers_match_the_paper():
    rows = {(t.version, r.method, r.prompt_set): (r, t) for t in published.TABLES for r in t.rows}
    for method, (clip, pct) in CVPR.items():
        (r, t), = [v for k, v in rows.items() if k[0] == "cvpr2024" and k[1] == method]
        assert (r.clip, r.pct, t.pct_for, t.n_raters) == (clip, pct, "primary", 26)
        assert r.n_prompts == (28 if method == "mav3d" else 5)
    assert rows[("cvpr2024", "4dfy", "mav3d_28")][0].clip == 34.2
    assert rows[("cvpr2024", "4dfy", "ablation_5")][0].clip == 35.0
    r, t = rows[("arxiv_v1", "mav3d", "mav3d_17")]
    assert (r.clip, r.pct, r.n_prompts, t.pct_for) == (34.1, ARXIV_V1_OTHER, 17, "other")
    assert rows[("arxiv_v1", "4dfy", "mav3d_17")][0].clip == 34.6


def test_arxiv_v1_pvalues_are_reproduced_within_rounding():
    n = 26 * 17
    for crit_idx, reported in ((3, 0.0174), (2, 0.3919)):  # TA, MQ
        other_pct = ARXIV_V1_OTHER[crit_idx]
        counts = [k for k in range(n + 1) if abs(100 * k / n - other_pct) <= 0.5]
        assert any(round(p_paper(n - k, n), 4) == reported for k in counts)
    imp = audit.implied_stats()
    v1 = imp[imp.version == "arxiv_v1"].set_index("criterion")
    for crit, reported in (("text", 0.0174), ("motion", 0.3919)):
        row = v1.loc[crit]
        assert row.n == 442 and row.p_reproduced
        assert row.p_min - 5e-5 <= reported <= row.p_max + 5e-5  # reported to 4 decimals
        for k in map(int, row.k_reproducing_p.split()):
            assert round(p_paper(k, 442), 4) == reported
    assert v1.loc["text", "significant"] == "yes" and v1.loc["motion", "significant"] == "no"


def test_cvpr_motion_and_text_vs_mav3d():
    imp = audit.implied_stats()
    c = imp[(imp.version == "cvpr2024") & (imp.method == "mav3d")].set_index("criterion")
    assert c.loc["motion", "n"] == 728
    assert c.loc["motion", "chi2_nominal"] == pytest.approx((2 * 0.41 * 728 - 728) ** 2 / 728)
    assert 23 < c.loc["motion", "chi2_nominal"] < 24.5 and c.loc["motion", "p_max"] < 1e-5
    assert c.loc["motion", "significant"] == "yes" and c.loc["motion", "favours"] == "other"
    assert 1.0 < c.loc["text", "chi2_nominal"] < 1.3 and c.loc["text", "p_min"] > 0.05
    assert c.loc["text", "significant"] == "no"
    # Every printed percentage is attainable with N = raters x prompts.
    assert imp["possible"].all()


def test_claims_flagged():
    claims = audit.check_claims()
    bad = claims[claims.verdict == "contradicted"]
    flagged = set(zip(bad["where"], bad["method"], bad["criterion"]))
    assert ("Sec. 4.2", "mav3d", "text") in flagged  # "significant ... text alignment"
    assert ("Sec. 4.2", "mav3d", "motion") in flagged  # "roughly on par"
    assert ("Supplement S2", "mav3d", "text") in flagged and ("Supplement S2", "mav3d", "motion") in flagged
    # Claims the numbers support are not flagged.
    ok = claims[claims.verdict == "holds"]
    assert {("Sec. 4.2", "mav3d", c) for c in ("appearance", "structure", "overall")} <= set(
        zip(ok["where"], ok["method"], ok["criterion"]))
    assert not bad["where"].str.contains("S4").any()

    # S2 describes the 53-question survey and the caption is Table 2's: their claims cover Table 2's 30 cells, not
    # also the supplement's Table 3 (S4), whose single_stage / single_grid cells they used to count
    table2 = {"mav3d", "wo_3d_img", "wo_3d", "wo_img", "wo_hybrid", "hexplane"}
    scoped = [i for i, c in enumerate(audit.CLAIMS) if c.table == "table2"]
    assert {audit.CLAIMS[i].where for i in scoped} == {"Supplement S2", "Table 2 caption (wording)"}
    for i in scoped:
        rows = claims[claims["claim"] == i]
        assert set(rows["method"]) == table2 and len(rows) == 30


def test_stage3_probabilities():
    s3 = audit.stage3_probabilities(0.5, 0.5)
    assert list(s3["sum"]) == pytest.approx([1.5, 1.0, 1.0])
    assert list(s3.iloc[2][["p_3d", "p_img", "p_vid"]]) == pytest.approx([0.5, 0.25, 0.25])
    assert audit.stage3_probabilities(0.3, 0.5)["sum"].iloc[0] == pytest.approx(1.3)  # 1 + P_3D


def test_audit_markdown_content():
    md = audit.audit_markdown()
    assert "0.0174" in md and "0.3919" in md and "N = 26 × 17 = 442" in md
    assert "“They rated the motion quality roughly on par with MAV3D ...” — **contradicted**" in md
    assert "Stage-3 update probabilities do not sum to 1" in md and "1.500" in md


def test_checked_in_outputs_are_current(tmp_path):
    """reports/audit.md and reports/paper/*.csv are what `fourdfy audit` writes (regenerate with `fourdfy audit
    --overwrite` if this fails)."""
    assert (REPO / "reports" / "audit.md").read_text(encoding="utf-8") == audit.audit_markdown()
    for path in published.write_csvs(tmp_path):
        assert (REPO / "reports" / "paper" / path.name).read_bytes() == path.read_bytes(), path.name
    t2 = pd.read_csv(REPO / "reports" / "paper" / "cvpr2024_table2.csv")
    assert list(t2.loc[t2.method == "mav3d", ["appearance", "structure", "motion", "text", "overall"]].iloc[0]) \
        == list(CVPR["mav3d"][1])


def test_method_labels_come_from_the_design(tmp_path):
    """One source of labels (issue 9): the design file. The paper design labels every published
    method, and the audit prints whatever the design says."""
    from typer.testing import CliRunner

    from pipelines.cli import app
    from userstudy.design import load_design

    paper = load_design()
    assert {r.method for t in published.TABLES for r in t.rows} <= set(paper.labels)
    assert not hasattr(audit, "LABELS")
    text = (Path(audit.__file__).parent / "designs" / "paper.yaml").read_text(encoding="utf-8")
    design = tmp_path / "relabelled.yaml"
    design.write_text(text.replace("{label: MAV3D,", "{label: Make-A-Video3D,")
                      .replace("{label: 4D-fy,", "{label: FourD-fy,"), encoding="utf-8")
    out = tmp_path / "audit.md"
    res = CliRunner().invoke(app, ["audit", "--out", str(out), "--design", str(design)])
    assert res.exit_code == 0, res.output
    md = out.read_text(encoding="utf-8")
    assert "| table2 | Make-A-Video3D | MQ | 41% |" in md and "| MAV3D |" not in md
    assert "significant in favour of Make-A-Video3D" in md
    assert "| yes | FourD-fy |" in md  # the favoured method's label, too
