"""`simulate_votes` with a table selection (`simulate-votes --tables`): a comparison of another table of the design
is named as one outside the selected table(s), with the table it is in; one in no table is still "not in the
design"."""

from __future__ import annotations

import pytest

from userstudy.design import load_design
from userstudy.simulate import PanelConfig, simulate_votes


@pytest.fixture()
def designs():
    whole = load_design(None)  # the paper's: single_stage is a row of table3 only
    return whole, whole.select_tables(["table2"])


def test_a_comparison_of_another_table_is_named_with_its_table(designs):
    whole, table2 = designs
    with pytest.raises(ValueError) as err:
        simulate_votes(table2, PanelConfig(n_raters=2, comparisons=("single_stage",)), whole=whole)
    msg = str(err.value)
    assert msg.startswith("comparison(s) not in the selected table(s) table2: single_stage (in table3); select "
                          "table3 too (--tables)"), msg
    assert "not in the design" not in msg
    assert msg.endswith(f"(those of table2: {', '.join(table2.comparisons)})")


def test_a_comparison_in_no_table_keeps_the_old_message(designs):
    whole, table2 = designs
    with pytest.raises(ValueError) as err:
        simulate_votes(table2, PanelConfig(n_raters=2, comparisons=("single_stage", "dreamfusion")), whole=whole)
    assert str(err.value) == (f"comparison(s) not in the design: dreamfusion (the design's: "
                              f"{', '.join(whole.comparisons)})")
    # without the design it was selected from, as before
    with pytest.raises(ValueError, match=r"^comparison\(s\) not in the design: single_stage \(the design's: mav3d"):
        simulate_votes(table2, PanelConfig(n_raters=2, comparisons=("single_stage",)))


def test_a_comparison_of_the_selected_table_is_simulated(designs):
    whole, table2 = designs
    frame = simulate_votes(table2, PanelConfig(n_raters=2, comparisons=("mav3d",)), whole=whole)
    assert len(frame) > 0


def test_rates_of_a_table_left_out_are_not_used_and_not_refused(designs):
    """A rates file for the whole study with --tables table2: its table3 rows are left unused, as `--rates paper`'s
    are (it said "not in the design" of single_stage, a table3 row); a comparison in no table is still refused."""
    whole, table2 = designs
    cfg = PanelConfig(n_raters=4, rates={"mav3d": 0.8, "single_stage": 0.7}, seed=1)
    frame = simulate_votes(table2, cfg, whole=whole)
    methods = set(frame["method_left"]) | set(frame["method_right"])
    assert "single_stage" not in methods and "mav3d" in methods
    with pytest.raises(ValueError, match=r"^rates given for comparison\(s\) not in the design: dreamfusion"):
        simulate_votes(table2, PanelConfig(n_raters=4, rates={"dreamfusion": 0.7}), whole=whole)
