"""The prompt library: the paper's prompt files beside this module (`mav3d_28.txt`, `ablation_5.txt`).

Prompt files: UTF-8 text (a leading byte-order mark is dropped; LF or CRLF), one prompt per line, '#'
comments; each prompt gets a filesystem-safe slug (`slugify`: letters and digits of any script, accents of
Latin, Greek and Cyrillic letters dropped; an ASCII prompt's slug is what it always was; a slug longer than
`SLUG_MAX_BYTES` is cut and ends in a hash of the whole, so it fits in a file name).
Your own prompt file can sit beside the paper's: its slugs then work wherever a slug is accepted.
A problem in one file (not UTF-8, a duplicated prompt) is reported when a slug is looked up and not
found elsewhere; it never blocks free-text prompts or slugs found in the other files."""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from pathlib import Path

PROMPT_DIR = Path(__file__).resolve().parent


class PromptFileError(ValueError):
    """A prompt file is missing, not UTF-8, empty, or has duplicate prompts; or a slug is unknown."""


SLUG_MAX_BYTES = 200
"""Longest slug, in UTF-8 bytes. File names hold at most 255 bytes (ext4, XFS, btrfs, APFS, NTFS's 255 UTF-16
units), and the longest name made from a slug is a sweep log's temporary, `.<method>-<slug>.out.<12 hex>.tmp`
(23 bytes beside the method's name; a figure's `.<slug>.png.<12 hex>.tmp` takes 22): 200 leaves room for method
names up to 32 bytes (`METHOD_NAME_MAX_BYTES`, which the method registry enforces). Every prompt of the library
has a slug of at most 69 bytes."""

FILE_NAME_MAX_BYTES = 255
"""Bytes in one file name (NAME_MAX of ext4, XFS, btrfs, APFS)."""

METHOD_NAME_MAX_BYTES = FILE_NAME_MAX_BYTES - SLUG_MAX_BYTES - len(".-.out..tmp") - 12
"""Longest method name, in UTF-8 bytes (32): the longest file name made of a method's name and a slug, a sweep log's
temporary `.<method>-<slug>.out.<12 hex>.tmp`, takes 23 bytes beside the two, so with a slug of SLUG_MAX_BYTES this
much is left of a 255-byte name. `baselines.register` and params.yaml's variants refuse longer names, which would
otherwise fail only when a sweep of a long prompt writes its log."""

def method_name_too_long(name: str) -> str | None:
    """Why `name` is too long to name a method (METHOD_NAME_MAX_BYTES), or None: the one check and wording of the
    method registry, params.yaml's variants and `fourdfy import-videos --method` (here, where each can import it
    without loading the generator)."""
    size = len(name.encode("utf-8"))
    if size <= METHOD_NAME_MAX_BYTES:
        return None
    return (f"method name {name!r} is {size} bytes long (UTF-8), over the limit of {METHOD_NAME_MAX_BYTES}: with a "
            f"prompt slug of up to {SLUG_MAX_BYTES} bytes it names files such as a sweep log's temporary "
            f"`.<method>-<slug>.out.<12 hex>.tmp`, which must fit in {FILE_NAME_MAX_BYTES} bytes; choose a shorter "
            "name")


_HASH_HEX = 8
"""Hex digits of the SHA-256 of the whole slug that end a shortened slug (32 bits: two long prompts that share
their first ~190 bytes collide with odds of 1 in 4 billion)."""


def _accent_base(ch: str) -> bool:
    """Whether combining marks after `ch` are accents to drop: after Latin, Greek and Cyrillic letters (below
    U+0530, and U+1E00-U+1FFF). Other scripts' marks are spelling and stay (Devanagari vowel signs, the kana
    voicing mark that tells パンダ from ハンタ)."""
    return ch < "\u0530" or "\u1e00" <= ch <= "\u1fff"


