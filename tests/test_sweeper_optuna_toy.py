"""Sweeps with the Optuna algorithms (optuna_gp, optuna_tpe) on the toy app, in-process:
crashes, a sweep that only fails, parallel batches with joblib, the seed, a resume, and the
budget variable they refuse."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import yaml

from hydra_plugins.smac_sweeper._impl import SweepFailedError
from hydra_plugins.smac_sweeper._optuna import ALGORITHMS
from tests.toy_app.harness import calls, overrides, read_csv, read_journal, run_inprocess

TOY_OBJECTIVES = "hydra.sweeper.objectives=[val/error,emissions/total_g]"
# GPSampler's asks take seconds: cases that add nothing over TPE's are slow
WITH_SLOW_GP = ["optuna_tpe", pytest.param("optuna_gp", marks=pytest.mark.slow)]


def _rows_and_calls(sweep):
    rows = read_csv(sweep / "trials.csv")
    told = [r for r in read_journal(sweep) if r["event"] == "tell"]
    assert [int(r["trial_id"]) for r in rows] == list(range(len(rows))) and len(told) == len(rows)
    assert not (sweep / "smac3_output").exists()
    configs = [tuple(r[k] for k in ("x", "y", "opt", "momentum", "n", "shift_depth")) for r in rows]
    assert len(set(configs)) == len(configs)  # no configuration twice
    for call in calls(sweep):  # only active hyperparameters: momentum only for opt a, b
        has_momentum = any(o.startswith("momentum=") for o in call["overrides"])
        assert has_momentum == (call["opt"] in ("a", "b"))
        assert not any(o.startswith("++shift_depth") for o in call["overrides"])
    return rows, {r["trial_id"]: r for r in told}


@pytest.mark.parametrize("algorithm", WITH_SLOW_GP)
def test_a_crashing_trial_is_recorded_and_the_sweep_goes_on(tmp_path, algorithm):
    sweep = tmp_path / algorithm
    run_inprocess(
        overrides(
            sweep,
            algorithm,
            "hydra.sweeper.n_trials=6",
            "hydra.sweeper.n_initial_configs=3",
            TOY_OBJECTIVES,
            "fail=mixed",
            "hydra.sweeper.max_failure_rate=0.9",
        )
    )
    rows, told = _rows_and_calls(sweep)
    assert len(rows) == 6 and all(r["budget"] == "" for r in rows)
    assert rows[0]["x"] == "0.5" and rows[0]["n"] == "5"  # the default configuration first
    crashed = {r["n"]: r["error"] for r in rows if r["status"] == "crashed"}
    assert crashed and set(crashed) <= {"2", "3", "4"}
    messages = {"2": "toy failure at n=2", "3": "not a finite number", "4": "lacks objective"}
    assert all(messages[n] in error for n, error in crashed.items())
    assert all(r["status"] == "success" for r in rows if r["n"] not in ("2", "3", "4"))
    for row in rows:  # what Optuna was told: the crash cost is finite, val/error's is 1.0
        cost = told[int(row["trial_id"])]["cost"]
        assert len(cost) == 2 and all(np.isfinite(cost))
        if row["status"] == "crashed":
            assert cost[0] == 1.0
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["hypervolume"] > 0 and results["n_trials"]["total"] == 6
    assert results["reference_point"]["val/error"] == {"value": 1.0, "source": "configured"}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_sweep_that_only_fails_stops(tmp_path, algorithm):
    sweep = tmp_path / "fails"
    args = overrides(sweep, algorithm, "hydra.sweeper.n_trials=20", TOY_OBJECTIVES, "fail=always")
    with pytest.raises(SweepFailedError, match="5 of 5 trials crashed.*max_failure_rate=0.5"):
        run_inprocess(args)
    assert len([r for r in read_journal(sweep) if r["event"] == "tell"]) == 5


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_parallel_batches_with_the_joblib_launcher(tmp_path, algorithm):
    sweep = tmp_path / "joblib"
    run_inprocess(
        overrides(
            sweep,
            algorithm,
            "hydra.sweeper.n_trials=6",
            "hydra.sweeper.n_initial_configs=2",  # batch 2: the model asks with one pending
            "hydra.sweeper.n_workers=2",
            TOY_OBJECTIVES,
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "sleep=0.3",
        )
    )
    rows, _ = _rows_and_calls(sweep)
    assert Counter(r["batch"] for r in rows) == {"0": 2, "1": 2, "2": 2}
    assert [r["status"] for r in rows] == ["success"] * 6
    assert len({c["pid"] for c in calls(sweep)}) == 2


@pytest.mark.parametrize("algorithm", WITH_SLOW_GP)
def test_reproducible_from_the_seed(tmp_path, algorithm):
    tables = []
    for name in ("a", "b", "c"):
        seed = 1 if name == "c" else 0
        args = [TOY_OBJECTIVES, "hydra.sweeper.n_initial_configs=2", f"hydra.sweeper.seed={seed}"]
        run_inprocess(overrides(tmp_path / name, algorithm, "hydra.sweeper.n_trials=5", *args))
        rows = read_csv(tmp_path / name / "trials.csv")
        keep = ("x", "y", "opt", "momentum", "n", "shift_depth", "seed", "val/error")
        tables.append([[r[k] for k in keep] for r in rows])
    assert tables[0] == tables[1]  # trials 3, 4 come from the model
    assert tables[2][1:] != tables[0][1:]  # another seed, other trials (the default first)


def test_resume_continues_and_never_reruns(tmp_path):
    sweep = tmp_path / "resume"
    extra = [TOY_OBJECTIVES, "hydra.sweeper.n_initial_configs=3"]
    run_inprocess(overrides(sweep, "optuna_tpe", "hydra.sweeper.n_trials=4", *extra))
    run_inprocess(overrides(sweep, "optuna_tpe", "hydra.sweeper.n_trials=9", *extra))
    rows, _ = _rows_and_calls(sweep)  # 9 distinct configurations
    assert len(rows) == 9 and set(Counter(c["run_name"] for c in calls(sweep)).values()) == {1}
    assert len([r for r in read_journal(sweep) if r["event"] == "session"]) == 2


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_budget_variable_is_refused_in_one_line(tmp_path, algorithm):
    sweep = tmp_path / "bad"
    args = overrides(sweep, algorithm, TOY_OBJECTIVES, "hydra.sweeper.budget.variable=shift_depth")
    with pytest.raises(ValueError) as err:
        run_inprocess(args)
    assert str(err.value) == (
        f"hydra.sweeper.budget.variable='shift_depth' is invalid: must be null with "
        f"algorithm={algorithm}: Optuna's samplers run every trial at full fidelity (no "
        "Hyperband; smac or random take a budget)"
    )
    assert calls(sweep) == [] and not (sweep / "journal.jsonl").exists()


# multi_objective=hypervolume: TPE by the override (fast; the preset optuna_tpe_hv sets
# the same, test_sweeper_presets.py), GPSampler by its preset (slow)
HYPERVOLUME = [
    ("optuna_tpe", "hydra.sweeper.multi_objective=hypervolume"),
    pytest.param(
        "optuna_gp_hv", "hydra.sweeper.multi_objective=hypervolume", marks=pytest.mark.slow
    ),
]


@pytest.mark.parametrize(("preset", "mode"), HYPERVOLUME)
def test_hypervolume_mode_crashes_parallel_batches_and_the_reference(tmp_path, preset, mode):
    sweep = tmp_path / "hv"
    run_inprocess(
        overrides(
            sweep,
            preset,
            mode,
            "hydra.sweeper.n_trials=8",
            "hydra.sweeper.n_initial_configs=2",  # the model asks from trial 3, one pending
            "hydra.sweeper.n_workers=2",
            TOY_OBJECTIVES,
            "fail=mixed",
            "hydra.sweeper.max_failure_rate=0.9",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
        )
    )
    rows, told = _rows_and_calls(sweep)
    assert len(rows) == 8 and Counter(r["batch"] for r in rows) == {str(b): 2 for b in range(4)}
    assert rows[0]["x"] == "0.5" and rows[0]["n"] == "5"  # the default configuration first
    assert any(r["status"] == "crashed" for r in rows)
    assert all(len(t["cost"]) == 2 and all(np.isfinite(t["cost"])) for t in told.values())
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["hypervolume"] > 0 and results["n_trials"]["total"] == 8


@pytest.mark.parametrize(("preset", "mode"), HYPERVOLUME)
def test_hypervolume_mode_resumes_with_the_trials_of_the_uninterrupted_sweep(
    tmp_path, preset, mode
):
    """The weights and the proposal's sampler are seeded from the seed and the trial id,
    and the record holds inactive values at their defaults, as a rebuilt one does."""
    extra = [mode, TOY_OBJECTIVES, "hydra.sweeper.n_initial_configs=2"]
    run_inprocess(overrides(tmp_path / "whole", preset, "hydra.sweeper.n_trials=7", *extra))
    run_inprocess(overrides(tmp_path / "parts", preset, "hydra.sweeper.n_trials=4", *extra))
    run_inprocess(overrides(tmp_path / "parts", preset, "hydra.sweeper.n_trials=7", *extra))
    keep = ("x", "y", "opt", "momentum", "n", "shift_depth", "val/error")
    whole, parts = (
        [[r[k] for k in keep] for r in read_csv(tmp_path / name / "trials.csv")]
        for name in ("whole", "parts")
    )
    assert len(whole) == 7 and parts == whole  # trials 4-6 from the model, after the resume
    assert len({tuple(r[:6]) for r in whole}) == 7
