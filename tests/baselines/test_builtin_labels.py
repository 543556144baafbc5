"""The built-in methods carry the paper's table labels (userstudy/designs/paper.yaml), so that outputs made
without that design (`fourdfy figure` with no --design, a design of your own that lists them without labels, `fourdfy
methods`) name them as the paper does ("4D-fy", not "4dfy")."""

from pathlib import Path

import yaml

from baselines import METHODS
from baselines.registry import BUILT_INS

REPO = Path(__file__).resolve().parents[2]


def test_each_built_in_has_exactly_the_paper_designs_label():
    paper = yaml.safe_load((REPO / "userstudy" / "designs" / "paper.yaml").read_text())["methods"]
    assert set(paper) == set(BUILT_INS)  # every row of the paper is a built-in, and no built-in is left out
    assert {name: METHODS[name].label for name in BUILT_INS} == {name: e["label"] for name, e in paper.items()}
    assert METHODS["4dfy"].label == "4D-fy" and METHODS["mav3d"].label == "MAV3D"


def test_a_figure_without_a_design_labels_the_built_ins_as_the_paper_does():
    from evaluation.figure import row_labels

    assert row_labels(["4dfy", "mav3d", "wo_3d_img", "imported_only"]) == {
        "4dfy": "4D-fy", "mav3d": "MAV3D", "wo_3d_img": "w/o ∇L_3D/IMG", "imported_only": "imported_only"}


def test_a_design_of_your_own_that_lists_a_built_in_without_a_label_takes_the_papers(tmp_path):
    from pipelines.stages import effective_design
    from userstudy.design import design_from_dict

    own = tmp_path / "mine.yaml"
    own.write_text(yaml.safe_dump({"name": "mine", "primary": "4dfy", "comparisons": ["wo_hybrid"]}))
    params = {"study": {"design": str(own)}, "generate": {"methods": ["4dfy", "wo_hybrid"]}}
    design = design_from_dict(effective_design(params))
    assert design.label("4dfy") == "4D-fy" and design.label("wo_hybrid") == "w/o hybrid SDS"
