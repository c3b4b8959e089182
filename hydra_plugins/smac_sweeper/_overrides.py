"""A trial's Hydra override strings, and the command line's overrides."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser


def trial_overrides(
    arguments: Sequence[str],
    config: Mapping[str, Any],
    extra: Mapping[str, Any],
    fixed: Collection[str] = (),
) -> list[str]:
    """A trial's Hydra overrides: the command line's, then `key=value` per active
    hyperparameter (`optimizer=adam` picks a config group option), then `++key=value` per
    extra (budget, seed, W&B grouping; added if the app lacks the key) not in `fixed`."""
    overrides = list(arguments)
    overrides += [f"{k}={format_value(v)}" for k, v in sorted(config.items())]
    overrides += [f"++{k}={format_value(v)}" for k, v in extra.items() if k not in fixed]
    return overrides


_BARE = re.compile(r"[A-Za-z_][\w\-./]*")
_KEYWORDS = {"true", "false", "null", "nan", "inf", "none"}


def format_value(value: Any) -> str:
    """A value in Hydra's override grammar (strings quoted where needed)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{format_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _BARE.fullmatch(text) and text.lower() not in _KEYWORDS:
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fixed_overrides(arguments: Sequence[str]) -> dict[str, Any]:
    """key -> value of the command-line overrides; sweep syntax is refused."""
    fixed = {}
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        if is_hydra_override(override):
            continue
        if override.is_sweep_override():
            raise ValueError(
                f"'{override.input_line}': the SMAC sweeper takes its search space from "
                "hydra.sweeper.search_space; fix values on the command line, do not sweep them"
            )
        fixed[override.key_or_group] = override.value()
    return fixed


def is_hydra_override(override: Any) -> bool:
    """An override of Hydra's own config (search_space@hydra.sweeper.search_space=...)."""
    package = override.package or ""
    return package == "hydra" or package.startswith("hydra.")
