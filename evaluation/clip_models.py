"""Loading an open_clip model for the CLIP score, and the tiny random-weight model of the tests.

Where the weights come from (`ClipConfig.model` / `.pretrained`):
- an open_clip model name and pretrained tag (default `ViT-B-32` / `openai`, the paper's model):
  open_clip fetches the tag's file through the Hugging Face hub cache (HF_HOME / HF_HUB_CACHE);
- a checkpoint file as `pretrained` (e.g. `open_clip_pytorch_model.bin` of
  `timm/vit_base_patch32_clip_224.openai`), loaded into the `model` architecture; OpenAI's own TorchScript
  archive (`ViT-B-32.pt`, which the `clip` package caches in ~/.cache/clip) too, through open_clip's handling of
  such archives (their state dict, the same weights);
- `model = "hf-hub:org/repo"` (config and weights from the hub), or a local folder holding
  `open_clip_config.json` and the weights (as `model`, or `local-dir:<folder>`).

QuickGELU: OpenAI's CLIP weights were trained with QuickGELU, and open_clip's plain `ViT-B-32`
config builds GELU: loading them that way runs without error but changes every embedding.
`activation = "auto"` uses the tag's own setting for a tag, the folder's config for a folder, and
QuickGELU for a bare checkpoint file when open_clip knows an `openai` tag for that architecture
(the suite's default weights); `"quickgelu"` / `"gelu"` force it. The activation used is reported.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from method.backends import resolve_device, seeded
from method.guidance.loading import (ModelNotFoundError, _first_line, hub_local_only, local_only_reason,
                                     quiet_hub_logs)

ACTIVATIONS = ("auto", "quickgelu", "gelu")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class ClipConfig:
    """Which CLIP model scores the frames, and how."""

    model: str = "ViT-B-32"
    """open_clip architecture name, `hf-hub:org/repo`, a local folder (open_clip_config.json + weights), or
    `fourdfy-tiny:clip` (random weights, for CPU demos and tests)."""
    pretrained: str | None = "openai"
    """open_clip pretrained tag or a checkpoint file (ignored for hub ids and folders)."""
    activation: str = "auto"
    """'auto', 'quickgelu' or 'gelu' (see the module docstring: OpenAI weights need QuickGELU)."""
    batch_size: int = 16
    """Frames per forward pass (16 measured fastest on a 2-core CPU: benchmarks/clipscore_results.md)."""
    device: str = "auto"
    """'auto' (cuda if available), 'cpu' or 'cuda'."""
    precision: str = "fp32"
    """Image tower arithmetic: 'fp32' (the paper's metric) or 'bf16' (about 2x faster on CPUs with AVX-512 BF16
    or AMX; embeddings move by ~1e-4 in cosine, so scores match fp32 only to about one decimal)."""

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class LoadedClip:
    """A model ready to score: the model, its own eval preprocessing, its tokenizer."""

    model: object
    """The open_clip model, eval mode, no gradients."""
    preprocess: object
    """The model's own eval transform (PIL image -> normalised tensor)."""
    tokenizer: object
    """The model's tokenizer (list of str -> token ids)."""
    quick_gelu: bool
    """Whether the model runs QuickGELU (read from the built model)."""
    description: str
    """Model, weights, activation and precision, for reports."""
    precision: str = "fp32"
    """Arithmetic of the image tower ('fp32' or 'bf16'); the text tower is always fp32."""
    random_weights: bool = False
    """The random-weight tiny CLIP of demos and tests (its scores mean nothing), by id or by its folder."""


def _display(source: str) -> str:
    """A local path by its last component only (reports carry no absolute paths)."""
    path = source[len("local-dir:"):] if source.startswith("local-dir:") else source
    return Path(path).name if os.path.exists(os.path.expanduser(path)) else source


def _local_folder(name: str) -> Path | None:
    path = Path(name[len("local-dir:"):] if name.startswith("local-dir:") else name).expanduser()
    return path if path.is_dir() else None


