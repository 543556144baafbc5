"""Slugs of long prompts fit in file names: cut at a character boundary, ended by a hash of the whole slug; every
slug that already fitted is unchanged."""

import hashlib
import random
import re
import unicodedata

import pytest

from prompts import SLUG_MAX_BYTES, library, load_prompts, resolve_prompt, slugify

NAME_MAX = 255
"""Bytes in one file name on ext4, XFS, btrfs and APFS."""

LONG_EN = "A highly detailed cinematic shot of a panda wearing a red scarf, dancing on a frozen lake at dusk. " * 3
LONG_ZH = "一只穿着红色围巾的大熊猫在黄昏时分于结冰的湖面跳舞" * 8  # 200 CJK characters: 600 bytes
LONG_HI = "एक पांडा बर्फ़ीली झील पर नाच रहा है और सूरज ढल रहा है। " * 6  # vowel signs and viramas: combining marks
LONG_RU = "Панда в красном шарфе танцует на замёрзшем озере в сумерках, " * 5
LONG_KO = "빨간 목도리를 두른 판다가 해질녘 얼어붙은 호수 위에서 춤을 춘다. " * 6
LONG_PROMPTS = [LONG_EN, LONG_ZH, LONG_HI, LONG_RU, LONG_KO, "x" * 1000, "ab " * 300]


