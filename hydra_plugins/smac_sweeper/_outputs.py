"""Sweep outputs, rewritten after every batch: trials.csv, pareto.csv, hypervolume.csv,
optimization_results.yaml (Optuna's layout plus the hypervolume and the fidelity) and
pareto.png. What each column means: README, "Sweep outputs".

Every file is written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ._budget import Budget
from ._pareto import HISTORY_COLUMNS, FrontSummary, summarise
from ._reference import ReferencePoint
from ._trials import CRASHED, PENDING, Trial, config_key

log = logging.getLogger(__name__)

_PLOT_INTERVAL_S = 10.0
Rerun = Callable[[Trial], list[str]]  # a trial -> the overrides that re-run it at full budget


class SweepOutputs:
    """The files of one sweep folder, from its trials and the order they were told."""

    def __init__(
        self, sweep_dir: Path, objectives: Sequence[str], budget: Budget, rerun: Rerun | None
    ) -> None:
        self.sweep_dir, self.objectives = sweep_dir, list(objectives)
        self.budget, self.rerun = budget, rerun
        self._last_plot = -float("inf")

    def write(
        self,
        trials: Sequence[Trial],
        told: Sequence[Trial],
        reference: ReferencePoint | None,
        *,
        final: bool,
        timing: dict[str, float],
    ) -> FrontSummary:
        """All files; -> the front they describe."""
        summary = summarise(told, self.objectives, self.budget.top, reference)
        # Drawing pareto.png takes ~0.2 s: after a batch only if the last one is 10 s old
        # (every batch when trials take longer), always at the end.
        plot = final or time.monotonic() - self._last_plot >= _PLOT_INTERVAL_S
        write_all(
            self.sweep_dir, trials, summary, plot=plot, timing=timing,
            fidelity=self.budget.describe(), rerun=self.rerun,
        )  # fmt: skip
        if plot:
            self._last_plot = time.monotonic()
        return summary


def config_ids(trials: Sequence[Trial]) -> dict[int, int]:
    """trial id -> configuration id: the id of the first trial that ran the same
    configuration (so one configuration promoted across budgets keeps one id)."""
    first: dict[str, int] = {}
    ids = {}
    for t in sorted(trials, key=lambda t: t.trial_id):
        ids[t.trial_id] = first.setdefault(config_key(t.config), t.trial_id)
    return ids


def trial_rows(
    trials: Sequence[Trial],
    objectives: Sequence[str],
    *,
    by_id: bool = True,
    sweep_dir: Path | None = None,
    budget_variable: str | None = None,
    ids: Mapping[int, int] | None = None,
) -> tuple[list[str], list[list]]:
    """Header and rows of trials.csv: one row per trial, in trial-id (or given) order."""
    ids = config_ids(trials) if ids is None else ids
    hp_names = sorted({k for t in trials for k in t.config})
    extra = sorted({k for t in trials for k in t.metrics} - set(objectives))
    header = (
        ["trial_id", "status", "budget", "seed", *objectives, "duration_s"]
        + ["config_id", "budget_variable", "started_at", "ended_at"]
        + [f"told/{k}" for k in objectives]
        + hp_names
        + extra
        + ["resumed_from", "batch", "job_dir", "error"]
    )
    rows = []
    for t in sorted(trials, key=lambda t: t.trial_id) if by_id else trials:
        error = (t.error or "").strip().splitlines()
        cost = t.cost or [None] * len(objectives)
        rows.append(
            [t.trial_id, t.status, _blank(t.budget_value), t.seed]
            + [_blank(t.objectives.get(k)) for k in objectives]
            + [_blank(None if t.duration is None else round(t.duration, 3))]
            + [ids.get(t.trial_id, ""), _blank(budget_variable), *_times(t)]
            + [_blank(c) for c in cost]
            + [_blank(t.config.get(k)) for k in hp_names]
            + [_blank(t.metrics.get(k)) for k in extra]
            + [_blank(t.resumed_from), t.batch, _relative(t.job_dir, sweep_dir)]
            + [error[-1] if error else ""]
        )
    return header, rows


def write_all(
    sweep_dir: Path,
    trials: Sequence[Trial],
    summary: FrontSummary,
    *,
    plot: bool = True,
    timing: dict[str, float] | None = None,
    fidelity: dict[str, Any] | None = None,
    rerun: Rerun | None = None,
) -> None:
    ids = config_ids(trials)
    variable = None if fidelity is None else fidelity["variable"]
    context = {"sweep_dir": sweep_dir, "budget_variable": variable, "ids": ids}
    header, rows = trial_rows(trials, summary.objectives, **context)
    _write_csv(sweep_dir / "trials.csv", header, rows)
    front_header, front_rows = trial_rows(summary.front, summary.objectives, by_id=False, **context)
    keep = [i for i, h in enumerate(front_header) if h not in ("status", "error", "batch")]
    _write_csv(
        sweep_dir / "pareto.csv",
        [front_header[i] for i in keep],
        [[r[i] for i in keep] for r in front_rows],
    )
    _write_csv(
        sweep_dir / "hypervolume.csv",
        list(HISTORY_COLUMNS),
        [[_blank(row[k]) for k in HISTORY_COLUMNS] for row in summary.history],
    )
    _atomic_write(
        sweep_dir / "optimization_results.yaml",
        results_yaml(trials, summary, timing, fidelity, rerun=rerun, ids=ids),
    )
    if plot:
        from ._plot import plot_trials

        plot_trials(sweep_dir / "pareto.png", trials, summary, ids=ids, variable=variable)


def results_yaml(
    trials: Sequence[Trial],
    summary: FrontSummary,
    timing: dict[str, float] | None = None,
    fidelity: dict[str, Any] | None = None,
    *,
    rerun: Rerun | None = None,
    ids: Mapping[int, int] | None = None,
) -> str:
    """Optuna sweeper layout (name, best_params/best_value or solutions) plus context:
    `budget` (the front's), `fidelity` (the budget variable and its full-fidelity value,
    which dsnn/evaluation/retest.py re-tests at; null without one) ...

    A solution's `overrides` re-run it as it ran (`python train.py <overrides>`): the
    command line's fixed overrides, its hyperparameters, the budget at full fidelity and
    its seed; `values` maps each objective to the trial's value."""
    objectives = summary.objectives
    ids = config_ids(trials) if ids is None else ids
    doc: dict[str, Any] = {"name": "smac"}
    solutions = []
    for t in summary.front:
        solution: dict[str, Any] = {"trial_id": t.trial_id, "config_id": ids.get(t.trial_id)}
        if rerun is not None:
            solution["overrides"] = rerun(t)
        solution["params"] = dict(t.config)
        solution["values"] = {k: t.objectives[k] for k in objectives}
        solutions.append(solution)
    if len(objectives) == 1 and solutions:
        doc["best_params"] = solutions[0]["params"]
        doc["best_value"] = solutions[0]["values"][objectives[0]]
    doc["solutions"] = solutions
    doc["objectives"] = objectives
    doc["budget"] = summary.budget
    doc["fidelity"] = fidelity
    doc["hypervolume"] = summary.hypervolume
    # the share of the box between the ideal point 0 and the reference point
    doc["hypervolume_normalised"] = summary.hypervolume_normalised
    reference = summary.reference
    doc["reference_point"] = (
        None
        if reference is None
        else {k: {"value": reference.values[k], "source": reference.source[k]} for k in objectives}
    )
    doc["ideal_point"] = dict.fromkeys(objectives, 0.0)
    counts = {s: sum(t.status == s for t in trials) for s in ("success", "crashed", "pending")}
    doc["n_trials"] = {"total": len(trials), **counts}
    if timing is not None:  # the sweeper's own time per trial (this session), by phase
        doc["sweeper_ms_per_trial"] = timing
    return yaml.safe_dump(_plain(doc), sort_keys=False)


