"""Slugs of non-English prompts: distinct, readable, filesystem-safe; every ASCII slug exactly as before."""

import random
import re
import string
import unicodedata

import pytest

from prompts import PromptFileError, library, load_prompts, resolve_prompt, slugify


def _old_slug(text: str) -> str:
    """The rule every slug of an existing run was made with (ASCII letters and digits only)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


ASCII_CASES = ["A panda dancing.", "3D rendering of a fox playing videogame.", "  --Hello,   World!!  ", "a_b__c",
               "_x_", "Tabs\tand\nnewlines\r", "C++ & C# (v2.0) @ 50% off", "a/b\\c:d*e?f\"g<h>i|j", "...x...",
               "Dog's \"best\" friend; really?", "MiXeD CaSe 123abc", "~`^{}[]=+$", "0", "x"]


def test_ascii_slugs_are_exactly_the_old_ones():
    lib = library()
    texts = [t for prompts in lib.values() for t in prompts.values()]
    assert len(texts) == 33
    for slugs in lib.values():  # the slugs the files are keyed by: those of the run folders and DVC stages
        assert all(slug == _old_slug(text) for slug, text in slugs.items())
    assert lib["mav3d_28"]["3d_rendering_of_a_fox_playing_videogame"] == "3D rendering of a fox playing videogame."
    rng = random.Random(0)
    texts += ASCII_CASES + ["".join(rng.choice(string.printable) for _ in range(rng.randint(1, 40)))
                            for _ in range(2000)]
    for text in texts:
        old = _old_slug(text)
        if old:
            assert slugify(text) == old, text
        else:
            with pytest.raises(PromptFileError, match="has no letters or digits"):
                slugify(text)


@pytest.mark.parametrize("text, slug", [
    ("一只熊猫在跳舞", "一只熊猫在跳舞"),
    ("一只熊猫在跳舞。", "一只熊猫在跳舞"),
    ("Ein Bär tanzt.", "ein_bar_tanzt"),
    ("Ein Bör tanzt.", "ein_bor_tanzt"),
    ("Ein Bar tanzt.", "ein_bar_tanzt"),
    ("Une crêpe flambée", "une_crepe_flambee"),
    ("Die Straße", "die_strasse"),
    ("Панда танцует, ёж!", "панда_танцует_еж"),
    ("Ένα πάντα χορεύει", "ενα_παντα_χορευει"),
    ("パンダが踊る", "パンダが踊る"),  # the voicing marks stay: パンダ is not ハンタ
    ("ﾊﾟﾝﾀﾞ", "パンダ"),  # half-width kana are the usual ones
    ("판다가 춤춘다", "판다가_춤춘다"),  # Hangul syllables, not loose jamo
    ("एक पांडा नाच रहा है", "एक_पांडा_नाच_रहा_है"),  # Devanagari vowel signs are spelling, not accents
    ("ＡＢＣ　１２３", "abc_123"),  # full-width forms
    ("A ﬁsh in bowl ②", "a_fish_in_bowl_2"),  # compatibility forms: plain letters and digits
])
def test_letters_of_any_script_are_kept(text, slug):
    assert slugify(text) == slug
    assert slugify(slug) == slug  # a slug is its own slug: it is looked up as one


def test_non_ascii_slugs_are_filesystem_safe_and_stable():
    for cp in range(0x20, 0x30000, 7):  # a sample of every block: letters, marks, symbols, CJK, Hangul
        if 0xD800 <= cp <= 0xDFFF:
            continue
        for text in (f"a{chr(cp)}b", chr(cp) * 2 + "\u0308"):
            try:
                slug = slugify(text)
            except PromptFileError:
                continue
            assert slugify(slug) == slug, hex(cp)
            assert slug == slug.strip("_") and "__" not in slug, hex(cp)
            assert not set(slug) & set("/\\\0.:*?\"<>| \t\n"), hex(cp)
            assert all(c.isalnum() or c == "_" or unicodedata.category(c)[0] == "M" for c in slug), hex(cp)


def test_accent_twins_are_duplicates_named_both(tmp_path):
    two = tmp_path / "de.txt"
    two.write_text("Ein Bär tanzt.\nEin Bör tanzt.\n", encoding="utf-8")
    assert load_prompts(two) == {"ein_bar_tanzt": "Ein Bär tanzt.", "ein_bor_tanzt": "Ein Bör tanzt."}
    dup = tmp_path / "dup.txt"
    dup.write_text("# German\nEin Bär tanzt.\nEin Bar tanzt!\n", encoding="utf-8")
    with pytest.raises(PromptFileError) as info:
        load_prompts(dup)
    assert str(info.value) == (
        f"{dup}:3: duplicate prompt 'Ein Bar tanzt!' (same slug 'ein_bar_tanzt' as 'Ein Bär tanzt.' on line 2; "
        "slugs ignore case, accents and punctuation); delete one of the two lines or reword one")


def test_non_ascii_prompts_resolve(tmp_path):
    mine = tmp_path / "zh.txt"
    mine.write_text("一只熊猫在跳舞。\nEin Bär tanzt.\n", encoding="utf-8")
    assert resolve_prompt("一只熊猫在跳舞", [mine]) == "一只熊猫在跳舞。"  # the file's slug: its prompt
    assert resolve_prompt("ein_bar_tanzt", [mine]) == "Ein Bär tanzt."
    assert resolve_prompt("一只猫在唱歌", [mine]) == "一只猫在唱歌"  # its own slug, in no file: the prompt's text
    assert resolve_prompt("Ein Bär tanzt", [mine]) == "Ein Bär tanzt"  # free text reads no file
    with pytest.raises(PromptFileError, match=r"no prompt with slug 'ein_bor_tanzt' \(did you mean 'ein_bar_"):
        resolve_prompt("ein_bor_tanzt", [mine])  # an ASCII slug found nowhere is still a typo


def test_cli_trains_a_chinese_prompt(tmp_path):
    import json

    from typer.testing import CliRunner

    from pipelines.cli import app

    run = tmp_path / "run"
    res = CliRunner().invoke(app, ["generate", "--prompt", "一只熊猫在跳舞", "--profile", "tiny",
                                   "--max-steps", "1", "--out", str(run), "--no-progress", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "error" not in res.output
    assert json.loads((run / "manifest.json").read_text(encoding="utf-8"))["prompt"] == "一只熊猫在跳舞"