def _openai_hub(open_clip, base: str) -> str | None:
    """The hub repo of `base`'s OpenAI weights (the file a bare --pretrained checkpoint usually is), if any."""
    return (open_clip.get_pretrained_cfg(base, "openai") or {}).get("hf_hub")


def _message(cfg: ClipConfig, reason: str, hub_id: str | None) -> str:
    what = f"model '{cfg.model}'" + (f", pretrained '{cfg.pretrained}'" if cfg.pretrained else "")
    # the CLI shows this as one line: the command stays in backticks and each line ends a clause
    lines = [f"CLIP score: the weights of {what} were not found: {reason}.",
             "  To provide them, on a machine with internet run:"]
    if hub_id:
        lines.append(f"      `hf download {hub_id.rstrip('/')} --local-dir /path/to/clip-weights`;")
        lines.append("  then copy the folder here and pass --pretrained "
                     "/path/to/clip-weights/open_clip_pytorch_model.bin (QuickGELU is applied for OpenAI's weights),")
        lines.append("  or keep the tag and copy the Hugging Face cache (HF_HOME / HF_HUB_CACHE) to this machine.")
    else:
        lines.append("      `hf download <org>/<repo> --local-dir /path/to/clip-weights`;")
        lines.append("  then pass --clip-model /path/to/clip-weights (a folder with open_clip_config.json + weights).")
    lines.append("  Options: --clip-model (architecture, hf-hub:org/repo or folder), --pretrained (tag or file).")
    lines.append("  With HF_HUB_OFFLINE=1 only local files and that cache are read.")
    return "\n".join(lines)


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """Whether `path` is a TorchScript archive (`torch.jit.save`: a zip holding `<name>/constants.pkl`, the record
    torch itself tells such archives by), as OpenAI's original CLIP files are. torch.load refuses them with
    weights_only=True; with weights_only=False it hands them to torch.jit.load, which runs no pickle of theirs."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.split("/", 1)[-1] == "constants.pkl" for name in archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def _unreadable_file(path: str, base: str, err: BaseException) -> str:
    """Why a checkpoint file given as --pretrained did not load, whatever the loader raised (torch's unpickler gives a
    bare KeyError or EOFError for a text or empty file; its advice to pass weights_only=False is wrong for a damaged
    file, and not passed on)."""
    try:
        empty = os.path.getsize(path) == 0
    except OSError:
        empty = False
    if empty:
        return (f"the file {path} is not a readable {base} checkpoint: it is empty (0 bytes; a copy or download cut "
                "short?)")
    return (f"the file {path} is not a readable {base} checkpoint (damaged, cut short or another format: "
            f"{type(err).__name__})")


def _cached_tag_file(hub_id: str) -> str | None:
    """The Hugging Face cache's copy of a pretrained tag's weights, the file open_clip reads (its safetensors
    alternative first, as open_clip tries it first), or None when the cache has neither."""
    from huggingface_hub import try_to_load_from_cache
    from open_clip.pretrained import HF_WEIGHTS_NAME

    repo, filename = os.path.split(hub_id)  # open_clip's form: "org/repo/file" or "org/repo/" (its default file)
    filename = filename or HF_WEIGHTS_NAME
    safe = "open_clip_model.safetensors" if filename == HF_WEIGHTS_NAME else filename.replace(".bin", ".safetensors")
    for name in dict.fromkeys((safe, filename)):
        found = try_to_load_from_cache(repo, name)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def _loads(path: str) -> bool:
    """Whether a weights file reads as what its name says (safetensors: its header and tensors; else a torch file,
    mapped, not read): asked only after a load failed, to tell a damaged file from another cause."""
    try:
        if path.endswith(".safetensors"):
            from safetensors import safe_open

            with safe_open(path, framework="pt") as f:
                for key in f.keys():
                    f.get_slice(key)
        else:
            import torch

            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # whatever the reader raises for a damaged file
        return False
    return True


def _resolve_quick_gelu(cfg: ClipConfig, open_clip, folder: Path | None) -> bool | None:
    """True / False to force the activation; None to keep what the model's own config says."""
    if cfg.activation != "auto":
        return cfg.activation == "quickgelu"
    if folder is not None:
        data = json.loads((folder / "open_clip_config.json").read_text())
        return bool(data.get("model_cfg", {}).get("quick_gelu", False))
    if cfg.model.startswith("hf-hub:"):
        return None  # the hub config is authoritative; force only on request
    base = cfg.model.replace("/", "-")
    model_cfg = open_clip.get_model_config(base) or {}
    if cfg.pretrained and not os.path.isfile(cfg.pretrained):
        tag = open_clip.get_pretrained_cfg(base, cfg.pretrained) or {}
        return bool(tag.get("quick_gelu", model_cfg.get("quick_gelu", False)))
    if cfg.pretrained:  # a bare checkpoint file: OpenAI's if the architecture has an openai tag
        return bool(open_clip.get_pretrained_cfg(base, "openai").get("quick_gelu", False)) or \
            bool(model_cfg.get("quick_gelu", False))
    return bool(model_cfg.get("quick_gelu", False))


