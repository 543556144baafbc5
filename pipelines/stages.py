"""Glue of the DVC pipeline that is not a user command: the study design the pipeline uses, the votes
it analyses, and the report summary. Run as `python -m pipelines.stages <step> ...` from dvc.yaml.

- `methods`: `build/methods/`, what the pipeline's methods are as data: `config/<name>.json` (the profile's
  resolved config of each trained method, the variants params.yaml's `overrides:` defines included, and under
  `named_files` the SHA-256 of the local weights files or folders its run loads,
  `pipelines.generate.MODEL_FIELDS`) and `labels.json` (the table labels they register, or params.yaml's `label:`
  of them) and `files/<stage>.json` (the SHA-256 of each file params.yaml names for that stage, `FILE_PARAMS`; a
  file is read again only when its size, mtime or inode changed, `pipelines.generate.DigestCache`). Installed
  plug-ins and those files live where DVC cannot see them (DVC tracks a parameter's value, not the file it names), so the stage runs on every
  repro; the generate, design, votes and clipscore stages depend on its files and rerun only when a method's
  definition or a named file's content really changed.
- `design`: the design file of params.yaml plus a row for every method the pipeline trains or
  imports that the design does not list yet (a plug-in baseline, a folder of videos), so a new
  method reaches Table 2 without editing the pipeline or the design.
- `votes`: the votes file of a real study when params.yaml names one (validated against the design),
  else a simulated panel (rater ids `synthetic-...`, every output made from it says SYNTHETIC). A
  simulated panel replaces an earlier simulated file (DVC removes the stage's output before running
  it anyway) but never a file holding real votes.
- `summary`: reports/summary.md and reports/metrics/pipeline.json: which rows have videos, CLIP and
  votes, and which are missing (a row is never dropped silently); reports/clip_scores.png: CLIP per
  method with its bootstrap interval, labelled with the CLIP model reports/clip/clipscore.json records.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

import yaml

from userstudy.design import DesignError, DuplicateLabelError, design_from_dict

ADDED_HEADING = "Added methods"


def _params(path: Path) -> dict:
    """params.yaml's data; a file that cannot be read or parsed is a ValueError of one line naming it (and the line
    and column of a YAML error)."""
    from pipelines.generate import read_yaml

    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must be a mapping of parameters (profile:, generate:, ...), got {data!r:.60}")
    return data


def effective_design(params: dict, labels: dict[str, str] | None = None) -> dict:
    """The design dict of params['study']['design'] extended with the pipeline's other methods. A pipeline method
    the design gives no label (an added one, or one a design of your own lists without a label) takes it from
    `labels` (the `methods` stage's labels.json, which DVC tracks), else from the registry; a `label:` of its
    entry in params.yaml's `overrides:` (also in labels.json) wins over the design's, and its LaTeX label is then
    made from it (escaped, as for any plain label) unless it is the design's own label. Checked as every reader
    of a design checks it (`userstudy.design.design_from_dict`, a `DesignError`); a label two rows of one table
    would share names where each comes from (`check_table_labels`)."""
    from pipelines.generate import read_yaml

    study = params.get("study", {})
    if (problem := added_prompt_set_problem(params)) is not None:  # before the design: the key is params.yaml's
        raise DesignError(problem)
    path = study.get("design", "userstudy/designs/paper.yaml")
    base = read_yaml(path, "study.design: ")
    listed = {base["primary"]} | {m for t in base.get("tables", {}).values() for s in t["sections"] for m in s["rows"]}
    listed |= set(base.get("comparisons", []))
    trained, videos = pipeline_methods(params)
    extra = [m for m in [*trained, *videos] if m not in listed]
    own = base.get("methods") if isinstance(base.get("methods"), dict) else {}  # else refused below, named
    # where each label comes from, for the message naming both rows of a label used twice
    origins = {str(m): f"methods.{m}.label of {path}" for m, e in own.items() if _design_label(e)}
    # params.yaml's `label:` (overrides.<method>.label) wins over the design's: it is this pipeline's own choice
    given = {m: label for m, label in params_labels(params).items() if m in trained or m in videos}
    unlabelled = [m for m in [*trained, *videos] if not _design_label(own.get(m)) and m not in given]
    found = registered_labels(unlabelled) if labels is None and unlabelled else labels or {}
    methods = {}
    for m in unlabelled:
        if found.get(m):
            # a latex: the design gives stays
            methods[m] = {**(own.get(m) if isinstance(own.get(m), dict) else {}), "label": found[m]}
    for m, label in given.items():
        # the design's latex: was written for its own label: kept only if the override keeps that label
        kept = own.get(m) if isinstance(own.get(m), dict) and _design_label(own.get(m)) == label else {}
        methods[m] = {**kept, "label": label}
    if methods and isinstance(base.get("methods") or {}, dict):
        base["methods"] = {**own, **methods}
    if extra:
        prompt_set = study.get("added_prompt_set", "ablation_5")
        if "tables" in base:
            first = next(iter(base["tables"].values()))
            first["sections"].append({"heading": ADDED_HEADING, "prompt_set": prompt_set,
                                      "rows": [base["primary"], *extra]})
        else:
            base["comparisons"] = [*base["comparisons"], *extra]
    origins.update({m: f"the label method {m!r} registers" for m in unlabelled if found.get(m)})
    origins.update({m: f"overrides.{m}.label" for m in given})
    design_from_dict(base, source=str(path), label_origins=origins, relabel=PARAMS_RELABEL)
    return base


PARAMS_RELABEL = "under overrides: in params.yaml (overrides.<name>.label)"
"""Where the pipeline gives a method another label (the end of the message for a label two rows would share)."""


def _design_label(entry) -> str:
    """The label a design's `methods:` entry gives (a bare label or {label, latex}), "" if none."""
    if isinstance(entry, str):
        return entry
    return str(entry.get("label") or "") if isinstance(entry, dict) else ""


def registered_labels(names: list[str]) -> dict[str, str]:
    """The table labels registered methods (plug-ins) give themselves (`Method.label`), for `names`."""
    from baselines import METHODS, load_entry_points

    # strict=False: a broken plug-in gets no label rather than an error (one that gives a method params.yaml names
    # has already stopped the repro in the `methods` stage, naming it: `plugin_problems`)
    load_entry_points(strict=False)
    return {n: METHODS[n].label for n in names if n in METHODS and METHODS[n].label}


def params_labels(params: dict) -> dict[str, str]:
    """The `label:` params.yaml's `overrides:` gives a method (a variant, or a registered method relabelled)."""
    overrides = params.get("overrides")
    if not isinstance(overrides, dict):
        return {}
    return {str(m): e["label"] for m, e in overrides.items()
            if isinstance(e, dict) and isinstance(e.get("label"), str) and e["label"]}


def pipeline_methods(params: dict) -> tuple[list[str], list[str]]:
    """(trained, video-only) method names of params.yaml: both generate blocks, then `videos:` keys."""
    gen = params.get("generate", {})
    trained = list(dict.fromkeys([*gen.get("methods", []), *(gen.get("extra") or {}).get("methods", [])]))
    return trained, [m for m in (params.get("videos") or {}) if m not in trained]


def trained_method_problems(params: dict, params_path: Path) -> tuple[list[str], str, list[str]]:
    """What the `methods` stage (`write_methods`) refuses of params.yaml's method names, not raised: (its message
    parts, the registry's list of known methods that ends the message, '' when no name is unknown, and the trainable
    methods of the generate blocks, in order, each once). Refused: an unknown name (the registry's did-you-mean, and a
    broken plug-in's error), a videos-only method, or one also under `videos:` (`trained_and_imported`); also an
    entry of `overrides:` that names no method (a typo), and a trained method without an entry there (its generate
    stages read it). The variants of params.yaml's `overrides:` are registered first: one that cannot be is raised at
    once, naming its entry, since the names the other checks look up depend on the variants."""
    from baselines import UnknownMethodError, get_method, register_variants
    from pipelines.generate import unknown_override_names, unknown_overrides_text

    register_variants(params.get("overrides"), source=str(params_path))  # its errors name the entry
    overrides = params.get("overrides") or {}
    gen = params.get("generate") or {}
    videos = {str(m) for m in (params.get("videos") or {})} if isinstance(params.get("videos"), dict) else set()
    known_tail, parts, trainable = "", [], []
    for key, names in (("generate.methods", gen.get("methods") or []),
                       ("generate.extra.methods", (gen.get("extra") or {}).get("methods") or [])):
        bad = []
        for name in dict.fromkeys(map(str, names)):
            if name in videos:  # trained and imported, or a videos-only name: the sweep says the same
                bad.append(trained_and_imported(name, key, _trainable(name, overrides)))
                continue
            try:
                method = get_method(name)
            except UnknownMethodError as err:  # the known methods listed once, after every unknown name
                # config keys under an unknown name: meant as a variant (an empty entry may be a plug-in's)
                entry = overrides.get(name) if isinstance(overrides, dict) else None
                bad.append(err.head + (f" (overrides.{name} has no base:; add e.g. base: 4dfy to define it as a "
                                       "variant)" if isinstance(entry, dict) and entry else ""))
                known_tail = (f"{err.tail}; a variant of a registered method is an entry of overrides: with base: "
                              "(docs/pipeline.md)")
                continue
            if method.trainable:
                trainable.append(name)
            else:
                bad.append(f"method {name!r} cannot be trained here (videos only: list it under `videos:` instead "
                           f"and bring its videos in with `fourdfy import-videos SRC --method {name} --out DIR`)")
        if bad:
            parts.append(_cannot_train(key, bad))
    # an entry of no method (a typo, `wo_hybird:`) would be ignored; names of the generate blocks are reported
    # above, those of `videos:` may take a label: without being registered
    trained, videos = pipeline_methods(params)
    videos_named = {str(m) for m in trained}
    stray, tail = unknown_override_names(overrides if isinstance(overrides, dict) else {},
                                         skip={*map(str, trained), *map(str, videos)})
    if stray:
        parts.append(unknown_overrides_text(stray))
        known_tail = known_tail or tail
    # each generate stage reads --set-from params.yaml:overrides.<method> and DVC tracks that key as a parameter:
    # both fail on a missing key (DVC only after the run), so say it here, before anything trains
    entries = overrides if isinstance(overrides, dict) else {}
    missing = [m for m in dict.fromkeys(trainable) if m not in entries]
    if missing:
        parts.append(f"generate names {len(missing)} method{'s' if len(missing) > 1 else ''} with no entry under "
                     f"overrides: ({', '.join(missing)}), which its generate stages read (--set-from params.yaml:"
                     f"overrides.<method>, a DVC parameter); add {', '.join(f'`{m}: {{}}`' for m in missing)} under "
                     "overrides:")
    # an entry also in a generate block is reported above (keep it in one place): its folder would be moot. First,
    # so that the registry's list of known methods (known_tail) stays next to the unknown names it follows
    parts[:0] = check_videos_entries({m: e for m, e in params["videos"].items() if str(m) not in videos_named}
                                     if isinstance(params.get("videos"), dict) else None)
    return parts, known_tail, list(dict.fromkeys(trainable))


def check_videos_entries(videos) -> list[str]:
    """The message parts for `videos:` entries the `import@<name>` stages would fail on only later, with a raw DVC
    error: a folder that does not exist (or is a file), and a trajectory `import-videos` would refuse
    (`evaluation.importer.trajectory_problem`). A relative folder is read from the current folder, as DVC runs the stages. Entries
    that are not mappings stop every `dvc` command before this stage runs (docs/pipeline.md)."""
    from evaluation.importer import trajectory_problem

    parts = []
    for name, entry in (videos.items() if isinstance(videos, dict) else ()):
        if not isinstance(entry, dict):
            continue
        folder = entry.get("folder")
        if isinstance(folder, str) and folder and not Path(folder).expanduser().is_dir():
            what = "is a file, not a folder" if Path(folder).expanduser().exists() else "does not exist"
            parts.append(f"videos.{name}.folder: {folder} {what}; give the folder of its <prompt slug>.mp4 files "
                         f"(create it empty to report {name}'s rows as missing)")
        trajectory = entry.get("trajectory")
        if trajectory is not None and (problem := trajectory_problem(str(trajectory))) is not None:
            parts.append(f"videos.{name}.trajectory: {problem}")
    return parts


def method_configs(params: dict, trained: list[str]) -> tuple[dict, dict, list[str]]:
    """({method: its resolved config} of the profile for every trained method (registered variants included),
    {method: the config its generate stage builds}, the message parts of the bad entries), checked as its generate
    stage will check it: a built-in's or plug-in's entry under `overrides:` (its --set-from keys) is applied as
    `fourdfy generate` applies `--set` values (`pipelines.generate.build_config`), so a misspelt key or a value out
    of range stops the repro here, before any method trains, instead of in that method's generate stage after others
    trained. A part names the bad `overrides.<name>` entry (the method, for a config of its own registration); a
    method without a good config is left out of both mappings. Each config is built once (a transform such as
    hexplane's sizes planes to the profile)."""
    from baselines import config_keys, resolve_config
    from method.configs import set_keys
    from pipelines.generate import as_set_values

    profile = str(params.get("profile", "tiny"))
    overrides = params.get("overrides") if isinstance(params.get("overrides"), dict) else {}
    configs, built, parts = {}, {}, []
    for m in trained:
        entry = overrides.get(m) if isinstance(overrides.get(m), dict) else {}
        where = f"overrides.{m}" if m in overrides else f"method {m!r}"
        try:
            cfg = resolve_config(profile, m)  # a variant's keys are its own, out-of-range values fail here
            # a variant's entry gives no --set values (its generate stage registers it); another's are --set values
            keys = {} if "base" in entry else config_keys(entry)
            full = set_keys(cfg, as_set_values(keys), parse=True) if keys else cfg
        except ValueError as err:
            parts.append(f"{where}: {err}")
            continue
        except (TypeError, AttributeError) as err:  # a value no check of the config foresaw: named, not a traceback
            parts.append(f"{where}: its keys cannot be applied: {type(err).__name__}: {err}")
            continue
        configs[m], built[m] = cfg, full
    return configs, built, parts


def unused_entry_problems(params: dict, params_path: Path, trained: list[str]) -> list[str]:
    """The message parts for the config keys of `overrides:` entries of registered trainable methods that no generate
    block trains (`trained`: those `method_configs` checks): checked too (an unknown key, a bad value, as
    `baselines.check_entry_keys` checks them, the checks of `fourdfy sweep --params`), so that a typo does not wait
    for the day the method is listed. Variants are checked when registered; unknown names are reported elsewhere."""
    from baselines import METHODS, check_entry_keys, config_keys

    overrides = params.get("overrides") if isinstance(params.get("overrides"), dict) else {}
    parts = []
    for name, entry in overrides.items():
        name = str(name)
        if name in trained or not isinstance(entry, dict) or "base" in entry or not config_keys(entry):
            continue
        method = METHODS.get(name)
        if method is None or not method.trainable:  # unknown: named above; videos only: a label: is all it takes
            continue
        try:
            check_entry_keys(name, entry, str(params_path))
        except ValueError as err:
            parts.append(str(err).removeprefix(f"{params_path}: "))
    return parts


def added_prompt_set_problem(params: dict) -> str | None:
    """Why `study.added_prompt_set` (the prompts of the design's "Added methods" section, `effective_design`) names
    no prompt set of prompts/, or None: a misspelt one would pass the `methods` and `design` stages and stop only
    the `votes` stage, after all the training. Checked whether or not a method is added now."""
    from prompts import PROMPT_DIR, PromptFileError, load_prompts
    from userstudy.design import prompt_file

    study = params.get("study") if isinstance(params.get("study"), dict) else {}
    if "added_prompt_set" not in study:
        return None
    value = study["added_prompt_set"]
    known = ", ".join(sorted(p.stem for p in PROMPT_DIR.glob("*.txt")))
    if not isinstance(value, str) or not value or "/" in value or "\\" in value:
        return (f"study.added_prompt_set must name a prompt set (a file prompts/<name>.txt: {known}), got {value!r}")
    path = prompt_file(value)
    if not path.is_file():
        import difflib

        close = difflib.get_close_matches(value, known.split(", "), n=1)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        return (f"study.added_prompt_set: {value!r} names no prompt set{guess}: there is no prompts/{value}.txt; "
                f"known: {known}")
    try:
        load_prompts(path)
    except PromptFileError as err:
        return f"study.added_prompt_set: {value!r}: {err}"
    return None


def note_untaken_base_keys(params: dict, trained: list[str]) -> None:
    """One `note:` line on stderr per trained variant whose registered base has config keys of its own under
    `overrides:` that the variant does not set (`baselines.untaken_base_keys`): a variant is its base's definition
    plus its own keys, so `4dfy: {stages.stage1.steps: 10}` changes 4dfy's runs, not those of a variant of 4dfy,
    which a user may not expect (docs/pipeline.md, "What a variant is")."""
    from baselines import untaken_base_keys

    overrides = params.get("overrides") if isinstance(params.get("overrides"), dict) else {}
    for name in dict.fromkeys(map(str, trained)):
        base, keys = untaken_base_keys(name, overrides)
        if keys:
            listed = ", ".join(f"{k}={v}" for k, v in keys.items())
            print(f"note: overrides.{name} (a variant of {base}) does not take the keys of overrides.{base} "
                  f"({listed}): they change {base}'s own runs only; to train {name} with them too, add them to "
                  f"overrides.{name}", file=sys.stderr)


def _cannot_train(key: str, bad: list[str]) -> str:
    """One part of the `methods` stage's error: the methods of generate block `key` it cannot train, and why."""
    return f"{key} names {len(bad)} method{'s' if len(bad) > 1 else ''} the pipeline cannot train: " + ", ".join(bad)


def _trainable(name: str, overrides) -> bool:
    """Whether `name` is a trainable method: a variant of params.yaml's `overrides:` (an entry with base:, trainable
    since a variant of a videos-only method is refused; known before `register_variants`, so the sweep, which
    checks before registering them, answers the same) or a registered trainable method. An unregistered name is
    not (a broken plug-in's error is raised, naming it)."""
    from baselines import UnknownMethodError, get_method

    entry = overrides.get(name) if isinstance(overrides, dict) else None
    if isinstance(entry, dict) and "base" in entry:
        return True
    try:
        return get_method(name).trainable
    except UnknownMethodError:
        return False


def trained_and_imported(name: str, key: str, trainable: bool) -> str:
    """Why a method of generate block `key` that is also under `videos:` is refused, and what to change: the one
    wording of the `methods` stage (`write_methods`) and `fourdfy sweep --params` (`check_generate_videos`).
    Trained and rendered, then imported too, it would have two artifacts per prompt, which `clipscore` refuses only
    after all the training; a videos-only method (registered as such, or a name of its own for imported videos)
    cannot be trained at all."""
    if trainable:
        return (f"method {name!r} is both in {key} (trained) and under `videos:` (imported), which gives it two "
                f"artifacts per prompt; keep it in one of the two places: remove it from {key} to score its imported "
                "videos, or remove its `videos:` entry to train it")
    return f"method {name!r} is a `videos:` method (videos only) and cannot be trained: remove it from {key}"


def check_generate_videos(params: dict, params_path: Path | str) -> None:
    """ValueError naming every method of params.yaml's generate blocks that is also under `videos:`, in the words
    of the `methods` stage (one part per block, `trained_and_imported`): `fourdfy sweep --params` checks it before
    any job, so that the same mistake gets the same message before the GPU-hours as after. Malformed blocks are
    left to the readers that report them."""
    gen = params.get("generate") if isinstance(params, dict) else None
    videos = params.get("videos") if isinstance(params, dict) else None
    if not isinstance(gen, dict) or not isinstance(videos, dict) or not videos:
        return
    extra = gen.get("extra") if isinstance(gen.get("extra"), dict) else {}
    videos = {str(m) for m in videos}
    parts = []
    for key, names in (("generate.methods", gen.get("methods")), ("generate.extra.methods", extra.get("methods"))):
        if not isinstance(names, list):
            continue
        bad = [trained_and_imported(name, key, _trainable(name, params.get("overrides")))
               for name in dict.fromkeys(map(str, names)) if name in videos]
        if bad:
            parts.append(_cannot_train(key, bad))
    if parts:
        raise ValueError(f"{params_path}: " + "; ".join(parts))


def plugin_problems(params: dict) -> list[str]:
    """The `methods` stage's message parts for the installed plug-ins (`fourdfy.methods` entry points) that cannot
    be registered and give a method params.yaml names (a generate block, `videos:`, `overrides:` and its variants'
    bases), case ignored as run folders may: the pipeline would train and report another method under that name (a
    built-in the plug-in names its own `4dfy`, or the other package's), or none. Each other refused plug-in is one
    `warning:` line on stderr instead: a broken package the pipeline does not use must not stop its repro. A
    plug-in that failed before it gave any method is known by its entry point's name, and its warning says its
    names are unknown."""
    from baselines.registry import BUILT_INS, load_entry_points, refused_plugins

    load_entry_points(strict=False)
    refused = refused_plugins()
    if not refused:
        return []
    gen = params.get("generate") if isinstance(params.get("generate"), dict) else {}
    extra = gen.get("extra") if isinstance(gen.get("extra"), dict) else {}
    overrides = params.get("overrides") if isinstance(params.get("overrides"), dict) else {}
    videos = params.get("videos") if isinstance(params.get("videos"), dict) else {}
    listed = [*(n for block in (gen, extra) if isinstance(block.get("methods"), list) for n in block["methods"]),
              *videos, *overrides, *(e["base"] for e in overrides.values() if isinstance(e, dict) and "base" in e)]
    used = {str(n).lower(): str(n) for n in listed if isinstance(n, (str, int, float))}  # malformed: reported later
    built_in = {n.lower(): n for n in BUILT_INS}
    parts = []
    for plugin in refused:
        names = plugin.names()
        if named := [n for n in names if n.lower() in used]:
            own = built_in.get(named[0].lower())
            if own is not None:  # its own `4dfy`: the built-in would be trained and reported as the plug-in's
                gives = "" if named[0] == own else f"it gives {named[0]!r}: "
                parts.append(f"{plugin.error} ({gives}the built-in {own!r} would be trained and reported in its "
                             "place)")
            else:
                parts.append(f"{plugin.error} (it gives {named[0]!r}, which params.yaml names as "
                             f"{used[named[0].lower()]!r})")
        elif plugin.claims:  # a built-in's name it gives is no harm to a pipeline that does not use that built-in
            print(f"warning: {plugin.error}; the pipeline goes on without it (params.yaml names none of its "
                  f"methods: {', '.join(map(repr, names))})", file=sys.stderr)
        else:
            print(f"warning: {plugin.error}; the pipeline goes on without it, but it failed before giving any "
                  f"method, so which names it gives is unknown: if params.yaml names one of its methods, fix it "
                  "first", file=sys.stderr)
    return parts


def note_unused_video_plugins(trained: list[str], videos: list[str]) -> None:
    """One `note:` line on stderr for installed plug-in methods that are videos only and have no `videos:` entry:
    they reach neither labels.json nor the design's rows, which would otherwise go unnoticed (built-ins such as
    MAV3D are rows of the design already and show up as "missing videos" in the summary)."""
    from baselines import METHODS, load_entry_points

    load_entry_points(strict=False)
    named = {*map(str, trained), *map(str, videos)}
    unused = [n for n, m in sorted(METHODS.items()) if not m.trainable and m.source != "built-in" and n not in named]
    if unused:
        many = len(unused) > 1
        print(f"note: plug-in method{'s' if many else ''} {', '.join(map(repr, unused))} (videos only) "
              f"{'have' if many else 'has'} no entry under `videos:` in params.yaml, so "
              f"{'they are' if many else 'it is'} left out of labels.json and the design; to include "
              f"{'them' if many else 'it'}, add "
              + ", ".join(f"`{n}: {{folder: DIR, trajectory: ...}}`" for n in unused) + " under `videos:`",
              file=sys.stderr)


def note_unlisted_variants(params: dict) -> None:
    """One `note:` line on stderr for the variants of `overrides:` (entries with `base:`) that no generate block
    lists, nor base of one that is listed: they are neither trained nor reported, which would otherwise go
    unnoticed (a variant is a method of the pipeline only once listed, docs/pipeline.md)."""
    overrides = params.get("overrides") if isinstance(params.get("overrides"), dict) else {}
    trained, _videos = pipeline_methods(params)
    used = set(map(str, trained))
    for name in list(used):  # a listed variant's base chain is used too
        while isinstance(overrides.get(name), dict) and "base" in overrides[name] and str(overrides[name]["base"]) \
                not in used:
            name = str(overrides[name]["base"])
            used.add(name)
    unlisted = [str(n) for n, e in overrides.items() if isinstance(e, dict) and "base" in e and str(n) not in used]
    if unlisted:
        many = len(unlisted) > 1
        print(f"note: overrides: defines the variant{'s' if many else ''} {', '.join(map(repr, unlisted))}, which "
              f"no generate block lists, so {'they are' if many else 'it is'} neither trained nor reported; add "
              f"{'them' if many else 'it'} to generate.methods (or generate.extra.methods) to train "
              f"{'them' if many else 'it'}, or remove the entr{'ies' if many else 'y'}", file=sys.stderr)


FILE_PARAMS = {"design": ("study.design",), "votes": ("study.rates",), "clipscore": ("clip.model", "clip.pretrained")}
"""The params.yaml keys whose value may name a file or folder, by the stage that reads it. DVC tracks a parameter's
value, not the file it names, so editing the file would leave that stage's outputs stale: the `methods` stage
writes each named file's SHA-256 to `build/methods/files/<stage>.json`, a dependency of the stage (dvc.yaml)."""


def _named_path(value) -> Path | None:
    """The file or folder a parameter's value names, as its reader resolves it (`local-dir:` and `~` as for CLIP
    models), or None for a value that names none (`paper`, `openai`, a number)."""
    if not isinstance(value, str) or not value:
        return None
    path = Path(value.removeprefix("local-dir:")).expanduser()
    return path if path.exists() else None


def named_file_digests(params: dict, cache=None) -> dict[str, dict]:
    """{stage: {key: {"path": value, "sha256": digest}}} of `FILE_PARAMS`' keys that name an existing file or
    folder (a stage with none has {}). The path is the value as written, no absolute path or time: the record
    changes exactly when a named file's content (or the name) does. `cache`: digests of unchanged files
    (`pipelines.generate.DigestCache`)."""
    from pipelines.generate import content_digest

    out = {}
    for stage, keys in FILE_PARAMS.items():
        out[stage] = {}
        for key in keys:
            node = params
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if key == "study.design" and node is None:  # the design stage's default
                node = "userstudy/designs/paper.yaml"
            if (path := _named_path(node)) is not None:
                out[stage][key] = {"path": node, "sha256": content_digest(path, cache)}
    return out


def model_file_digests(cfg, digest=None) -> dict[str, dict]:
    """{`guidance.<name>.<field>`: {"path": value, "sha256": digest}} of the local weights files or folders the
    priors of `cfg` (a TrainConfig) name (`pipelines.generate.local_weights`, `MODEL_FIELDS`): DVC tracks only the
    name, so the record reruns the method's generate stages when the content changes (a run's identity holds the
    same digests: `pipelines.generate.weights_digests`); hub and tiny ids record nothing. `digest`: a path's
    digest (default `content_digest`; one with a cache)."""
    from pipelines.generate import content_digest, local_weights

    digest = digest or content_digest
    return {key: {"path": value, "sha256": digest(Path(value).expanduser())}
            for key, value in local_weights(cfg.to_dict()).items()}


def digest_cache_path(out: Path) -> Path:
    """Where the `methods` stage writing `out` keeps its `DigestCache`: beside `out`
    (`build/methods.digest-cache.json`), since DVC removes `out` before each run."""
    return out.parent / f"{out.name}.digest-cache.json"


def write_methods(params_path: Path, out: Path) -> Path:
    """`out/config/<name>.json` for every trained method, `out/labels.json` and `out/files/<stage>.json` (the digests
    of the files params.yaml names, `named_file_digests`, a file read again only when its size, mtime or inode
    changed: `DigestCache` in `digest_cache_path(out)`); a file is rewritten only when its content changes, and
    files of methods no longer named are removed. A method's config file also holds, under `named_files`, the
    digests of the local weights its run loads (`model_file_digests` of the config its generate stage builds, its
    `overrides:` entry applied), so that replacing them reruns its generate stages as a changed config does.
    Unknown or untrainable methods, bad `overrides:` entries or `videos:` entries, and a label two rows of a table
    would share fail here, all named in one message, before anything is trained or written (a broken plug-in named
    too; a plug-in that cannot be registered and gives a method params.yaml uses or a built-in's name, then a
    variant that cannot be registered, are named first, alone; another refused plug-in is a `warning:` line,
    `plugin_problems`)."""
    from functools import cache as memoize

    from baselines import get_method
    from pipelines.generate import DigestCache, content_digest
    from userstudy.outputs import atomic_write

    params = _params(params_path)
    # first and alone: a refused plug-in's name would resolve to another method (or none) in the checks below
    if refused := plugin_problems(params):
        many = len(refused) > 1
        raise ValueError(f"{params_path}: {len(refused) if many else 'an'} installed plug-in{'s' if many else ''} "
                         f"that give{'' if many else 's'} a method this pipeline uses cannot be registered, so "
                         f"another method (or none) would run under {'their' if many else 'its'} name: "
                         + "; ".join(refused) + f"; fix or uninstall {'them' if many else 'it'} (`fourdfy methods` "
                         "lists what is registered)")
    parts, known_tail, trainable = trained_method_problems(params, params_path)
    trained, videos = pipeline_methods(params)
    configs, built, config_parts = method_configs(params, trainable)
    config_parts += unused_entry_problems(params, params_path, trainable)
    if (problem := added_prompt_set_problem(params)) is not None:
        config_parts.append(problem)
    # before the names: the registry's list of known methods (known_tail) stays next to the unknown names it follows
    parts[:0] = config_parts
    labels = {m: get_method(m).label for m in trainable}
    labels.update(registered_labels(videos))
    labels.update({m: label for m, label in params_labels(params).items() if m in trained or m in videos})
    # two rows of a table with one label, refused before anything trains (the design stage refuses them too); a
    # design that cannot be read is the design stage's to report
    try:
        effective_design(params, labels)
    except DuplicateLabelError as err:
        parts.insert(len(config_parts), str(err))
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    if parts:
        raise ValueError(f"{params_path}: " + "; ".join(parts) + known_tail)
    note_unused_video_plugins(trained, videos)
    note_unlisted_variants(params)
    note_untaken_base_keys(params, trained)
    cache = DigestCache(digest_cache_path(out))
    digest = memoize(lambda path: content_digest(path, cache))  # one model folder named by several methods: once
    files = {}
    for m, cfg in configs.items():
        record = cfg.to_dict()
        if named := model_file_digests(built[m], digest):  # only then: the other methods' files keep their bytes
            record["named_files"] = named
        files[Path("config") / f"{m}.json"] = json.dumps(record, indent=1, sort_keys=True) + "\n"
    files[Path("labels.json")] = json.dumps(labels, indent=1, sort_keys=True) + "\n"
    files.update({Path("files") / f"{stage}.json": json.dumps(digests, indent=1, sort_keys=True) + "\n"
                  for stage, digests in named_file_digests(params, cache).items()})
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            atomic_write(path, lambda tmp, text=text: Path(tmp).write_text(text))
    for old in (out / "config").glob("*.json"):
        if Path("config") / old.name not in files:
            old.unlink()
    cache.save()
    return out


def write_design(params_path: Path, out: Path, labels_path: Path | None = None) -> Path:
    labels = json.loads(Path(labels_path).read_text()) if labels_path is not None else None
    try:
        design = effective_design(_params(params_path), labels)
    except DesignError as err:  # a label two rows would share, or the design file's own mistake, named
        raise ValueError(f"{params_path}: {err}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# written by `python -m pipelines.stages design` from params.yaml; edit the source design\n"
                   + yaml.safe_dump(design, sort_keys=False, allow_unicode=True))
    return out


def write_votes(params_path: Path, design_path: Path, out: Path, exports: Path | None = None) -> Path:
    """Copy the real study's votes (validated) or simulate a panel from the published rates.

    `study.votes` names one export or a list of them (one per survey: their raters are kept apart,
    `userstudy.votes.combine_surveys`). With `exports` (the folder DVC tracks), every named file must lie in it,
    so that a new export is seen by the next repro. The simulated panel is `study.raters` raters at the
    `study.rates` seeded with `seed`, its other settings `study.panel` (`userstudy.simulate.panel_config`): the
    panel `fourdfy simulate-votes --rates R --raters N --seed S` draws when both leave the rest at the defaults.

    A comparison whose design section names no `prompt_set` is simulated on the prompts the survey_bundle stage asks
    it on: those both methods have videos of in the folders the pipeline renders and imports into, beside
    params.yaml (`artifacts/<profile>`, `artifacts/imported`; `simulate-votes --artifacts`). One with no such prompt
    (no videos yet: the survey leaves it out) keeps generic prompt ids, named in a `note:` line on stderr. Designs
    whose sections all name a prompt_set (the paper's) never look at the videos."""
    from userstudy.design import load_design, paired_prompts
    from userstudy.outputs import atomic_write
    from userstudy.simulate import PANEL_KNOBS, check_config, check_votes_target, panel_config, parse_rates
    from userstudy.simulate import simulate_votes
    from userstudy.simulate import write_votes as write_simulated
    from userstudy.votes import combine_surveys, load_votes, validate_votes

    params = _params(params_path)
    study = params.get("study", {})
    # study.panel is checked even when real votes are named, so that a misspelt knob never waits unseen for the
    # next simulated panel
    panel = panel_config(study.get("panel"))
    design = load_design(design_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    real = study.get("votes") or ""
    named = [str(v) for v in real] if isinstance(real, list) else [str(real)] if real else []
    if exports is not None:
        outside = [v for v in named if not Path(v).resolve().is_relative_to(Path(exports).resolve())]
        if outside:
            raise ValueError(f"study.votes: {', '.join(outside)} is not under {exports}/, the folder DVC tracks for "
                             f"exports; move it there (e.g. {Path(exports) / Path(outside[0]).name}) so that the next "
                             "`dvc repro` sees a new export")
    if len(named) == 1:
        load_votes(named[0], design)  # validates every row against the design; nothing is written on error
        atomic_write(out, lambda tmp: shutil.copyfile(named[0], tmp))
        return out
    if named:
        frame = combine_surveys(named, design)  # each file validated on its own
        validate_votes(frame, design, source=", ".join(named))  # and together, as `analyze` will read them
        atomic_write(out, lambda tmp: frame.to_csv(tmp, index=False))
        return out
    # same rule as `fourdfy simulate-votes --overwrite`: an earlier simulated panel may go, real votes
    # (e.g. an export copied here by hand) may not; checked before the panel is drawn
    check_votes_target(out, overwrite=True)
    rates = parse_rates(str(study.get("rates", "paper")), design)
    # the knobs study.panel leaves out keep PanelConfig's defaults, the ones `fourdfy simulate-votes` uses too
    cfg = dataclasses.replace(panel, n_raters=int(study.get("raters", 26)), rates=rates,
                              seed=int(params.get("seed", 0)))
    # messages name the params.yaml key to edit
    check_config(cfg, {"n_raters": "study.raters", "rates": "study.rates", "seed": "seed",
                       **{k: f"study.panel.{k}" for k in PANEL_KNOBS}})
    unset = [c for c in design.comparisons if not design.section_of(c)[1].prompt_set]
    videos = None
    if unset:
        # dvc.yaml's render and import outputs, relative to the folder of dvc.yaml and params.yaml
        folders = [*([f"artifacts/{params['profile']}"] if params.get("profile") else []), "artifacts/imported"]
        roots = [params_path.parent / f for f in folders if (params_path.parent / f).is_dir()]
        if roots:
            from userstudy.survey.bundle import artifact_pairs

            videos = artifact_pairs(roots)
        generic = [c for c in unset if videos is None or not paired_prompts(design.primary, c, videos)]
        if generic:
            one = len(generic) == 1
            print(f"note: {', '.join(generic)}: no prompt_set in the design and no prompt with videos of both "
                  f"{design.primary} and {'it' if one else 'each'} in {' or '.join(folders)}, so simulated on generic "
                  f"prompt ids (n_prompts) or the paper's 28; the survey (built with --allow-missing) leaves "
                  f"{'it' if one else 'them'} out until both have videos", file=sys.stderr)
    write_simulated(simulate_votes(design, cfg, videos, unpaired_ids=True), out)
    return out


def clip_axis_label(summary_csv: Path) -> str:
    """The x-axis label of `plot_clip`: what is plotted, then the CLIP model and precision that the clipscore.json
    beside `summary_csv` records, as the tables name them (`userstudy.tables.clip_source_text`), a random-weight
    model flagged; without a clipscore.json, that no model is recorded. A clipscore.json that does not describe
    `summary_csv` (an interrupted clipscore run) is a ValueError, as in `fourdfy analyze --clip`: the plot would
    name another run's model."""
    import textwrap

    from userstudy.tables import clip_source_text, load_clip_source

    source = load_clip_source(summary_csv)
    text = clip_source_text(source)
    if source.random_weights:
        text += " RANDOM WEIGHTS: the scores are meaningless."
    # wrapped within the first line's width: a checkpoint's description and the bf16 remark are wider than the figure
    return "\n".join(["CLIP score (100 x cosine), 95% bootstrap interval over prompts", *textwrap.wrap(text, 60)])


def plot_clip(summary_csv: Path, out_png: Path, label: str | None = None) -> Path:
    """CLIP score per method with its bootstrap interval over prompts (no bar where a method has none), the axis
    labelled with the recorded model (`label`, default `clip_axis_label(summary_csv)`)."""
    label = clip_axis_label(summary_csv) if label is None else label
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.read_csv(summary_csv).sort_values("clip")
    low = (frame["clip"] - frame["ci_low"]).fillna(0).clip(lower=0)
    high = (frame["ci_high"] - frame["clip"]).fillna(0).clip(lower=0)
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(frame) + 1))
    ax.barh(frame["method"], frame["clip"], xerr=[low, high], color="#4c72b0", capsize=3)
    ax.set_xlabel(label)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    # the label is centred under the axes, which long method names push right: the saved area takes it whole
    fig.savefig(out_png, dpi=100, bbox_inches="tight", pad_inches=0.1, metadata={"Software": None})
    plt.close(fig)
    return out_png