def _times(trial: Trial) -> list[str]:
    """ISO 8601 (UTC) start and end of the trial's task; blank where unknown."""
    start = trial.started_at
    end = trial.told_at if start is None or trial.duration is None else start + trial.duration
    return [_iso(start), _iso(end)]


def _iso(stamp: float | None) -> str:
    if stamp is None:
        return ""
    return datetime.fromtimestamp(stamp, tz=UTC).isoformat(timespec="milliseconds")


def _relative(job_dir: str | None, sweep_dir: Path | None) -> str:
    if not job_dir:
        return ""
    if sweep_dir is not None:
        try:
            return str(Path(job_dir).resolve().relative_to(Path(sweep_dir).resolve()))
        except ValueError:
            pass
    return job_dir


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    _atomic_write(path, buffer.getvalue())


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def log_done(
    sweep_dir: Path, trials: Iterable[Trial], summary: FrontSummary, ms: Mapping[str, float]
) -> None:
    """The closing log lines of a sweep: the sweeper's time per trial, then the result."""
    told = [t for t in trials if t.status != PENDING]
    log.info(
        "Sweeper time per trial (ms, this session): ask {ask:.0f}, launch {launch:.0f} "
        "(the task itself {task:.0f}), tell {tell:.0f}, output files {outputs:.0f}".format(**ms)
    )
    log.info(
        f"Sweep done: {len(told)} trials told ({sum(t.status == CRASHED for t in told)} "
        f"crashed), {len(summary.front)} on the front, hypervolume {summary.hypervolume} "
        f"({summary.hypervolume_normalised} of the reference box); results in {sweep_dir}"
    )
