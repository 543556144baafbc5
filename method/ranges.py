"""Range checks of config values, shared by every config of the generator.

Each config checks its own fields when it is made (`__post_init__`), naming the field as its own: a value the run
cannot use (0 levels, a negative distance) is refused before a run folder exists, not deep inside a run. The error
is a `RangeError`, whose key `method.configs` extends with the path of the enclosing config when it builds a part
from a dict or a dotted key, so that the message names the key as `--set` writes it
(`field.static_grid.n_levels must be >= 1, got 0`). None (unset) passes every check; a list or tuple is checked
item by item. A bound also asks for a finite number: an infinity (`--set KEY=1e400` or `=Infinity`, which JSON reads
as one) is refused by every check (`must be a finite number >= 0, got inf`), as NaN is.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["RangeError", "at_least", "positive", "fraction", "within", "below", "ordered", "one_of"]


class RangeError(ValueError):
    """A config value out of its range: `key` (the field, relative to the config that raised it) `rule`, `value`."""

    def __init__(self, key: str, rule: str, value: Any):
        self.key, self.rule, self.value = key, rule, value
        shown = list(value) if isinstance(value, tuple) else value  # as `--set` takes it: a JSON list
        super().__init__(f"{key} {rule}, got {shown!r}")

    def under(self, path: str) -> "RangeError":
        """The same error named from the config at dotted `path` ('' is the root: unchanged)."""
        return RangeError(f"{path}.{self.key}", self.rule, self.value) if path else self

    def __reduce__(self):  # picklable, as a worker process may raise it
        return RangeError, (self.key, self.rule, self.value)


def _items(value: Any) -> tuple[list, str]:
    if isinstance(value, (list, tuple)):
        return list(value), " each"
    return [value], ""


def _infinite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isinf(v)


def _finite_rule(rule: str) -> str:
    """`rule` ('must be >= 0') as said of an infinity, which may pass the bound itself ('must be a finite number
    >= 0')."""
    return rule.replace("must be", "must be a finite number", 1) if rule.startswith("must be ") else rule


def _check(key: str, value: Any, ok, rule: str, note: str) -> None:
    if value is None:
        return
    items, each = _items(value)
    # `not ok`: a NaN fails every comparison, so it is refused too; an infinity passes a one-sided bound (`>= 0`)
    # but no run can use it (a weight that makes every loss inf, a checkpoint interval never reached)
    infinite = any(_infinite(v) for v in items)
    if infinite or not all(ok(v) for v in items):
        raise RangeError(key, (_finite_rule(rule) if infinite else rule) + each + note, value)


def at_least(key: str, value: Any, low: float, note: str = "") -> None:
    """`value` >= `low` (`note`: what the bound means, e.g. ' (0: off)')."""
    _check(key, value, lambda v: v >= low, f"must be >= {low}", note)


def positive(key: str, value: Any, note: str = "") -> None:
    """`value` > 0."""
    _check(key, value, lambda v: v > 0, "must be > 0", note)


def within(key: str, value: Any, low: float, high: float, note: str = "") -> None:
    """`value` in [`low`, `high`]."""
    _check(key, value, lambda v: low <= v <= high, f"must be from {low} to {high}", note)


def fraction(key: str, value: Any, note: str = "") -> None:
    """`value` in [0, 1] (a probability, a decay, a time)."""
    within(key, value, 0, 1, note)


def below(key: str, value: Any, high: float, note: str = "") -> None:
    """`value` < `high`."""
    _check(key, value, lambda v: v < high, f"must be below {high}", note)


def ordered(key: str, value: Any, note: str = "") -> None:
    """`value` is a (low, high) range with low <= high."""
    if value is not None and any(_infinite(v) for v in value):  # a range without another bound: (-inf, inf)
        raise RangeError(key, "must have finite low and high" + note, value)
    if value is not None and not value[0] <= value[1]:
        raise RangeError(key, "must have low <= high" + note, value)


def one_of(key: str, value: Any, choices) -> None:
    """`value` is one of `choices`."""
    if value is not None and value not in list(choices):  # a list: refused, not a TypeError of `in` a dict
        raise RangeError(key, f"must be one of {sorted(choices)}", value)
