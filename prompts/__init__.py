"""The prompt library: the paper's prompt files beside this module (`mav3d_28.txt`, `ablation_5.txt`).

Prompt files: one prompt per line, '#' comments; each prompt gets a filesystem-safe slug."""

from __future__ import annotations

import re
from pathlib import Path

PROMPT_DIR = Path(__file__).resolve().parent


class PromptFileError(ValueError):
    """A prompt file is missing, empty, or has duplicate prompts."""


def slugify(prompt: str) -> str:
    """'A panda dancing.' -> 'a_panda_dancing' (stable: used in run folders and DVC stage names)."""
    slug = re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_")
    if not slug:
        raise PromptFileError(f"prompt {prompt!r} has no letters or digits")
    return slug


def load_prompts(path: Path | str) -> dict[str, str]:
    """slug -> prompt, in file order."""
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"prompt file not found: {path} (see prompts/ for the paper's lists)")
    prompts: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        slug = slugify(text)
        if slug in prompts:
            raise PromptFileError(f"{path}:{lineno}: duplicate prompt {text!r} (same slug as {prompts[slug]!r})")
        prompts[slug] = text
    if not prompts:
        raise PromptFileError(f"{path} holds no prompts (one per line; '#' starts a comment)")
    return prompts


def resolve_prompt(key: str, files: list[Path] | None = None) -> str:
    """A slug from the project's prompt files, or the prompt text itself."""
    for f in files or sorted(PROMPT_DIR.glob("*.txt")):
        table = load_prompts(f)
        if key in table:
            return table[key]
    if slugify(key) != key:  # looks like free text, not a slug
        return key
    raise PromptFileError(f"no prompt with slug {key!r} in {', '.join(p.name for p in sorted(PROMPT_DIR.glob('*.txt')))}")
