"""Search spaces written in YAML (config group `search_space`) -> ConfigSpace.

Format (keys are the Hydra override keys a trial receives)::

    hyperparameters:
      optimizer: {type: categorical, choices: [sgd, adam], default: sgd}
      optimizer.lr: {type: float, lower: 0.001, upper: 0.1, log: true, default: 0.1}
      optimizer.momentum: {type: float, lower: 0.0, upper: 0.9, default: 0.9}
      data.batch_size: {type: int, lower: 32, upper: 128, default: 128}
    conditions:   # the child is active (and passed to the trial) only if the parent matches
      - {child: optimizer.momentum, parent: optimizer, values: [sgd, rmsprop]}

Types: int and float (lower, upper, optional log, default), categorical and ordinal
(choices, default), constant (value). A condition takes `values` (a list) or `value`; several
conditions on one child must all hold. Every mistake raises SearchSpaceError naming the entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ConfigSpace import (
    AndConjunction,
    Categorical,
    ConfigurationSpace,
    Constant,
    EqualsCondition,
    Float,
    InCondition,
    Integer,
    OrdinalHyperparameter,
)

_FIELDS = {
    "int": {"type", "lower", "upper", "log", "default"},
    "float": {"type", "lower", "upper", "log", "default"},
    "categorical": {"type", "choices", "default"},
    "ordinal": {"type", "choices", "default"},
    "constant": {"type", "value"},
}
_CONDITION_FIELDS = {"child", "parent", "values", "value"}


class SearchSpaceError(ValueError):
    """A search-space entry is malformed; the message names the entry and the problem."""


def build_space(
    spec: Mapping[str, Any],
    *,
    remove: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> ConfigurationSpace:
    """The ConfigurationSpace of `spec`, without the hyperparameters in `remove`.

    `remove` maps names that are fixed elsewhere (the budget variable, command-line
    overrides) to their value, or to None when the value varies (the budget). Conditions
    whose parent is removed are resolved with the fixed value: the child stays
    (unconditionally) when the value matches, else it goes too.
    """
    remove = dict(remove or {})
    if not isinstance(spec, Mapping):
        raise SearchSpaceError(f"search_space must be a mapping, got {type(spec).__name__}")
    unknown = set(spec) - {"hyperparameters", "conditions"}
    if unknown:
        raise SearchSpaceError(
            f"search_space: unknown keys {sorted(unknown)}; expected hyperparameters, conditions"
        )
    hp_specs = spec.get("hyperparameters") or {}
    if not isinstance(hp_specs, Mapping) or not hp_specs:
        raise SearchSpaceError("search_space.hyperparameters must be a non-empty mapping")
    conditions = [
        _check_condition(i, c, hp_specs) for i, c in enumerate(spec.get("conditions") or [])
    ]

    # Resolve conditions on removed parents; drop conditions on removed children.
    dropped: set[str] = set()
    kept: list[dict[str, Any]] = []
    for cond in conditions:
        child, parent = cond["child"], cond["parent"]
        if child in remove:
            continue
        if parent in remove:
            if remove[parent] is None:
                raise SearchSpaceError(
                    f"search_space.conditions: {child!r} depends on {parent!r}, "
                    "which is the budget variable; a budget cannot be a condition's parent"
                )
            if remove[parent] not in cond["values"]:
                dropped.add(child)
            continue
        kept.append(cond)

    space = ConfigurationSpace(seed=seed)
    hps = {}
    for name, hp_spec in hp_specs.items():
        if name in remove or name in dropped:
            continue
        hps[name] = _make_hyperparameter(str(name), hp_spec)
    if not hps:
        raise SearchSpaceError("search_space: nothing left to search after removing fixed keys")
    space.add(list(hps.values()))

    by_child: dict[str, list[Any]] = {}
    for cond in kept:
        if cond["child"] not in hps or cond["parent"] not in hps:
            continue  # one side dropped by another resolved condition
        child, parent = hps[cond["child"]], hps[cond["parent"]]
        values = cond["values"]
        made = (
            EqualsCondition(child, parent, values[0])
            if len(values) == 1
            else InCondition(child, parent, values)
        )
        by_child.setdefault(cond["child"], []).append(made)
    for child, conds in by_child.items():
        try:
            space.add(conds[0] if len(conds) == 1 else AndConjunction(*conds))
        except Exception as err:  # ConfigSpace raises assorted types (cycles, ...)
            raise SearchSpaceError(f"search_space.conditions on {child!r}: {err}") from err
    return space


def _make_hyperparameter(name: str, spec: Any) -> Any:
    where = f"search_space.hyperparameters[{name!r}]"
    if not isinstance(spec, Mapping):
        raise SearchSpaceError(f"{where}: expected a mapping with a 'type', got {spec!r}")
    kind = spec.get("type")
    if kind not in _FIELDS:
        raise SearchSpaceError(f"{where}: type must be one of {sorted(_FIELDS)}, got {kind!r}")
    unknown = set(spec) - _FIELDS[kind]
    if unknown:
        raise SearchSpaceError(f"{where}: unknown fields {sorted(unknown)} for type {kind}")
    default = spec.get("default")

    if kind in ("int", "float"):
        missing = [k for k in ("lower", "upper") if spec.get(k) is None]
        if missing:
            raise SearchSpaceError(f"{where}: missing {missing}")
        lower, upper, log = spec["lower"], spec["upper"], bool(spec.get("log", False))
        for key, value in (("lower", lower), ("upper", upper), ("default", default)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SearchSpaceError(f"{where}: {key} must be a number, got {value!r}")
            if kind == "int" and float(value) != int(value):
                raise SearchSpaceError(f"{where}: {key} must be an integer, got {value!r}")
        if not lower < upper:
            raise SearchSpaceError(f"{where}: lower ({lower}) must be < upper ({upper})")
        if log and lower <= 0:
            raise SearchSpaceError(f"{where}: log scale needs lower > 0, got {lower}")
        if default is not None and not lower <= default <= upper:
            raise SearchSpaceError(f"{where}: default {default} outside [{lower}, {upper}]")
        if kind == "int":
            bounds = (int(lower), int(upper))
            return Integer(name, bounds, log=log, default=None if default is None else int(default))
        bounds = (float(lower), float(upper))
        if default is None and log:
            default = math.sqrt(bounds[0] * bounds[1])  # ConfigSpace's own choice, made explicit
        return Float(name, bounds, log=log, default=None if default is None else float(default))

    if kind == "constant":
        if "value" not in spec or not _is_scalar(spec["value"]):
            raise SearchSpaceError(f"{where}: constant needs a scalar 'value'")
        return Constant(name, spec["value"])

    choices = spec.get("choices")
    if not isinstance(choices, (list, tuple)) or not choices:
        raise SearchSpaceError(f"{where}: choices must be a non-empty list, got {choices!r}")
    choices = list(choices)
    bad = [c for c in choices if not _is_scalar(c)]
    if bad:
        raise SearchSpaceError(f"{where}: choices must be scalars, got {bad}")
    if len(set(map(repr, choices))) != len(choices):
        raise SearchSpaceError(f"{where}: duplicate choices in {choices}")
    if default is not None and default not in choices:
        raise SearchSpaceError(f"{where}: default {default!r} is not one of {choices}")
    if kind == "ordinal":
        if default is None:
            return OrdinalHyperparameter(name, choices)
        return OrdinalHyperparameter(name, choices, default_value=default)
    return (
        Categorical(name, choices)
        if default is None
        else Categorical(name, choices, default=default)
    )


def _check_condition(index: int, cond: Any, hp_specs: Mapping[str, Any]) -> dict[str, Any]:
    where = f"search_space.conditions[{index}]"
    if not isinstance(cond, Mapping):
        raise SearchSpaceError(f"{where}: expected a mapping child/parent/values, got {cond!r}")
    unknown = set(cond) - _CONDITION_FIELDS
    if unknown:
        raise SearchSpaceError(f"{where}: unknown fields {sorted(unknown)}")
    child, parent = cond.get("child"), cond.get("parent")
    for role, name in (("child", child), ("parent", parent)):
        if name not in hp_specs:
            raise SearchSpaceError(f"{where}: {role} {name!r} is not a hyperparameter")
    if child == parent:
        raise SearchSpaceError(f"{where}: child and parent are both {child!r}")
    if ("values" in cond) == ("value" in cond):
        raise SearchSpaceError(f"{where}: give exactly one of 'values' (a list) or 'value'")
    values = list(cond["values"]) if "values" in cond else [cond["value"]]
    if not values:
        raise SearchSpaceError(f"{where}: values is empty")
    parent_spec = hp_specs[parent]
    choices = parent_spec.get("choices") if isinstance(parent_spec, Mapping) else None
    if choices is not None:
        bad = [v for v in values if v not in list(choices)]
        if bad:
            raise SearchSpaceError(
                f"{where}: {bad} are not choices of {parent!r} ({list(choices)})"
            )
    return {"child": child, "parent": parent, "values": values}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def default_config(space: Any) -> dict[str, Any]:
    """The space's default configuration as a trial's config holds it (plain values)."""
    return {k: to_python(v) for k, v in space.get_default_configuration().items()}


def to_python(value: Any) -> Any:
    """numpy scalars (ConfigSpace returns np.str_, np.int64 ...) -> plain Python values."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value
