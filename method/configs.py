"""Typed configs as data: dataclass <-> plain dict, and dotted keys (`stages.stage3.steps`).

Every config of the suite is a frozen dataclass whose fields carry one-line docstrings. This module
is the one place that turns them into JSON-able dicts (manifests), back into typed objects (a run
folder's config, `--set` values) and that resolves a dotted key to a field, so a typo is caught
with the closest keys and the valid keys where it fails instead of failing deep inside a run.

Dotted keys walk dataclass fields; a tuple of dataclasses that have a `name` field (the stages) and
a dict of dataclasses are walked by name: `stages.stage3.steps`, `blob_sigma.stage3.end`,
`guidance.img.guidance_scale`.

A mapping given by key for a part that is one dataclass (`renderer`, `stages.stage3`, `guidance.video` of the same
`kind`) is merged into the part as it is, item by item, each checked as its dotted key would be (`merges`): the
profile's other settings of the part stay. `from_dict` (a saved config) makes a part from its mapping and the
defaults, as before: for a full mapping, the same part.

A dataclass may name fields that say what a config is rather than how it runs (`TrainConfig.method`, `.profile`)
in a class attribute `LABELS` ({field: why it is not set by key, and how to choose it}): dotted keys refuse them
(`--set`, `--set-from`, a method's overrides), since such a key would relabel a run without changing its settings;
the code that builds the config sets them (`set_keys(..., labels=True)`).

A config checks the ranges of its own fields (`method.ranges`), naming them as its own; where this module builds
a part inside a larger config (from a dict, by a dotted key), it puts the part's path in front of that name.

Checks between fields that may have to change together (a stage's name and the `blob_sigma` key that names it, the
two box radii) live in a dataclass's `check_links()`, which its `__post_init__` runs through `check_links(self)`:
`set_keys` defers them to after its last key, so that such keys can come in any order (each key alone would make a
config that fails them).
"""

from __future__ import annotations

import contextvars
import dataclasses
import difflib
import json
import math
import types
import typing
from typing import Any, Union

from method.ranges import RangeError

__all__ = ["ConfigKeyError", "from_dict", "to_dict", "get_key", "set_key", "set_keys", "parse_value", "valid_keys",
           "check_links", "merges", "expand_merges"]

_IN_BATCH = contextvars.ContextVar("configs_in_batch", default=False)
"""True while `set_keys` applies its keys (the links of the configs it makes in between are checked at its end)."""


class ConfigKeyError(ValueError):
    """A dotted key that names no field, or a value of the wrong type."""


def to_dict(obj: Any) -> Any:
    """A JSON-able view of a config (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_union(tp) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Build a value of type `tp` from its plain-data form (JSON), checking what can be checked."""
    if tp is Any:
        return value
    if _is_union(tp):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except (ConfigKeyError, TypeError, ValueError) as err:
                errors.append(str(err))
        raise ConfigKeyError(f"{where}: {value!r} fits none of {tp}: {'; '.join(errors)}")
    if typing.get_origin(tp) is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigKeyError(f"{where}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if isinstance(tp, type) and hasattr(tp, "from_config_dict") and not dataclasses.is_dataclass(value):
        # a base class that picks its concrete config from the data (the priors, by `kind`)
        if not isinstance(value, dict):
            raise ConfigKeyError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return tp.from_config_dict(value, where)
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            return value
        if not isinstance(value, dict):
            raise ConfigKeyError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where)
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigKeyError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigKeyError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        return origin(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigKeyError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = typing.get_args(tp) or (Any, Any)
        return {_convert(kt, k, where): _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigKeyError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 2e6, as the release's YAML writes train_max_nums
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigKeyError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigKeyError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigKeyError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _non_finite(value: Any) -> bool:
    """Whether a field's value holds an infinity or NaN (in a list, tuple or mapping too; a nested config checks its
    own fields)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


def _refuse_non_finite(key: str, value: Any) -> None:
    # a ranged field has refused its infinities by now, with its own rule; a field without a range (a guidance
    # scale, a LoRA alpha) took one silently, and no run can use it (every loss inf or NaN from the first step)
    if _non_finite(value):
        raise RangeError(key, "must be a finite number" + (" each" if isinstance(value, (list, tuple, dict)) else ""),
                         value)


def from_dict(cls, data: dict, where: str = "") -> Any:
    """The dataclass `cls` from its `to_dict` form; unknown keys are an error, missing ones keep defaults."""
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigKeyError(f"{where or cls.__name__}: unknown field(s) {unknown}; valid: {names}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    try:
        obj = cls(**kwargs)
        for k, v in kwargs.items():
            _refuse_non_finite(k, v)
        return obj
    except RangeError as err:  # a part names its own field; the message names the key as `--set` writes it
        raise err.under(where) from None


# --- dotted keys ------------------------------------------------------------------------------------

def _children(obj: Any) -> dict[str, Any]:
    """The named sub-values of a config node (fields, named tuple items, dict entries)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): v for k, v in obj.items()}
    if isinstance(obj, tuple) and obj and all(dataclasses.is_dataclass(v) and hasattr(v, "name") for v in obj):
        return {v.name: v for v in obj}
    return {}


