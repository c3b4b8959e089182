"""Pareto front, hypervolume and the sweep's output files, on synthetic trials."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import yaml

from hydra_plugins.smac_sweeper._outputs import write_all
from hydra_plugins.smac_sweeper._pareto import (
    default_reference_point,
    hypervolume,
    pareto_mask,
    summarise,
)
from hydra_plugins.smac_sweeper._reference import (
    ReferencePoint,
    changed_on_resume,
    resolve_reference,
)
from hydra_plugins.smac_sweeper._trials import CRASHED, SUCCESS, Trial
from tests.toy_app.harness import read_csv


def brute_force_front(points):
    """Non-dominated rows by the definition, pair by pair."""
    keep = []
    for i, p in enumerate(points):
        dominated = any(np.all(q <= p) and np.any(q < p) for j, q in enumerate(points) if j != i)
        keep.append(not dominated)
    return np.array(keep)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_pareto_mask_matches_brute_force(seed, dim):
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 6, size=(int(rng.integers(1, 30)), dim)).astype(float)  # ties
    np.testing.assert_array_equal(pareto_mask(points), brute_force_front(points))


def test_hypervolume_2d_by_hand():
    # front (1,4) (2,2) (3,1) under reference (5,5): strips 4*1 + 3*2 + 2*1 = 12;
    # (4,4) is dominated and (6,0) lies beyond the reference: neither adds anything
    points = np.array([[1, 4], [2, 2], [3, 1], [4, 4], [6, 0]], dtype=float)
    assert hypervolume(points, np.array([5.0, 5.0])) == pytest.approx(12.0)
    assert hypervolume(points[:1], np.array([5.0, 5.0])) == pytest.approx(4.0)
    assert hypervolume(np.array([[5.0, 1.0]]), np.array([5.0, 5.0])) == 0.0
    assert hypervolume(np.array([[0.2]]), np.array([1.0])) == pytest.approx(0.8)


def union_volume(points, reference):
    """Inclusion-exclusion over the boxes [p, reference]."""
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(points, k):
            corner = np.max(subset, axis=0)
            total += (-1) ** (k + 1) * np.prod(np.clip(reference - corner, 0, None))
    return total


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dim", [2, 3, 4])
def test_hypervolume_matches_inclusion_exclusion(seed, dim):
    rng = np.random.default_rng(seed)
    points = rng.random((8, dim))
    reference = np.full(dim, 1.1)
    assert hypervolume(points, reference) == pytest.approx(union_volume(points, reference))


def test_default_reference_point():
    points = np.array([[0.1, 3.0], [0.5, 1.0], [0.3, 3.0]])
    np.testing.assert_allclose(default_reference_point(points), [0.54, 3.2])
    np.testing.assert_allclose(default_reference_point(np.array([[2.0, 0.0]])), [2.2, 1e-12])


def _trial(i, budget, a, b, status=SUCCESS, **config):
    return Trial(
        trial_id=i,
        batch=i,
        config=config or {"x": i / 10},
        budget=budget,
        seed=7,
        budget_value=None if budget is None else int(budget),
        status=status,
        objectives={} if status == CRASHED else {"a": a, "b": b},
        metrics={} if status == CRASHED else {"a": a, "b": b, "acc": 1 - a},
        duration=0.5,
        job_dir=f"/sweep/{i}",
        error="Traceback ...\nRuntimeError: boom" if status == CRASHED else None,
    )


TRIALS = [
    _trial(0, 5.0, 0.1, 0.1),  # best of all, but at a low budget: not on the front
    _trial(1, 20.0, 0.3, 0.5),
    _trial(2, 20.0, 0.5, 0.2),
    _trial(3, 20.0, 0.6, 0.6),  # dominated
    _trial(4, 20.0, None, None, status=CRASHED),
    _trial(5, 10.0, 0.9, 0.9),
    _trial(6, 20.0, 0.2, 0.9, opt="sgd", momentum=0.5),
]


def test_summary_front_at_highest_budget():
    # the reference: a configured, b fixed at 2 x the default configuration's (trial 1's) b
    reference = resolve_reference(["a", "b"], {"a": 1.0}, TRIALS, {"x": 0.1})
    summary = summarise(TRIALS, ["a", "b"], 20.0, reference)
    assert [t.trial_id for t in summary.front] == [6, 1, 2]  # sorted by objective a
    assert summary.reference.source == {"a": "configured", "b": "2 x trial 1"}
    ref = summary.reference_point
    assert ref[0] == 1.0 and ref[1] == pytest.approx(2 * 0.5)
    points = np.array([[0.2, 0.9], [0.3, 0.5], [0.5, 0.2]])
    assert summary.hypervolume == pytest.approx(hypervolume(points, np.array(ref)))
    assert summary.hypervolume_normalised == pytest.approx(summary.hypervolume / (1.0 * 1.0))
    history = summary.history
    assert [row["told_trials"] for row in history] == list(range(1, len(TRIALS) + 1))
    assert history[0]["hypervolume"] == 0.0  # trial 0 is below the highest budget
    hvs = [row["hypervolume"] for row in history]
    assert all(b >= a for a, b in itertools.pairwise(hvs))


def test_reference_point_rules():
    # not yet fixed while the default configuration has not succeeded
    assert resolve_reference(["a", "b"], {"a": 1.0}, TRIALS[:1], {"x": 0.1}) is None
    # configured everywhere: fixed before any trial
    full = resolve_reference(["a", "b"], {"a": 1.0, "b": 3.0}, [], {"x": 0.1})
    assert full.values == {"a": 1.0, "b": 3.0} and full.box_volume() == 3.0
    # no default in the sweep: the first success; a sweep that is over falls back too
    assert resolve_reference(["a", "b"], {}, TRIALS, None).values == {"a": 0.2, "b": 0.2}
    over = resolve_reference(["a", "b"], {}, TRIALS, {"x": 9.0}, sweep_over=True)
    assert over.source == {"a": "2 x trial 0", "b": "2 x trial 0"}
    # a value <= 0 gets 1 added instead of being doubled; its box volume is then positive
    zero = [_trial(0, 20.0, 0.0, -0.5)]
    assert resolve_reference(["a", "b"], {}, zero, None).values == {"a": 1.0, "b": 0.5}
    assert ReferencePoint({"a": 0.0}, {"a": "configured"}).box_volume() is None
    # a resume with another configured reference keeps the journal's, naming what differs
    assert changed_on_resume(full, {"a": 1.0, "b": 4.0}) == ["b"]
    assert changed_on_resume(full, {"a": 1.0}) == []


REFERENCE = ReferencePoint({"a": 1.0, "b": 2.0}, {"a": "configured", "b": "2 x trial 1"})


def test_output_files(tmp_path):
    summary = summarise(TRIALS, ["a", "b"], 20.0, REFERENCE)
    write_all(tmp_path, TRIALS, summary, fidelity={"variable": "depth", "max": 20})

    rows = read_csv(tmp_path / "trials.csv")
    assert [r["trial_id"] for r in rows] == [str(t.trial_id) for t in TRIALS]
    assert list(rows[0])[:7] == ["trial_id", "status", "budget", "seed", "a", "b", "duration_s"]
    assert {"x", "opt", "momentum", "acc", "batch", "job_dir", "error"} <= set(rows[0])
    crashed = rows[4]
    assert crashed["status"] == "crashed" and crashed["a"] == "" and "boom" in crashed["error"]
    assert rows[6]["opt"] == "sgd" and rows[0]["opt"] == ""  # inactive: blank
    assert rows[1]["budget"] == "20" and rows[1]["seed"] == "7" and rows[1]["job_dir"] == "/sweep/1"

    assert rows[1]["budget_variable"] == "depth" and rows[6]["config_id"] == "6"
    assert rows[1]["told/a"] == ""  # never told SMAC (these trials carry no cost)

    history = read_csv(tmp_path / "hypervolume.csv")
    assert [int(r["told_trials"]) for r in history] == list(range(1, 8))
    assert float(history[-1]["hypervolume"]) == pytest.approx(summary.hypervolume)
    assert float(history[-1]["hypervolume_normalised"]) == pytest.approx(summary.hypervolume / 2)

    front = read_csv(tmp_path / "pareto.csv")
    assert [r["trial_id"] for r in front] == ["6", "1", "2"]
    assert "status" not in front[0] and float(front[1]["b"]) == 0.5

    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["name"] == "smac"
    assert [s["trial_id"] for s in results["solutions"]] == [6, 1, 2]
    assert results["solutions"][1] == {
        "trial_id": 1,
        "config_id": 1,
        "params": {"x": 0.1},
        "values": {"a": 0.3, "b": 0.5},
    }
    assert results["hypervolume"] == pytest.approx(summary.hypervolume)
    assert results["hypervolume_normalised"] == pytest.approx(summary.hypervolume / 2.0)
    assert results["reference_point"]["b"] == {"value": 2.0, "source": "2 x trial 1"}
    assert results["ideal_point"] == {"a": 0.0, "b": 0.0}
    assert results["budget"] == 20.0
    assert results["n_trials"] == {"total": 7, "success": 6, "crashed": 1, "pending": 0}

    png = (tmp_path / "pareto.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_single_objective_outputs(tmp_path):
    trials = [_trial(i, None, 0.5 - i / 10, 0.0) for i in range(4)]
    for t in trials:
        t.objectives = {"a": t.objectives["a"]}
    summary = summarise(trials, ["a"], None, ReferencePoint({"a": 1.0}, {"a": "configured"}))
    write_all(tmp_path, trials, summary)
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["best_params"] == {"x": 0.3} and results["best_value"] == pytest.approx(0.2)
    assert (tmp_path / "pareto.png").exists()


def test_outputs_before_any_success(tmp_path):
    trials = [_trial(0, 20.0, None, None, status=CRASHED)]
    summary = summarise(trials, ["a", "b"], 20.0, None)
    assert summary.front == [] and summary.hypervolume is None
    write_all(tmp_path, trials, summary)
    assert read_csv(tmp_path / "pareto.csv") == []
