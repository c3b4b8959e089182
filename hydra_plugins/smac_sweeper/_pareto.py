"""Pareto front and hypervolume for minimisation, on an (n_points, n_objectives) array."""

from __future__ import annotations

import numpy as np


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

    Makes every observed non-dominated point contribute. Where all values are equal,
    10 % of the value's magnitude (or 1e-12 for zeros) is added instead.
    """
    points = np.asarray(points, dtype=float)
    worst, best = points.max(axis=0), points.min(axis=0)
    margin = 0.1 * (worst - best)
    flat = margin <= 0
    margin[flat] = np.maximum(0.1 * np.abs(worst[flat]), 1e-12)
    return worst + margin
