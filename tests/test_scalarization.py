"""Random hypervolume scalarisations (hydra_plugins/smac_sweeper/_scalarization.py): the
formula, and Golovin & Zhang's identity that makes them aim at the hypervolume, checked
against the dominated share of the reference box counted independently (a 2-D sweep and
a Monte Carlo count in 3-D)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hydra_plugins.smac_sweeper._scalarization import hypervolume_scalarization, random_weights


def test_the_formula_in_the_scaled_box():
    # gaps to the reference in units of the reference: (1 - 0.2) and (100 - 10) / 100
    w = np.array([0.6, 0.8])
    assert hypervolume_scalarization([0.2, 10.0], [1.0, 100.0], w) == pytest.approx(
        min(0.8 / 0.6, 0.9 / 0.8)
    )
    # a point outside the box in one objective scores 0
    assert hypervolume_scalarization([1.2, 10.0], [1.0, 100.0], w) == 0.0
    # a reference <= 0 is not scaled
    assert hypervolume_scalarization([-1.0, 0.5], [0.0, 1.0], w) == pytest.approx(
        min(1.0 / 0.6, 0.5 / 0.8)
    )


def test_weights_lie_on_the_positive_unit_sphere_uniformly():
    rng = np.random.default_rng(0)
    w = np.array([random_weights(rng, 2) for _ in range(20000)])
    assert np.all(w > 0) and np.allclose(np.linalg.norm(w, axis=1), 1.0)
    angles = np.arctan2(w[:, 1], w[:, 0])  # uniform on (0, pi/2)
    assert np.histogram(angles, bins=4, range=(0, math.pi / 2))[0] / len(w) == pytest.approx(
        [0.25] * 4, abs=0.015
    )


def _share_2d(points: np.ndarray, reference: np.ndarray) -> float:
    """Dominated share of the box [0, reference], by a sweep over the first objective."""
    p = points[np.all(points < reference, axis=1)] / reference
    area, best = 0.0, 1.0
    for x, y in sorted(map(tuple, p)):
        if y < best:
            area += (1.0 - x) * (best - y)
            best = y
    return area


def _share_mc(points: np.ndarray, reference: np.ndarray, rng, n=400_000) -> float:
    u = rng.random((n, len(reference))) * reference
    dominated = np.zeros(n, dtype=bool)
    for p in points:
        dominated |= np.all(u >= p, axis=1)
    return float(dominated.mean())


@pytest.mark.parametrize("k", [2, 3])
def test_the_mean_scalarisation_is_the_hypervolume(k):
    """HV share = c_k * E_w[max_y s_w(y)^k], c_k = pi^(k/2) / (2^k Gamma(k/2 + 1))."""
    rng = np.random.default_rng(k)
    reference = np.array([1.0, 2.7, 50.0][:k])
    points = rng.random((12, k)) * reference * 0.9
    if k == 2:
        share = _share_2d(points, reference)
    else:
        share = _share_mc(points, reference, rng)
    weights = [random_weights(rng, k) for _ in range(15000)]
    best = [max(hypervolume_scalarization(p, reference, w) for p in points) for w in weights]
    c_k = math.pi ** (k / 2) / (2**k * math.gamma(k / 2 + 1))
    assert c_k * np.mean(np.array(best) ** k) == pytest.approx(share, rel=0.04)
