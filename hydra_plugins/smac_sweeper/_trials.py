"""One trial: its record, the task wrapper its job runs, and reading its result back."""

from __future__ import annotations

import json
import logging
import math
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.utils import JobReturn, JobStatus

from ._guard import guarded

log = logging.getLogger(__name__)

SUCCESS, CRASHED, PENDING = "success", "crashed", "pending"


def config_key(config: dict[str, Any]) -> str:
    """A configuration as a hashable key (its active hyperparameters, sorted)."""
    return json.dumps(config, sort_keys=True, default=str)


@dataclass
class Trial:
    trial_id: int
    batch: int
    config: dict[str, Any]  # active hyperparameters only
    budget: float | None  # SMAC's budget (None at full fidelity)
    seed: int
    budget_value: Any = None  # what the trial receives (rounded for integer budgets)
    status: str = PENDING
    objectives: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    cost: list[float] | None = None  # what SMAC was told (crash cost for crashed trials)
    duration: float | None = None
    job_dir: str | None = None
    error: str | None = None
    overrides: list[str] = field(default_factory=list)
    told_at: float | None = None  # time.time() of the tell
    resumed_from: int | None = None  # the lower-budget trial it continues (continuation)
    started_at: float | None = None  # time.time() when the task started (in its process)


@dataclass
class TaskOutcome:
    """What a trial's job hands back: the task's return value or its error, and the time."""

    value: Any = None
    seconds: float = 0.0
    error: str | None = None
    started: float | None = None  # time.time() at the start


class TimedTask:
    """Wraps the task function: times it, holds it to `timeout` seconds, and turns its
    exception -- also SystemExit, a time-out, and a KeyboardInterrupt the task raised
    itself -- into a TaskOutcome (a crashed trial). A real Ctrl-C still stops the sweep.

    Returning the traceback as text (instead of raising) keeps failures readable after
    pickling through joblib or submitit, where some exception types do not survive.
    """

    def __init__(self, task_function: Any, timeout: float | None = None) -> None:
        self.task_function = task_function
        self.timeout = timeout

    def __call__(self, cfg: Any) -> TaskOutcome:
        started, start = time.time(), time.perf_counter()
        with guarded(self.timeout) as guard:
            try:
                value = self.task_function(cfg)
            except (Exception, KeyboardInterrupt, SystemExit) as err:
                # Ctrl-C: the user stops the sweep, whatever the task made of it (Lightning
                # turns a KeyboardInterrupt into sys.exit(1))
                if guard.interrupted:
                    raise KeyboardInterrupt from err
                if isinstance(err, KeyboardInterrupt):
                    why = "the task raised KeyboardInterrupt itself"
                elif isinstance(err, SystemExit):  # sys.exit() in the task must not end the sweep
                    why = f"the task called sys.exit({err.code!r})"
                else:
                    why = None
                return self._failed(started, start, why)
        if hasattr(value, "_metadata") and hasattr(value, "keys"):  # a DictConfig
            from omegaconf import OmegaConf

            value = OmegaConf.to_container(value, resolve=True)
        return TaskOutcome(value=value, seconds=time.perf_counter() - start, started=started)

    @staticmethod
    def _failed(started: float, start: float, why: str | None = None) -> TaskOutcome:
        log.exception("trial failed")  # into the job's own log file
        error = traceback.format_exc() + (f"{why}\n" if why else "")
        return TaskOutcome(error=error, seconds=time.perf_counter() - start, started=started)


class MissingObjectiveError(ValueError):
    """A task's returned dict lacks objective keys."""

    def __init__(self, missing: list[str], returned: list[str]) -> None:
        super().__init__(f"returned dict lacks objective key(s) {missing} (has {returned})")
        self.missing, self.returned = missing, returned


def read_outcome(
    trial: Trial, ret: JobReturn | BaseException, objectives: Sequence[str]
) -> MissingObjectiveError | None:
    """Sets the trial's status, objectives, metrics, duration, job folder and error from what
    the launcher returned for it: a JobReturn holding a TaskOutcome, or an exception.
    Returns the MissingObjectiveError of a task that returned a dict without an objective."""
    outcome: Any = ret
    if isinstance(ret, JobReturn):
        trial.job_dir = _job_dir(ret)
        # a failed job's exception: return_value would re-raise it
        outcome = ret._return_value if ret.status == JobStatus.FAILED else ret.return_value
    if isinstance(outcome, TaskOutcome):
        trial.duration, trial.started_at = outcome.seconds, outcome.started
        error, value = outcome.error, outcome.value
    elif isinstance(outcome, BaseException):
        error, value = f"{type(outcome).__name__}: {outcome}", None
    else:
        error, value = None, outcome
    missing = None
    if error is None:
        try:
            trial.objectives, trial.metrics = read_objectives(value, objectives)
            trial.status = SUCCESS
            return None
        except ValueError as err:
            error = f"trial {err}"
            missing = err if isinstance(err, MissingObjectiveError) else None
    trial.status, trial.error = CRASHED, error
    last = error.strip().splitlines()[-1] if error.strip() else error
    log.warning(f"Trial {trial.trial_id} crashed: {last}")
    return missing


def _job_dir(ret: JobReturn) -> str | None:
    try:
        return str(ret.hydra_cfg.hydra.runtime.output_dir)
    except Exception:
        return ret.working_dir


def read_objectives(
    value: Any, objectives: Sequence[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """(objectives, all numeric metrics) from a task's return value; ValueError if unusable.

    A dict must hold every objective key with a finite number; a plain number counts as
    the single objective; a list/tuple must have one number per objective.
    """
    metrics: dict[str, float] = {}
    if isinstance(value, Mapping):
        missing = [k for k in objectives if k not in value]
        if missing:
            raise MissingObjectiveError(missing, sorted(map(str, value)))
        metrics = {str(k): float(v) for k, v in value.items() if _is_number(v)}
        found = {k: value[k] for k in objectives}
    elif _is_number(value):
        if len(objectives) != 1:
            raise ValueError(f"returned one number {value!r} but there are objectives {objectives}")
        found = {objectives[0]: value}
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != len(objectives):
            raise ValueError(
                f"returned {len(value)} values but there are {len(objectives)} objectives"
            )
        found = dict(zip(objectives, value, strict=True))
    else:
        raise ValueError(
            f"returned {type(value).__name__} {value!r:.200}; "
            f"expected a dict with keys {list(objectives)}"
        )
    result = {}
    for key, v in found.items():
        if not _is_number(v) or not math.isfinite(float(v)):
            raise ValueError(f"objective {key!r} is {v!r}, not a finite number")
        result[key] = float(v)
    metrics.update(result)
    return result, metrics


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (str, bytes))


def consecutive(trials: Sequence[Trial]) -> list[list[Trial]]:
    """Runs of consecutive trial ids (one launch each: job folders follow the ids)."""
    groups: list[list[Trial]] = []
    for trial in trials:
        if groups and groups[-1][-1].trial_id + 1 == trial.trial_id:
            groups[-1].append(trial)
        else:
            groups.append([trial])
    return groups
