"""`fourdfy` commands of the generator."""

from __future__ import annotations

import platform
from pathlib import Path

import typer

INFO_PACKAGES = ("fourdfy-bench", "torch", "torchvision", "diffusers", "transformers", "peft",
                 "open_clip_torch", "nerfacc", "tinycudann", "numpy")


def info() -> None:
    """Print package versions, the compute device and which accelerated backends are active."""
    import torch

    from method import backends

    typer.echo(f"python      {platform.python_version()} ({platform.machine()})")
    for name in INFO_PACKAGES:
        typer.echo(f"{name:<15} {backends.package_version(name)}")
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        device = f"cuda:0 ({props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})"
    else:
        device = f"cpu ({torch.get_num_threads()} threads)"
    typer.echo(f"device      {device}")
    on_off = {True: "active", False: "inactive"}
    typer.echo(f"hash grid   tinycudann {on_off[backends.tcnn_active()]}"
               f" ({'pure-PyTorch fallback' if not backends.tcnn_active() else 'CUDA kernels'})")
    typer.echo(f"renderer    nerfacc CUDA occupancy-grid sampling {on_off[backends.nerfacc_cuda_active()]}"
               f" ({'dense PyTorch sampling + nerfacc compositing' if not backends.nerfacc_cuda_active() else 'packed'})")


def methods() -> None:
    """List the registered methods (Table 2 / Table 3 rows) with one-line descriptions."""
    from baselines import METHODS

    width = max(len(n) for n in METHODS)
    for name, m in METHODS.items():
        note = "" if m.trainable else "  [videos only]"
        typer.echo(f"{name:<{width}}  {m.description}{note}")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def generate(
    prompt: str = typer.Option(..., "--prompt", help="Prompt text, or a slug of prompts/*.txt."),
    method: str = typer.Option("4dfy", "--method", help="Registered method (see `fourdfy methods`)."),
    profile: str = typer.Option("tiny", "--profile", help="tiny (CPU, toy priors) | paper | release."),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoints, log, previews, manifest."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random draw."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    init_from: Path = typer.Option(None, "--init-from", help="Start from another run's stage checkpoint."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Train one prompt with one method (Algorithm 1) and write checkpoints, log, previews, manifest."""
    from baselines import resolve_config
    from method.training.checkpoint import CheckpointError
    from method.training.trainer import Trainer
    from prompts import resolve_prompt

    try:
        cfg = resolve_config(profile, method, seed=seed, device=device)
        prompt = resolve_prompt(prompt)
    except ValueError as err:
        _fail(str(err))
    try:
        manifest = Trainer(cfg, prompt, out, progress=progress).run(resume=resume, init_from=init_from)
    except (CheckpointError, ValueError) as err:
        _fail(str(err))
    typer.echo(f"done: {out} (config {manifest['config_hash']}, " +
               ", ".join(f"{k} {v:.0f}s" for k, v in manifest["timings_s"].items()) + ")")


def oracle(
    out: Path = typer.Option(..., "--out", help="Folder for checkpoints and metrics.json."),
    seed: int = typer.Option(0, "--seed"),
    metrics_out: Path = typer.Option(None, "--metrics", help="Also write the metrics to this JSON file."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """End-to-end check with exact priors for a known 4D scene; writes metrics.json (PSNR per stage)."""
    import json

    from method.oracle.check import run_oracle
    from method.training.checkpoint import CheckpointError

    try:
        metrics = run_oracle(out, seed=seed, progress=progress)
    except CheckpointError as err:
        _fail(str(err))
    if metrics_out is not None:
        metrics_out.parent.mkdir(parents=True, exist_ok=True)
        metrics_out.write_text(json.dumps({k: v for k, v in metrics.items() if k != "train_seconds"}, indent=2) + "\n")
    for key in ("stage2_static_psnr", "stage3_psnr", "gain_moved_db"):
        mark = "ok " if metrics["passed"][key] else "LOW"
        typer.echo(f"{mark} {key:<20} {metrics[key]:7.2f}  (threshold {metrics['thresholds'][key]})")
    if not all(metrics["passed"].values()):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this package's commands to the root `fourdfy` app."""
    app.command("info")(info)
    app.command("methods")(methods)
    app.command("generate")(generate)
    app.command("oracle")(oracle)