def valid_keys(obj: Any, prefix: str = "") -> list[str]:
    """Every dotted key that names a leaf value of `obj`."""
    out = []
    for name, value in _children(obj).items():
        key = f"{prefix}{name}"
        sub = _children(value)
        out.extend(valid_keys(value, key + ".") if sub else [key])
    return out


def get_key(obj: Any, key: str) -> Any:
    node = obj
    for part in key.split("."):
        children = _children(node)
        if part not in children:
            raise ConfigKeyError(_unknown_message(obj, key))
        node = children[part]
    return node


def _unknown_message(root: Any, key: str, asked: str | None = None) -> str:
    """The error for dotted `key`, which names no field of `root`: the closest keys first, then the keys of the level
    where it fails. `asked` is the key as written when a `*` in it was replaced by an entry's name (`key`): the keys
    are then shown with the `*`, as one would write them."""
    asked = asked or key
    parts, stars = key.split("."), [i for i, p in enumerate(asked.split(".")) if p == "*"]
    depth, node = 0, root
    while depth < len(parts) and parts[depth] in _children(node):
        node, depth = _children(node)[parts[depth]], depth + 1
    if not _children(node) and depth:  # `seed.x`: a single setting has no keys; its level is the one above
        depth -= 1
        node = get_key(root, ".".join(parts[:depth])) if depth else root
    prefix = ".".join(parts[:depth])

    def as_asked(k: str) -> str:
        ks = k.split(".")
        return ".".join("*" if i in stars else p for i, p in enumerate(ks))

    here = list(dict.fromkeys(as_asked(k) for k in valid_keys(node, prefix + "." if prefix else "")))
    # matched on what follows the level's prefix, which every key here shares and so would make all of them "close"
    tail = ".".join(parts[depth:])
    shown_prefix = as_asked(prefix)
    cut = len(shown_prefix) + 1 if prefix else 0
    close = difflib.get_close_matches(tail, [k[cut:] for k in here], n=3)
    text = f"unknown config key {key!r}" + (f" (from {asked!r})" if asked != key else "") + "; "
    if close:
        names = [repr(f"{shown_prefix}.{c}" if prefix else c) for c in close]
        text += "did you mean " + (f"{', '.join(names[:-1])} or " if len(names) > 1 else "") + names[-1] + "? "
    if not prefix:  # the root's own keys, each group once (listing the groups' keys would list nearly every key)
        return text + "valid keys: " + ", ".join(_as_group(k, v) for k, v in _children(root).items())
    shown = ", ".join(here[:40]) + (" ..." if len(here) > 40 else "")
    return f"{text}valid keys under {shown_prefix!r}: {shown}"


def _as_group(name: str, value: Any) -> str:
    """`name` as the keys under it are written: a setting as is, a group as `name.KEY`, a group of named entries (the
    stages, the priors) as `name.NAME.KEY`."""
    if not _children(value):
        return name
    return f"{name}.KEY" if dataclasses.is_dataclass(value) else f"{name}.NAME.KEY"