TINY_CLIP_ID = "fourdfy-tiny:clip"
"""Model id of the tiny random-weight CLIP (`tiny_clip_folder`): the CPU demo pipeline's scorer, meaningless scores."""
TINY_CLIP_WHAT = "random weights, meaningless scores: a CPU demo"
"""What the tiny CLIP is, in the error for an unknown model (`clipscore --help` says the same of `--clip-model`)."""


def _closest_model(model: str, open_clip) -> str:
    """' (did you mean ...?)' for a misspelt model name, against open_clip's names and the tiny CLIP's id; else ''."""
    import difflib

    # compared without case: `vit-b-32` is a slip for ViT-B-32, not for the nearer-spelt ViT-S-32
    known = {name.lower(): name for name in [*open_clip.list_models(), TINY_CLIP_ID]}
    names = [repr(known[c]) for c in difflib.get_close_matches(model.lower(), list(known), n=3)]
    if not names:
        return ""
    return " (did you mean " + (f"{', '.join(names[:-1])} or " if len(names) > 1 else "") + names[-1] + "?)"


def is_random_weights(model: str) -> bool:
    """Whether `--clip-model` `model` is the random-weight tiny CLIP, by its id or by a folder holding it; known
    before it is loaded (`LoadedClip.random_weights` says the same of a loaded one)."""
    return model == TINY_CLIP_ID or _is_tiny(_local_folder(model))


