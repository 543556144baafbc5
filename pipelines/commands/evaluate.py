"""`fourdfy` commands of the evaluation: render, import-videos, clipscore, validate-artifacts, figure."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

import typer

HEARTBEAT_S = 30.0
"""Seconds between the progress lines `render`, `clipscore` and `figure` print when no bar is shown (logs, DVC)."""
NO_VIDEO_SHOWN = 10
"""Names `import-videos` lists in one line (prompts without a video, unmatched or already imported files); the rest
are counted."""


IMPORT_INTERRUPTED = ("every artifact folder it wrote is whole (none is left half-written) and is kept; run the same "
                      "command again to finish the import (it leaves the folders already imported as they are)")
"""What import-videos' `error:` line says after `interrupted;` / `terminated (SIGTERM);`: not the generic advice of
`pipelines.cli.INTERRUPTED`, whose --overwrite no rerun of the same command needs (docs/evaluation.md)."""


def _first(names: list[str]) -> str:
    """The first `NO_VIDEO_SHOWN` names, then how many more: a long list (a wrong --prompts file, a folder of many
    videos) stays one readable line, and its count is in the line already."""
    more = len(names) - NO_VIDEO_SHOWN
    return ", ".join(names[:NO_VIDEO_SHOWN]) + (f" ... and {more} more" if more > 0 else "")


def _fail(message: str) -> None:
    # one line: multi-line library messages (missing weights) are joined
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    typer.secho(f"error: {text}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _stopped(err: KeyboardInterrupt, what: str) -> None:
    """A command's own line for Ctrl-C (exit 130) or SIGTERM (`pipelines.cli` raises it as `Terminated`, exit 143)."""
    from pipelines.commands.generate import exit_interrupted

    exit_interrupted(err, f"; {what}")


def render(
    run: Path = typer.Argument(..., help="Run folder of `fourdfy generate` (manifest.json + ckpt/last.pt)."),
    out: Path = typer.Option(..., "--out", help="Artifact root: writes OUT/<method>/<prompt slug>/."),
    trajectory: str = typer.Option("orbit", "--trajectory", help="orbit (MAV3D protocol) | motion_smooth."),
    frames: int = typer.Option(64, "--frames", help="orbit: frames; motion_smooth: time samples (64 -> 124 frames)."),
    size: int = typer.Option(256, "--size", help="Square frame size (even)."),
    fps: float = typer.Option(15.0, "--fps", help="Frame rate of the videos."),
    depth: bool = typer.Option(True, "--depth/--no-depth", help="Also write depth.mp4."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing artifact folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="Show the progress bar on a terminal (elsewhere, a line every 30 s)."),
) -> None:
    """Render a trained run along the evaluation path into the artifact layout (video, depth, manifest)."""
    from evaluation.artifacts import ArtifactError
    from evaluation.render import EvalRenderConfig, render_run
    from evaluation.runs import RunError

    try:
        cfg = EvalRenderConfig(trajectory=trajectory, n_frames=frames, size=size, fps=fps, depth=depth, device=device)
        art = render_run(run, out, cfg, progress=progress, overwrite=overwrite, heartbeat_s=HEARTBEAT_S)
    except (RunError, ArtifactError, ValueError) as err:
        _fail(str(err))
    except KeyboardInterrupt as err:
        # the artifact folder is written whole at the end, so there is nothing partial to clean up or resume
        _stopped(err, "no artifact was written (an earlier one is kept); run the command again to render")
    typer.echo(f"wrote {art.folder} ({art.n_frames} frames, {art.width}x{art.height} px, {art.trajectory})")


@functools.cache
def _paper_design():
    """The paper's design, read once per process (an import's notes and near-miss checks each ask for it)."""
    from userstudy.design import load_design

    return load_design()


def _paper_methods():
    """(the paper's design, its methods: primary first, then the comparisons in design order)."""
    design = _paper_design()
    return design, list(dict.fromkeys([design.primary, *design.comparisons]))


def _paper_names():
    """(the paper's design, every name it knows videos by: its methods, then its attention-check decoys)."""
    design, known = _paper_methods()
    return design, list(dict.fromkeys([*known, *design.check.decoys]))


def method_near_miss(method: str, others: Iterable[str] = ()) -> str | None:
    """The name of the paper's design (a method or an attention-check decoy), of the method registry (built-ins
    and plug-ins) or of `others` (the methods of the artifacts a command is given) closest to `method` when `method`
    is none of them but close to one (a typo would only surface at `fourdfy analyze`), else None. The registry (and
    torch with it) is loaded only for a name outside the design and `others`. `import-videos --method` and the
    methods a design names (`pipelines.commands.userstudy.warn_design_methods`) are checked with it."""
    import difflib

    from evaluation.importer import authors_method

    _, known = _paper_names()
    others = set(others)
    if method in known or method in others or authors_method(method) is not None:  # the authors' names: own note
        return None
    registered = _registered_names()
    if method in registered:
        return None
    close = difflib.get_close_matches(method, sorted({*known, *registered, *others}), n=1, cutoff=0.8)
    return close[0] if close else None


