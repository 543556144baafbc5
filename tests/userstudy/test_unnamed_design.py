"""A design without `name:` is called the same in a survey bundle and in analyze's report."""

from userstudy.analysis import AnalysisConfig, analyze
from userstudy.design import design_from_dict
from userstudy.simulate import simulate_votes
from userstudy.survey.bundle import _design_data, _id_design
from userstudy.tables import report_markdown
from userstudy.votes import validate_votes
from userstudy_helpers import ideal_panel


def test_an_unnamed_design_has_one_name_in_the_bundle_and_the_report():
    design = design_from_dict({"primary": "4dfy", "comparisons": ["mav3d"], "n_prompts": 5})
    assert design.name == ""
    # bundle ids of unnamed designs were built with "survey": the name stays, so their databases stay theirs
    assert _design_data(design)["name"] == _id_design(design)["name"] == "survey"
    a = analyze(validate_votes(simulate_votes(design, ideal_panel(rates={"mav3d": 0.7}, n_raters=6, seed=3)),
                               design), design, AnalysisConfig(n_boot=100))
    assert "design `survey` (primary `4dfy`" in report_markdown(a, "votes.csv", [])
    named = design_from_dict({"name": "mine", "primary": "4dfy", "comparisons": ["mav3d"], "n_prompts": 5})
    assert _design_data(named)["name"] == "mine"
