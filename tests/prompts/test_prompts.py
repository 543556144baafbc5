import pytest

from prompts import PROMPT_DIR, PromptFileError, library, load_prompts, resolve_prompt, slugify


def test_paper_prompt_files():
    mav3d = load_prompts(PROMPT_DIR / "mav3d_28.txt")
    ablation = load_prompts(PROMPT_DIR / "ablation_5.txt")
    assert len(mav3d) == 28 and len(ablation) == 5
    assert set(ablation.values()) <= set(mav3d.values())  # the subset is spelled as in the full list
    assert slugify("A panda dancing.") == "a_panda_dancing"
    assert resolve_prompt("a_panda_dancing") == "A panda dancing."
    assert resolve_prompt("A cat on a mat.") == "A cat on a mat."


def test_the_library_is_every_prompt_file_by_set_name():
    lib = library()
    assert set(lib) == {"mav3d_28", "ablation_5"}
    assert (len(lib["mav3d_28"]), len(lib["ablation_5"])) == (28, 5)
    assert lib["ablation_5"]["a_panda_dancing"] == "A panda dancing."
    assert all(resolve_prompt(slug) == text for prompts in lib.values() for slug, text in prompts.items())


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


def test_non_utf8_prompt_file_is_named(tmp_path):
    bad = tmp_path / "mine.txt"
    bad.write_bytes("A cat.\nA caf\u00e9 on fire.\n".encode("latin-1"))
    with pytest.raises(PromptFileError, match=r"mine\.txt:2: not UTF-8 text \(byte 0xe9\)"):
        load_prompts(bad)


def test_a_byte_order_mark_is_not_part_of_the_first_prompt(tmp_path):
    """Windows editors start UTF-8 files with a BOM (and end lines with CRLF): it is no part of the text."""
    mine = tmp_path / "mine.txt"
    mine.write_bytes(b"\xef\xbb\xbfA panda dancing.\r\n# a comment\r\nA goat drinking beer.\r\n")
    assert load_prompts(mine) == {"a_panda_dancing": "A panda dancing.",
                                  "a_goat_drinking_beer": "A goat drinking beer."}
    assert resolve_prompt("a_panda_dancing", [mine]) == "A panda dancing."  # the slug lookups read the same way
    mine.write_bytes(b"\xef\xbb\xbf# comment first\nA cat.\n")
    assert load_prompts(mine) == {"a_cat": "A cat."}  # a BOM before a comment does not make it a prompt
    mine.write_bytes(b"\xef\xbb\xbfA cat.\nA caf\xe9.\n")  # Latin-1 after a BOM
    with pytest.raises(PromptFileError, match=r"mine\.txt:2: not UTF-8 text \(byte 0xe9\)"):  # lines still counted
        load_prompts(mine)


def test_a_folder_is_not_a_prompt_file(tmp_path):
    with pytest.raises(PromptFileError, match=rf"^{tmp_path} is a folder, not a prompt file; give a prompt file"):
        load_prompts(tmp_path)


def test_broken_prompt_file_blocks_only_its_own_slugs(tmp_path):
    dup = tmp_path / "a_dup.txt"
    dup.write_text("A dog.\na dog\nA cow.\n")
    good = tmp_path / "b_good.txt"
    good.write_text("A panda dancing.\n")
    files = [dup, good]
    assert resolve_prompt("A horse running.", files) == "A horse running."  # free text reads no file
    assert resolve_prompt("a_panda_dancing", files) == "A panda dancing."  # found in the intact file
    with pytest.raises(PromptFileError) as info:  # only in the broken file: the error says why
        resolve_prompt("a_cow", files)
    assert "a_dup.txt:2: duplicate prompt" in str(info.value) and "'a_cow'" in str(info.value)


# --- where the user sees it: `fourdfy generate --prompt ...` with a prompt file dropped into prompts/ ---

def _generate(monkeypatch, prompt_dir, prompt, out):
    import prompts as prompt_library
    from typer.testing import CliRunner

    from pipelines.cli import app

    monkeypatch.setattr(prompt_library, "PROMPT_DIR", prompt_dir)
    return CliRunner().invoke(app, ["generate", "--prompt", prompt, "--profile", "tiny", "--out", str(out)])


def test_cli_names_the_non_utf8_prompt_file(monkeypatch, tmp_path):
    lib = tmp_path / "prompts"
    lib.mkdir()
    (lib / "mine.txt").write_bytes("A caf\u00e9 on fire.\n".encode("latin-1"))
    res = _generate(monkeypatch, lib, "a_caf_on_fire", tmp_path / "run")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "mine.txt:1: not UTF-8" in lines[0]
    assert "Traceback" not in res.output


def test_cli_free_text_prompt_is_not_blocked_by_a_duplicate(monkeypatch, tmp_path):
    lib = tmp_path / "prompts"
    lib.mkdir()
    (lib / "mine.txt").write_text("A dog.\nA dog.\n")
    run = tmp_path / "run"
    (run / "ckpt").mkdir(parents=True)
    # An existing (here: empty) checkpoint makes generate stop right after resolving the prompt, with
    # an error about the run folder instead of one about the prompt file.
    (run / "ckpt" / "last.pt").write_bytes(b"")
    res = _generate(monkeypatch, lib, "A cat on a mat.", run)
    assert res.exit_code == 2
    assert str(run) in res.output and "mine.txt" not in res.output and "duplicate" not in res.output


def test_blanks_around_a_prompt_or_slug_are_dropped():
    """`--prompt "A panda dancing. "` trained the text with its trailing space: another prompt than the library's,
    whose run the slug could not resume; a slug pasted with blanks was taken as free text."""
    from prompts import resolve_prompt

    assert resolve_prompt("A panda dancing. ") == "A panda dancing."
    assert resolve_prompt("  a_panda_dancing\t") == resolve_prompt("a_panda_dancing") == "A panda dancing."
    assert resolve_prompt(" My own prompt ") == "My own prompt"
