"""`fourdfy` commands of the generator."""

from __future__ import annotations

import platform

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


def register(app: typer.Typer) -> None:
    """Add this package's commands to the root `fourdfy` app."""
    app.command("info")(info)