def write_summary(params_path: Path, design_path: Path, artifacts: list[Path], clip_csv: Path,
                  votes_csv: Path, out_md: Path, out_json: Path) -> dict:
    """Per design row: videos (prompts with an artifact), CLIP (yes/no), votes (judgments)."""
    import pandas as pd

    from evaluation.artifacts import find_artifacts
    from userstudy.design import load_design

    design = load_design(design_path)
    summary_csv = clip_csv.with_name("summary.csv")
    # before anything is written: a clipscore.json of another run stops the stage here
    label = clip_axis_label(summary_csv) if summary_csv.exists() else None
    found = find_artifacts([a for a in artifacts if Path(a).exists()])
    clip = pd.read_csv(clip_csv) if clip_csv.exists() else pd.DataFrame(columns=["method", "clip"])
    votes = pd.read_csv(votes_csv, dtype=str) if votes_csv.exists() else pd.DataFrame(columns=["method_left",
                                                                                               "method_right"])
    rows = []
    for method in (design.primary, *design.comparisons):
        n_videos = sum(1 for (m, _slug) in found if m == method)
        n_votes = int(((votes["method_left"] == method) | (votes["method_right"] == method)).sum())
        rows.append({"method": method, "label": design.label(method), "videos": n_videos,
                     "clip": bool((clip["method"] == method).any()), "votes": n_votes,
                     "status": "ok" if n_videos and (clip["method"] == method).any() else "missing videos"})
    synthetic = votes_csv.exists() and votes.get("rater_id", pd.Series(dtype=str)).str.startswith("synthetic-").any()
    summary = {"profile": _params(params_path).get("profile"), "synthetic_votes": bool(synthetic), "rows": rows}
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(summary, indent=2) + "\n")
    banner = ["**SYNTHETIC DATA**: the preferences come from a simulated panel, not from real raters.", ""]
    lines = ["# Pipeline summary", "", *(banner if synthetic else []),
             "| method | videos (prompts) | CLIP | votes (judgments) | status |", "|---|---|---|---|---|"]
    lines += [f"| {r['label']} | {r['videos']} | {'yes' if r['clip'] else 'no'} | {r['votes']} | {r['status']} |"
              for r in rows]
    missing = [r["label"] for r in rows if r["status"] != "ok"]
    if missing:
        lines += ["", f"Rows without videos (their CLIP cell is empty in the tables): {', '.join(missing)}. "
                      "Give their videos under `videos:` in params.yaml (docs/pipeline.md)."]
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text("\n".join(lines) + "\n")
    if label is not None:
        plot_clip(summary_csv, out_md.with_name("clip_scores.png"), label)
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))  # the first paragraph
    sub = ap.add_subparsers(dest="step", required=True)
    m = sub.add_parser("methods")
    m.add_argument("--params", type=Path, default=Path("params.yaml"))
    m.add_argument("--out", type=Path, required=True)
    d = sub.add_parser("design")
    d.add_argument("--params", type=Path, default=Path("params.yaml"))
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--labels", type=Path, default=None, help="labels.json of the methods step (default: the registry)")
    v = sub.add_parser("votes")
    v.add_argument("--params", type=Path, default=Path("params.yaml"))
    v.add_argument("--design", type=Path, required=True)
    v.add_argument("--out", type=Path, required=True)
    v.add_argument("--exports", type=Path, default=None, help="the folder DVC tracks for real votes exports")
    s = sub.add_parser("summary")
    s.add_argument("--params", type=Path, default=Path("params.yaml"))
    s.add_argument("--design", type=Path, required=True)
    s.add_argument("--artifacts", type=Path, nargs="+", required=True)
    s.add_argument("--clip", type=Path, required=True)
    s.add_argument("--votes", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--metrics", type=Path, required=True)
    args = ap.parse_args(argv)
    # what a user can cause (a params.yaml that cannot be read or parsed, an unknown, broken or untrainable method,
    # bad design or votes, an output that may not be replaced) is one line and exit 2, as in `fourdfy`
    try:
        if args.step == "methods":
            write_methods(args.params, args.out)
        elif args.step == "design":
            write_design(args.params, args.out, args.labels)
        elif args.step == "votes":
            write_votes(args.params, args.design, args.out, args.exports)
        else:
            write_summary(args.params, args.design, args.artifacts, args.clip, args.votes, args.out, args.metrics)
    except (ValueError, KeyError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
