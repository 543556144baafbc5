"""The paper's qualitative comparison figure: per prompt, frames of every method's evaluation video in a grid.

- Rows: one per method, labelled on the left (`FigureConfig.labels`, else the table label a registered method
  gives itself, `baselines.Method.label`, else its name). A method without a video of the prompt gets a grey row
  marked "no video"; a prompt that no method has is an error.
- Columns: moments of the video. The evaluation orbit moves the camera and the scene's time together, so evenly
  spaced frames show both: indices round(i * (n - 1) / (k - 1)), i = 0..k-1, of the n decoded frames (the first
  and the last included; one column: the first), so videos of other frame counts show the same moments.
- Frames: the decoded video.mp4 of each artifact (what raters see and CLIP scores), through the suite's PyAV
  decoder, after the artifact's own checks (`validate_artifact`: a corrupt video or the manifest of another
  prompt is an error naming the folder). Every cell of a figure has one size (`cell_size`, by default the largest
  width and the largest height among the figure's videos, whatever the order of the rows), and a cell holds the
  frame as decoded; only a frame of another size (methods of other native resolutions, 256x256 beside 512x512) is
  resized (Pillow, bicubic) to fit it with its aspect ratio kept, centred on the background (letterboxed): never
  stretched, and by default never shrunk, so the sharpest video keeps its detail.
- Title: the prompt text (from the manifests).
- Files: `<out>/<prompt slug>.png`, composed with Pillow. Each figure is written as soon as it is composed (one
  figure in memory at a time, however many prompts) to a hidden temporary beside its file, `.<slug>.png.<random
  hex>.tmp`, and all are renamed into place only once every figure is composed: a bad video, an error or Ctrl-C
  removes the temporaries and replaces nothing (stopped during those renames, the figures renamed stay). No time and no path go into a file, and it carries one PNG text
  chunk, `Software: fourdfy figure`, so the same inputs give byte-identical files and a file of that name that
  `fourdfy figure` did not write is recognised and never replaced. A temporary that a killed process left (`kill
  -9`) is never read, counted or reused (its name is random and created exclusively): delete it at will.

API:
    FigureConfig                              columns, cell size, labels, title, font size
    select_artifacts(roots, methods, prompts) -> Selection   what the figures show (checked, nothing decoded)
    check_outputs(out, slugs, overwrite) -> [Path]          the figures this run replaces (checked, nothing written)
    make_figures(selection, out, cfg, ...) -> [Figure]      decode, compose, write
    frame_indices(n_frames, columns), default_cell_size(videos), compose(...), png_bytes(image),
    written_by_figure(path)
    stage_png(path, image) -> temporary                     the PNG beside `path`, to rename over it or remove
"""

from __future__ import annotations

import difflib
import io
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

# the temporaries and write-error mapping of write_atomic, for files renamed into place only once all are written
from method.fileio import new_temporary, write_error

from .artifacts import (RENDER_HINT, RUN_REASON, Artifact, ArtifactError, check_writable_folder, nothing_found,
                        scan_artifacts, validate_artifact)
from .video import VideoError, decode_video

SOFTWARE = "fourdfy figure"
"""The value of the `Software` text chunk of every figure: how an earlier figure is told from another file."""
RESAMPLE = Image.Resampling.BICUBIC
"""How a frame of another size than its cell is resized."""
MISSING_TEXT = "no video"
"""What a row without a video says."""
BACKGROUND = (255, 255, 255)
MISSING_FILL = (224, 224, 224)
INK = (0, 0, 0)


class FigureError(ValueError):
    """The figures cannot be made: a selection that matches nothing, an output in the way, an unusable video."""


@dataclass(frozen=True)
class FigureConfig:
    """How `fourdfy figure` lays out a figure (checked when made)."""

    columns: int = 4
    """Frames per row, evenly spaced over each video (the first and the last included)."""
    cell_size: tuple[int, int] | None = None
    """(width, height) of every frame cell in pixels; None: the largest width and height of the figure's videos."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Row label per method name; a method not here (or given "") gets its registered table label, else its name."""
    title: str = "{prompt}"
    """The title above the grid: `{prompt}` becomes the prompt's text, `{slug}` its slug; "" for none."""
    font_size: int | None = None
    """Text size in pixels; None: a twelfth of the cell height, within 11..32."""

    def __post_init__(self) -> None:
        if isinstance(self.columns, bool) or not isinstance(self.columns, int) or self.columns < 1:
            raise ValueError(f"--columns must be a whole number >= 1 (default 4), got {self.columns!r}")
        if self.cell_size is not None and (len(self.cell_size) != 2 or any(
                isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in self.cell_size)):
            raise ValueError(f"cell_size must be (width, height) in whole pixels >= 1, got {self.cell_size!r}")
        if self.font_size is not None and (isinstance(self.font_size, bool) or self.font_size < 6):
            raise ValueError(f"font_size must be >= 6 pixels, got {self.font_size!r}")


