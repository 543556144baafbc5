"""`--set-from FILE:key` with a key FILE lacks names the closest key there, or the keys at that level."""

import pytest

from pipelines.generate import read_sets


@pytest.fixture
def params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("overrides:\n  4dfy: {}\n  wo_hybrid: {weights.sds_video: 0.3}\nrender: {frames: 64}\n")
    return path


def test_a_misspelt_entry_gets_the_closest_key(params):
    with pytest.raises(ValueError) as err:
        read_sets(f"{params}:overrides.wo_hybird")
    assert str(err.value) == (f"--set-from: {params} has no key 'overrides.wo_hybird'; did you mean "
                              "'overrides.wo_hybrid'?")


def test_a_key_with_nothing_close_lists_the_keys_at_its_level(params):
    with pytest.raises(ValueError) as err:
        read_sets(f"{params}:overides.zzz")
    assert str(err.value).endswith("has no key 'overides.zzz'; did you mean 'overrides'?")
    with pytest.raises(ValueError) as err:
        read_sets(f"{params}:overrides.qqqqq")
    assert str(err.value).endswith("has no key 'overrides.qqqqq' (under 'overrides': 4dfy, wo_hybrid)")
    with pytest.raises(ValueError) as err:
        read_sets(f"{params}:nothing")
    assert str(err.value).endswith("has no key 'nothing' (at its top level: overrides, render)")