def _old_slug(text: str) -> str:
    """The rule of every ASCII slug (letters and digits, every other run one '_')."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _hash(full_slug: str) -> str:
    return hashlib.sha256(full_slug.encode("utf-8")).hexdigest()[:8]


def _random_long_prompt(rng: random.Random) -> str:
    """Words of several scripts, with accents and combining marks, between 150 and 500 characters."""
    alphabets = ["abcdefghijklmnopqrstuvwxyz", "АБВГДЕЁЖЗИЙКабвгдеёжзийк", "αβγδεζηθάέήίόύώ", "熊猫跳舞湖面上雪夜",
                 "パンダがおどるガギグ", "판다가춤춘다호수", "कखगपनमरलवसह" + "\u093e\u093f\u0940\u0941\u094d\u0902",
                 "éàüöçñ", "0123456789"]
    words = []
    while sum(map(len, words)) < rng.randint(150, 500):
        abc = rng.choice(alphabets)
        words.append("".join(rng.choice(abc) for _ in range(rng.randint(1, 12))))
    return rng.choice([" ", ", ", "-", "", "; "]).join(words)


def test_library_and_short_slugs_are_unchanged():
    lib = library()
    texts = [t for prompts in lib.values() for t in prompts.values()]
    assert {"mav3d_28", "ablation_5"} <= set(lib) and len(texts) >= 33
    for prompts in lib.values():
        for slug, text in prompts.items():
            assert slug == _old_slug(text) == slugify(text)
            assert len(slug.encode("utf-8")) < SLUG_MAX_BYTES
    short = {"一只熊猫在跳舞。": "一只熊猫在跳舞", "Ein Bär tanzt.": "ein_bar_tanzt", "パンダが踊る": "パンダが踊る",
             "판다가 춤춘다": "판다가_춤춘다", "एक पांडा नाच रहा है": "एक_पांडा_नाच_रहा_है", "Панда танцует": "панда_танцует"}
    for text, slug in short.items():
        assert slugify(text) == slug


def test_a_slug_of_exactly_the_limit_is_kept_and_one_byte_more_is_cut():
    at_limit = "a" * SLUG_MAX_BYTES
    assert slugify(at_limit) == at_limit
    cjk = "熊" * (SLUG_MAX_BYTES // 3)  # the longest whole number of 3-byte characters within the limit
    assert slugify(cjk) == cjk
    over = "a" * (SLUG_MAX_BYTES + 1)
    assert slugify(over) != over and len(slugify(over).encode("utf-8")) <= SLUG_MAX_BYTES


@pytest.mark.parametrize("prompt", LONG_PROMPTS)
def test_long_slugs_fit_and_are_their_own_slug(prompt):
    slug = slugify(prompt)
    data = slug.encode("utf-8")  # raises on a lone surrogate: a slug is valid UTF-8
    assert len(data) <= SLUG_MAX_BYTES
    assert data.decode("utf-8") == slug
    assert slugify(slug) == slug  # looked up as a slug, it stays that slug
    assert slug == slug.strip("_") and "__" not in slug
    assert re.fullmatch(r".+_[0-9a-f]{8}", slug)
    assert slugify(prompt) == slug  # the same on every call


def test_long_ascii_slug_is_a_cut_of_the_old_rule_plus_its_hash():
    full = _old_slug(LONG_EN)
    budget = SLUG_MAX_BYTES - 9  # '_' and 8 hex digits
    assert slugify(LONG_EN) == full[:budget].rstrip("_") + "_" + _hash(full)


def test_long_cjk_slug_is_cut_between_characters():
    assert len(LONG_ZH.encode("utf-8")) == 600
    full = LONG_ZH  # no punctuation, no case: the prompt is its own full slug
    budget = SLUG_MAX_BYTES - 9
    assert slugify(LONG_ZH) == full[:budget // 3] + "_" + _hash(full)


def test_a_letter_keeps_its_combining_marks():
    # shift the cut through every position of a Devanagari word (a consonant, a virama, a vowel sign...)
    unit = "क्षत्रिय"
    for pad in range(12):
        prompt = "a" * pad + unit * 60
        full = prompt  # no spaces or punctuation: only letters and their marks
        assert unicodedata.normalize("NFC", full) == full
        slug = slugify(prompt)
        head = slug[:-9]
        assert slug.endswith("_" + _hash(full))
        assert full.startswith(head)
        assert not unicodedata.category(full[len(head)]).startswith("M"), pad  # the cut is before a letter
        assert len(slug.encode("utf-8")) <= SLUG_MAX_BYTES
        assert slugify(slug) == slug


def test_long_prompts_differing_at_the_end_get_distinct_slugs():
    a, b = slugify(LONG_EN + "in the rain"), slugify(LONG_EN + "in the snow")
    assert a != b and a[:-8] == b[:-8]
    c, d = slugify(LONG_ZH + "雨"), slugify(LONG_ZH + "雪")
    assert c != d


def test_random_long_prompts_in_many_scripts():
    rng = random.Random(0)
    prompts = {_random_long_prompt(rng) for _ in range(300)}
    slugs = set()
    for prompt in prompts:
        slug = slugify(prompt)
        assert len(slug.encode("utf-8")) <= SLUG_MAX_BYTES, prompt
        assert slugify(slug) == slug, prompt
        assert "__" not in slug and slug == slug.strip("_"), prompt
        slugs.add(slug)
    assert len(slugs) == len(prompts)


def test_the_uncut_slug_given_as_text_gets_the_same_slug():
    assert slugify(_old_slug(LONG_EN)) == slugify(LONG_EN)
    assert slugify(LONG_ZH + "。") == slugify(LONG_ZH)


def test_a_long_prompt_file_resolves_by_its_slug(tmp_path):
    tail = ["in the rain.", "in the snow."]
    mine = tmp_path / "long.txt"
    mine.write_text("".join(f"{LONG_EN}{t}\n" for t in tail) + LONG_ZH + "\n", encoding="utf-8")
    table = load_prompts(mine)  # the two English prompts share ~300 characters, yet are no duplicates
    assert list(table.values()) == [LONG_EN + tail[0], LONG_EN + tail[1], LONG_ZH]
    for slug, text in table.items():
        assert len(slug.encode("utf-8")) <= SLUG_MAX_BYTES
        assert resolve_prompt(slug, [mine]) == text
    assert resolve_prompt(LONG_EN, [mine]) == LONG_EN.strip()  # free text reads no file (blanks around it dropped)
    unknown = slugify(LONG_EN + "in the fog.")
    with pytest.raises(ValueError, match="no prompt with slug"):
        resolve_prompt(unknown, [mine])
    # the whole (uncut) slug, as a params.yaml or --prompt written before slugs were shortened names the prompt:
    # still that prompt, not its own text trained as a prompt
    for text in table.values():
        full = _old_slug(text) if text.isascii() else text
        assert len(full.encode("utf-8")) > SLUG_MAX_BYTES and slugify(full) != full
        assert resolve_prompt(full, [mine]) == text
    lone = _old_slug(LONG_EN + "in the fog.")  # a whole slug of no prompt in the files: free text, as before
    assert resolve_prompt(lone, [mine]) == lone
    assert resolve_prompt(LONG_ZH + "再见", [mine]) == LONG_ZH + "再见"  # CJK text that is its own whole slug


def test_files_named_from_long_slugs_can_be_written(tmp_path):
    from baselines import METHODS
    from evaluation.figure import figure_path
    from evaluation.importer import match_files
    from method.fileio import write_atomic

    for prompt in LONG_PROMPTS:
        slug = slugify(prompt)
        # the figure, written as the figures stage writes it: through `.<slug>.png.<12 hex>.tmp`
        write_atomic(figure_path(tmp_path / "figures", slug), lambda f: f.write(b"png"))
        # a sweep's job log `<method>-<slug>.out`, through its temporary, for the longest built-in method name
        method = max(METHODS, key=len)
        (tmp_path / "sweep").mkdir(exist_ok=True)
        write_atomic(tmp_path / "sweep" / f"{method}-{slug}.out", lambda f: f.write(b"log"))
        # an artifact folder's temporaries (`evaluation.artifacts`) and an imported video named by its slug
        (tmp_path / f".{slug}.tmp-{'0' * 12}").mkdir()
        (tmp_path / f".{slug}.old-{'x' * 8}").mkdir()
        video = tmp_path / "videos" / f"{slug}.mp4"
        video.parent.mkdir(exist_ok=True)
        video.write_bytes(b"")
        matched, fuzzy, unmatched = match_files([video], {slug: prompt})
        assert matched == {video: slug} and not fuzzy and not unmatched
    assert len(list((tmp_path / "figures").glob("*.png"))) == len(LONG_PROMPTS)


def test_the_limit_leaves_room_for_the_longest_suffix():
    # `.<method>-<slug>.out.<12 hex>.tmp`: 23 bytes beside the method's name, which the registry allows up to 32 bytes
    from prompts import METHOD_NAME_MAX_BYTES

    assert METHOD_NAME_MAX_BYTES == 32
    assert SLUG_MAX_BYTES + len(".-.out.") + 12 + len(".tmp") + METHOD_NAME_MAX_BYTES == NAME_MAX