def _field_type(node: Any, name: str) -> Any:
    if dataclasses.is_dataclass(node):
        return _hints(type(node))[name]
    if isinstance(node, dict) and name in node:
        return type(node[name])
    if isinstance(node, tuple):  # a named entry (a stage): of its entry's type, so a value of another type is refused
        return next((type(v) for v in node if getattr(v, "name", None) == name), Any)
    return Any


def merges(current: Any, value: Any) -> bool:
    """Whether `value`, given for a key whose config part is `current`, is merged into it key by key: a mapping for a
    part that is one dataclass (`renderer`, `stages.stage3`, `guidance.video`, `blob_sigma.stage3`), except a prior
    given another `kind` (a new prior: made from its mapping alone). A mapping for a field that is itself a mapping
    or list (`guidance`, `blob_sigma`, `stages`, `stages.NAME.weights`) replaces it."""
    if not (isinstance(value, dict) and dataclasses.is_dataclass(current) and not isinstance(current, type)):
        return False
    return not hasattr(current, "kind") or value.get("kind", current.kind) == current.kind


def _merge(current: Any, value: dict, root: Any, key: str, parse: bool, labels: bool, asked: str | None) -> Any:
    """`current` with each item of the mapping `value` set as the dotted key `key.<item>` would set it (its name,
    type, range and `LABELS` checked, a nested mapping merged in turn); the checks between fields once, at the end,
    as for the keys of one `set_keys`."""
    outer = not _IN_BATCH.get()
    token = _IN_BATCH.set(True)
    try:
        for sub, item in value.items():
            sub = str(sub)
            current = _set(current, [sub], item, root, f"{key}.{sub}", parse, labels,
                           f"{asked}.{sub}" if asked else None)
    finally:
        _IN_BATCH.reset(token)
    if outer:
        _check_all_links(current)
    return current


def _set(node: Any, parts: list[str], value: Any, root: Any, key: str, parse: bool, labels: bool,
         asked: str | None = None) -> Any:
    name, rest = parts[0], parts[1:]
    children = _children(node)
    if name == "*":  # every entry of a group (the priors, the stages): each must have the rest of the key
        if not rest:
            raise ConfigKeyError(f"{key!r}: '*' needs a key after it, e.g. guidance.*.frozen.channels_last")
        if dataclasses.is_dataclass(node) or not children:
            where = key[:key.index("*")].rstrip(".") or "the config"
            raise ConfigKeyError(f"{key!r}: {where} is not a group of named entries; '*' stands for every entry "
                                 "of one (guidance.*, stages.*)")
        for child in children:
            node = _set(node, [child, *rest], value, root, key.replace("*", child, 1), parse, labels, asked or key)
        return node
    if name not in children:
        raise ConfigKeyError(_unknown_message(root, key, asked))
    if rest:
        new_child = _set(children[name], rest, value, root, key, parse, labels, asked)
    else:
        why = getattr(type(node), "LABELS", {}).get(name) if dataclasses.is_dataclass(node) else None
        if why is not None and not labels:
            raise ConfigKeyError(f"{key!r} cannot be set by key: {why}")
        tp = _field_type(node, name)
        if _children(children[name]) and not isinstance(value, (dict, str, tuple, list)) \
                and not dataclasses.is_dataclass(value):
            raise ConfigKeyError(f"{key!r} is a group of settings; set one of its keys: "
                                 + ", ".join(valid_keys(children[name], key + ".")[:20]))
        raw = parse_value(value) if parse and isinstance(value, str) else value
        if tp is str and parse and isinstance(value, str):
            raw = value  # strings are taken verbatim (a model path may look like a number)
        if merges(children[name], raw):
            # into the part as it is, not a part made of the mapping and the defaults: `renderer: {recompute_field:
            # true}` must keep the profile's other renderer settings (its sample count), as the dotted key does
            new_child = _merge(children[name], raw, root, key, parse, labels, asked)
        else:
            new_child = _convert(tp, raw, key)
    if dataclasses.is_dataclass(node):
        try:
            replaced = dataclasses.replace(node, **{name: new_child})
            if not rest:
                _refuse_non_finite(name, new_child)
            return replaced
        except RangeError as err:  # named from the root, as in `from_dict`
            raise err.under(".".join(key.split(".")[:-len(parts)])) from None
    if isinstance(node, dict):
        return {**node, name: new_child}
    return tuple(new_child if v.name == name else v for v in node)


