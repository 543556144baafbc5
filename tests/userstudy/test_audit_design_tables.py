"""`fourdfy audit --design D` takes only labels from D: a design without a `table2` (a short-form design, or one of
your own layout) audits the paper's published numbers exactly as the paper's design does, its claims about Table 2
included; methods D labels are printed with D's labels, every other with the paper design's."""

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy import audit, published
from userstudy.design import design_from_dict

runner = CliRunner()


def _audit(tmp_path, design_text: str | None, name: str) -> str:
    out = tmp_path / f"{name}.md"
    args = ["audit", "--out", str(out), "--paper-dir", str(tmp_path / f"{name}-paper")]
    if design_text is not None:
        design = tmp_path / f"{name}.yaml"
        design.write_text(design_text, encoding="utf-8")
        args += ["--design", str(design)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize("design_text", [
    "primary: 4dfy\ncomparisons: [mav3d]\n",                                      # short form: one table, `comparisons`
    "primary: mine\ncomparisons: [theirs]\n",                                     # none of the paper's methods
    "primary: 4dfy\ntables:\n  table2: {sections: [{rows: [4dfy, mav3d]}]}\n",  # a `table2` of one comparison
])
def test_a_design_without_the_papers_table2_audits_as_the_paper_design(tmp_path, design_text):
    """No labels in the design: the report is the paper design's, byte for byte (the S2 claim and Table 2's caption
    still cover all six comparisons of the published Table 2)."""
    assert _audit(tmp_path, design_text, "own") == _audit(tmp_path, None, "paper")


def test_labels_come_from_the_design_where_it_gives_them(tmp_path):
    md = _audit(tmp_path, "primary: 4dfy\ncomparisons: [mav3d]\nmethods: {mav3d: Make-A-Video3D}\n", "own")
    assert "| table2 | Make-A-Video3D | MQ | 41% |" in md and "| MAV3D |" not in md
    assert "significant in favour of Make-A-Video3D" in md
    assert "| table2 | w/ HexPlane | AQ |" in md and "| yes | 4D-fy |" in md  # the paper design's labels


def test_table_claims_cover_the_published_table():
    """The claims about Table 2 (S2's exception, the caption) speak of the cells of the published Table 2, whatever
    tables the design has."""
    table2 = {r.method for t in published.TABLES if (t.version, t.table) == ("cvpr2024", "table2")
              for r in t.rows if r.pct is not None}
    short = design_from_dict({"primary": "4dfy", "comparisons": ["mav3d"]})
    for design in (None, short):
        claims = audit.check_claims(design=design)
        for i, claim in enumerate(audit.CLAIMS):
            if claim.table:
                assert set(claims.loc[claims["claim"] == i, "method"]) == table2, claim.where
