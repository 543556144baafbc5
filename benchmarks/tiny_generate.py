"""Wall time of `fourdfy generate --profile tiny` for one prompt, and where it goes (cProfile top entries).

    .venv/bin/python benchmarks/tiny_generate.py                         # this tree
    .venv/bin/python benchmarks/tiny_generate.py --baseline-rev e2275e2  # and an older commit, alternating

With `--baseline-rev` the older commit is checked out into a temporary git worktree and both trees
are timed in alternation (same machine load for both), each in a fresh process with a fresh cache of
tiny priors built before the clock starts. Prints a Markdown block for benchmarks/tiny_generate.md.
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import sys
sys.path.insert(0, {tree!r})
sys.argv = ["fourdfy", "generate", "--prompt", "a_panda_dancing", "--profile", "tiny", "--out", {out!r},
            "--no-progress"]
try:
    from pipelines.cli import main
    main()
except SystemExit as e:
    if e.code:
        raise
"""

WARM = """
import sys
sys.path.insert(0, {tree!r})
from baselines import resolve_config
cfg = resolve_config("tiny", "4dfy")
try:
    for spec in cfg.guidance.values():   # this tree: typed configs build their tiny priors on first use
        spec.build("cpu")
except AttributeError:                    # older trees: the tiny priors are built by a root folder
    from method.training.priors import tiny_priors_root
    tiny_priors_root()
"""


def run_once(tree: Path, cache: Path, profile: Path | None) -> float:
    env = {**os.environ, "FOURDFY_CACHE": str(cache), "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-c", WARM.format(tree=str(tree))], env=env, check=True, capture_output=True)
    out = Path(tempfile.mkdtemp(prefix="tiny-run-"))
    shutil.rmtree(out)
    cmd = [sys.executable]
    if profile is not None:
        cmd += ["-m", "cProfile", "-o", str(profile)]
    script = Path(tempfile.mkstemp(suffix=".py")[1])
    script.write_text(RUN.format(tree=str(tree), out=str(out)))
    start = time.perf_counter()
    res = subprocess.run(cmd + [str(script)], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if res.returncode:
        raise RuntimeError(f"generate failed in {tree}:\n{res.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return elapsed


def top_entries(profile: Path, n: int) -> list[str]:
    stats = pstats.Stats(str(profile))
    rows = []
    for (file, line, func), (_cc, _nc, tt, ct, _callers) in stats.stats.items():
        rows.append((tt, ct, f"{Path(file).name}:{line}({func})"))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    return [f"| {name} | {tt:.2f} | {100 * tt / total:.0f}% | {ct:.2f} |" for tt, ct, name in rows[:n]]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-rev", default="", help="also time this git revision (e.g. the commit before a change)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--top", type=int, default=8, help="cProfile entries (by own time) to print per tree")
    args = ap.parse_args(argv)
    trees = {"this tree": ROOT}
    tmp = Path(tempfile.mkdtemp(prefix="tiny-bench-"))
    if args.baseline_rev:
        base = tmp / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline_rev],
                       check=True, capture_output=True)
        trees = {f"baseline {args.baseline_rev}": base, **trees}
    times: dict[str, list[float]] = {k: [] for k in trees}
    try:
        for i in range(args.repeats):
            for name, tree in trees.items():  # alternate, so both see the same machine load
                profile = tmp / f"{name.replace(' ', '_')}.prof" if i == 0 else None
                times[name].append(run_once(tree, tmp / f"cache-{name.replace(' ', '_')}", profile))
                print(f"{name}: {times[name][-1]:.1f} s", flush=True)
        print(f"\nthreads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cores: {os.cpu_count()}\n")
        print("| tree | wall s (each run) | best |\n|---|---|---|")
        for name, ts in times.items():
            print(f"| {name} | {', '.join(f'{t:.1f}' for t in ts)} | {min(ts):.1f} |")
        if args.baseline_rev:
            base_name = next(iter(trees))
            print(f"\nratio baseline / this tree (best): {min(times[base_name]) / min(times['this tree']):.1f}x")
        for name in trees:
            print(f"\ncProfile, {name} (own time, first run):\n\n| function | own s | share | cumulative s |\n|---|---|---|---|")
            print("\n".join(top_entries(tmp / f"{name.replace(' ', '_')}.prof", args.top)))
    finally:
        if args.baseline_rev:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "baseline")],
                           capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
