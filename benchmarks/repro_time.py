"""Wall time of `dvc repro` per stage: the main job's cost (issue 12: <= 20 min on 2 CPU cores, tiny profile).

    rm -rf runs artifacts build && FOURDFY_CACHE=$(mktemp -d) .venv/bin/python benchmarks/repro_time.py

Runs `dvc repro` with the venv's bin first on PATH (what `make repro` does), timestamps each
"Running stage" line of its output and prints a Markdown table of seconds per stage and the total.
An empty FOURDFY_CACHE makes the tiny priors and the tiny CLIP model be built as on a new machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    start = time.perf_counter()
    marks: list[tuple[str, float]] = []
    proc = subprocess.Popen([os.path.join(bin_dir, "dvc"), "repro"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    for line in proc.stdout:
        sys.stderr.write(line)
        m = re.match(r"Running stage '([^']+)'", line)
        if m:
            marks.append((m.group(1), time.perf_counter() - start))
    rc = proc.wait()
    total = time.perf_counter() - start
    print(f"\n`dvc repro` exit code {rc}, total {total:.0f} s ({total / 60:.1f} min), {os.cpu_count()} cores\n")
    print("| stage | s |\n|---|---|")
    groups: dict[str, float] = {}
    for (name, t0), (_next, t1) in zip(marks, marks[1:] + [("end", total)]):
        print(f"| {name} | {t1 - t0:.1f} |")
        groups[name.split("@")[0]] = groups.get(name.split("@")[0], 0.0) + t1 - t0
    print("\n| stage group | s |\n|---|---|")
    for name, sec in groups.items():
        print(f"| {name} | {sec:.1f} |")
    return rc


if __name__ == "__main__":
    sys.exit(main())
