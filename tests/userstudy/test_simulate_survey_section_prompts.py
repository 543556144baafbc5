"""`userstudy.design.section_prompts`: the prompts a section with a `prompt_set` asks, the one rule of `survey build`
and `simulate-votes` (tests/survey/test_simulate_survey_agree.py runs both commands)."""

import pytest

from prompts import PROMPT_DIR, load_prompts
from userstudy.design import DesignError, Section, design_from_dict, section_prompts
from userstudy.simulate import PanelConfig, simulate_votes


def test_the_first_n_prompts_of_the_set_in_file_order(tmp_path):
    (tmp_path / "mine.txt").write_text("# my prompts\nA cat jumping.\nA dog running.\nA bird flying.\n",
                                       encoding="utf-8")

    def asked(n):
        return section_prompts(Section(rows=("a", "b"), prompt_set="mine", n_prompts=n), tmp_path)

    assert asked(None) == {"a_cat_jumping": "A cat jumping.", "a_dog_running": "A dog running.",
                           "a_bird_flying": "A bird flying."}
    assert asked(3) == asked(None)
    assert asked(2) == {"a_cat_jumping": "A cat jumping.", "a_dog_running": "A dog running."}
    assert list(asked(1)) == ["a_cat_jumping"]
    with pytest.raises(DesignError, match="^n_prompts 4 is more than the 3 prompts of mine.txt: lower"):
        asked(4)
    with pytest.raises(ValueError, match="prompt file not found"):
        section_prompts(Section(rows=("a", "b"), prompt_set="absent"), tmp_path)


def test_the_default_folder_is_the_projects_prompts():
    full = load_prompts(PROMPT_DIR / "mav3d_28.txt")
    assert section_prompts(Section(rows=("a", "b"), prompt_set="mav3d_28", n_prompts=28)) == full
    assert list(section_prompts(Section(rows=("a", "b"), prompt_set="mav3d_28", n_prompts=4))) == list(full)[:4]


def test_simulated_questions_are_the_sections_prompts():
    d = design_from_dict({"primary": "4dfy", "comparisons": ["mav3d"], "prompt_set": "ablation_5", "n_prompts": 3})
    frame = simulate_votes(d, PanelConfig(n_raters=1, attention_checks=0))
    assert list(dict.fromkeys(frame.prompt_id)) == list(load_prompts(PROMPT_DIR / "ablation_5.txt"))[:3]
