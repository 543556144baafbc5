import pytest

from prompts import PROMPT_DIR, PromptFileError, load_prompts, resolve_prompt, slugify


def test_paper_prompt_files():
    mav3d = load_prompts(PROMPT_DIR / "mav3d_28.txt")
    ablation = load_prompts(PROMPT_DIR / "ablation_5.txt")
    assert len(mav3d) == 28 and len(ablation) == 5
    assert set(ablation.values()) <= set(mav3d.values())  # the subset is spelled as in the full list
    assert slugify("A panda dancing.") == "a_panda_dancing"
    assert resolve_prompt("a_panda_dancing") == "A panda dancing."
    assert resolve_prompt("A cat on a mat.") == "A cat on a mat."


def test_bad_prompt_files_are_clear_errors(tmp_path):
    with pytest.raises(PromptFileError, match="not found"):
        load_prompts(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(PromptFileError, match="no prompts"):
        load_prompts(empty)
    dup = tmp_path / "dup.txt"
    dup.write_text("A dog.\na dog\n")
    with pytest.raises(PromptFileError, match="dup.txt:2: duplicate"):
        load_prompts(dup)
