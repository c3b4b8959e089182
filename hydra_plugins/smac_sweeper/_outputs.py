"""Sweep outputs, rewritten after every batch: trials.csv, pareto.csv,
optimization_results.yaml (Optuna's layout plus the hypervolume and the fidelity) and
pareto.png.

Every file is written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ._budget import Budget
from ._pareto import FrontSummary, summarise
from ._trials import Trial

_PLOT_INTERVAL_S = 10.0


class SweepOutputs:
    """The files of one sweep folder, from its trials and the order they were told."""

    def __init__(
        self, sweep_dir: Path, objectives: Sequence[str], reference: Mapping, budget: Budget
    ) -> None:
        self.sweep_dir, self.objectives = sweep_dir, list(objectives)
        self.reference, self.budget = reference, budget
        self._last_plot = -float("inf")

    def write(
        self,
        trials: Sequence[Trial],
        told: Sequence[Trial],
        *,
        final: bool,
        timing: dict[str, float],
    ) -> FrontSummary:
        """All files; -> the front they describe."""
        summary = summarise(told, self.objectives, self.budget.top, self.reference)
        # Drawing pareto.png takes ~0.2 s: after a batch only if the last one is 10 s old
        # (every batch when trials take longer), always at the end.
        plot = final or time.monotonic() - self._last_plot >= _PLOT_INTERVAL_S
        write_all(
            self.sweep_dir, trials, summary, plot=plot, timing=timing,
            fidelity=self.budget.describe(),
        )  # fmt: skip
        if plot:
            self._last_plot = time.monotonic()
        return summary


def trial_rows(
    trials: Sequence[Trial], objectives: Sequence[str], *, by_id: bool = True
) -> tuple[list[str], list[list]]:
    """Header and rows of trials.csv: one row per trial, in trial-id (or given) order."""
    hp_names = sorted({k for t in trials for k in t.config})
    extra = sorted({k for t in trials for k in t.metrics} - set(objectives))
    header = (
        ["trial_id", "status", "budget", "seed", *objectives, "duration_s"]
        + hp_names
        + extra
        + ["resumed_from", "batch", "job_dir", "error"]
    )
    rows = []
    for t in sorted(trials, key=lambda t: t.trial_id) if by_id else trials:
        error = (t.error or "").strip().splitlines()
        rows.append(
            [t.trial_id, t.status, _blank(t.budget_value), t.seed]
            + [_blank(t.objectives.get(k)) for k in objectives]
            + [_blank(None if t.duration is None else round(t.duration, 3))]
            + [_blank(t.config.get(k)) for k in hp_names]
            + [_blank(t.metrics.get(k)) for k in extra]
            + [_blank(t.resumed_from), t.batch, _blank(t.job_dir), error[-1] if error else ""]
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
) -> None:
    header, rows = trial_rows(trials, summary.objectives)
    _write_csv(sweep_dir / "trials.csv", header, rows)
    front_header, front_rows = trial_rows(summary.front, summary.objectives, by_id=False)
    keep = [i for i, h in enumerate(front_header) if h not in ("status", "error", "batch")]
    _write_csv(
        sweep_dir / "pareto.csv",
        [front_header[i] for i in keep],
        [[r[i] for i in keep] for r in front_rows],
    )
    _atomic_write(
        sweep_dir / "optimization_results.yaml", results_yaml(trials, summary, timing, fidelity)
    )
    if plot:
        from ._plot import plot_trials

        plot_trials(sweep_dir / "pareto.png", trials, summary)


def results_yaml(
    trials: Sequence[Trial],
    summary: FrontSummary,
    timing: dict[str, float] | None = None,
    fidelity: dict[str, Any] | None = None,
) -> str:
    """Optuna sweeper layout (name, best_params/best_value or solutions) plus context:
    `budget` (the front's), `fidelity` (the budget variable and its full-fidelity value,
    which dsnn/evaluation/retest.py re-tests at; null without one) ..."""
    objectives = summary.objectives
    doc: dict[str, Any] = {"name": "smac"}
    solutions = [
        {
            "trial_id": t.trial_id,
            "params": dict(t.config),
            "values": [t.objectives[k] for k in objectives],
        }
        for t in summary.front
    ]
    if len(objectives) == 1 and solutions:
        doc["best_params"] = solutions[0]["params"]
        doc["best_value"] = solutions[0]["values"][0]
    doc["solutions"] = solutions
    doc["objectives"] = objectives
    doc["budget"] = summary.budget
    doc["fidelity"] = fidelity
    doc["hypervolume"] = summary.hypervolume
    doc["reference_point"] = (
        None
        if summary.reference_point is None
        else {
            k: {"value": v, "source": summary.reference_source[k]}
            for k, v in zip(objectives, summary.reference_point, strict=True)
        }
    )
    counts = {s: sum(t.status == s for t in trials) for s in ("success", "crashed", "pending")}
    doc["n_trials"] = {"total": len(trials), **counts}
    if timing is not None:  # the sweeper's own time per trial (this session), by phase
        doc["sweeper_ms_per_trial"] = timing
    return yaml.safe_dump(_plain(doc), sort_keys=False)


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
