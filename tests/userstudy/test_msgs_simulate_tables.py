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
