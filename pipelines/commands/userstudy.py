"""`fourdfy` commands of the user-study analysis (analyze, audit, simulate-votes, power)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import typer

def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


# The settings' field names -> the options that set them, so that messages name what the user typed.
ANALYZE_OPTIONS = {"alpha": "--alpha", "n_boot": "--n-boot", "seed": "--seed", "max_failed": "--max-failed-checks",
                   "max_failed_share": "--max-failed-share", "significance": "--significance"}
SIMULATE_OPTIONS = {"n_raters": "--raters", "rates": "--rates", "rater_icc": "--icc",
                    "position_bias": "--position-bias", "careless_share": "--careless", "lapse": "--lapse",
                    "attention_checks": "--checks", "unanswered": "--unanswered", "layout": "--layout",
                    "seed": "--seed"}
POWER_OPTIONS = {"rate": "--rate", "prompts": "--prompts", "target": "--target", "alpha": "--alpha",
                 "family": "--family", "rater_icc": "--icc", "unanswered": "--unanswered", "max_raters": "--max-raters",
                 "sims": "--sims", "seed": "--seed"}


def _input_file(option: str, path: Path | None, what: str) -> None:
    """A folder given for an input file is named as such, by the option that gave it (the readers name the path)."""
    if path is not None and path.is_dir():
        _fail(f"{option} {path} is a folder; give the {what} file")


def _prompts_folder(prompts_dir: Path | None) -> None:
    """A --prompts-dir that is not a folder is refused: a set whose file is not found there is taken as a set of
    another folder (any prompt accepted, generic ids simulated), so a mistyped folder must not pass unseen."""
    if prompts_dir is not None and not prompts_dir.is_dir():
        _fail(f"--prompts-dir {prompts_dir} is {'a file' if prompts_dir.exists() else 'not found'}: give the folder "
              "that holds the design's <prompt_set>.txt files")


def warn_design_methods(design, source: str, others=(), among: str = "") -> None:
    """One `warning:` line for each method `design` names (rows, attention check) that is neither a name of the
    paper's design, nor a registered method (plug-ins included), nor one of `others` (the methods of the artifacts
    or CLIP scores the command is given, said as `among`), but close to one of them: a typo (`mav3dd`) would
    otherwise be simulated, surveyed or analysed as a method of its own, its videos and scores left out. Only a
    warning: a new method's name is fine. Uses the check of `import-videos --method`
    (`pipelines.commands.evaluate.method_near_miss`)."""
    from pipelines.commands.evaluate import method_near_miss

    others = set(others)
    for method in dict.fromkeys([*design.methods, design.check.correct_method]):
        close = method_near_miss(method, others)
        if close is None:
            continue
        where = (f", no method of the paper's design and no {among}" if among
                 else " and no method of the paper's design")
        typer.secho(f"warning: {source} names method {method!r}, which is no registered method (`fourdfy methods` "
                    f"lists them){where}; did you mean {close!r}? (a new method's name is fine)",
                    fg=typer.colors.YELLOW, err=True)


def with_registered_labels(design, source: str):
    """`design` with, for each method it gives no label, the label its registered method gives itself
    (`baselines.Method.label`, entry-point plug-ins included); a method with neither keeps its key. A label that
    makes two rows of one table alike is a `DuplicateLabelError` naming where each comes from (`source`: the
    design file's name), as `load_design` refuses one the file gives twice."""
    import dataclasses

    from userstudy.design import MethodLabel, check_table_labels, latex_escape

    missing = [m for m in design.methods if m not in design.labels]
    if not missing:  # the paper's design labels every method: no need to import the registry (and torch)
        return design
    try:
        from pipelines.stages import registered_labels

        found = registered_labels(missing)
    except ImportError:  # labels are cosmetic: without the registry the tables show the keys, as before
        return design
    if not found:
        return design
    labels = {**design.labels, **{m: MethodLabel(label=lab, latex=latex_escape(lab)) for m, lab in found.items()}}
    labelled = dataclasses.replace(design, labels=labels)
    origins = {**{m: f"methods.{m}.label" for m, lab in design.labels.items() if lab.label != m},
               **{m: f"the label method {m!r} registers" for m in found}}
    check_table_labels(labelled, source, origins)
    return labelled


def analyze(
    votes: list[Path] = typer.Option(..., "--votes", metavar="<path>", help="Votes CSV (one row per judgment; "
                                     "format: docs/userstudy.md, \"Votes format\"). Repeat it for the exports of "
                                     "several surveys (e.g. one per table): their raters are kept apart."),
    design: Path = typer.Option(None, "--design", help="Design YAML/JSON (default: the paper's, "
                                "userstudy/designs/paper.yaml)."),
    clip: Path = typer.Option(None, "--clip", help="Optional CSV method,clip[,prompt_set,n_prompts,n_set] for the "
                              "CLIP column: `fourdfy clipscore`'s clip.csv, one mean per prompt set (its "
                              "summary.csv, per_prompt.csv and per_frame.csv are refused; a section asking part "
                              "of a set takes its mean from the run's per_prompt.csv beside it); partial means are "
                              "marked; the model and precision in its clipscore.json are named in the tables."),
    prompts_dir: Path = typer.Option(None, "--prompts-dir", help="Folder of the <prompt_set>.txt files the "
                                     "design names (default: the project's prompts/), as `survey build "
                                     "--prompts-dir`: a vote's prompt must be one of the first n_prompts of its "
                                     "section's set."),
    out: Path = typer.Option(..., "--out", help="Output folder (tables, metrics.json, plots, report.md)."),
    metrics: Path = typer.Option(None, "--metrics", help="Write metrics.json here instead of into --out "
                                 "(for a DVC metrics file outside a tracked output folder)."),
    n_boot: int = typer.Option(2000, "--n-boot", help="Rater-bootstrap resamples per cell (at least 100)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level (after Holm)."),
    significance: str = typer.Option("chi2", "--significance", metavar="<test>",
                                     help="Test behind p_holm and the tables' daggers: chi2, the paper's chi-square "
                                     "over judgments (taken as independent), or cluster, the rater-robust test "
                                     "(exact sign flips over raters; safer when raters differ)."),
    max_failed: int = typer.Option(None, "--max-failed-checks",
                                   help="Exclude raters failing more than this many attention-check judgments."),
    max_failed_share: float = typer.Option(0.2, "--max-failed-share",
                                           help="Exclude raters failing more than this share of their checks."),
    unanswered_fails: bool = typer.Option(False, "--unanswered-fails/--unanswered-missing",
                                          help="Count unanswered attention checks as failed."),
    exclude_unfinished: bool = typer.Option(False, "--exclude-unfinished/--keep-unfinished",
                                            help="Exclude raters who did not finish the survey (the export's "
                                            "rater_completed column)."),
) -> None:
    """Analyse a votes file: statistics per comparison and criterion, the paper's tables (Markdown,
    LaTeX, CSV), metrics.json, plot data and a report."""
    from userstudy.analysis import AnalysisConfig, AnalysisError, ExclusionRule, check_config
    from userstudy.analysis import analyze as run_analysis
    from userstudy.design import PAPER_DESIGN, DesignError, load_design
    from userstudy.outputs import OutputError, check_metrics_target, check_replaceable
    from userstudy.tables import (PREF_PARTIAL_MD, TINY_CLIP_TEXT, ClipError, check_metrics_name, clip_missing,
                                  clip_outside,
                                  clip_refused, clip_shown, clip_source_text, clip_unmatched, coverage_text,
                                  asked_prompts, load_clip, load_clip_source, partial_preferences,
                                  with_asked_means, write_outputs)
    from userstudy.votes import VotesError, load_votes

    cfg = AnalysisConfig(alpha=alpha, n_boot=n_boot, seed=seed, significance=significance,
                         exclusion=ExclusionRule(max_failed=max_failed, max_failed_share=max_failed_share,
                                                 unanswered_fails=unanswered_fails, unfinished=exclude_unfinished))
    try:
        check_config(cfg, ANALYZE_OPTIONS)  # before any file is read
    except ValueError as err:
        _fail(str(err))
    for path in votes:
        _input_file("--votes", path, "votes CSV")
    _input_file("--clip", clip, "CLIP CSV")
    _input_file("--design", design, "design YAML/JSON")
    _prompts_folder(prompts_dir)
    try:
        # refused before the votes are read and bootstrapped (seconds to minutes), not after: a folder in the way,
        # another program's files, a read-only folder
        check_replaceable(out)
        # named as load_design names the file in its own errors
        d = with_registered_labels(load_design(design), Path(design or PAPER_DESIGN).name)
        v = load_votes(votes, d, prompts_dir=prompts_dir)
        clip_values = load_clip(clip) if clip else None
        clip_source = load_clip_source(clip) if clip else None  # the clipscore.json beside it, if any
        # clipscore scores every artifact folder: the CLIP file's methods are those with videos
        warn_design_methods(d, Path(design or PAPER_DESIGN).name, {m for m, _ in clip_values or {}},
                            f"method of {clip.name}" if clip else "")
        per_prompt = None
        if clip:  # a section asking part of a set gets its asked prompts' mean from the run's per-prompt scores,
            # and one without prompt_set the mean over the prompts of its questions in the votes
            clip_values, per_prompt = with_asked_means(clip_values, clip, d, prompts_dir, asked_prompts(v.frame))
        if metrics is not None:  # never an input, never a file analyze did not write
            check_metrics_target(metrics, [("--votes", p) for p in votes] + [("--clip", clip), ("--design", design)],
                                 out_dir=out)
            check_metrics_name(out, metrics, d)  # nor one of the outputs in --out
    except (DesignError, VotesError, ClipError, OutputError) as err:
        _fail(str(err))
    try:
        result = run_analysis(v, d, cfg)
    except AnalysisError as err:  # raised before the bootstrap: nothing is written
        if not err.all_excluded:
            _fail(str(err))
        also = " or count unanswered checks as missing (--unanswered-missing)" if unanswered_fails else ""
        also += " or keep unfinished raters (--keep-unfinished)" if exclude_unfinished else ""
        _fail(f"all {err.all_excluded} raters were excluded by the attention-check rule ({err.rule}); loosen "
              f"--max-failed-share/--max-failed-checks{also}")
    try:
        paths = write_outputs(result, out, source=", ".join(p.name for p in votes), clip=clip_values,
                              metrics_path=metrics, clip_source=clip_source)
    except OutputError as err:
        _fail(str(err))
    incomplete = v.incomplete if v.incomplete is not None else []
    if len(incomplete):  # a survey export has all five; a missing one may be a row mislabelled as another
        first = incomplete.iloc[0]
        where = f" (first row on line {first.line})" if len(votes) == 1 else ""  # lines of one file only
        typer.secho(f"note: {len(incomplete)} question(s) of a rater lack a row for some criterion, e.g. rater "
                    f"{first.rater_id}, question {first.question_id}{where}: no {first.missing}; a survey "
                    "export has all five, so check the criterion column of those rows", fg=typer.colors.YELLOW,
                    err=True)
    s = result.summary
    if result.synthetic:
        typer.secho("SYNTHETIC DATA: the votes come from simulated raters.", fg=typer.colors.YELLOW)
    typer.echo(f"{s['judgments_analyzed']} judgments from {s['raters_analyzed']} raters analysed "
               f"({s['raters_excluded']} excluded, {s['unanswered']} unanswered, "
               f"{s['duplicates_merged']} duplicates merged)")
    if exclude_unfinished and v.frame["rater_completed"].isna().all():  # simulated votes, or an export of elsewhere
        typer.secho("note: --exclude-unfinished excluded nobody: no row of the votes says whether its rater finished "
                    "(the rater_completed column, which `fourdfy survey export` writes, is absent or empty)",
                    fg=typer.colors.YELLOW, err=True)
    if s.get("raters_unfinished") and not exclude_unfinished:
        typer.secho(f"note: {s['raters_unfinished']} rater(s) did not finish the survey; their judgments are analysed "
                    "(--exclude-unfinished drops them)", fg=typer.colors.YELLOW, err=True)
    t = result.table[result.table["n"] > 0]
    primary = d.label(d.primary) + (f" ({d.primary})" if d.label(d.primary) != d.primary else "")
    if len(t):  # the percentages are the primary's share, whichever method a row names
        typer.echo(f"  % of answered judgments preferring {primary} over each method [Wilson "
                   f"{coverage_text(cfg.alpha)}]:")
    for r in t.itertuples():
        typer.echo(f"  {r.comparison:<14} {r.criterion:<10} n={r.n:<5} {r.pct_primary:5.1f}% "
                   f"[{r.ci_low:4.1f}, {r.ci_high:4.1f}]  p_holm={r.p_holm:.2g}{'  *' if r.significant else ''}")
    outside = clip_outside(clip_values or {}, d)
    if outside:
        typer.secho(f"note: no row of the design shows {', '.join(outside)}, so their CLIP scores are not in the "
                    "tables; to report a method, give --design a design that lists it (docs/userstudy.md, "
                    "\"Design file\")", fg=typer.colors.YELLOW, err=True)
    missing = clip_missing(clip_values, d) if clip_values is not None else []
    if missing:  # a "—" in the CLIP column must say why
        typer.secho(f"note: {clip} has no CLIP value for {', '.join(missing)} (no video of theirs was scored: "
                    "`fourdfy clipscore` scores the artifact folders it is given; `fourdfy import-videos` brings in "
                    "videos of other methods); their CLIP cells show —", fg=typer.colors.YELLOW, err=True)
    unmatched = clip_unmatched(clip_values or {}, d)
    if unmatched:  # an empty CLIP cell must say why: the file has the method, but not for the section's prompts
        groups: dict = {}  # methods missing the same sets, named together
        for m, (want, have) in unmatched.items():
            groups.setdefault((tuple(want), tuple(have)), []).append(m)

        def wanted(w: str) -> str:
            return f"prompt set {w}" if w else "`all` (it names no prompt_set)"

        what = "; ".join(f"{', '.join(ms)}: the design's section wants {', '.join(map(wanted, want))}, clip.csv "
                         f"has {', '.join(have)}" for (want, have), ms in groups.items())
        rerun = ("; a clip.csv of the current `fourdfy clipscore` has `all`, the mean over every prompt scored"
                 if any("" in want for want, _ in groups) else "")
        typer.secho(f"note: no CLIP value in the tables for {what}. `prompt_set:` in the design chooses which "
                    f"prompt set a section shows{rerun} (docs/userstudy.md, \"Design file\")",
                    fg=typer.colors.YELLOW, err=True)
    refused = clip_refused(clip_values or {}, d)
    if refused:  # the whole set's mean must not pass for that of the prompts a section asks
        by_set: dict = {}
        for m, ps, n, asked in refused:
            by_set.setdefault((ps, n, asked), []).append(m)
        over = {k: ms for k, ms in by_set.items() if k[1]}
        if over:
            what = "; ".join(f"{', '.join(ms)} ({ps}: clip.csv's mean is over {n} prompts, the section asks the first "
                             f"{asked})" if ps else f"{', '.join(ms)} (all: clip.csv's mean is over {n} prompts, the "
                             f"votes ask about {asked})" for (ps, n, asked), ms in over.items())
            typer.secho(f"note: no CLIP value in the tables for {what}: clip.csv has no per-prompt scores to average "
                        "the asked prompts only, and no per_prompt.csv of the same `fourdfy clipscore` run is beside "
                        "it; `fourdfy clipscore` on the videos of those prompts gives their mean (docs/userstudy.md, "
                        "\"Design file\")", fg=typer.colors.YELLOW, err=True)
        for (ps, n, asked), ms in by_set.items():
            if not n:  # with_asked_means: the run's per_prompt.csv scores none of them
                which = f"the first {asked} prompts the section asks" if ps else f"the {asked} prompts the votes ask"
                typer.secho(f"note: no CLIP value in the tables for {', '.join(ms)} ({ps or 'all'}): {per_prompt.name} "
                            f"beside clip.csv scores none of {which} for them", fg=typer.colors.YELLOW, err=True)
    shown = clip_shown(clip_values or {}, d)  # values in no table (other prompt sets) are not the tables' concern
    partial = [f"{m} ({s or 'all'}: {clip_values[m, s].n_prompts} of {clip_values[m, s].n_set})"
               for m, s in shown if clip_values[m, s].partial]
    if partial:  # a demo run's CLIP must not pass for the paper's full-set mean
        more = f" and {len(partial) - 3} more" if len(partial) > 3 else ""
        typer.secho(f"note: {len(partial)} CLIP value(s) in the tables cover only part of their prompt set "
                    f"(marked ‡; counts in report.md): {', '.join(partial[:3])}{more}", fg=typer.colors.YELLOW)
    # likewise preferences from votes on part of a section's prompts (marked in the tables)
    pref_partial = [f"{m} ({ps}: {n} of {n_set})" for m, ps, n, n_set in partial_preferences(result)]
    if pref_partial:
        more = f" and {len(pref_partial) - 3} more" if len(pref_partial) > 3 else ""
        typer.secho(f"note: {len(pref_partial)} comparison(s) have votes on only part of their prompt set (marked "
                    f"{PREF_PARTIAL_MD}; counts in report.md): {', '.join(pref_partial[:3])}{more}",
                    fg=typer.colors.YELLOW)
    if shown:  # nor a demo model's or a bf16 run's for the paper's fp32 ViT-B-32
        if clip_source.random_weights:
            typer.secho(TINY_CLIP_TEXT, fg=typer.colors.YELLOW)
        typer.echo(clip_source_text(clip_source))
    inside = [p for p in paths if p.parent == out or out in p.parents]
    extra = [str(p) for p in paths if p not in inside]
    typer.echo(f"wrote {len(inside)} files to {out}" + (f" and {', '.join(extra)}" if extra else ""))


def audit(
    out: Path = typer.Option(Path("reports/audit.md"), "--out", help="Audit Markdown file."),
    paper_dir: Path = typer.Option(None, "--paper-dir",
                                   help="Where to write the published tables as CSV (default: <out folder>/paper)."),
    design: Path = typer.Option(None, "--design", help="Design whose method labels are printed, the paper's "
                                "labels for methods it does not label (default: the paper's, "
                                "userstudy/designs/paper.yaml); the audited cells are the paper's either way."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the files of an earlier audit (--out and "
                                   "the --paper-dir CSVs; any other file is never replaced)."),
) -> None:
    """Audit the paper's user-study numbers (both versions): implied chi-square and p, contradicted
    claims, stage-3 probabilities."""
    from userstudy.audit import CLAIMS, check_claims, write_audit
    from userstudy.design import DesignError, load_design
    from userstudy.outputs import OutputError

    paper_dir = paper_dir if paper_dir is not None else out.parent / "paper"
    try:
        d = load_design(design)
        paths = write_audit(out, paper_dir, design=d, overwrite=overwrite)
    except (DesignError, OutputError) as err:
        _fail(str(err))
    claims = check_claims(design=d)
    bad = sorted(set(claims.loc[claims["verdict"] == "contradicted", "claim"]))
    for i in bad:  # shortened on a word boundary; the report has each quote whole, with the reason
        typer.echo(f"contradicted: {CLAIMS[i].where}: {textwrap.shorten(CLAIMS[i].quote, 110, placeholder=' ...')}")
    typer.echo(f"{len(bad)} of {len(CLAIMS)} claims contradicted; each quote in full, and why: {out}")
    typer.echo(f"wrote {', '.join(str(p) for p in paths)}")


def simulate_votes(
    out: Path = typer.Option(..., "--out", help="Votes CSV to write (labelled synthetic)."),
    design: Path = typer.Option(None, "--design", help="Design YAML/JSON (default: the paper's)."),
    rates: str = typer.Option("paper", "--rates", help="True preference for the primary: 'paper' (CVPR Table 2/3), "
                              "a number for every cell, or a CSV comparison,rate[,criterion]."),
    raters: int = typer.Option(26, "--raters", help="Panel size."),
    # the panel's knobs default to None, "PanelConfig's default" (the votes stage of dvc.yaml simulates the same
    # panel); the help texts say those values, and a test holds them to PanelConfig
    icc: float = typer.Option(None, "--icc", help="Rater heterogeneity (between-rater share of variance; "
                              "default: 0.05)."),
    position_bias: float = typer.Option(None, "--position-bias", help="Pull towards the left video, 0..1 "
                                        "(default: 0.1)."),
    careless: float = typer.Option(None, "--careless", help="Expected share of raters answering at random "
                                   "(default: 0.05)."),
    lapse: float = typer.Option(None, "--lapse", help="Attentive raters' error rate on attention checks "
                                "(default: 0.02)."),
    checks: int = typer.Option(None, "--checks", help="Attention-check questions per rater (default: 2 when "
                               "the design names an attention-check decoy, else 0)."),
    unanswered: float = typer.Option(None, "--unanswered", help="Probability a sub-question is skipped "
                                     "(default: 0.01)."),
    layout: str = typer.Option(None, "--layout", help="per_rater | global (one shuffle for all; default: "
                               "per_rater)."),
    comparisons: str = typer.Option("", "--comparisons", help="Comma-separated subset of the design's comparisons."),
    tables: list[str] = typer.Option([], "--tables", metavar="<name>", help="Only the comparisons of these tables "
                                     "(repeatable), as `survey build --tables` builds one survey per table."),
    artifacts: list[Path] = typer.Option([], "--artifacts", help="The artifact folder(s) `survey build` is given "
                                         "(repeatable): a comparison whose design section names no prompt_set is "
                                         "then simulated on the prompts the survey asks it on, those both methods "
                                         "have videos of (without: generic ids, or the paper's 28 prompts)."),
    prompts_dir: Path = typer.Option(None, "--prompts-dir", help="Folder of the <prompt_set>.txt files the "
                                     "design names (default: the project's prompts/), as `survey build "
                                     "--prompts-dir`: a section is simulated on the first n_prompts of its set."),
    seed: int = typer.Option(0, "--seed", help="Seed of every draw."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file of simulated "
                                   "votes (a file holding real votes is never replaced)."),
) -> None:
    """Write a SYNTHETIC votes file drawn from given preference rates (for demos, tests and power)."""
    from userstudy.design import PAPER_DESIGN, DesignError, load_design
    from userstudy.outputs import OutputError, check_file_target
    from userstudy.simulate import (PAPER_PRIMARY, PanelConfig, check_config, check_votes_target, generic_sections,
                                    parse_rates, write_votes)
    from userstudy.simulate import simulate_votes as simulate

    _prompts_folder(prompts_dir)
    try:
        check_file_target(out)
        d = load_design(design)
        # refused as `analyze` would refuse it (two rows alike once plug-in labels are in), before votes are made
        with_registered_labels(d, Path(design or PAPER_DESIGN).name)
        whole = d  # a comparison of a table --tables leaves out is named as such, with its table
        if tables:
            d = d.select_tables(tables)
        if checks is None and not d.check.decoys:  # PanelConfig's default then asks for none
            typer.echo("note: no attention checks simulated (the design names no attention_check.decoys)")
        knobs = {"rater_icc": icc, "position_bias": position_bias, "careless_share": careless, "lapse": lapse,
                 "attention_checks": checks, "unanswered": unanswered, "layout": layout}
        cfg = PanelConfig(n_raters=raters, rates=parse_rates(rates, d), seed=seed,
                          comparisons=tuple(c.strip() for c in comparisons.split(",") if c.strip()) or None,
                          **{k: v for k, v in knobs.items() if v is not None})
        check_config(cfg, SIMULATE_OPTIONS)
        # the paper has rates only for its own comparisons (4D-fy vs MAV3D and the ablations)
        unpublished = [c for c in cfg.comparisons or d.comparisons if c not in cfg.rates] if rates == "paper" else []
        videos = None
        if artifacts:
            from userstudy.survey.bundle import artifact_pairs

            videos = artifact_pairs(artifacts)
        warn_design_methods(whole, Path(design or PAPER_DESIGN).name, {m for m, _ in videos or ()},
                            "method of the --artifacts" if artifacts else "")
        frame = simulate(d, cfg, videos, prompts_dir=prompts_dir, whole=whole)
        # after the settings are checked (their errors come first), before anything is written
        check_votes_target(out, overwrite=overwrite)
        write_votes(frame, out)
    except ValueError as err:  # DesignError, OutputError, BundleError, PromptFileError and bad settings
        _fail(str(err))
    unset = [c for c in cfg.comparisons or d.comparisons if not d.section_of(c)[1].prompt_set]
    if unset and videos is None:  # the votes would not match a survey of the design: say how they would
        typer.secho(f"note: {', '.join(unset)}: the design names no prompt_set, so simulated on generic prompt ids "
                    "(n_prompts) or the paper's 28; a survey of this design asks about the prompts both methods have "
                    "videos of: give the --artifacts of `survey build` to simulate those", fg=typer.colors.YELLOW,
                    err=True)
    generic = generic_sections(d, cfg.comparisons or d.comparisons, prompts_dir)
    if generic:  # simulate's own fallback: `survey build` needs the file
        sets = sorted({d.section_of(c)[1].prompt_set for c in generic})
        typer.secho(f"note: {', '.join(generic)}: no file {', '.join(f'{s}.txt' for s in sets)} in "
                    f"{prompts_dir if prompts_dir is not None else 'prompts/'}, so simulated on n_prompts generic "
                    "prompt ids; `survey build` needs the file (give the folder that holds it with --prompts-dir)",
                    fg=typer.colors.YELLOW, err=True)
    if unpublished:
        whose = ("the paper's Tables 2/3 compare 4D-fy with MAV3D and its ablations" if d.primary == PAPER_PRIMARY
                 else f"the paper's rates are preferences for 4D-fy, and this design's primary is {d.primary}")
        typer.secho(f"note: no published rate for {', '.join(unpublished)} ({whose}): simulated at "
                    f"{cfg.default_rate:g}, no preference; give rates "
                    "with --rates (a number for every cell, or a CSV comparison,rate[,criterion])",
                    fg=typer.colors.YELLOW)
    typer.echo(f"wrote {len(frame)} SYNTHETIC judgments ({raters} simulated raters) to {out}")


def power(
    rate: float = typer.Option(0.6, "--rate", help="True share of judgments preferring the primary."),
    prompts: int = typer.Option(28, "--prompts", help="Judgments per rater in the cell (28 vs MAV3D, 5 per ablation)."),
    target: float = typer.Option(0.8, "--target", help="Wanted power."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level."),
    family: int = typer.Option(1, "--family", help="Number of tests corrected together (plans at alpha/family)."),
    icc: float = typer.Option(0.05, "--icc", help="Rater heterogeneity (between-rater share of variance): "
                              "modest by default, as simulate-votes; 0 = identical raters (the paper's test "
                              "assumes it)."),
    unanswered: float = typer.Option(0.0, "--unanswered", help="Probability a sub-question is skipped."),
    max_raters: int = typer.Option(100, "--max-raters", help="Largest panel size tried."),
    sims: int = typer.Option(2000, "--sims", help="Simulated panels per panel size."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulation."),
    out: Path = typer.Option(None, "--out", help="Optional CSV of power per panel size."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file of an earlier "
                                   "`fourdfy power` (any other file is never replaced)."),
) -> None:
    """How many raters does a preference need? Power of the paper's chi-square test and of a
    rater-robust test on simulated panels."""
    from userstudy.outputs import OutputError, atomic_write, check_own_file
    from userstudy.power import (PowerConfig, check_config, chi2_size, csv_frame, is_power_file, power_table,
                                 raters_needed)

    cfg = PowerConfig(rate=rate, prompts=prompts, target=target, alpha=alpha, family=family, rater_icc=icc,
                      unanswered=unanswered, max_raters=max_raters, sims=sims, seed=seed)
    try:
        check_config(cfg, POWER_OPTIONS)
        if out is not None:
            # before the simulation, not after
            check_own_file(out, overwrite, is_power_file, "a power table of `fourdfy power`")
    except ValueError as err:  # OutputError too
        _fail(str(err))
    try:
        table = power_table(cfg)
    except ValueError as err:
        _fail(str(err))
    typer.echo(f"rate {rate:g}, {prompts} judgments per rater, icc {icc:g}, alpha {alpha:g}"
               f"{f'/{family}' if family > 1 else ''}, target power {target:g} (simulated panels, {sims} each):")
    for col, what in (("power_chi2", "paper's chi-square test"), ("power_cluster", "rater-robust test"),
                      ("power_approx", "normal approximation with design effect")):
        need = raters_needed(table, col, target)
        typer.echo(f"  {what:<42} {'> ' + str(max_raters) if need is None else need} raters")
        if col == "power_chi2":  # its power means little unless it keeps its level: say how often it rejects H0
            panel = need or max_raters
            size = chi2_size(cfg, panel)
            level = alpha / family
            # more than 3 standard errors of the simulation above the level: the test is too liberal
            liberal = size > level + 3 * (level * (1 - level) / sims) ** 0.5
            typer.echo(f"    size: it rejects {100 * size:.1f}% of {panel}-rater panels with no preference (rate 0.5, "
                       f"icc {icc:g}; level {100 * level:g}%)"
                       + (": it counts judgments as independent, so its power above is optimistic; plan with the "
                          "rater-robust test" if liberal else ""))
    if out is not None:
        frame = csv_frame(table)
        try:
            atomic_write(out, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n", float_format="%.4f"))
        except OutputError as err:
            _fail(str(err))
        typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add this package's commands to the root `fourdfy` app."""
    app.command("analyze")(analyze)
    app.command("audit")(audit)
    app.command("simulate-votes")(simulate_votes)
    app.command("power")(power)
