"""Pareto front and hypervolume for minimisation, on an (n_points, n_objectives) array, and
the sweep's summary of them: the front at the highest budget and its hypervolume after each
batch, against the sweep's fixed reference point (_reference.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._reference import ReferencePoint
from ._trials import SUCCESS, Trial


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `points` (all objectives minimised).

    A row is dominated when another row is <= in every objective and < in at least one;
    identical rows do not dominate each other, so duplicates on the front are all kept.
    """
    points = np.asarray(points, dtype=float)
    if points.ndim != 2:
        raise ValueError(f"points must be 2-D (n_points, n_objectives), got shape {points.shape}")
    n = len(points)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        # rows that point i dominates
        dominated = np.all(points[i] <= points, axis=1) & np.any(points[i] < points, axis=1)
        mask &= ~dominated
    return mask


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by `points` and bounded by `reference` (minimisation).

    Points not strictly better than the reference in every objective add nothing.
    Exact: a sweep in 2-D, slicing along the last objective above that (fine for fronts of
    a few hundred points, which is what a sweep produces).
    """
    reference = np.asarray(reference, dtype=float)
    points = np.asarray(points, dtype=float).reshape(-1, reference.size)
    points = points[np.all(points < reference, axis=1)]
    if len(points) == 0:
        return 0.0
    return float(_hv(points[pareto_mask(points)], reference))


def _hv(points: np.ndarray, reference: np.ndarray) -> float:
    dim = reference.size
    if dim == 1:
        return float(reference[0] - points[:, 0].min())
    if dim == 2:
        order = np.argsort(points[:, 0], kind="stable")
        volume, best_y = 0.0, reference[1]
        for x, y in points[order]:
            if y < best_y:
                volume += (reference[0] - x) * (best_y - y)
                best_y = y
        return volume
    # Slice along the last objective: between consecutive levels, the dominated region is
    # the (dim-1)-volume of the points at or below the level.
    order = np.argsort(points[:, -1], kind="stable")
    points = points[order]
    volume = 0.0
    for i in range(len(points)):
        upper = points[i + 1, -1] if i + 1 < len(points) else reference[-1]
        height = upper - points[i, -1]
        if height > 0:
            below = points[: i + 1, :-1]
            volume += height * _hv(below[pareto_mask(below)], reference[:-1])
    return volume


def default_reference_point(points: np.ndarray) -> np.ndarray:
    """Per objective: the worst observed value plus 10 % of the observed range.

    For scoring finished fronts after the fact; a sweep's own reference point is fixed
    before its trials instead (_reference.py), since this one moves as trials arrive.

    Makes every observed non-dominated point contribute. Where all values are equal,
    10 % of the value's magnitude (or 1e-12 for zeros) is added instead.
    """
    points = np.asarray(points, dtype=float)
    worst, best = points.max(axis=0), points.min(axis=0)
    margin = 0.1 * (worst - best)
    flat = margin <= 0
    margin[flat] = np.maximum(0.1 * np.abs(worst[flat]), 1e-12)
    return worst + margin


@dataclass
class FrontSummary:
    """A sweep's Pareto front at its highest budget, and the hypervolume it reached."""

    objectives: list[str]
    budget: float | None  # the budget the front is taken at (None: full fidelity)
    front: list[Trial]  # non-dominated successful trials at that budget, sorted
    reference: ReferencePoint | None  # None until fixed (see _reference.py)
    hypervolume: float | None  # raw, in the objectives' units multiplied
    hypervolume_normalised: float | None  # share of the box [0, reference]
    history: list[dict[str, Any]]  # one row of hypervolume.csv per batch (HISTORY_COLUMNS)

    @property
    def reference_point(self) -> list[float] | None:
        return None if self.reference is None else self.reference.as_list(self.objectives)


# hypervolume.csv: after the last tell of each batch, in told order. wall_time_s counts from
# the first trial's start (pauses between resumed sessions included); search_energy_kwh sums
# the told trials' SEARCH_ENERGY_KEY metric (CodeCarbon's, where the task returns it).
HISTORY_COLUMNS = (
    "batch", "told_trials", "wall_time_s", "search_energy_kwh",
    "hypervolume", "hypervolume_normalised",
)  # fmt: skip
SEARCH_ENERGY_KEY = "energy/total_kwh"


def summarise(
    told: Sequence[Trial],
    objectives: Sequence[str],
    max_budget: float | None,
    reference: ReferencePoint | None,
) -> FrontSummary:
    """The Pareto front at the highest budget, and its hypervolume after each batch."""
    objectives = list(objectives)
    ok = [t for t in told if t.status == SUCCESS]
    at_top = [t for t in ok if max_budget is None or t.budget == max_budget]
    front: list[Trial] = []
    if at_top:
        mask = pareto_mask(_points(at_top, objectives))
        front = sorted(
            (t for t, m in zip(at_top, mask, strict=True) if m), key=_sort_key(objectives)
        )
    box = None if reference is None else reference.box_volume()
    ref = None if reference is None else np.array(reference.as_list(objectives))
    history: list[dict[str, Any]] = []
    top_ids = {t.trial_id for t in at_top}
    seen: list[Trial] = []
    start = min((_started(t) for t in told), default=None)
    energy = 0.0
    for i, trial in enumerate(told):
        energy += float(trial.metrics.get(SEARCH_ENERGY_KEY, 0.0) or 0.0)
        if trial.trial_id in top_ids:
            seen.append(trial)
        if i + 1 < len(told) and told[i + 1].batch == trial.batch:
            continue  # the batch goes on
        hv = hypervolume(_points(seen, objectives), ref) if seen and ref is not None else 0.0
        end = trial.told_at
        history.append(
            {
                "batch": trial.batch,
                "told_trials": i + 1,
                "wall_time_s": None if end is None or start is None else round(end - start, 3),
                "search_energy_kwh": energy,
                "hypervolume": hv,
                "hypervolume_normalised": None if box is None else hv / box,
            }
        )
    last = history[-1] if history and ref is not None else None
    return FrontSummary(
        objectives=objectives,
        budget=max_budget,
        front=front,
        reference=reference,
        hypervolume=None if last is None else last["hypervolume"],
        hypervolume_normalised=None if last is None else last["hypervolume_normalised"],
        history=history,
    )


def _started(trial: Trial) -> float:
    if trial.started_at is not None:
        return trial.started_at
    return (trial.told_at or 0.0) - (trial.duration or 0.0)


def _points(trials: Sequence[Trial], objectives: Sequence[str]) -> np.ndarray:
    return np.array([[t.objectives[k] for k in objectives] for t in trials], dtype=float)


def _sort_key(objectives: Sequence[str]) -> Any:
    return lambda t: tuple(t.objectives[k] for k in objectives)
