"""The rounding rule docs/userstudy.md states ("Rounding"): halves to the even neighbour, so complementary shares add
to 100, and never a unanimous-looking 100% or 0% short of unanimity."""

from userstudy.tables import _clip_text, _pct


def test_percent_halves_go_to_the_even_neighbour_and_complements_add_to_100():
    assert _pct(12.5, True, "%", "†") == "12%" and _pct(87.5, True, "%", "†") == "88%"
    for k, n in ((1, 8), (3, 8), (1, 40), (7, 200)):  # shares ending in .5
        share = 100 * k / n
        assert int(_pct(share, True, "", "")) + int(_pct(100 - share, True, "", "")) == 100


def test_near_unanimity_and_clip_decimals():
    assert _pct(99.5, True, "%", "†") == "99%" and _pct(0.5, False, "%", "†") == "1%†"
    assert _clip_text({"clip": 21.25}, "—", "‡") == "21.2" and _clip_text({"clip": 21.35}, "—", "‡") == "21.4"
