"""The importer's article rule for prompts whose slug is cut (over `prompts.SLUG_MAX_BYTES`): the hash that ends
the cut slug covers the leading article, so the articles are dropped from the whole slug before it is cut. Exact
matches and the ambiguity rule stay as they are."""

from __future__ import annotations

from pathlib import Path

from eval_helpers import make_frames

from evaluation.importer import import_videos, match_files
from evaluation.video import encode_video
from prompts import SLUG_MAX_BYTES, slugify

REST = ("highly detailed cinematic shot of a giant panda wearing a red scarf and a tiny golden crown, dancing slowly "
        "on a frozen mountain lake at dusk while snow falls and green northern lights glow above the distant pines")
LONG = f"A {REST}"
"""A prompt of 215 characters: its slug is cut, and the file name of its text without the article still fits."""
SHORT = "A panda dancing."


def _table(*texts: str) -> dict[str, str]:
    return {slugify(t): t for t in texts}


def test_the_prompt_is_long_enough_to_be_cut():
    slug = slugify(LONG)
    assert len(LONG.encode("utf-8")) > SLUG_MAX_BYTES and len(slug.encode("utf-8")) <= SLUG_MAX_BYTES
    # without its article the words give another cut slug altogether (head and hash): no prefix rule can see it
    assert slugify(REST) != slug and not slug.endswith(slugify(REST)[-8:])


def test_a_file_without_the_article_of_a_long_prompt_matches_it():
    prompts = _table(LONG, SHORT)
    files = [Path(f"{REST}.mp4"),                        # the text without its article
             Path(f"The {REST}.mp4"),                    # another article
             Path(f"{slugify(REST)}.mp4"),               # the cut slug of the text without its article
             Path("panda_dancing.mp4")]                  # a short prompt, as before
    matched, fuzzy, unmatched = match_files(files, prompts)
    assert matched == {files[0]: slugify(LONG), files[1]: slugify(LONG), files[2]: slugify(LONG),
                       files[3]: "a_panda_dancing"}
    assert fuzzy == {f.name: s for f, s in matched.items()} and unmatched == []


def test_a_file_with_an_article_matches_a_long_prompt_without_one():
    rest = REST[0].upper() + REST[1:]  # the prompt has no article; the files do
    prompts = _table(rest)
    files = [Path(f"A {REST}.mp4"), Path(f"{slugify('the ' + REST)}.mp4")]  # text, and the cut slug with "the"
    matched, fuzzy, unmatched = match_files(files, prompts)
    assert matched == {f: slugify(rest) for f in files} and set(fuzzy) == {f.name for f in files} and not unmatched


def test_exact_matches_stay_exact_and_two_candidates_are_not_guessed():
    the_long = f"The {REST}"
    prompts = _table(LONG, the_long)  # "A ..." and "The ...": two prompts of the same words
    assert len(prompts) == 2
    files = [Path(f"{slugify(LONG)}.mp4"), Path(f"{LONG}.mp4"),
             Path(f"{slugify(the_long)}.mp4"), Path(f"{REST}.mp4"), Path(f"An {REST}.mp4")]
    matched, fuzzy, unmatched = match_files(files, prompts)
    # each prompt's own slug or text: exact, not by the article rule
    assert matched == {files[0]: slugify(LONG), files[1]: slugify(LONG), files[2]: slugify(the_long)} and not fuzzy
    # no article, or a third one: both prompts fit, so neither is chosen
    assert unmatched == [files[3].name, files[4].name]


def test_import_videos_imports_a_long_prompt_from_a_file_without_its_article(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    encode_video(src / f"{REST}.mp4", make_frames(4, 16, 16), fps=10)
    report = import_videos(src, "mav3d", tmp_path / "out", prompts=_table(LONG, SHORT))
    slug = slugify(LONG)
    assert report.fuzzy == {f"{REST}.mp4": slug} and not report.unmatched_files and not report.failed
    assert [(a.slug, a.prompt) for a in report.imported] == [(slug, LONG)]
    assert (tmp_path / "out" / "mav3d" / slug / "video.mp4").is_file()
    assert report.unmatched_prompts == ["a_panda_dancing"]