def load_clip(cfg: ClipConfig = ClipConfig()) -> LoadedClip:
    """The model, its preprocessing and tokenizer, in eval mode on cfg.device; ModelNotFoundError if absent."""
    import dataclasses

    import open_clip
    import torch

    shown = cfg.model  # what the user asked for names the model in outputs, not the folder it resolves to
    if cfg.model == TINY_CLIP_ID:  # built on first use under $FOURDFY_CACHE, like the tiny priors
        cfg = dataclasses.replace(cfg, model=str(tiny_clip_folder()), pretrained=None)

    device = str(resolve_device(cfg.device))
    folder = _local_folder(cfg.model) if not cfg.model.startswith("hf-hub:") else None
    base = cfg.model.replace("/", "-")
    hub_id = None
    if folder is not None:
        if not (folder / "open_clip_config.json").is_file():
            raise ModelNotFoundError(_message(cfg, f"the folder {folder} has no open_clip_config.json", None))
        name, pretrained = f"local-dir:{folder}", None
    elif cfg.model.startswith("hf-hub:"):
        name, pretrained, hub_id = cfg.model, None, cfg.model[len("hf-hub:"):]
    else:
        # `local-dir:` of no folder is checked here: open_clip's own lookup raises FileNotFoundError for it
        if cfg.model.startswith("local-dir:") or open_clip.get_model_config(base) is None:
            if cfg.model.startswith(("/", ".", "~", "local-dir:")) or os.sep in cfg.model:
                given = Path(cfg.model.removeprefix("local-dir:")).expanduser()
                if given.is_file():  # a file given for the folder: say what to give instead
                    hint = (f"give its folder, {given.parent}" if given.name == "open_clip_config.json" else
                            "a checkpoint file goes in --pretrained with its architecture as --clip-model, e.g. "
                            f"--clip-model ViT-B-32 --pretrained {given}")
                    raise ModelNotFoundError(_message(cfg, f"{given} is a file, not a folder ({hint})", None))
                raise ModelNotFoundError(_message(cfg, f"no such folder {given}", None))
            raise ValueError(f"unknown open_clip model {cfg.model!r}{_closest_model(cfg.model, open_clip)}; e.g. "
                             f"ViT-B-32, ViT-B-16, ViT-L-14 (open_clip.list_models()), hf-hub:org/repo, a folder, "
                             f"or {TINY_CLIP_ID} ({TINY_CLIP_WHAT})")
        name, pretrained = base, cfg.pretrained
        if pretrained and not os.path.isfile(pretrained):
            tag = open_clip.get_pretrained_cfg(base, pretrained)
            if not tag:
                if pretrained.startswith(("/", ".", "~")) or os.sep in pretrained:
                    reason = (f"{pretrained} is a folder, not a checkpoint file (a folder holding "
                              "open_clip_config.json goes in --clip-model)" if os.path.isdir(pretrained)
                              else f"no such file {pretrained}")
                    raise ModelNotFoundError(_message(cfg, reason, _openai_hub(open_clip, base)))
                tags = ", ".join(t for m, t in open_clip.list_pretrained() if m == base)
                raise ValueError(f"unknown pretrained tag {pretrained!r} for {base} (known: {tags})")
            hub_id = tag.get("hf_hub")
    quick_gelu = _resolve_quick_gelu(cfg, open_clip, folder)
    overrides = {} if quick_gelu is None else {"quick_gelu": quick_gelu}
    import huggingface_hub.constants as hf_constants

    offline_before = hf_constants.HF_HUB_OFFLINE
    local_only = hub_id is not None and hub_local_only()
    given_file = bool(pretrained) and os.path.isfile(pretrained)
    # OpenAI's TorchScript file: open_clip takes the state dict of the archive torch.jit.load returns, which torch.load
    # hands it only with weights_only=False (a pickle file is never loaded that way)
    jit_archive = given_file and is_torchscript_archive(pretrained)
    try:
        # huggingface_hub reads HF_HUB_OFFLINE once at import; honour it when it is set later, and read only the
        # cache when the hub is unreachable (else the client retries for about a minute, logging each try)
        hf_constants.HF_HUB_OFFLINE = offline_before or local_only
        with quiet_hub_logs(), warnings.catch_warnings():
            # torch.load's "looks like a TorchScript archive dispatching to torch.jit.load": that is what is meant
            warnings.filterwarnings("ignore", message=".*TorchScript archive", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*torch.jit.load.* is deprecated", category=FutureWarning)
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, device=device, force_quick_gelu=bool(quick_gelu), require_pretrained=True,
                weights_only=not jit_archive, **overrides)
            tokenizer = open_clip.get_tokenizer(name)
    except Exception as err:
        if given_file:  # any failure to load a given file is that file's: torch raises KeyError, EOFError, ...
            raise ModelNotFoundError(_message(cfg, _unreadable_file(pretrained, base, err),
                                              _openai_hub(open_clip, base))) from err
        cached = _cached_tag_file(hub_id) if hub_id else None
        if cached and not _loads(cached):  # the tag's file is in the cache but does not load (torch: EOFError,
            # KeyError; SafetensorError); a file that loads is not blamed for another failure (a tokenizer, memory)
            raise ModelNotFoundError(_message(cfg, _unreadable_file(cached, base, err) + "; delete that file (and the "
                                              "blob it links to) and download the tag again", hub_id)) from err
        if not isinstance(err, (RuntimeError, OSError, ValueError, pickle.UnpicklingError)):
            raise
        # a cached file was found, so "not in the cache" would mislead: the loader's own reason
        reason = (None if cached else local_only_reason(local_only)) or f"{type(err).__name__}: {_first_line(err, 300)}"
        raise ModelNotFoundError(_message(cfg, reason, hub_id)) from err
    finally:
        hf_constants.HF_HUB_OFFLINE = offline_before
    model.eval()
    model.requires_grad_(False)
    quick_gelu = any(isinstance(m, open_clip.transformer.QuickGELU) for m in model.modules())
    if cfg.precision == "bf16":
        model.visual.to(torch.bfloat16)  # the text tower runs once per prompt: it stays fp32
    desc = (_display(shown) + (f" / {_display(pretrained)}" if pretrained else "")
            + (" (QuickGELU)" if quick_gelu else " (GELU)") + (", bf16 image tower" if cfg.precision == "bf16" else ""))
    return LoadedClip(model=model, preprocess=preprocess, tokenizer=tokenizer, quick_gelu=quick_gelu,
                      description=desc, precision=cfg.precision, random_weights=_is_tiny(folder))


