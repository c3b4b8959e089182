"""Random hypervolume scalarisations (Golovin & Zhang 2020, "Random Hypervolume
Scalarizations for Provable Multi-Objective Black Box Optimization"): one scalar per trial
that an optimiser of one objective can maximise, aimed at the hypervolume of the sweep's
own reference box.

For costs y (minimised, ideal point 0), reference r and a weight vector w on the positive
unit sphere:

    s_w(y) = min_i max(0, (r_i - y_i) / r_i) / w_i

The box [0, r] is scaled to the unit box first, so the objectives count as the reference
says and not as their observed spread does. The hypervolume of a set of points is, up to a
constant, the mean over w of max_y s_w(y)^k (k objectives), so a search that maximises s_w
for a fresh w at each trial maximises the hypervolume in expectation. Where the reference
makes one objective cheap to improve (energy far below its bound), s_w is decided by the
other for most w: the search goes where the hypervolume grows. Optuna's own multi-objective
samplers standardise each objective and take 1.1 x the worst observed value as their
reference (optuna/_gp/acqf.py), so they weigh the objectives by their observed spread.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def random_weights(rng: np.random.Generator, n_objectives: int) -> np.ndarray:
    """A weight vector uniform on the positive part of the unit sphere."""
    w = np.abs(rng.standard_normal(n_objectives))
    while not np.all(w > 0):  # a zero weight has probability 0; redraw it anyway
        w = np.abs(rng.standard_normal(n_objectives))
    return w / np.linalg.norm(w)


def hypervolume_scalarization(
    cost: Sequence[float], reference: Sequence[float], weights: Sequence[float]
) -> float:
    """s_w(cost) in the reference box scaled to the unit box (a reference <= 0 is not
    scaled: its objective's distance to the reference counts as it is)."""
    y, r, w = (np.asarray(v, dtype=float) for v in (cost, reference, weights))
    scale = np.where(r > 0, r, 1.0)
    gap = np.maximum(0.0, (r - y) / scale)
    return float(np.min(gap / w))
