"""`fourdfy convert-mvdream`: MVDream's original checkpoint -> our diffusers-style folder (converted once,
so that runs load the folder instead of converting the 5 GB file on every start)."""

from __future__ import annotations

from pathlib import Path

import typer


def convert_mvdream(
    checkpoint: Path = typer.Argument(..., help="MVDream's LDM checkpoint, e.g. sd-v2.1-base-4view.pt "
                                                "(.pt/.ckpt or .safetensors)."),
    out: Path = typer.Argument(..., help="Folder to write (unet/, vae/, scheduler/, mvdream.json); must not exist."),
    num_head_channels: int = typer.Option(
        64, "--num-head-channels", min=1,
        help="Channels per attention head: not stored in the weights, so give the model's own value (64 for "
             "MVDream's release / SD 2.x, 8 for the tiny fourdfy-tiny:mvdream-ldm); it must divide every "
             "attention width of the checkpoint."),
) -> None:
    """Convert MVDream's original checkpoint to a folder that MVDreamConfig.model can point at."""
    from method.guidance import GuidanceError
    from method.guidance.mvdream_convert import convert_file

    try:
        written = convert_file(checkpoint, out, num_head_channels=num_head_channels)
    except GuidanceError as err:  # bad input (missing, foreign or mismatched file): one line, no traceback
        typer.secho(f"error: {' '.join(str(err).split())}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    # any divisor of the widths converts, so say which head size the folder now carries
    typer.echo(f"wrote {written} with {num_head_channels} channels per attention head (--num-head-channels; the "
               "checkpoint does not record it, so it must be the model's own value); set the config key "
               "guidance.3d.model (MVDreamConfig.model) to this folder")


def register(app: typer.Typer) -> None:
    app.command("convert-mvdream")(convert_mvdream)
