"""DVC stage: train one (method, prompt) with a profile into runs/<profile>/<method>/<slug>/.

    python -m pipelines.generate --method 4dfy --prompt a_panda_dancing --profile tiny

Resumes automatically when the run folder holds an unfinished run (a killed `dvc repro`).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from baselines import resolve_config
from method.training.checkpoint import CheckpointError
from method.training.trainer import Trainer

from prompts import resolve_prompt, slugify


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", required=True)
    ap.add_argument("--prompt", required=True, help="a slug from prompts/*.txt or the prompt text")
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="runs")
    args = ap.parse_args(argv)
    prompt = resolve_prompt(args.prompt)
    out = Path(args.runs) / args.profile / args.method / slugify(prompt)
    cfg = resolve_config(args.profile, args.method, seed=args.seed)
    if (out / "manifest.json").exists():
        shutil.rmtree(out)  # DVC re-runs a finished stage only when its inputs changed: start over
    resume = (out / "ckpt" / "last.pt").exists()  # a killed `dvc repro` (the folder is persisted)
    try:
        Trainer(cfg, prompt, out).run(resume=resume)
    except CheckpointError as err:
        if not (resume and "different run" in str(err)):
            raise
        shutil.rmtree(out)  # the unfinished run had other settings
        Trainer(cfg, prompt, out).run()


if __name__ == "__main__":
    main()