def frame_indices(n_frames: int, columns: int) -> list[int]:
    """round(i * (n_frames - 1) / (columns - 1)) for i = 0..columns-1 (Python's round: halves to even), exactly;
    [0] for one column. More columns than frames repeat frames rather than invent any."""
    if n_frames < 1 or columns < 1:
        raise ValueError(f"cannot pick {columns} frame(s) of {n_frames}")
    if columns == 1:
        return [0]
    return [round(Fraction(i * (n_frames - 1), columns - 1)) for i in range(columns)]


def figure_path(out: Path | str, slug: str) -> Path:
    """Where the figure of prompt `slug` goes."""
    return Path(out) / f"{slug}.png"


@dataclass(frozen=True)
class Selection:
    """What the figures show: rows, prompts and the artifacts of both (`select_artifacts`)."""

    methods: tuple[str, ...]
    """Row order."""
    prompts: tuple[str, ...]
    """Prompt slugs, one figure each."""
    artifacts: dict[tuple[str, str], Artifact]
    """{(method, slug): Artifact} of the selected methods and prompts (a pair without a video is absent)."""


def _listed(items: Sequence[str], n: int = 4) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def _guess(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _registry() -> dict:
    """The baselines registry, plug-ins included (as `pipelines.stages.registered_labels` reads it)."""
    from baselines import METHODS, load_entry_points

    load_entry_points(strict=False)  # a broken plug-in costs its place in the order and its label, not the figure
    return METHODS


def registry_order(methods: Iterable[str]) -> list[str]:
    """`methods` in the order of the baselines registry (plug-ins included), then the others (imports under names
    of their own, variants of a params.yaml) by name."""
    registry, names = _registry(), set(methods)
    return [m for m in registry if m in names] + sorted(names - set(registry))


def row_labels(methods: Iterable[str], given: Mapping[str, str] | None = None) -> dict[str, str]:
    """{method: row label}: `given`'s non-empty label, else the registered method's table label, else the name."""
    registry, given = _registry(), given or {}
    out = {}
    for m in methods:
        registered = registry[m].label if m in registry else ""
        out[m] = given.get(m) or registered or m
    return out


def select_artifacts(roots: Sequence[Path | str], methods: Sequence[str] | None = None,
                     prompts: Sequence[str] | None = None) -> Selection:
    """The artifacts under `roots` (`<root>/<method>/<slug>/`, as `fourdfy clipscore` takes them) of `methods`
    (default: every method found, in the registry's order) and `prompts` (slugs; default: every prompt the methods
    have, sorted). A folder that cannot be read is an error (its method and prompt are unknown: it may be one the
    figure shows); so are a named method that is neither found nor registered, and a named prompt that no selected
    method has. A registered method named without any video gets "no video" rows. Nothing is decoded here."""
    found, broken = scan_artifacts(roots)
    runs = [str(f) for f, reason in broken.items() if reason == RUN_REASON]
    if runs and len(runs) == len(broken) and not found:  # the runs folder given for the artifacts one
        raise FigureError(f"{len(runs)} training run(s) given, not evaluation videos ({_listed(runs, 3)}): "
                          f"{RENDER_HINT}")
    if broken:
        listed = "; ".join(f"{folder}: {reason}" for folder, reason in list(broken.items())[:3])
        listed += f"; and {len(broken) - 3} more" if len(broken) > 3 else ""
        raise FigureError(f"{len(broken)} artifact folder(s) that cannot be read (incomplete, or two for one method "
                          f"and prompt); fix or remove them first (`fourdfy validate-artifacts` checks them): {listed}")
    where = ", ".join(map(str, roots))
    if not found:
        raise FigureError(nothing_found(roots))
    have = {m for m, _ in found}
    if methods is None:
        rows = registry_order(have)
    else:
        rows = list(dict.fromkeys(methods))
        unknown = [m for m in rows if m not in have and m not in _registry()]
        if unknown:
            raise FigureError(f"--methods: no artifact under {where} is of method {unknown[0]!r}"
                              f"{_guess(unknown[0], have)}; the methods found are {_listed(registry_order(have), 12)}")
        if not have & set(rows):
            raise FigureError(f"--methods: none of {', '.join(rows)} has an artifact under {where}; the methods "
                              f"found are {_listed(registry_order(have), 12)}")
    slugs_of_rows = sorted({s for m, s in found if m in rows})
    if prompts is None:
        slugs = slugs_of_rows
    else:
        slugs = list(dict.fromkeys(prompts))
        lacking = [s for s in slugs if s not in slugs_of_rows]
        if lacking:
            raise FigureError(f"--prompts: no video of prompt {lacking[0]!r}{_guess(lacking[0], slugs_of_rows)} "
                              f"under {where} (of the methods shown); the prompts found are "
                              f"{_listed(slugs_of_rows, 6)}")
    arts = {(m, s): found[(m, s)] for s in slugs for m in rows if (m, s) in found}
    return Selection(methods=tuple(rows), prompts=tuple(slugs), artifacts=arts)


def written_by_figure(path: Path) -> bool:
    """Whether `path` is a PNG that `fourdfy figure` wrote (its `Software` text chunk)."""
    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.info.get("Software") == SOFTWARE
    except (OSError, ValueError, Image.DecompressionBombError):  # not an image, unreadable: not ours
        return False


def check_outputs(out: Path | str, slugs: Sequence[str], overwrite: bool = False) -> list[Path]:
    """Check, before anything is decoded and creating nothing, that the figures of `slugs` can go to `out`; return
    the existing ones this run replaces. A figure file of an earlier `fourdfy figure` is replaced only with
    `overwrite`; any other file (or folder) of a figure's name never; other files in `out` are left alone."""
    out = Path(out)
    try:
        check_writable_folder(out)  # a file in its place or above it, or a folder it cannot be made in
    except ArtifactError as err:
        raise FigureError(f"--out: {err}") from None
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise FigureError(f"--out {out} is not writable; give another --out")
    targets = [figure_path(out, s) for s in slugs]
    foreign = [t for t in targets if t.exists() or t.is_symlink()]
    own = [t for t in foreign if t.is_file() and not t.is_symlink() and written_by_figure(t)]
    foreign = [t for t in foreign if t not in own]
    if foreign:
        one = len(foreign) == 1
        raise FigureError(f"{_listed([str(t) for t in foreign], 3)} {'is' if one else 'are'} in the way of the "
                          "figures and not written by `fourdfy figure` (never replaced, --overwrite or not): move "
                          f"{'it' if one else 'them'} away or give another --out")
    if own and not overwrite:
        what = f"{own[0]} already exists" if len(own) == 1 else \
            f"{len(own)} figures already exist ({_listed([str(t) for t in own], 3)})"
        raise FigureError(f"{what} (pass --overwrite to replace {'it' if len(own) == 1 else 'them'})")
    return own


def load_frames(art: Artifact, columns: int) -> tuple[list[int], np.ndarray]:
    """(indices, frames (columns, H, W, 3) uint8) of `art`'s decoded video.mp4, after the artifact's checks."""
    problems = validate_artifact(art.folder)
    if problems:
        raise FigureError(f"{art.folder}: {'; '.join(problems)} (`fourdfy validate-artifacts` checks every folder)")
    try:
        frames = decode_video(art.video_path)
    except VideoError as err:  # changed since the check
        raise FigureError(f"{art.video_path}: {err}") from None
    idx = frame_indices(len(frames), columns)
    return idx, frames[idx]


@dataclass(frozen=True)
class Layout:
    """Where things go in a figure (pixels, origin at the top left)."""

    width: int
    """Of the whole image."""
    height: int
    """Of the whole image."""
    cell_size: tuple[int, int]
    """(width, height) of a cell."""
    grid_origin: tuple[int, int]
    """Top left of the first cell."""
    gap: int
    """Pixels between cells."""
    label_width: int
    """Width of the label column, left of the grid."""

    def cell_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of a cell, as Pillow's crop takes it."""
        w, h = self.cell_size
        x = self.grid_origin[0] + col * (w + self.gap)
        y = self.grid_origin[1] + row * (h + self.gap)
        return x, y, x + w, y + h


def _font(size: int) -> ImageFont.FreeTypeFont:
    # DejaVu Sans as matplotlib ships it, not a system font: the same glyphs, so the same bytes, on every machine.
    # Pillow's own bundled font has Latin letters only; the paper's row labels need "∇" (w/o ∇L_3D), and prompts
    # may be in Greek or Cyrillic
    import matplotlib

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)