def _warn_unknown_method(method: str) -> None:
    """A warning when `method` is a near miss of a name of the paper's design or of a registered method
    (`method_near_miss`). A name far from all of them gets `_own_name_note` after the import instead."""
    close = method_near_miss(method)
    if close is None:
        return
    if close in _paper_names()[1]:
        where = "is not in the paper's design"
    else:  # a plug-in's name mistyped: its videos would be another method's
        where = "is neither in the paper's design nor a registered method (`fourdfy methods` lists them)"
    typer.secho(f"warning: method {method!r} {where}; did you mean {close!r}? (a new method's name is fine: "
                "`fourdfy analyze` needs it in its design)", fg=typer.colors.YELLOW, err=True)


def _registered_names() -> list[str]:
    """The method registry's names (built-ins and plug-ins); none without it. Loads it, and torch with it."""
    try:
        from baselines import METHODS, load_entry_points

        load_entry_points(strict=False)  # a broken plug-in is `fourdfy methods`' to report, not the import's
    except ImportError:
        return []
    return list(METHODS)


def _own_name_note(method: str, folder: Path) -> str | None:
    """One line for videos imported under a name that is neither a method of the paper's design, nor a near miss
    of one or of a registered method (`_warn_unknown_method`), nor a registered method: allowed (a new baseline
    with videos only), but `survey build` and the tables know the methods by the design's names, so the line lists
    them, and for a folder name of the authors' example (`ours`) names the method it holds. An attention-check
    decoy of the design gets a line saying what its videos are for. None when the name needs no note."""
    from evaluation.importer import authors_method

    design, known = _paper_methods()
    if method in design.check.decoys:  # docs/survey.md has users import it: a name of the design, not their own
        correct = design.check.correct_method
        return (f"note: {method!r} is the attention-check decoy of the paper's design: `survey build` makes each of "
                f"its videos an attention-check question against {design.label(correct)} ({correct!r}) on that "
                "prompt; it is in no table")
    target = authors_method(method)
    # a near miss was warned about (`_warn_unknown_method`), and a registered name needs no note
    if method in known or (target is None and method_near_miss(method)) or method in _registered_names():
        return None
    own = f"{method!r} is neither a method of the paper's design nor a registered one: its videos are imported " \
          "under a name of its own"
    names = f"the paper's design names its methods {', '.join(known)} (`fourdfy methods` lists them)"
    if target is not None and target in known:
        label = design.label(target)
        return (f"warning: {own}. It is the authors' example folder name for {label}, which is {target!r} here: "
                f"to compare these videos as {label}, import them with --method {target} and remove {folder}, "
                f"which `survey build` and the pipeline would take for another method ({names})")
    return (f"note: {own} (a new baseline: `survey build` and `fourdfy analyze` need a design that lists it); "
            f"{names}")


