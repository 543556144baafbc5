"""`fourdfy figure` (evaluation/figure.py): the paper's qualitative figure from real tiny artifacts. Every cell is
checked against an independent PyAV decode of the artifact's video.mp4."""

from __future__ import annotations

import json
import shutil
import struct
import zlib

import numpy as np
import pytest
from eval_helpers import error_lines, make_frames
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from evaluation.artifacts import write_artifact
from evaluation.figure import (MISSING_FILL, RESAMPLE, FigureConfig, FigureError, frame_indices, make_figures,
                               select_artifacts)
from pipelines.cli import app

runner = CliRunner()
SOURCE = {"kind": "render", "run": "r", "config_hash": "0" * 16}
PANDA, CAT = "A panda dancing.", "A cat singing."


def add(root, method, prompt, n, h=32, w=48, seed=0):
    return write_artifact(root, method, prompt, make_frames(n, h, w, seed=seed), source=SOURCE, trajectory="orbit",
                          fps=15)


def independent_decode(path) -> np.ndarray:
    """Every frame of a video with PyAV directly, not through the suite's decoder."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return chunks


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """Two roots as the pipeline has them: rendered methods (other frame counts, one of another size) and an
    import under a name of its own; the cat prompt has 4dfy only."""
    base = tmp_path_factory.mktemp("figure")
    rendered, imported = base / "rendered", base / "imported"
    add(rendered, "wo_hybrid", PANDA, 7, seed=10)
    add(rendered, "4dfy", PANDA, 10, seed=0)
    add(rendered, "4dfy", CAT, 5, seed=30)
    add(imported, "aaa_import", PANDA, 9, h=16, w=24, seed=20)  # smaller: enlarged to the largest video's size
    return rendered, imported


def test_frame_indices_are_evenly_spaced_first_and_last_included():
    assert frame_indices(64, 4) == [0, 21, 42, 63]  # the pipeline's 64-frame orbit
    assert frame_indices(10, 4) == [0, 3, 6, 9]
    assert frame_indices(5, 4) == [0, 1, 3, 4]  # 4/3 -> 1, 8/3 -> 3
    assert frame_indices(6, 3) == [0, 2, 5]  # 2.5 rounds half to even, as Python's round
    assert frame_indices(2, 4) == [0, 0, 1, 1]  # more columns than frames: repeated, none invented
    assert frame_indices(7, 1) == [0]


def test_every_cell_is_the_decoded_frame_in_registry_order(roots, tmp_path):
    cfg = FigureConfig(labels={"wo_hybrid": "w/o hybrid SDS"})
    sel = select_artifacts(roots)
    # registry order (4dfy before wo_hybrid), then unregistered names: not alphabetical
    assert sel.methods == ("4dfy", "wo_hybrid", "aaa_import") and sel.prompts == ("a_cat_singing", "a_panda_dancing")
    figs = {f.slug: f for f in make_figures(sel, tmp_path, cfg)}
    fig = figs["a_panda_dancing"]
    assert fig.path == tmp_path / "a_panda_dancing.png" and fig.prompt == PANDA
    assert [(r.method, r.label, r.frames) for r in fig.rows] == [
        ("4dfy", "4D-fy", (0, 3, 6, 9)), ("wo_hybrid", "w/o hybrid SDS", (0, 2, 4, 6)),
        ("aaa_import", "aaa_import", (0, 3, 5, 8))]
    image = np.asarray(Image.open(fig.path).convert("RGB"))
    assert image.shape[:2] == (fig.layout.height, fig.layout.width) and fig.layout.cell_size == (48, 32)
    for r, row in enumerate(fig.rows):
        decoded = independent_decode(roots[r == 2] / row.method / "a_panda_dancing" / "video.mp4")
        for c, k in enumerate(row.frames):
            left, top, right, bottom = fig.layout.cell_box(r, c)
            cell = image[top:bottom, left:right]
            expected = decoded[k]
            if expected.shape[:2] != (32, 48):  # only the resize, with the figure's own filter
                expected = np.asarray(Image.fromarray(expected).resize((48, 32), RESAMPLE))
            assert np.array_equal(cell, expected), (row.method, k)
            if k + 1 < len(decoded) and decoded[k + 1].shape[:2] == (32, 48):  # the frame, not a neighbour
                assert not np.array_equal(cell, decoded[k + 1])
        label = image[fig.layout.cell_box(r, 0)[1]:fig.layout.cell_box(r, 0)[3], :fig.layout.grid_origin[0]]
        assert (label < 128).any()  # the row label is drawn
    assert (image[:fig.layout.grid_origin[1]] < 128).any()  # and the title


def test_a_method_without_a_video_gets_a_marked_row(roots, tmp_path):
    fig = {f.slug: f for f in make_figures(select_artifacts(roots), tmp_path)}["a_cat_singing"]
    assert fig.missing == ["wo_hybrid", "aaa_import"] and fig.rows[0].frames == (0, 1, 3, 4)
    image = np.asarray(Image.open(fig.path).convert("RGB"))
    for r in (1, 2):
        left, top = fig.layout.cell_box(r, 0)[:2]
        right, bottom = fig.layout.cell_box(r, 3)[2:]
        row = image[top:bottom, left:right]
        assert tuple(row[0, 0]) == MISSING_FILL and tuple(row[-1, -1]) == MISSING_FILL
        assert (row < 128).any()  # "no video" written in it
    # a registered method named without any video: "no video" rows; a name neither found nor registered: an error
    sel = select_artifacts(roots, methods=["mav3d", "4dfy"], prompts=["a_panda_dancing"])
    assert sel.methods == ("mav3d", "4dfy") and [f.missing for f in make_figures(sel, tmp_path / "m")] == [["mav3d"]]
    with pytest.raises(FigureError, match=r"method '4dfyy' \(did you mean '4dfy'\?\)"):
        select_artifacts(roots, methods=["4dfyy"])
    with pytest.raises(FigureError, match="none of mav3d has an artifact"):
        select_artifacts(roots, methods=["mav3d"])  # no method of the figure has a video: nothing to show
    with pytest.raises(FigureError, match="no video of prompt 'a_cat_singing'"):
        select_artifacts(roots, methods=["wo_hybrid"], prompts=["a_cat_singing"])


def test_reruns_are_byte_identical_with_no_time_or_path(roots, tmp_path):
    first = make_figures(select_artifacts(roots), tmp_path / "a")
    again = make_figures(select_artifacts(roots), tmp_path / "b")
    for x, y in zip(first, again):
        data = x.path.read_bytes()
        assert data == y.path.read_bytes()
        kinds = [k for k, _ in png_chunks(data)]
        assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and set(kinds) == {b"IHDR", b"tEXt", b"IDAT", b"IEND"}
        assert [v for k, v in png_chunks(data) if k == b"tEXt"] == [b"Software\x00fourdfy figure"]
        pixels = zlib.decompress(b"".join(v for k, v in png_chunks(data) if k == b"IDAT"))
        assert str(tmp_path).encode() not in data and len(pixels) > 0


def test_a_corrupt_video_or_another_prompts_manifest_is_one_line_and_writes_nothing(roots, tmp_path):
    rendered = tmp_path / "rendered"
    shutil.copytree(roots[0], rendered)
    out = tmp_path / "out"
    assert runner.invoke(app, ["figure", str(rendered), "--out", str(out), "--no-progress"]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    video = rendered / "wo_hybrid" / "a_panda_dancing" / "video.mp4"  # the later figure: the cat's is composed
    video.write_bytes(video.read_bytes()[:len(video.read_bytes()) // 2])
    res = runner.invoke(app, ["figure", str(rendered), "--out", str(out), "--overwrite"])
    assert res.exit_code == 2 and len(error_lines(res)) == 1, res.output
    assert error_lines(res)[0].startswith(f"error: {video.parent}: video.mp4: ")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing replaced, nothing half-written
    res = runner.invoke(app, ["figure", str(rendered), "--out", str(tmp_path / "fresh")])
    assert res.exit_code == 2 and not (tmp_path / "fresh").exists()  # the cat's figure, composed first, is not written

    # a manifest of another prompt in a folder: the artifact check names the folder
    add(tmp_path / "other", "4dfy", PANDA, 4)
    wrong = tmp_path / "other" / "4dfy" / "a_panda_dancing" / "manifest.json"
    manifest = json.loads(wrong.read_text())
    wrong.write_text(json.dumps({**manifest, "prompt": CAT, "slug": "a_cat_singing"}))
    res = runner.invoke(app, ["figure", str(tmp_path / "other"), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2 and error_lines(res) == [
        f"error: {wrong.parent}: folder name 'a_panda_dancing' differs from the slug 'a_cat_singing' "
        "(`fourdfy validate-artifacts` checks every folder)"]
    assert not (tmp_path / "o2").exists()


def test_cli_writes_replaces_only_its_own_figures_and_fails_in_one_line(roots, tmp_path):
    out = tmp_path / "figs"
    args = ["figure", *map(str, roots), "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        f"wrote {out / 'a_cat_singing.png'} (3 method(s) x 4 frame(s); no video: wo_hybrid, aaa_import)",
        f"wrote {out / 'a_panda_dancing.png'} (3 method(s) x 4 frame(s))"]
    assert "figure: 4/4 video(s)" in res.stderr  # the heartbeat's closing line, as render and clipscore print
    # an existing figure is replaced only with --overwrite
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and error_lines(res) == [
        f"error: 2 figures already exist ({out / 'a_cat_singing.png'}, {out / 'a_panda_dancing.png'}) "
        "(pass --overwrite to replace them)"]
    res = runner.invoke(app, [*args, "--overwrite", "--prompts", "a_panda_dancing", "--columns", "2"])
    assert res.exit_code == 0 and res.stdout.splitlines() == [
        f"wrote {out / 'a_panda_dancing.png'} (3 method(s) x 2 frame(s); replaced the earlier one)"]
    # a file of that name that `fourdfy figure` did not write: never replaced, --overwrite or not
    (out / "a_cat_singing.png").write_bytes(b"my own drawing")
    Image.new("RGB", (4, 4)).save(out / "a_panda_dancing.png")  # a PNG, but not one of ours
    res = runner.invoke(app, [*args, "--overwrite"])
    assert res.exit_code == 2 and error_lines(res) == [
        f"error: {out / 'a_cat_singing.png'}, {out / 'a_panda_dancing.png'} are in the way of the figures and not "
        "written by `fourdfy figure` (never replaced, --overwrite or not): move them away or give another --out"]
    assert (out / "a_cat_singing.png").read_bytes() == b"my own drawing"

    def fails(extra: list[str], message: str, roots_given=None) -> None:
        given = list(map(str, roots)) if roots_given is None else roots_given
        res = runner.invoke(app, ["figure", *given, "--out", str(tmp_path / "new"), *extra])
        assert res.exit_code == 2 and error_lines(res) == [f"error: {message}"], res.output

    fails(["--columns", "0"], "--columns must be a whole number >= 1 (default 4), got 0")
    fails(["--methods", " , "], "--methods ' , ' names nothing; give names separated by commas, e.g. --methods "
          "4dfy,mav3d")
    fails(["--prompts", "a_panda_dance"], f"--prompts: no video of prompt 'a_panda_dance' (did you mean "
          f"'a_panda_dancing'?) under {roots[0]}, {roots[1]} (of the methods shown); the prompts found are "
          "a_cat_singing, a_panda_dancing")
    fails(["--labels", str(tmp_path / "nope.json")], f"--labels {tmp_path / 'nope.json'}: no such file")
    (tmp_path / "labels.json").write_text('{"4dfy": 1}')
    fails(["--labels", str(tmp_path / "labels.json")], f"--labels {tmp_path / 'labels.json'}: the label of '4dfy' "
          "is not a string; give an object of method: label")
    (tmp_path / "empty").mkdir()
    fails([], f"no artifacts under {tmp_path / 'empty'}; make them with `fourdfy render` or `fourdfy "
          "import-videos`", [str(tmp_path / "empty")])
    (tmp_path / "file").write_text("")
    fails(["--out", str(tmp_path / "file")], f"--out: {tmp_path / 'file'} is a file, not a folder; give --out a "
          "folder, new or existing")
    assert not (tmp_path / "new").exists()


def test_labels_file_names_the_rows(roots, tmp_path):
    """A labels file such as the `methods` stage's labels.json (a method's registered label or params.yaml's
    `label:`; "" for none: the registered label, 4dfy's the paper's "4D-fy", else the name)."""
    (tmp_path / "labels.json").write_text(json.dumps({"4dfy": "", "wo_hybrid": "w/o hybrid SDS"}))
    res = runner.invoke(app, ["figure", str(roots[0]), "--out", str(tmp_path / "o"), "--labels",
                              str(tmp_path / "labels.json"), "--prompts", "a_panda_dancing", "--no-progress"])
    assert res.exit_code == 0, res.output
    sel = select_artifacts([roots[0]], prompts=["a_panda_dancing"])
    fig = make_figures(sel, tmp_path / "p", FigureConfig(labels={"4dfy": "", "wo_hybrid": "w/o hybrid SDS"}))[0]
    assert [r.label for r in fig.rows] == ["4D-fy", "w/o hybrid SDS"]
    assert (tmp_path / "o" / "a_panda_dancing.png").read_bytes() == fig.path.read_bytes()


def test_design_labels_name_the_rows_as_the_tables_do(roots, tmp_path):
    """--design: a design's labels ("w/o ∇L_3D") label the rows, as the tables name the methods; --labels wins
    where both name a method; a broken design is one line."""
    design = tmp_path / "design.yaml"
    design.write_text("primary: 4dfy\ncomparisons: [wo_hybrid]\n"
                      "methods:\n  4dfy: {label: 4D-fy}\n  wo_hybrid: {label: \"w/o ∇L_3D\"}\n")
    args = ["figure", str(roots[0]), "--prompts", "a_panda_dancing", "--no-progress", "--design", str(design)]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    sel = select_artifacts([roots[0]], prompts=["a_panda_dancing"])
    fig = make_figures(sel, tmp_path / "p", FigureConfig(labels={"4dfy": "4D-fy", "wo_hybrid": "w/o ∇L_3D"}))[0]
    assert [r.label for r in fig.rows] == ["4D-fy", "w/o ∇L_3D"]
    assert (tmp_path / "o" / "a_panda_dancing.png").read_bytes() == fig.path.read_bytes()
    (tmp_path / "labels.json").write_text(json.dumps({"4dfy": "Ours"}))
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "o2"), "--labels", str(tmp_path / "labels.json")])
    fig = make_figures(sel, tmp_path / "p2", FigureConfig(labels={"4dfy": "Ours", "wo_hybrid": "w/o ∇L_3D"}))[0]
    assert res.exit_code == 0 and (tmp_path / "o2" / "a_panda_dancing.png").read_bytes() == fig.path.read_bytes()
    design.write_text("primary: [\n")
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "o3")])
    assert res.exit_code == 2 and len(error_lines(res)) == 1 and error_lines(res)[0].startswith(
        f"error: --design {design}: cannot parse as YAML: line 2")
    assert not (tmp_path / "o3").exists()


def test_the_font_draws_the_labels_of_the_paper_and_non_latin_prompts():
    """"∇" (the ablations' labels), Greek and Cyrillic are real glyphs, not the box every missing character gets
    (Pillow's own bundled font draws that box for each of them)."""
    from evaluation.figure import _font

    font = _font(24)
    def drawn(char: str) -> bytes:
        image = Image.new("L", (48, 48))
        ImageDraw.Draw(image).text((8, 8), char, font=font, fill=255)
        return image.tobytes()

    missing = drawn("\U0010fffd")
    for char in "∇λЖ":
        assert any(drawn(char)) and drawn(char) != missing, char


def test_labels_file_blanks_do_not_wipe_the_design_labels(roots, tmp_path):
    """labels.json gives "" to a method with no label of its own: with --design as well, the design's label
    stays."""
    design = tmp_path / "design.yaml"
    design.write_text("primary: 4dfy\ncomparisons: [wo_hybrid]\nmethods:\n  4dfy: {label: 4D-fy}\n"
                      "  wo_hybrid: {label: w/o hybrid SDS}\n")
    (tmp_path / "labels.json").write_text(json.dumps({"4dfy": "", "wo_hybrid": ""}))
    res = runner.invoke(app, ["figure", str(roots[0]), "--prompts", "a_panda_dancing", "--no-progress", "--design",
                              str(design), "--labels", str(tmp_path / "labels.json"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    sel = select_artifacts([roots[0]], prompts=["a_panda_dancing"])
    fig = make_figures(sel, tmp_path / "p", FigureConfig(labels={"4dfy": "4D-fy", "wo_hybrid": "w/o hybrid SDS"}))[0]
    assert (tmp_path / "o" / "a_panda_dancing.png").read_bytes() == fig.path.read_bytes()


def test_another_aspect_ratio_is_fitted_not_stretched(tmp_path):
    """A portrait import beside a landscape render, in landscape cells (`cell_size`): scaled to the cell's height
    with its aspect ratio, centred on the background, the margins untouched."""
    from evaluation.figure import BACKGROUND, fit

    root = tmp_path / "a"
    add(root, "4dfy", PANDA, 5, h=32, w=48, seed=1)
    portrait = add(root, "wo_hybrid", PANDA, 5, h=48, w=32, seed=2)
    fig = make_figures(select_artifacts([root]), tmp_path / "o", FigureConfig(columns=2, cell_size=(48, 32)))[0]
    image = np.asarray(Image.open(fig.path).convert("RGB"))
    frames = independent_decode(portrait.folder / "video.mp4")
    x0, y0, x1, y1 = fig.layout.cell_box(1, 1)  # row 2 (wo_hybrid), its last frame
    fitted, (dx, dy) = fit(Image.fromarray(frames[-1]), (x1 - x0, y1 - y0))
    assert fitted.size == (21, 32) and (dx, dy) == (13, 0)  # 32x48 into 48x32: height-bound, aspect kept
    cell = image[y0:y1, x0:x1]
    assert np.array_equal(cell[dy:dy + 32, dx:dx + 21], np.asarray(fitted))
    assert (cell[:, :dx] == BACKGROUND).all() and (cell[:, dx + 21:] == BACKGROUND).all()
    # the reference resize: bicubic to (21, 32) from the decoded frame, as Pillow does it
    assert np.array_equal(np.asarray(fitted), np.asarray(Image.fromarray(frames[-1]).resize((21, 32), RESAMPLE)))


def test_a_prompt_with_braces_keeps_them_in_the_title(tmp_path):
    """The title template is filled in one pass: a prompt text holding "{slug}" is not rewritten."""
    from evaluation.figure import FigureConfig as Cfg

    from evaluation.figure import compose, load_frames, png_bytes

    root = tmp_path / "a"
    art = add(root, "4dfy", "A sign reading {slug}.", 3)
    templated = make_figures(select_artifacts([root]), tmp_path / "o", Cfg())[0]
    # the same figure composed with the prompt as its literal title (4dfy's row: its registered label, the paper's)
    image, _ = compose([("4D-fy", load_frames(art, 4)[1])], "A sign reading {slug}.", (48, 32), None)
    assert templated.path.read_bytes() == png_bytes(image)


# ---- writing: each figure to a hidden temporary as it is composed, all renamed into place only at the end ----

BIRD = "A bird flying."
SLUGS = ("a_bird_flying", "a_cat_singing", "a_panda_dancing")


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Three prompts (sorted: bird, cat, panda), two methods."""
    root = tmp_path_factory.mktemp("three") / "rendered"
    for k, prompt in enumerate((BIRD, CAT, PANDA)):
        add(root, "4dfy", prompt, 5, seed=k)
        add(root, "wo_hybrid", prompt, 6, seed=10 + k)
    return root


def hidden(folder) -> list[str]:
    """The hidden files of `folder` (where the temporaries go)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def temporary_of(slug: str, name: str) -> bool:
    """Whether `name` is the temporary of `slug`'s figure: `.<slug>.png.<12 hex>.tmp`."""
    head, tail = f".{slug}.png.", ".tmp"
    token = name[len(head):-len(tail)]
    return name.startswith(head) and name.endswith(tail) and len(token) == 12 and set(token) <= set("0123456789abcdef")


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_each_figure_is_on_disk_before_the_next_is_composed(three, tmp_path, monkeypatch):
    """Only one figure is in memory at a time: when a figure is composed, every earlier one is already a whole file
    (a hidden temporary, the final name still free), and those very bytes are what is renamed into place."""
    import evaluation.figure as figure

    out, seen = tmp_path / "out", []
    real = figure.compose

    def spying(*args, **kwargs):
        if out.exists():
            seen.append({n: (out / n).read_bytes() for n in hidden(out)})
            assert not list(out.glob("*.png"))  # nothing in place before every figure is composed
        else:  # the first figure: nothing written yet
            seen.append({})
        return real(*args, **kwargs)

    monkeypatch.setattr(figure, "compose", spying)
    figs = make_figures(select_artifacts([three]), out)
    assert [f.slug for f in figs] == list(SLUGS) and len(seen) == 3
    for k, temporaries in enumerate(seen):
        assert len(temporaries) == k, (k, list(temporaries))  # the earlier figures, each written already
        for slug, (name, data) in zip(SLUGS, sorted(temporaries.items())):
            assert temporary_of(slug, name)
            assert [v for kind, v in png_chunks(data) if kind == b"tEXt"] == [b"Software\x00fourdfy figure"]
            assert data == (out / f"{slug}.png").read_bytes()  # whole when written, renamed as it was
    assert hidden(out) == [] and sorted(snapshot(out)) == [f"{s}.png" for s in SLUGS]


def test_a_failure_on_the_second_prompt_writes_nothing_and_leaves_no_temporaries(three, tmp_path, monkeypatch):
    """The first figure is already a temporary when the second prompt's video fails its checks: the temporary goes,
    the earlier figures stay byte-identical (--overwrite or not), and a folder the run made is removed again."""
    import evaluation.figure as figure

    root = tmp_path / "rendered"
    shutil.copytree(three, root)
    out = tmp_path / "out"
    make_figures(select_artifacts([root]), out)
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    video = root / "wo_hybrid" / SLUGS[1] / "video.mp4"
    video.write_bytes(video.read_bytes()[:len(video.read_bytes()) // 2])

    at_failure = []
    real = figure.load_frames

    def watching(art, columns):
        if art.folder == video.parent:
            at_failure.append(hidden(out))
        return real(art, columns)

    monkeypatch.setattr(figure, "load_frames", watching)
    with pytest.raises(FigureError, match=f"^{video.parent}: video.mp4: "):
        make_figures(select_artifacts([root]), out, overwrite=True)
    assert len(at_failure) == 1 and len(at_failure[0]) == 1 and temporary_of(SLUGS[0], at_failure[0][0])
    assert snapshot(out) == before  # no temporary left, nothing replaced or removed

    fresh = tmp_path / "new" / "deeper"
    with pytest.raises(FigureError):
        make_figures(select_artifacts([root]), fresh)
    assert not (tmp_path / "new").exists()  # the folders it made for the first figure's temporary are gone


def test_an_interrupt_while_composing_or_writing_leaves_the_figures_as_they_were(three, tmp_path, monkeypatch):
    """Ctrl-C (KeyboardInterrupt) while the second figure is composed, or half-way through writing its PNG: the
    temporaries, the half-written one included, are removed and the earlier figures stay byte-identical; the CLI
    says so in one line and exits 130."""
    import evaluation.figure as figure
    from evaluation.figure import png_bytes

    out = tmp_path / "out"
    make_figures(select_artifacts([three]), out)
    before = snapshot(out)
    real_compose, real_save, calls, at_interrupt = figure.compose, figure.save_png, [], []

    def compose_stopped(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            at_interrupt.append(hidden(out))
            raise KeyboardInterrupt
        return real_compose(*args, **kwargs)

    def save_stopped(image, f):
        calls.append(1)
        if len(calls) == 2:
            f.write(png_bytes(image)[:100])  # half a file on disk
            f.flush()
            at_interrupt.append(hidden(out))
            raise KeyboardInterrupt
        real_save(image, f)

    for name, stopped in (("compose", compose_stopped), ("save_png", save_stopped)):
        calls.clear()
        at_interrupt.clear()
        monkeypatch.setattr(figure, name, stopped)
        with pytest.raises(KeyboardInterrupt):
            make_figures(select_artifacts([three]), out, overwrite=True)
        monkeypatch.undo()
        # the first figure's temporary (and, writing, the second's half) existed, and are gone
        assert len(at_interrupt) == 1 and len(at_interrupt[0]) == (1 if name == "compose" else 2), (name, at_interrupt)
        assert [temporary_of(s, n) for s, n in zip(SLUGS, at_interrupt[0])] == [True] * len(at_interrupt[0])
        assert snapshot(out) == before, name

    calls.clear()
    monkeypatch.setattr(figure, "compose", compose_stopped)
    res = runner.invoke(app, ["figure", str(three), "--out", str(out), "--overwrite", "--no-progress"])
    assert res.exit_code == 130 and error_lines(res) == [
        "error: interrupted; each figure file is whole, new or as it was; run the command again to write them all"]
    assert snapshot(out) == before


def test_temporaries_a_killed_run_left_are_ignored_never_reused(three, tmp_path, monkeypatch):
    """A run killed outright leaves its hidden temporaries: a later run neither counts them as figures in the way
    (no --overwrite needed), nor writes into them when its random name comes out the same, nor deletes them (they
    may be another running command's)."""
    import method.fileio

    out = tmp_path / "out"
    make_figures(select_artifacts([three]), tmp_path / "earlier")
    out.mkdir()
    stray = {f".{SLUGS[0]}.png.0123456789ab.tmp": (tmp_path / "earlier" / f"{SLUGS[0]}.png").read_bytes(),
             f".{SLUGS[1]}.png.0123456789ab.tmp": b"\x89PNG half"}
    for name, data in stray.items():
        (out / name).write_bytes(data)
    drawn, real = [], method.fileio.secrets.token_hex

    def token_hex(n):  # every temporary's first draw is the strays' name
        drawn.append("0123456789ab" if not drawn or drawn[-1] != "0123456789ab" else real(n))
        return drawn[-1]

    monkeypatch.setattr(method.fileio.secrets, "token_hex", token_hex)
    figs = make_figures(select_artifacts([three]), out)
    assert not any(f.replaced for f in figs)
    assert len(drawn) == 5  # the two figures with a stray of that name drew again
    assert snapshot(out) == {**stray, **snapshot(tmp_path / "earlier")}


def test_a_rename_that_fails_names_the_figure_and_leaves_no_temporary(three, tmp_path, monkeypatch):
    """The rename into place failing (a folder made read-only meanwhile, say) is an OSError about the figure, not
    its hidden temporary, and the temporaries not renamed are removed."""
    import os

    out = tmp_path / "out"
    make_figures(select_artifacts([three]), out)
    before = snapshot(out)
    real = os.replace

    def refused(src, dst):
        if str(dst).endswith(f"{SLUGS[0]}.png"):
            raise PermissionError(13, "Permission denied", str(src), None, str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(PermissionError) as err:
        make_figures(select_artifacts([three]), out, overwrite=True)
    monkeypatch.undo()
    assert err.value.filename == str(out / f"{SLUGS[0]}.png")
    assert snapshot(out) == before


def test_a_prompt_whose_videos_were_made_for_different_texts_is_noted_and_titled_by_its_first_row(tmp_path):
    root = tmp_path / "art"
    add(root, "4dfy", PANDA, 4, seed=1)
    add(root, "mav3d", "a panda dancing", 4, seed=2)  # the library prompt's slug, other words
    res = runner.invoke(app, ["figure", str(root), "--out", str(tmp_path / "fig"), "--columns", "2"])
    assert res.exit_code == 0, res.output
    assert [line for line in res.stderr.splitlines() if line.startswith("note:")] == [
        "note: the videos of prompt a_panda_dancing were made for different texts ('A panda dancing.' (4dfy), "
        "'a panda dancing' (mav3d)); its figure is titled with its first row's"]
    res = runner.invoke(app, ["figure", str(root), "--out", str(tmp_path / "fig2"), "--columns", "2", "--methods",
                              "4dfy"])
    assert res.exit_code == 0 and "note:" not in res.stderr, res.output
