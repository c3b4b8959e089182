"""Failed trials: the cost an optimiser is told for a crash, and the failure rate that stops
a sweep (max_failure_rate, checked once failure_check_after trials are told)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._trials import CRASHED, PENDING, SUCCESS, Trial


class SweepFailedError(RuntimeError):
    """Too many trials crashed (max_failure_rate)."""


class ObjectivesMissingError(SweepFailedError):
    """The first trials return dicts without an objective key: stop at once."""

    def __init__(self, objectives: Sequence[str], trial: Trial, missing: Any) -> None:
        super().__init__(
            f"hydra.sweeper.objectives={list(objectives)} is invalid: trial {trial.trial_id} "
            f"returned no {missing.missing} (the task returned the keys {missing.returned}); "
            "set the objectives to keys the task returns"
        )


def trial_cost(
    trial: Trial, trials: Iterable[Trial], objectives: Sequence[str], configured: Mapping
) -> list[float]:
    """What the optimiser is told, per objective: the objectives of a successful trial, else
    the crash cost."""
    if trial.status == SUCCESS:
        return [trial.objectives[k] for k in objectives]
    return crash_cost(trials, objectives, configured)


def crash_cost(
    trials: Iterable[Trial], objectives: Sequence[str], configured: Mapping
) -> list[float]:
    """Configured per objective; else the worst value seen plus the observed range."""
    costs = []
    ok = [t for t in trials if t.status == SUCCESS]
    for key in objectives:
        if key in configured:
            costs.append(float(configured[key]))
            continue
        values = [t.objectives[key] for t in ok]
        if not values:
            costs.append(1.0)
            continue
        worst, best = max(values), min(values)
        costs.append(worst + (worst - best if worst > best else max(abs(worst), 1.0)))
    return costs


def check_failure_rate(
    trials: Iterable[Trial], max_rate: float, check_after: int, n_trials: int
) -> None:
    """Raises SweepFailedError when more than `max_rate` of the told trials crashed."""
    told = [t for t in trials if t.status != PENDING]
    crashed = [t for t in told if t.status == CRASHED]
    if len(told) < min(check_after, n_trials) or not crashed:
        return
    if len(crashed) / len(told) > max_rate:
        last = (crashed[-1].error or "").strip().splitlines()
        raise SweepFailedError(
            f"SMAC sweep stopped: {len(crashed)} of {len(told)} trials crashed, more than "
            f"max_failure_rate={max_rate}. Last error (trial {crashed[-1].trial_id}, "
            f"job dir {crashed[-1].job_dir}): {last[-1] if last else '?'}"
        )
