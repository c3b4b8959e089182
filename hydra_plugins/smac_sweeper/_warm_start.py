"""Warm start: the Pareto front of an earlier sweep as the first configurations of a new one.

`hydra.sweeper.warm_start.sweep_dir` names the folder of an earlier sweep of this sweeper
(its `journal.jsonl`), typically of a related task: another data sample or seed, fewer
epochs, another data fraction. Its configurations on the Pareto front of this sweep's
objectives are asked right after the default configuration, before any random one, in
the order of their greedy hypervolume contribution in the earlier sweep's own reference
box (the first k are the k that cover most of its front), at most `n_configs`.

The new sweep runs and tells each configuration like any other trial, so its front and
hypervolume hold only what it measured. The warm start's configurations count towards the
initial design (`n_initial_configs`): random ones fill the rest (`startup_trials`). Its
results reach one model only: gp_ehvi fits its GP on the earlier sweep's successful trials
too, with the task as one more input (0: the earlier task, 1: this one), so the GP learns
from the data how far the two tasks agree (_gp_ehvi.py; `warm_start.observations=false`
turns this off); the other algorithms get the configurations alone.

A source configuration keeps its values of this space's hyperparameters, takes this
space's defaults for the ones it lacks, and is left out when a value is outside this space
(a warning says how many). The earlier sweep's journal is read as data (JSON lines) and
never written. The chosen configurations are journaled once (a `warm_start` record), so a
resume asks the same ones even if the earlier sweep went on or moved since.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ConfigSpace import Configuration, Constant
from ConfigSpace.util import deactivate_inactive_hyperparameters

from ._journal import read_records, replay
from ._pareto import default_reference_point, hypervolume, pareto_mask
from ._settings import SweeperSettingError
from ._space import to_python
from ._trials import SUCCESS, config_key
from .config import SMACSweeperConf

log = logging.getLogger(__name__)


class WarmStartError(SweeperSettingError):
    """The earlier sweep cannot warm-start this one (one line: key, value, why)."""


@dataclass(frozen=True)
class WarmStart:
    """What an earlier sweep hands a new one (JSON-serialisable, journaled as is)."""

    configs: list[dict[str, Any]]  # to ask after the default, in order
    # every successful trial of its highest fidelity whose configuration is in this space:
    # {config, cost} with cost in this sweep's objective order (gp_ehvi's related task)
    observations: list[dict[str, Any]]


def load_warm_start(s: SMACSweeperConf, space: Any, default: dict[str, Any] | None) -> WarmStart:
    """The earlier sweep's configurations to ask after `default` (None: not asked), and its
    observations; empty without a warm start. WarmStartError when it is not usable."""
    source = s.warm_start.sweep_dir
    if source is None:
        return WarmStart([], [])
    key = f"hydra.sweeper.warm_start.sweep_dir={source!r} is invalid"
    path = Path(str(source)) / "journal.jsonl"
    if not path.is_file():
        raise WarmStartError(f"{key}: no journal.jsonl there (the folder of an earlier sweep)")
    try:
        earlier = replay(read_records(path), path)
    except (ValueError, KeyError, RuntimeError) as err:
        raise WarmStartError(f"{key}: its journal is unreadable ({err})") from err
    assert earlier.header is not None
    objectives = list(s.objectives)
    missing = [o for o in objectives if o not in earlier.header.fingerprint.get("objectives", [])]
    if missing:
        raise WarmStartError(f"{key}: that sweep did not measure {', '.join(missing)}")
    told = [t for t in earlier.trials.values() if t.status == SUCCESS and t.objectives]
    if not told:
        raise WarmStartError(f"{key}: that sweep has no successful trial")
    top = max((t.budget for t in told if t.budget is not None), default=None)
    told = [t for t in told if t.budget == top]  # its highest fidelity told
    points = np.array([[float(t.objectives[o]) for o in objectives] for t in told])
    mapped = [in_space(t.config, space) for t in told]  # None: outside this space
    front = np.flatnonzero(pareto_mask(points))
    reference = _reference(earlier.reference, objectives, points)
    configs, taken, outside = [], {config_key(default)} if default else set(), 0
    for i in greedy_order(points[front].tolist(), reference):
        config = mapped[front[i]]
        if config is None:
            outside += 1
        elif config_key(config) not in taken:
            taken.add(config_key(config))
            configs.append(config)
    if outside:
        log.warning(f"Warm start: {outside} of {len(front)} front configurations of {source} "
                    "are outside this search space; left out")  # fmt: skip
    room = s.n_trials - int(default is not None)
    observations = [
        {"config": config, "cost": point.tolist()}
        for config, point in zip(mapped, points, strict=True)
        if s.warm_start.observations and config is not None
    ]
    return WarmStart(configs[: max(0, min(int(s.warm_start.n_configs), room))], observations)


def greedy_order(points: list[list[float]], reference: np.ndarray) -> list[int]:
    """Indices of `points` by greedy hypervolume contribution: each next one adds the most
    to the hypervolume of those before it (ties: the earlier index)."""
    chosen: list[int] = []
    left = list(range(len(points)))
    while left:
        base = hypervolume(np.array([points[i] for i in chosen]), reference) if chosen else 0.0
        gains = [hypervolume(np.array([points[i] for i in [*chosen, j]]), reference) - base
                 for j in left]  # fmt: skip
        best = left[int(np.argmax(gains))]
        chosen.append(best)
        left.remove(best)
    return chosen


def in_space(config: dict[str, Any], space: Any) -> dict[str, Any] | None:
    """`config` as a configuration of `space` (active hyperparameters, plain values): its
    values of the space's hyperparameters, the defaults for the others; None when one of
    its values is not legal there."""
    values: dict[str, Any] = {}
    for hp in space.values():
        if isinstance(hp, Constant):
            values[hp.name] = hp.value
            continue
        value = config.get(hp.name, hp.default_value)
        try:
            legal = hp.legal_value(value)
        except (TypeError, ValueError):
            legal = False
        if not legal:
            return None
        values[hp.name] = value
    try:
        active = deactivate_inactive_hyperparameters(values, space)
        Configuration(space, values=dict(active)).check_valid_configuration()
    except (ValueError, TypeError):  # a forbidden combination
        return None
    return {k: to_python(v) for k, v in active.items()}


def startup_trials(s: SMACSweeperConf, n_warm: int, unset: int | None) -> int | None:
    """Trials before a model proposes: the default (use_default_config), then the warm
    start's configurations and random ones up to n_initial_configs (`unset` where it is
    null: the algorithm's own rule; None keeps the library's)."""
    n_initial = unset if s.n_initial_configs is None else int(s.n_initial_configs)
    if n_initial is None:
        return None
    return int(s.use_default_config) + max(n_initial, n_warm)


def _reference(journaled: Any, objectives: list[str], points: np.ndarray) -> np.ndarray:
    """The earlier sweep's reference point where it journaled one for these objectives,
    else its observed worst plus 10 % of the range."""
    if journaled is not None and all(o in journaled.values for o in objectives):
        return np.array([journaled.values[o] for o in objectives], dtype=float)
    return default_reference_point(points)
