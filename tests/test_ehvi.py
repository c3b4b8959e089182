"""The expected hypervolume improvement of _ehvi.py against independent references: with
every objective known, the exact hypervolume gain (a set's hypervolume with and without
the point); with modelled ones, a Monte Carlo mean of that gain over Gaussian samples."""

from __future__ import annotations

import numpy as np
import pytest

from hydra_plugins.smac_sweeper._ehvi import expected_hvi, expected_improvement
from hydra_plugins.smac_sweeper._pareto import hypervolume

REFERENCE = np.array([1.0, 2.0])


def _gain(front: np.ndarray, point: np.ndarray, reference: np.ndarray) -> float:
    before = hypervolume(front, reference) if len(front) else 0.0
    return hypervolume(np.vstack([front, point]), reference) - before


def _monte_carlo(front, mean, std, reference, rng, n=20000) -> float:
    samples = mean + std * rng.standard_normal((n, len(mean)))
    base = hypervolume(front, reference) if len(front) else 0.0
    # a sample's gain: the area its box adds, on a grid-free exact sweep per sample
    gains = [hypervolume(np.vstack([front, s]), reference) - base for s in samples[:4000]]
    return float(np.mean(gains))


def test_expected_improvement_matches_sampling_and_the_noiseless_limit():
    rng = np.random.default_rng(0)
    y = 0.3 + 0.2 * rng.standard_normal(400_000)
    assert expected_improvement(0.4, 0.3, 0.2) == pytest.approx(
        np.maximum(0.4 - y, 0).mean(), rel=5e-3
    )
    assert np.allclose(expected_improvement(np.array([0.4, 0.1]), 0.3, 0.0), [0.1, 0.0])


@pytest.mark.parametrize("seed", range(5))
def test_with_both_objectives_known_it_is_the_exact_hypervolume_gain(seed):
    rng = np.random.default_rng(seed)
    front = rng.uniform(0, 1, (8, 2)) * REFERENCE
    candidates = rng.uniform(-0.1, 1.1, (30, 2)) * REFERENCE  # some outside the box
    got = expected_hvi(front, REFERENCE, candidates, np.zeros_like(candidates))
    want = [_gain(front, c, REFERENCE) for c in candidates]
    assert got == pytest.approx(want, abs=1e-12)
    assert np.all(got >= 0) and np.any(got > 0) and np.any(got == 0)


@pytest.mark.parametrize("known_axis", [0, 1])
def test_one_known_objective_is_exact_in_the_other_ones_expectation(known_axis):
    """The analytic-energy case: the energy known, the error Gaussian (on either axis)."""
    rng = np.random.default_rng(1)
    front = np.array([[0.2, 1.5], [0.4, 0.8], [0.7, 0.3], [0.5, 1.9]])  # one dominated
    for _ in range(4):
        mean = rng.uniform(0.1, 0.9, 2) * REFERENCE
        std = np.zeros(2)
        std[1 - known_axis] = 0.15 * REFERENCE[1 - known_axis]
        got = expected_hvi(front, REFERENCE, mean[None], std[None])[0]
        want = _monte_carlo(front, mean, std, REFERENCE, rng)
        assert got == pytest.approx(want, rel=0.05, abs=2e-3)


def test_two_modelled_objectives_average_the_first_over_quantiles():
    rng = np.random.default_rng(2)
    front = np.array([[0.3, 1.2], [0.6, 0.5]])
    mean, std = np.array([0.45, 0.9]), np.array([0.1, 0.3])
    got = expected_hvi(front, REFERENCE, mean[None], std[None])[0]
    assert got == pytest.approx(_monte_carlo(front, mean, std, REFERENCE, rng), rel=0.05)


def test_an_empty_front_gains_the_points_box_and_one_objective_is_expected_improvement():
    point = np.array([[0.25, 0.5]])
    assert expected_hvi(np.empty((0, 2)), REFERENCE, point, np.zeros((1, 2)))[0] == (
        pytest.approx(0.75 * 1.5)
    )
    got = expected_hvi(np.array([[0.4], [0.6]]), np.array([1.0]), [[0.3], [0.5]], [[0.0], [0.1]])
    assert got == pytest.approx([0.1, float(expected_improvement(0.4, 0.5, 0.1))])


def test_three_objectives_are_refused():
    with pytest.raises(ValueError, match="1 or 2 objectives"):
        expected_hvi(np.zeros((1, 3)), np.ones(3), np.zeros((1, 3)), np.zeros((1, 3)))


def test_a_log_normal_objective_matches_sampling():
    rng = np.random.default_rng(3)
    y = np.exp(np.log(0.3) + 0.5 * rng.standard_normal(400_000))
    got = expected_improvement(0.35, np.log(0.3), 0.5, log=True)
    assert got == pytest.approx(np.maximum(0.35 - y, 0).mean(), rel=5e-3)
    assert expected_improvement(-0.1, 0.0, 1.0, log=True) == 0.0  # below 0: unreachable
    front = np.array([[0.2, 1.5], [0.4, 0.8], [0.7, 0.3]])
    for log in ((False, True), (True, False)):
        known = 0 if log[1] else 1
        mean = np.array([0.5, 0.6])
        std = np.zeros(2)
        mean[1 - known], std[1 - known] = np.log(mean[1 - known]), 0.4
        got = expected_hvi(front, REFERENCE, mean[None], std[None], log)[0]
        samples = mean.copy() + np.zeros((4000, 2))
        samples[:, 1 - known] = np.exp(mean[1 - known] + 0.4 * rng.standard_normal(4000))
        base = hypervolume(front, REFERENCE)
        want = np.mean([hypervolume(np.vstack([front, p]), REFERENCE) - base for p in samples])
        assert got == pytest.approx(want, rel=0.05, abs=2e-3)