def _full_slug(prompt: str) -> str:
    """The slug of `prompt` before any shortening ("" for no letters or digits)."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", prompt).casefold())
    out: list[str] = []
    base = " "  # the letter the next combining mark belongs to
    for ch in text:
        if unicodedata.category(ch).startswith("M"):  # a combining mark (accent, vowel sign)
            if out and out[-1] != "_" and not _accent_base(base):
                out.append(ch)  # a mark of a letter that was kept, in a script where it is spelling
            continue
        base = ch
        out.append(ch if ch.isalnum() else "_")
    return unicodedata.normalize("NFC", re.sub(r"_+", "_", "".join(out)).strip("_"))


def _shorten(slug: str) -> str:
    """`slug` cut to fit SLUG_MAX_BYTES with '_' and a hash of the whole of it: distinct for long prompts that differ
    only at the end, the same on every machine, and its own slug (so it is looked up as one)."""
    digest = hashlib.sha256(slug.encode("utf-8")).hexdigest()[:_HASH_HEX]
    budget = SLUG_MAX_BYTES - 1 - len(digest)
    head = slug.encode("utf-8")[:budget].decode("utf-8", "ignore")  # whole code points only
    # never part a letter from its combining marks (a vowel sign, a virama): cut before the letter instead
    while head and unicodedata.category(slug[len(head)]).startswith("M"):
        head = head[:-1]
    # a cut that would read as another slug (a trailing '_', a pair that composes) moves back until it does not
    while head and _full_slug(head) != head:
        head = head[:-1]
    return f"{head}_{digest}" if head else digest


def slugify(prompt: str) -> str:
    """'A panda dancing.' -> 'a_panda_dancing', 'Ein Bär tanzt.' -> 'ein_bar_tanzt', '一只熊猫在跳舞。' ->
    '一只熊猫在跳舞' (stable: used in run folders and DVC stage names).

    Letters and digits of any script are kept, casefolded; every other run of characters becomes one '_'. NFKD
    first, so accents of Latin, Greek and Cyrillic letters are dropped (ä -> a) and compatibility forms are plain
    (ﬁ -> fi, full-width Ａ -> a); the slug is NFC (composed), so a slug is its own slug. On ASCII text this is
    exactly the old rule `[^a-z0-9]+ -> _`, so the slugs of existing runs do not change. A slug over SLUG_MAX_BYTES
    (a prompt of more than about 200 ASCII or 66 CJK characters) is cut at a character boundary and ends in '_'
    and 8 hex digits of the SHA-256 of the whole slug, so that file names made from it fit; it too is its own slug."""
    slug = _full_slug(prompt)
    if not slug:
        raise PromptFileError(f"prompt {prompt!r} has no letters or digits")
    return slug if len(slug.encode("utf-8")) <= SLUG_MAX_BYTES else _shorten(slug)


def full_slug(prompt: str) -> str:
    """The slug of `prompt` before any shortening: `slugify`'s result when that fits SLUG_MAX_BYTES, else the whole
    of what it cut. For rules on a prompt's words that a cut slug hides (the importer drops leading articles before
    slugifying, as the hash of a cut slug covers them)."""
    slug = _full_slug(prompt)
    if not slug:
        raise PromptFileError(f"prompt {prompt!r} has no letters or digits")
    return slug


def _read_lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise PromptFileError(f"cannot read prompt file {path}: {err.strerror}") from None
    # a byte-order mark (Windows editors write one) would end up in the first prompt's text; CRLF is split below
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise PromptFileError(f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}); "
                              "save the prompt file as UTF-8") from None
    # line ends only (LF, CRLF, or an old Mac's CR), not str.splitlines' others: a form feed, a vertical tab or
    # U+0085 / U+2028 inside a prompt would split it in two prompts
    lines = re.split(r"\r\n|\r|\n", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def load_prompts(path: Path | str) -> dict[str, str]:
    """slug -> prompt, in file order."""
    path = Path(path)
    if path.is_dir():
        raise PromptFileError(f"{path} is a folder, not a prompt file; give a prompt file (one prompt per line, "
                              "e.g. prompts/ablation_5.txt)")
    if not path.is_file():
        raise PromptFileError(f"prompt file not found: {path} (see prompts/ for the paper's lists)")
    prompts: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(_read_lines(path), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            slug = slugify(text)
        except PromptFileError as err:  # named by file and line: a file of another kind fails on some odd line
            raise PromptFileError(f"{path}:{lineno}: {err} (a prompt file has one prompt per line; '#' starts a "
                                  "comment)") from None
        if slug in prompts:
            raise PromptFileError(f"{path}:{lineno}: duplicate prompt {text!r} (same slug {slug!r} as "
                                  f"{prompts[slug]!r} on line {first_line[slug]}; slugs ignore case, accents and "
                                  "punctuation); delete one of the two lines or reword one")
        prompts[slug] = text
        first_line[slug] = lineno
    if not prompts:
        raise PromptFileError(f"{path} holds no prompts (one per line; '#' starts a comment)")
    return prompts


def library_files() -> list[Path]:
    """The prompt files of the library (every `*.txt` in PROMPT_DIR), in name order."""
    return sorted(PROMPT_DIR.glob("*.txt"))


def library() -> dict[str, dict[str, str]]:
    """{file stem (the prompt set's name, e.g. `mav3d_28`): {slug: prompt}} of the library's files."""
    return {f.stem: load_prompts(f) for f in library_files()}


def resolve_prompt(key: str, files: list[Path] | None = None) -> str:
    """The prompt text itself, or the prompt of a slug from the prompt files (default: every
    `*.txt` in PROMPT_DIR). Free text is returned without reading any file; a file that cannot be
    loaded is skipped and named in the error only when the slug is found nowhere else. A non-ASCII key that is
    its own slug and is in no file is free text: scripts without case or spaces (一只熊猫在跳舞) write whole
    prompts that way. Blanks around `key` are dropped (a prompt pasted with a trailing space is the prompt)."""
    key = key.strip()
    if slugify(key) != key:  # looks like free text, not a slug
        # ... unless it is the whole slug of a long prompt, which the prompt's (shortened) slug stands for: given
        # before slugs were shortened, it must still name the prompt, not be trained as its own text
        if _full_slug(key) == key and len(key.encode("utf-8")) > SLUG_MAX_BYTES:
            short = slugify(key)
            try:
                text = resolve_prompt(short, files)
            except PromptFileError:  # in no file: the key is the text
                return key
            return key if text == short else text  # a non-ASCII slug in no file comes back as itself
        return key
    import difflib

    files = list(files) if files is not None else library_files()
    broken: list[str] = []
    slugs: list[str] = []
    for f in files:
        try:
            table = load_prompts(f)
        except PromptFileError as err:
            broken.append(str(err))
            continue
        if key in table:
            return table[key]
        slugs += table
    if not key.isascii():  # slugs typed by hand are the library's ASCII ones; this is a prompt's text
        return key
    names = ", ".join(Path(f).name for f in files) or "no prompt files"
    close = difflib.get_close_matches(key, slugs, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    hint = f"; skipped unreadable prompt file(s): {' | '.join(broken)}" if broken else ""
    raise PromptFileError(f"no prompt with slug {key!r}{guess} in {names}{hint} "
                          "(give the prompt text itself, or a slug from these files)")


def library_twin(text: str) -> str | None:
    """The library prompt with the slug of free text `text` when their texts differ ('A panda dancing' ->
    'A panda dancing.'), else None. Videos are paired by slug, so such a run is compared with the library
    prompt's runs although it was trained, and will be scored, on other words."""
    try:
        slug = slugify(text)
    except PromptFileError:
        return None
    if slug == text:  # a slug, not free text: resolve_prompt looks it up
        return None
    for f in library_files():
        try:
            other = load_prompts(f).get(slug)
        except PromptFileError:
            continue
        if other is not None and other != text.strip():
            return other
    return None