def _text_width(font, text: str) -> int:
    return int(np.ceil(font.getlength(text))) if text else 0


def _wrap(text: str, font, width: int) -> list[str]:
    """Greedy word wrap of `text` to `width` pixels (a word longer than that gets a line of its own)."""
    lines: list[str] = []
    for word in text.split():
        if lines and _text_width(font, f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def compose(rows: Sequence[tuple[str, np.ndarray | None]], title: str, cell_size: tuple[int, int],
            font_size: int | None = None) -> tuple[Image.Image, Layout]:
    """The figure: one row per (label, frames (k, H, W, 3) uint8 or None for "no video"), every frame in a cell of
    `cell_size` (resized only if its size differs), `title` above (wrapped)."""
    columns = max((len(f) for _, f in rows if f is not None), default=1)
    cw, ch = cell_size
    fs = font_size or max(11, min(32, round(ch / 12)))
    font, title_font = _font(fs), _font(round(fs * 1.25))
    pad, gap = max(4, fs // 2), max(2, fs // 5)
    label_w = max(_text_width(font, label) for label, _ in rows) + 2 * pad
    grid_w = columns * cw + (columns - 1) * gap
    width = pad + label_w + grid_w + pad
    lines = _wrap(title, title_font, width - 2 * pad)
    width = max(width, *(_text_width(title_font, ln) + 2 * pad for ln in lines)) if lines else width
    line_h = sum(title_font.getmetrics()) + max(1, fs // 6)
    top = pad + (len(lines) * line_h + pad if lines else 0)
    height = top + len(rows) * ch + (len(rows) - 1) * gap + pad
    layout = Layout(width=width, height=height, cell_size=(cw, ch), grid_origin=(pad + label_w, top), gap=gap,
                    label_width=label_w)
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for i, ln in enumerate(lines):
        draw.text((width // 2, pad + i * line_h), ln, font=title_font, fill=INK, anchor="ma")
    for r, (label, frames) in enumerate(rows):
        left, y0, _, y1 = layout.cell_box(r, 0)
        draw.text((pad, (y0 + y1) // 2), label, font=font, fill=INK, anchor="lm")
        if frames is None:
            right = layout.cell_box(r, columns - 1)[2]
            draw.rectangle((left, y0, right - 1, y1 - 1), fill=MISSING_FILL)
            draw.text(((left + right) // 2, (y0 + y1) // 2), MISSING_TEXT, font=font, fill=INK, anchor="mm")
            continue
        for c, frame in enumerate(frames):
            cell = Image.fromarray(np.ascontiguousarray(frame), "RGB")
            x, y = layout.cell_box(r, c)[:2]
            if cell.size != (cw, ch):  # fitted, never stretched: another aspect ratio is centred on the background
                cell, (dx, dy) = fit(cell, (cw, ch))
                x, y = x + dx, y + dy
            image.paste(cell, (x, y))
    return image, layout


def default_cell_size(videos: Sequence[np.ndarray]) -> tuple[int, int]:
    """(width, height) of the cells of a figure of these videos' frames ((k, H, W, 3) each, at least one): the
    largest width and the largest height among them. Not the first row's size, so the figure does not depend on
    the order of its rows; every frame fits it without shrinking (the largest at their native size, the others
    enlarged), and a video of another aspect ratio is letterboxed in it."""
    if not videos:
        raise ValueError("a figure needs at least one video to size its cells")
    return max(v.shape[2] for v in videos), max(v.shape[1] for v in videos)


def fit(cell: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, tuple[int, int]]:
    """`cell` resized (bicubic) to the largest size within `size` that keeps its aspect ratio, and its offset in
    the `size` box that centres it."""
    (w, h), (cw, ch) = cell.size, size
    scale = min(cw / w, ch / h)
    fw, fh = max(1, min(cw, round(w * scale))), max(1, min(ch, round(h * scale)))
    return cell.resize((fw, fh), RESAMPLE), ((cw - fw) // 2, (ch - fh) // 2)


def save_png(image: Image.Image, f) -> None:
    """Write the PNG file of `image` to the binary file `f`: its pixels and the `Software` chunk, nothing else (no
    time, no path)."""
    info = PngInfo()
    info.add_text("Software", SOFTWARE)
    image.save(f, format="PNG", pnginfo=info)


def png_bytes(image: Image.Image) -> bytes:
    """The bytes `save_png` writes."""
    buf = io.BytesIO()
    save_png(image, buf)
    return buf.getvalue()


def stage_png(path: Path, image: Image.Image) -> Path:
    """Write `image`'s PNG (`save_png`) to a new hidden temporary beside `path`, fsynced, and return the temporary,
    for the caller to rename over `path` (os.replace) or remove. On any error or interrupt the temporary is removed;
    a write error is an OSError naming `path`, as `write_atomic`'s are."""
    fd, tmp = new_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            save_png(image, f)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename
    except BaseException as err:
        mapped = write_error(err, path, tmp)
        tmp.unlink(missing_ok=True)
        if mapped is not None:
            raise mapped from err
        raise
    return tmp


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist, deepest first."""
    missing = []
    while not (folder.exists() or folder.is_symlink()) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


@dataclass(frozen=True)
class FigureRow:
    """One row of a figure."""

    method: str
    """The method's name."""
    label: str
    """The label drawn on the left."""
    frames: tuple[int, ...] | None
    """Indices of the decoded frames shown; None: no video."""
    n_frames: int | None
    """Frames of its decoded video; None: no video."""


@dataclass(frozen=True)
class Figure:
    """One written figure."""

    slug: str
    """The prompt's slug (the file's name)."""
    prompt: str
    """The prompt text (the title)."""
    path: Path
    """`<out>/<slug>.png`."""
    rows: tuple[FigureRow, ...]
    """The rows, top to bottom."""
    layout: Layout
    """Where the title, labels and cells lie in the image."""
    replaced: bool = False
    """Whether it replaced the figure of an earlier `fourdfy figure`."""

    @property
    def missing(self) -> list[str]:
        """Methods of a "no video" row."""
        return [r.method for r in self.rows if r.frames is None]


def _stage_figure(selection: Selection, slug: str, out: Path, cfg: FigureConfig, labels: Mapping[str, str],
                  earlier: set[Path], counter) -> tuple[Figure, Path]:
    """Decode and compose the figure of `slug` and write it to its temporary (`stage_png`): (figure, temporary).
    Its frames and image go when this returns, so the next figure's do not join them."""
    rows, cells = [], []
    for method in selection.methods:
        art = selection.artifacts.get((method, slug))
        if art is None:
            rows.append(FigureRow(method, labels[method], None, None))
            cells.append((labels[method], None))
            continue
        idx, frames = load_frames(art, cfg.columns)
        rows.append(FigureRow(method, labels[method], tuple(idx), art.n_frames))
        cells.append((labels[method], frames))
        counter.update()
    cell_size = cfg.cell_size or default_cell_size([f for _, f in cells if f is not None])
    prompt = next(selection.artifacts[(m, slug)].prompt for m in selection.methods
                  if (m, slug) in selection.artifacts)
    # one pass: a prompt that itself contains "{slug}" stays as written
    title = re.sub(r"\{(prompt|slug)\}", lambda m: {"prompt": prompt, "slug": slug}[m[1]], cfg.title)
    image, layout = compose(cells, title, cell_size, cfg.font_size)
    path = figure_path(out, slug)
    fig = Figure(slug=slug, prompt=prompt, path=path, rows=tuple(rows), layout=layout, replaced=path in earlier)
    return fig, stage_png(path, image)


def make_figures(selection: Selection, out: Path | str, cfg: FigureConfig = FigureConfig(), overwrite: bool = False,
                 progress: bool = False, heartbeat_s: float | None = None) -> list[Figure]:
    """Write `<out>/<slug>.png` for every prompt of `selection` (`check_outputs` first). Each figure goes to a
    hidden temporary as soon as it is composed (`stage_png`: one figure in memory at a time), and the temporaries
    are renamed into place only once every figure is composed: a video that fails its checks, any other error or an
    interrupt removes them (and the folders this call made), leaving `out` as it was."""
    from .progress import Counter

    out = Path(out)
    earlier = set(check_outputs(out, selection.prompts, overwrite))
    labels = row_labels(selection.methods, cfg.labels)
    created = _missing_folders(out)
    staged: list[tuple[Figure, Path]] = []
    renamed, finished = 0, False
    try:
        out.mkdir(parents=True, exist_ok=True)
        counter = Counter(len(selection.artifacts), "figure", "video", bar=progress, heartbeat_s=heartbeat_s)
        try:
            for slug in selection.prompts:
                staged.append(_stage_figure(selection, slug, out, cfg, labels, earlier, counter))
        finally:
            counter.close()
        check_outputs(out, selection.prompts, overwrite)  # again: another writer may have put a file there meanwhile
        for fig, tmp in staged:
            try:
                os.replace(tmp, fig.path)
            except OSError as err:  # about the figure: its temporary's hidden name means nothing to a user
                raise OSError(err.errno, err.strerror, str(fig.path)) from err
            renamed += 1
        finished = True
    finally:
        for _, tmp in staged[renamed:]:  # not renamed: an error or an interrupt
            tmp.unlink(missing_ok=True)
        if not finished:
            for folder in created:  # deepest first; one that another writer put a file in meanwhile stays
                try:
                    folder.rmdir()
                except OSError:
                    break
    return [fig for fig, _ in staged]