def _is_tiny(folder: Path | None) -> bool:
    """Whether a local folder holds the tiny model's architecture (`tiny_clip_folder` writes only random weights
    of it), however it is named or reached."""
    try:
        return json.loads((folder / "open_clip_config.json").read_text())["model_cfg"] == TINY_MODEL_CFG
    except (TypeError, OSError, ValueError, KeyError):  # TypeError: no folder (a hub or built-in model)
        return False


def model_fingerprint(clip: LoadedClip) -> str:
    """sha256 of what makes the scores: every weight (name, dtype, shape, bytes), the activation, the precision, the
    preprocessing, and the torch / open_clip versions (kernels may round differently between releases)."""
    import hashlib

    import open_clip
    import torch

    h = hashlib.sha256()
    h.update(json.dumps([clip.quick_gelu, clip.precision, repr(clip.preprocess), torch.__version__,
                         open_clip.__version__]).encode())
    for name, t in sorted(clip.model.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)  # 1-d: a 0-d tensor cannot be viewed as bytes
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# --- the tiny model of the tests ---------------------------------------------------------------------

TINY_MODEL_CFG = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
"""Same open_clip `CLIP` class and tokenizer as ViT-B-32, at toy sizes (random weights)."""


TINY_CLIP_RECIPE = "tiny-clip/1"
"""Version of what `tiny_clip_folder` writes, kept in its stamp: a cache of another recipe is rebuilt."""
TINY_CLIP_STAMP = "tiny-clip.json"
"""The stamp file of the tiny CLIP's folder. A folder of an earlier version, stamped `tiny-priors.json` (the tiny
priors' name), is rebuilt once, without a warning: nothing in it is damaged."""


def tiny_clip_folder(root: Path | str | None = None, seed: int = 0) -> Path:
    """A local open_clip folder (open_clip_config.json + open_clip_pytorch_model.bin) with random weights.

    Cached under `root` (default `$FOURDFY_CACHE/tiny_clip`, `~/.cache/fourdfy/tiny_clip`); written
    atomically, reused while intact. As for the tiny priors, the folder carries a stamp with every file's size and
    SHA-256: a damaged cache (a file cut short, changed or deleted) is rebuilt with a warning naming it, rather than
    failing to load with an error about the file's contents.
    """
    from method.fileio import stamped_build

    if root is None:
        root = Path(os.environ.get("FOURDFY_CACHE", Path.home() / ".cache" / "fourdfy")) / "tiny_clip"
    return stamped_build(Path(root) / f"seed{seed}", {"recipe": TINY_CLIP_RECIPE, "seed": seed},
                         lambda folder: _write_tiny_clip(folder, seed), "the tiny CLIP's cache", TINY_CLIP_STAMP)


def _write_tiny_clip(folder: Path, seed: int) -> None:
    """The tiny model's files in `folder`: the same bytes for the same seed."""
    import open_clip
    import torch

    with seeded(seed):  # the caller's global RNG is left as it was
        model = open_clip.model.CLIP(**TINY_MODEL_CFG)
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    config = {"model_cfg": TINY_MODEL_CFG,
              "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
                                 "interpolation": "bicubic", "resize_mode": "shortest"}}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