def import_videos(
    src: Path = typer.Argument(..., help="Folder of videos named by prompt slug (or listed in --map)."),
    method: str = typer.Option(..., "--method", help="Method name the videos belong to (e.g. mav3d)."),
    out: Path = typer.Option(..., "--out", help="Artifact root: writes OUT/<method>/<prompt slug>/."),
    prompts: Path = typer.Option(None, "--prompts", help="Prompt file to match against (default: all of prompts/)."),
    mapping: Path = typer.Option(None, "--map", help="CSV with columns file,prompt (prompt text or slug)."),
    frames: int = typer.Option(None, "--frames", help="Resample every video to this many frames (nearest frame)."),
    fps: float = typer.Option(None, "--fps", help="Frame rate to record (default: the file's)."),
    trajectory: str = typer.Option("unknown", "--trajectory", help="Camera path to record in the manifest: "
                                   "orbit | motion_smooth | unknown."),
    all_or_nothing: bool = typer.Option(False, "--all-or-nothing", help="Write nothing if any file fails."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing artifact folders."),
    allow_empty: bool = typer.Option(False, "--allow-empty", help="A source with no matching video is not an "
                                     "error: OUT/<method>/ is created empty and the method is reported missing "
                                     "downstream (the pipeline's `videos:` folders)."),
) -> None:
    """Bring external videos into the artifact layout; reports unmatched files and prompts."""
    from evaluation.artifacts import ArtifactError, check_method_name
    from evaluation.importer import VideoImportError, check_trajectory, default_prompts, import_videos as run_import
    from prompts import PromptFileError, load_prompts, slugify

    if prompts is not None and mapping is not None:
        _fail("give --prompts or --map, not both")
    try:  # before the method-name notes below: the command is refused anyway
        check_trajectory(trajectory)
    except VideoImportError as err:
        _fail(str(err))
    try:  # before the did-you-mean warning, which a name refused anyway would only clutter
        check_method_name(method)
    except ArtifactError as err:
        _fail(str(err))
    _warn_unknown_method(method)

    def matched(report) -> None:  # before any video is decoded
        for name, slug in sorted(report.fuzzy.items()):
            typer.echo(f"matched {name} -> {slug} (leading articles ignored)")
        for name, (typed, text) in sorted(report.library_texts.items()):
            typer.secho(f"note: {name}: recorded the prompt library's text {text!r} instead of {typed!r} as mapped "
                        f"(the same prompt, slug {slugify(text)}: every method is scored and shown with the "
                        "library's words)", fg=typer.colors.YELLOW, err=True)
        for name, (typed, text) in sorted(report.own_texts.items()):
            typer.secho(f"note: {name}: recorded {typed!r} as {prompts.name} words it, not the prompt library's "
                        f"{text!r} (the same prompt, slug {slugify(text)}): `clipscore` needs one text per prompt, "
                        "so every method's video of it must be made for these words (`--map` records the library's "
                        "words instead)", fg=typer.colors.YELLOW, err=True)
        if report.unknown_prompts:
            typer.secho(f"warning: {len(report.unknown_prompts)} mapped prompt(s) are in none of prompts/*.txt, so "
                        "no Table 2 or 3 row will use them (a typo?):", fg=typer.colors.YELLOW, err=True)
            for name, (text, close) in sorted(report.unknown_prompts.items()):
                typer.secho(f"  {name}: {text!r}" + (f" (closest known prompt: {close!r})" if close else ""),
                            fg=typer.colors.YELLOW, err=True)

    def imported(art) -> None:  # as each folder is in place: after Ctrl-C, these are the ones kept
        typer.echo(f"imported {art.source['file']} -> {art.folder} ({art.n_frames} frames, "
                   f"{art.width}x{art.height} px)")

    try:
        table = load_prompts(prompts) if prompts is not None else None
        report = run_import(src, method, out, prompts=table, mapping=mapping, n_frames=frames, fps=fps,
                            trajectory=trajectory, all_or_nothing=all_or_nothing, overwrite=overwrite,
                            on_matched=matched, on_imported=imported)
    except (VideoImportError, PromptFileError, ValueError) as err:
        _fail(str(err))
    except KeyboardInterrupt as err:
        # each folder is written in a hidden temporary renamed into place, and a rerun leaves a folder imported from
        # the same file with the same settings as it is: the same command finishes, --overwrite or not as before
        _stopped(err, IMPORT_INTERRUPTED)
    # nothing imported now or before: nothing named
    note = _own_name_note(method, out / method) if report.imported or report.done else None
    if note is not None:
        typer.secho(note, fg=typer.colors.YELLOW, err=True)
    if report.unmatched_files:
        names = report.unmatched_files
        if mapping is not None:
            hint = f"not listed in {mapping.name}: add a row file,prompt for each to import it"
        else:
            where = prompts.name if prompts is not None else "prompts/*.txt"
            slugs = list(table) if table is not None else list(default_prompts())  # the slugs matched against
            # suggested only where following it imports a video: not a prompt a file of this run matched, nor one
            # whose folder is there already (a browser's `a_panda_dancing (1).mp4` beside the imported one)
            free = set(report.unmatched_prompts)
            open_slugs = [s for s in slugs if s in free and not (out / method / s).exists()]
            near = {n: s for n in names if (s := _close_slug(n, open_slugs)) is not None}
            names = [f"{n} (did you mean {near[n]}{Path(n).suffix}?)" if n in near else n for n in names]
            # a file without a near miss gets the generic example (a slug of the prompts matched against)
            example = "" if len(near) == len(names) else f" (e.g. {slugs[0] if table else 'a_panda_dancing'}.mp4)"
            hint = (f"to import one, name it by the slug of a prompt of {where}{example} or list it with its "
                    "prompt in a CSV given as --map (columns file,prompt)")
        typer.echo(f"unmatched files ({len(names)}): {_first(names)}; {hint}")
    if report.in_subfolders:  # read only with --map; a folder of per-prompt subfolders otherwise looks empty
        shown = ", ".join(report.in_subfolders[:5]) + (", ..." if len(report.in_subfolders) > 5 else "")
        typer.echo(f"note: {len(report.in_subfolders)} video(s) in subfolders of {src} were not read ({shown}): "
                   "import-videos reads the files of the folder itself; give a subfolder as the source, or list "
                   "the files with their prompts in a CSV given as --map (paths below the folder)")
    if report.done:  # an interrupted import run again: its finished folders are what it would write
        typer.echo(f"already imported from the same files with the same settings, left as they are "
                   f"({len(report.done)}): {_first(sorted(report.done.values()))}")
    if report.existing:
        typer.echo(f"already in {out / method}, left as they are ({len(report.existing)}): "
                   f"{_first(sorted(report.existing.values()))}")
    if report.stale:
        _warn_stale(report.stale, out / method, method)
    aborted = all_or_nothing and bool(report.failed or report.existing)  # nothing written: no count of the rest
    # prompts no file matched: one whose file failed is named once, by its error below
    if report.no_video and not aborted:
        if prompts is not None or mapping is not None:
            # the first few: a wrong, long --prompts file (a votes CSV) would otherwise print one line of megabytes
            typer.echo(f"prompts without a video ({len(report.no_video)}): {_first(report.no_video)}")
        else:
            typer.echo(f"{len(report.no_video)} prompts of prompts/*.txt have no video here")
    for name, reason in sorted(report.failed.items()):
        typer.secho(f"error: {name}: {reason}", fg=typer.colors.RED, err=True)
    if report.existing:
        typer.secho(f"error: {len(report.existing)} artifact folder(s) of these videos already exist in "
                    f"{out / method}, not imported from these files with these settings; pass --overwrite to "
                    "replace them", fg=typer.colors.RED, err=True)
    if report.failed or report.existing:
        if aborted:
            typer.secho("error: --all-or-nothing: nothing was imported", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if not report.imported and not report.done:
        if allow_empty:
            (out / method).mkdir(parents=True, exist_ok=True)
            typer.echo(f"no video of {src} matched a prompt: {out / method} is empty ({method} will be reported "
                       "as missing)")
            return
        if not report.unmatched_files and mapping is None:
            _fail(_no_videos_in(src))
        _fail(f"no video of {src} matched a prompt (name files by prompt slug or give --map)")


def _warn_stale(stale: dict[str, tuple[str, str]], folder: Path, method: str) -> None:
    """One `warning:` for the import folders no file of this import went to (`ImportReport.stale`): a video whose file
    was renamed or removed since would otherwise be validated, scored and shown as the method's without a word. Named
    with the command that removes them; nothing is removed here (it may be another source folder's import)."""
    import shlex

    shown = "; ".join(f"{slug} ({why})" for slug, (_, why) in list(stale.items())[:5])
    shown += f"; and {len(stale) - 5} more" if len(stale) > 5 else ""
    rm = "rm -r " + " ".join(shlex.quote(str(folder / slug)) for slug in stale)
    typer.secho(f"warning: {len(stale)} folder(s) in {folder} hold videos an earlier import made from files this "
                f"import did not match to their prompt, still validated, scored and shown as {method}'s: {shown}. "
                f"Remove those that are stale (`{rm}`); keep any imported from another source folder",
                fg=typer.colors.YELLOW, err=True)


def clipscore(
    artifacts: list[Path] = typer.Argument(..., help="Artifact roots or folders "
                                           "(searched for manifest.json and video.mp4)."),
    out: Path = typer.Option(..., "--out", help="Folder for per_frame/per_prompt/summary/clip.csv."),
    model: str = typer.Option("ViT-B-32", "--clip-model", help="open_clip architecture, hf-hub:org/repo, a folder, "
                              "or fourdfy-tiny:clip (random weights, meaningless scores: a CPU demo)."),
    pretrained: str = typer.Option("openai", "--pretrained", help="open_clip tag or checkpoint file."),
    activation: str = typer.Option("auto", "--activation", help="auto | quickgelu | gelu (OpenAI weights: QuickGELU)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Frames per forward pass (16: fastest on CPU, where the weights stay in cache)."),
    primary: str = typer.Option(None, "--primary", help="Method the paired differences are taken against "
                                "(default 4dfy, when an artifact has it); given, it must be a method found."),
    n_resamples: int = typer.Option(10_000, "--resamples", help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    precision: str = typer.Option("fp32", "--precision",
                                  help="Image tower: fp32 (the paper's metric) | bf16 (~2x faster on CPU, ~0.1 off)."),
    cache: Path = typer.Option(None, "--cache",
                               help="Folder of per-video scores: unchanged videos are not scored again."),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="Show the progress bar on a terminal (elsewhere, a line every 30 s)."),
) -> None:
    """CLIP score of every artifact (per frame, prompt, method) and clip.csv for `fourdfy analyze --clip`.
    --out may hold the outputs of an earlier run, which are replaced (and listed); anything else there is refused."""
    from evaluation.artifacts import (RENDER_HINT, RUN_REASON, ArtifactError, digest_problem, nothing_found,
                                      prompt_text_conflicts, scan_artifacts)
    from evaluation.clip import (ALL_PROMPTS, META, ScoreCache, ScoreConfig, check_out_dir, score_artifacts,
                                 video_digests, video_stamps, write_outputs)
    from evaluation.clip_models import TINY_CLIP_ID, ClipConfig, is_random_weights, load_clip
    from method.guidance.loading import ModelNotFoundError

    try:  # the options and --out first: scoring takes minutes
        cfg = ClipConfig(model=model, pretrained=pretrained or None, activation=activation, batch_size=batch_size,
                         device=device, precision=precision)
        scfg = ScoreConfig(primary=primary or "4dfy", n_resamples=n_resamples, seed=seed)
        if cache is not None and cache.resolve().is_relative_to(out.resolve()):
            # --out holds clipscore's outputs only: a cache there would be refused by the next run as a stranger
            raise ValueError(f"--cache {cache} lies inside --out {out}, which holds clipscore's outputs only; give "
                             "the cache a folder of its own (e.g. clip-cache/)")
        earlier = check_out_dir(out)
    except ValueError as err:
        _fail(str(err))
    try:
        arts, broken = scan_artifacts(artifacts)
        runs = [str(f) for f, reason in broken.items() if reason == RUN_REASON]
        if runs and len(runs) == len(broken) and not arts:  # the runs folder given for the artifacts one
            _fail(f"{len(runs)} training run(s) given, not evaluation videos ({', '.join(runs[:3])}"
                  f"{', ...' if len(runs) > 3 else ''}): {RENDER_HINT}")
        if broken:  # scoring the readable rest would silently drop these prompts from the means
            listed = "; ".join(f"{folder}: {reason}" for folder, reason in list(broken.items())[:3])
            listed += f"; and {len(broken) - 3} more" if len(broken) > 3 else ""
            _fail(f"{len(broken)} artifact folder(s) that cannot be scored (incomplete, or two for one method and "
                  f"prompt); fix or remove them first (`fourdfy validate-artifacts` checks them): {listed}")
        if not arts:
            _fail(nothing_found(artifacts))
        # a video replaced since it was written decodes like the one written: only its digest tells, and a score
        # of it would be reported as the imported or rendered one's
        # the cache keys hash every video too: with --cache each is read once, here, for both
        # stamps first (a stat each): a video changed after them, while the model loads, is read and checked again
        # before it is scored, and keyed by what it holds then
        stamps = video_stamps(arts)
        digests = video_digests(arts) if cache is not None else {}
        changed = [p for k, a in arts.items()
                   if (p := digest_problem(a.folder, a.manifest, a.video_path, digests.get(k)))]
        if changed:
            _fail(f"{len(changed)} artifact(s) whose video changed since it was written; nothing was scored: "
                  + "; ".join(changed[:3]) + (f"; and {len(changed) - 3} more" if len(changed) > 3 else ""))
        if conflicts := prompt_text_conflicts(arts):
            _fail(f"{len(conflicts)} prompt(s) whose videos were made for different texts; CLIP scores each video "
                  "against its own text, so its methods would not be compared on one prompt: "
                  + "; ".join(f"{slug}: {texts}" for slug, texts in list(conflicts.items())[:3])
                  + (f"; and {len(conflicts) - 3} more" if len(conflicts) > 3 else "")
                  + ". Import the videos with the prompt's text (`import-videos --map` records a library prompt's "
                  "own text) or score the methods apart")
        methods = sorted({m for m, _ in arts})
        if primary is not None and primary not in methods:  # else no paired difference, silently
            _fail(f"--primary {primary!r}: no artifact has this method; the methods found are {', '.join(methods)}")
        if (unlike := _unlike_videos_note(arts)) is not None:  # allowed (published videos), but not silently
            typer.secho(unlike, fg=typer.colors.YELLOW, err=True)
        if is_random_weights(model):  # told before the minutes of scoring, as `analyze` flags simulated votes
            what = TINY_CLIP_ID if model == TINY_CLIP_ID else f"{model} (the tiny CLIP, {TINY_CLIP_ID})"
            typer.secho(f"note: {what} has random weights: its CLIP scores are meaningless (a CPU demo of the "
                        "pipeline); the paper's CLIP score is the default, --clip-model ViT-B-32 --pretrained openai",
                        fg=typer.colors.YELLOW, err=True)
        clip = load_clip(cfg)
        store = ScoreCache(cache, clip) if cache is not None else None
        per_frame = score_artifacts(arts, clip, batch_size, progress=progress, cache=store, heartbeat_s=HEARTBEAT_S,
                                    digests=digests, stamps=stamps,
                                    on_note=lambda text: typer.secho(f"note: {text}", fg=typer.colors.YELLOW, err=True))
        paths = write_outputs(out, per_frame, scfg, clip.description, clip.precision, clip.random_weights,
                              artifacts=arts)
    except (ArtifactError, ModelNotFoundError, ValueError) as err:
        _fail(str(err))
    import pandas as pd

    summary = pd.read_csv(paths["summary.csv"])
    reused = f" ({store.hits} from the cache)" if store is not None else ""
    typer.echo(f"CLIP score ({clip.description}), {len(arts)} videos{reused}:")
    def ci(low, high, sign: str = "") -> str:
        return "[n/a]" if pd.isna(low) else f"[{low:{sign}.2f}, {high:{sign}.2f}]"

    for r in summary.itertuples():
        diff = "" if pd.isna(r.diff_vs_primary) else (
            f"  {r.diff_vs_primary:+.2f} vs {scfg.primary} on {r.n_shared} {ci(r.diff_ci_low, r.diff_ci_high, '+')}")
        typer.echo(f"  {r.method:<16} {r.clip:6.2f} {ci(r.ci_low, r.ci_high)} over {r.n_prompts} prompt(s){diff}")
    sets = pd.read_csv(paths["clip.csv"], keep_default_na=False)
    for line in _partial_notes(sets[sets.n_prompts < sets.n_set], ALL_PROMPTS):
        typer.echo(line)
    if scfg.primary not in methods:
        typer.echo(f"note: no artifact of {scfg.primary}, so no paired differences (--primary names another method)")
    typer.echo(f"wrote {', '.join(paths)} to {out}")
    if earlier.files:
        typer.echo(f"replaced the earlier outputs in {out}: {', '.join(earlier.files)}")
    if earlier.unrecorded:  # the mix `analyze --clip` refused; the earlier methods below exclude these tables
        one = len(earlier.unrecorded) == 1
        typer.secho(f"note: {', '.join(earlier.unrecorded)} in {out} {'was' if one else 'were'} left by an "
                    f"interrupted `fourdfy clipscore` run (not the table{'' if one else 's'} its earlier {META} "
                    f"recorded); replaced by this run's", fg=typer.colors.YELLOW, err=True)
    gone = sorted(set(earlier.methods or ()) - set(methods))
    if gone:
        typer.secho(f"warning: the earlier outputs in {out} held methods these do not: {', '.join(gone)} (their "
                    "scores are gone; give their artifact roots too to keep them)", fg=typer.colors.YELLOW, err=True)


def _unlike_videos_note(arts) -> str | None:
    """One `note:` for the prompts whose methods' scored videos differ in frame count, frame size or camera path (a
    16-frame 32x32 orbit render beside a 64-frame 256x256 import of unknown path), naming three and counting the
    rest, else None. Allowed, as `survey build` allows such pairs (the paper compared its renders with MAV3D's
    published videos, and notes them too), but the per-prompt scores, and the paired differences made of them, then
    compare unlike videos. Read from the manifests, which `validate_artifact`'s checks hold to the videos."""
    facts: dict[str, dict[tuple, list[str]]] = {}  # slug -> (frames, size, trajectory) -> its methods
    for (method, slug), art in sorted(arts.items()):
        key = (art.n_frames, f"{art.width}x{art.height}", art.trajectory)
        facts.setdefault(slug, {}).setdefault(key, []).append(method)
    unlike = {slug: groups for slug, groups in facts.items() if len(groups) > 1}
    if not unlike:
        return None

    def described(groups: dict[tuple, list[str]]) -> str:
        return " vs ".join(f"{', '.join(ms)}: {n} frames {size} {traj}" for (n, size, traj), ms in groups.items())

    shown = "; ".join(f"{slug} ({described(groups)})" for slug, groups in list(unlike.items())[:3])
    shown += f"; and {len(unlike) - 3} more" if len(unlike) > 3 else ""
    n = len(unlike)
    return (f"note: {n} prompt{'s' if n != 1 else ''} of {len(facts)} {'have' if n != 1 else 'has'} methods scored "
            f"on unlike videos (frame count, frame size or camera path differ), so their scores and paired "
            f"differences compare unlike videos: {shown}")


def _partial_notes(partial, all_name: str) -> list[str]:
    """One `note:` per prompt set (in clip.csv's order) naming every method that holds only part of it, with
    its count: a line per method and set repeated itself for every method of a small pipeline."""
    lines = []
    for name in dict.fromkeys(partial.prompt_set):
        rows = partial[partial.prompt_set == name]
        one = len(rows) == 1
        # n_set is the same on every row of a set: its size (for `all`, the prompts scored over all methods)
        where = f"of the {rows.n_set.iloc[0]} prompts " + (
            f"scored ({'its' if one else 'their'} `all` row{'' if one else 's'})" if name == all_name else f"of {name}")
        groups = [f"{', '.join(g.method)} {'has' if len(g) == 1 else 'have'} {n}"
                  for n, g in rows.groupby("n_prompts", sort=False)]
        head = f"{groups[0]} {where}" if len(groups) == 1 else f"{where}, " + " and ".join(groups)
        rest = "its clip.csv row is the mean" if one else "their clip.csv rows are the means"
        lines.append(f"note: {head}; {rest} over those only")
    return lines


def validate_artifacts(
    artifacts: list[Path] = typer.Argument(..., help="Artifact roots or folders."),
) -> None:
    """Check every folder holding manifest.json or video.mp4 (manifest, names, camera path, videos decoded and
    counted); exit 1 if any is invalid."""
    from evaluation.artifacts import (MANIFEST, ArtifactError, nothing_found, read_artifact, scan_artifacts,
                                      trajectory_problem, validate_artifact)

    try:
        arts, broken = scan_artifacts(artifacts)
    except ArtifactError as err:
        _fail(str(err))
    if not arts and not broken:
        _fail(nothing_found(artifacts))
    bad = 0
    for folder in sorted({*broken, *(art.folder for art in arts.values())}):  # a line as each is checked
        problems = [broken[folder]] if folder in broken else []
        try:  # its own defects too, a folder sharing its method and prompt with another included
            art = read_artifact(folder)
            problems += validate_artifact(folder)
        except ArtifactError:
            pass  # unreadable manifest: its reason is the one above
        else:
            # a camera path neither `render` draws nor `unknown` (a typo an earlier import-videos recorded, or an
            # edit) is shown wherever the survey notes unlike pairs. Checked here, not in validate_artifact, whose
            # checks `figure` applies too: a figure draws such a video as well as any other
            if (wrong := trajectory_problem(art.trajectory)) is not None:
                problems.append(f"{MANIFEST}: trajectory {wrong}")
        bad += bool(problems)
        typer.echo(f"{'ok ' if not problems else 'BAD'} {folder}" + ("" if not problems else ": " + "; ".join(problems)))
    if bad:
        raise typer.Exit(1)


def _close_slug(name: str, slugs: list[str]) -> str | None:
    """The prompt slug closest to an unmatched file's name (`a_goat_drinking_beers.mp4` -> a_goat_drinking_beer),
    None when none is close: the file names the `unmatched files` line suggests instead of a generic example."""
    import difflib

    from prompts import slugify

    stem = Path(name).stem
    try:
        key = slugify(stem)
    except ValueError:  # a stem of no letter or digit: close to no slug
        return None
    # 0.75 keeps `panda_dance` -> a_panda_dancing (0.77) and leaves unrelated names without a suggestion
    close = difflib.get_close_matches(key, slugs, n=1, cutoff=0.75)
    return close[0] if close else None


def _no_videos_in(src: Path) -> str:
    """The error for a source folder that holds no video file at all (not one of unmatched names)."""
    from evaluation.video import VIDEO_EXTENSIONS

    others = sorted(f.name for f in src.iterdir()) if src.is_dir() else []
    holds = f"it holds {', '.join(others[:5])}{', ...' if len(others) > 5 else ''}" if others else "it is empty"
    return (f"no video file in {src} ({holds}); import-videos reads {', '.join(VIDEO_EXTENSIONS)} files "
            "named by prompt (docs/evaluation.md)")


def _name_list(option: str, value: str | None) -> list[str] | None:
    """`a,b` -> ['a', 'b'] (blanks around names dropped); None when not given."""
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        _fail(f"{option} {value!r} names nothing; give names separated by commas, e.g. {option} 4dfy,mav3d")
    return names


def _read_labels(path: Path | None) -> dict[str, str]:
    """--labels: a JSON object {method: label} (the `methods` stage's build/methods/labels.json is one)."""
    if path is None:
        return {}
    from evaluation.artifacts import read_json_object
    from evaluation.figure import FigureError

    if not path.is_file():
        _fail(f"--labels {path}: " + ("a folder; give the JSON file" if path.is_dir() else "no such file"))
    try:
        data = read_json_object(path, FigureError)
    except FigureError as err:
        _fail(f"--labels {err}")
    bad = [k for k, v in data.items() if not isinstance(v, str)]
    if bad:
        _fail(f"--labels {path}: the label of {bad[0]!r} is not a string; give an object of method: label")
    return data


def _design_labels(path: Path | None) -> dict[str, str]:
    """--design: {method: label} of the methods a design labels (those the tables name by more than their name)."""
    if path is None:
        return {}
    from userstudy.design import DesignError, load_design

    try:
        return {m: lab.label for m, lab in load_design(path).labels.items()}
    except DesignError as err:
        _fail(f"--design {err}")


def figure(
    artifacts: list[Path] = typer.Argument(..., help="Artifact roots or folders, as `fourdfy clipscore` takes them "
                                           "(<root>/<method>/<prompt slug>/video.mp4 + manifest.json)."),
    out: Path = typer.Option(..., "--out", help="Folder for one <prompt slug>.png per prompt."),
    methods: str = typer.Option(None, "--methods", help="Rows, comma-separated, in this order (default: every "
                                "method found, in the registry's order). A registered method without videos gets "
                                "\"no video\" rows."),
    prompts: str = typer.Option(None, "--prompts", help="Prompt slugs, comma-separated (default: every prompt of "
                                "the methods shown)."),
    columns: int = typer.Option(4, "--columns", help="Frames per row, evenly spaced over each video (the first "
                                "and the last included)."),
    labels: Path = typer.Option(None, "--labels", help="JSON {method: row label}, e.g. build/methods/labels.json "
                                "(\"\": no label of its own; default: --design's label, else the method's "
                                "registered table label, else its name)."),
    design: Path = typer.Option(None, "--design", help="Row labels of a user-study design, as the tables name the "
                                "methods (e.g. userstudy/designs/paper.yaml: \"w/o ∇L_3D\"); --labels wins where "
                                "both name a method."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace figures an earlier `fourdfy figure` wrote "
                                   "(a file of another origin is never replaced)."),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="Show the progress bar on a terminal (elsewhere, a line every 30 s)."),
) -> None:
    """The paper's qualitative figure: per prompt, a grid of frames of each method's evaluation video (rows =
    methods, columns = evenly spaced moments of the video), written to OUT/<prompt slug>.png."""
    from evaluation.artifacts import ArtifactError, prompt_text_conflicts
    from evaluation.figure import FigureConfig, FigureError, make_figures, select_artifacts

    method_names, slugs = _name_list("--methods", methods), _name_list("--prompts", prompts)
    selection = None
    try:  # the options, the manifests and --out are checked before any video is decoded
        # "" in a labels file means "no label of its own" (labels.json gives it to every built-in): not a blank row
        given = {m: lab for m, lab in _read_labels(labels).items() if lab}
        cfg = FigureConfig(columns=columns, labels={**_design_labels(design), **given})
        selection = select_artifacts(artifacts, method_names, slugs)
        for slug, texts in prompt_text_conflicts(selection.artifacts).items():
            typer.secho(f"note: the videos of prompt {slug} were made for different texts ({texts}); its figure is "
                        "titled with its first row's", fg=typer.colors.YELLOW, err=True)
        figures = make_figures(selection, out, cfg, overwrite=overwrite, progress=progress, heartbeat_s=HEARTBEAT_S)
    except (FigureError, ArtifactError, ValueError) as err:
        _fail(str(err))
    except KeyboardInterrupt as err:
        _stopped(err, _figures_interrupted(out, selection.prompts if selection is not None else [], overwrite))
    for fig in figures:
        rows = f"{len(fig.rows)} method(s) x {cfg.columns} frame(s)"
        missing = f"; no video: {', '.join(fig.missing)}" if fig.missing else ""
        again = "; replaced the earlier one" if fig.replaced else ""
        typer.echo(f"wrote {fig.path} ({rows}{missing}{again})")


def _figures_interrupted(out: Path, slugs: list[str], overwrite: bool) -> str:
    """What an interrupted `figure` kept, and how to finish. The figures are renamed into place only once all are
    composed (`make_figures`), so an interrupt before that leaves `out` as it was; one during the renames leaves the
    first few in place, which a rerun without --overwrite refuses. Without --overwrite no figure of these names
    existed before (`check_outputs` refused them), so those on disk now are the ones renamed."""
    from evaluation.figure import figure_path

    if overwrite:  # the rerun replaces this run's figures as it would have replaced the earlier ones
        return "each figure file is whole, new or as it was; run the command again to write them all"
    written = [figure_path(out, s) for s in slugs if figure_path(out, s).exists()]
    if not written:
        return "no figure was written; run the command again to write them"
    names = ", ".join(p.name for p in written[:3]) + (f" and {len(written) - 3} more" if len(written) > 3 else "")
    return (f"{len(written)} of {len(slugs)} figures were written ({names}), whole; run the command again with "
            "--overwrite to write them all (it replaces only figures `fourdfy figure` wrote)")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root `fourdfy` app."""
    app.command("render")(render)
    app.command("import-videos")(import_videos)
    app.command("clipscore")(clipscore)
    app.command("validate-artifacts")(validate_artifacts)
    app.command("figure")(figure)