def parse_value(text: str) -> Any:
    """A `--set` value: JSON when it parses (numbers, true/false, null, lists), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def set_key(obj: Any, key: str, value: Any, parse: bool = False, labels: bool = False) -> Any:
    """A copy of `obj` with the field at dotted `key` set (typed and checked); `parse` reads strings as JSON.
    A `*` part stands for every entry of that group ('guidance.*.frozen.half_dtype', 'stages.*.steps').
    A field its dataclass lists in `LABELS` is refused unless `labels` (the code that names the config)."""
    return _set(obj, key.split("."), value, obj, key, parse, labels)


def _part(obj: Any, key: str) -> Any:
    """The config part at dotted `key` (a `*` part: the group's first entry), or None where there is none."""
    node = obj
    for part in key.split("."):
        children = _children(node)
        if part == "*" and children:
            part = next(iter(children))
        if part not in children:
            return None
        node = children[part]
    return node


def _leaves(part: Any, key: str, value: Any) -> dict[str, Any]:
    """{dotted key: value} that set what `value` sets at `key` (whose part is `part`): a mapping merged into the part
    (`merges`) as the keys of its items, in turn; any other value as it is."""
    if not merges(part, value):
        return {key: value}
    out = {}
    for sub, item in value.items():
        child = _children(part).get(str(sub))
        # an unknown item stays one key, which `set_keys` then names (`renderer.recompute_fieldd`)
        for k, v in (_leaves(child, f"{key}.{sub}", item) if child is not None else {f"{key}.{sub}": item}).items():
            out.pop(k, None)
            out[k] = v
    return out


def expand_merges(obj: Any, changes: dict[str, Any], parse: bool = False) -> dict[str, Any]:
    """`changes` for `set_keys(obj, changes, parse)` with each mapping it would merge into a part (`merges`) written
    as the dotted keys of its items (`{"renderer": {"recompute_field": true}}` -> `{"renderer.recompute_field":
    true}`), so that each key names one field: the same config, key for key. A key given again takes its last place,
    as in `set_keys`; a part is looked up after the keys before it (a renamed stage under its new name). Values of
    expanded items are the mapping's (parsed, where `parse` read a string); keys `set_keys` refuses are kept, for it
    to name."""
    out: dict[str, Any] = {}
    token = _IN_BATCH.set(True)  # the keys before a key may hold only together with later ones
    try:
        for key, value in changes.items():
            raw = parse_value(value) if parse and isinstance(value, str) else value
            part = _part(obj, key)
            flat = _leaves(part, key, raw) if merges(part, raw) else {key: value}
            for k, v in flat.items():
                out.pop(k, None)
                out[k] = v
            try:
                obj = set_key(obj, key, value, parse)
            except (ConfigKeyError, ValueError, TypeError, AttributeError):
                pass  # refused where the keys are applied, named there
    finally:
        _IN_BATCH.reset(token)
    return out


def check_links(obj: Any) -> None:
    """`obj.check_links()`, the checks between its fields, unless `set_keys` is applying its keys (it runs them
    after its last one). A config's `__post_init__` calls it."""
    if not _IN_BATCH.get():
        obj.check_links()


def _check_all_links(obj: Any) -> None:
    if dataclasses.is_dataclass(obj) and hasattr(obj, "check_links"):
        obj.check_links()
    for child in _children(obj).values():
        _check_all_links(child)


def set_keys(obj: Any, changes: dict[str, Any], parse: bool = False, labels: bool = False) -> Any:
    """`set_key` for each item of `changes`, in order; the checks between fields (`check_links`) once, at the end,
    so that keys that must change together (a stage's name and its `blob_sigma` key) can come in any order."""
    outer = not _IN_BATCH.get()
    token = _IN_BATCH.set(True)
    try:
        for key, value in changes.items():
            obj = set_key(obj, key, value, parse, labels)
    finally:
        _IN_BATCH.reset(token)
    if outer:
        _check_all_links(obj)
    return obj
