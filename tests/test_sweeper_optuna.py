"""The Optuna adapter (algorithms optuna_gp, optuna_tpe): every search space gives valid active
configurations, the sampler's model (not its random fallback) draws every hyperparameter,
a resume rebuilds the study, and toy sweeps with crashes, parallel batches and a seed."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import optuna
import pytest
import yaml
from ConfigSpace import Configuration
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from optuna.trial import TrialState

from hydra_plugins.smac_sweeper._impl import SweepFailedError
from hydra_plugins.smac_sweeper._optimizer import Problem
from hydra_plugins.smac_sweeper._optuna import ALGORITHMS, OptunaOptimizer, make_sampler
from hydra_plugins.smac_sweeper._settings import load_settings
from hydra_plugins.smac_sweeper._space import build_space
from hydra_plugins.smac_sweeper._trials import CRASHED, SUCCESS, Trial
from hydra_plugins.smac_sweeper.config import SMACSweeperConf
from tests.toy_app.harness import ROOT, calls, overrides, read_csv, read_journal, run_inprocess

CONF = ROOT / "conf"
SPACES = sorted(p.stem for p in (CONF / "search_space").glob("*.yaml"))
TOY_SPACE = yaml.safe_load((ROOT / "tests/toy_app/conf/search_space/toy.yaml").read_text())
TOY_OBJECTIVES = "hydra.sweeper.objectives=[val/error,emissions/total_g]"


def _compose(*overrides_: str):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("config", overrides=list(overrides_), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def _optimizer(space, tmp_path, algorithm, **settings) -> OptunaOptimizer:
    problem = Problem(
        space=space,
        objectives=["a", "b"],
        seed=3,
        budgets=[],
        n_trials=20,
        sweep_dir=tmp_path,
    )
    return OptunaOptimizer(problem, SMACSweeperConf(algorithm=algorithm, **settings))


def _told(trial_id, suggestion, space, status=SUCCESS) -> Trial:
    """A told trial with a cost made from the configuration (two conflicting objectives)."""
    vector = Configuration(space, values=suggestion.config).get_array()
    cost = [float(np.nansum(vector)), float(np.nansum(1 - vector))]
    trial = Trial(trial_id, trial_id, suggestion.config, None, suggestion.seed, status=status)
    trial.cost, trial.told_at = cost, time.time()
    return trial


# GPSampler's asks take seconds on a 12-dimensional space: its cases are slow
WITH_SLOW_GP = ["optuna_tpe", pytest.param("optuna_gp", marks=pytest.mark.slow)]


@pytest.mark.parametrize("algorithm", WITH_SLOW_GP)
@pytest.mark.parametrize("space_name", SPACES)
def test_every_search_space_gives_valid_active_configurations(tmp_path, algorithm, space_name):
    composed = _compose(
        f"hydra/sweeper={algorithm}", f"search_space@hydra.sweeper.search_space={space_name}"
    )
    settings, _ = load_settings(composed.hydra.sweeper)  # the settings check passes
    assert settings.algorithm == algorithm and settings.budget.variable is None
    spec = OmegaConf.to_container(composed.hydra.sweeper.search_space, resolve=True)
    space = build_space(spec, seed=settings.seed)
    optimizer = _optimizer(space, tmp_path, algorithm, n_initial_configs=2)  # 3 random
    configs = []
    for i in range(4):  # the default, two random, one from the model
        suggestion = optimizer.ask(i)
        assert suggestion.budget is None and suggestion.seed == 3
        # exactly the active hyperparameters, each legal (ConfigSpace checks both)
        Configuration(space, values=suggestion.config)
        has_momentum = "optimizer.momentum" in suggestion.config
        assert has_momentum == (suggestion.config["optimizer"] in ("sgd", "rmsprop"))
        configs.append(suggestion.config)
        optimizer.tell([_told(i, suggestion, space)])
    assert configs[0] == dict(space.get_default_configuration())
    assert len({tuple(sorted(c.items())) for c in configs}) == 4
    # the study holds every hyperparameter of every trial, active or not
    study_trials = optimizer.study.get_trials(deepcopy=False)
    assert all(set(t.params) == set(space.keys()) for t in study_trials)
    assert [t.state for t in study_trials] == [TrialState.COMPLETE] * 4


def _spy_on_fallback(monkeypatch, sampler) -> list[tuple[int, str, int]]:
    """(trial number, parameter, complete trials) of each draw by the sampler's
    independent (fallback) path."""
    seen = []
    original = sampler.sample_independent

    def spy(study, trial, name, distribution):
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        seen.append((trial.number, name, done))
        return original(study, trial, name, distribution)

    monkeypatch.setattr(sampler, "sample_independent", spy)
    return seen


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_model_not_the_fallback_samples_every_parameter(tmp_path, monkeypatch, algorithm):
    space = build_space(TOY_SPACE, seed=0)  # momentum only for opt a, b
    optimizer = _optimizer(space, tmp_path, algorithm, n_initial_configs=2)  # 3 random
    suggestions = [optimizer.ask(0)]
    fallback = _spy_on_fallback(monkeypatch, optimizer.study.sampler)
    optimizer.tell([_told(0, suggestions[0], space)])
    for i in range(1, 5):  # 3 random, then 2 from the model
        suggestions.append(optimizer.ask(i))
        optimizer.tell([_told(i, suggestions[-1], space)])
    assert any("momentum" not in s.config for s in suggestions)  # the condition held
    assert {name for _, name, done in fallback if done < 3} == set(space.keys())  # the startup
    assert [f for f in fallback if f[2] >= 3] == []  # after it: the model draws everything
    study, last = optimizer.study, optimizer.study.get_trials(deepcopy=False)[-1]
    assert set(study.sampler.infer_relative_search_space(study, last)) == set(space.keys())

    # the same sampler on a dynamic space (momentum suggested only when active) falls back
    control = optuna.create_study(
        directions=["minimize", "minimize"], sampler=make_sampler(algorithm, 3, 3)
    )
    fallback = _spy_on_fallback(monkeypatch, control.sampler)
    for i in range(5):  # trial 0 without momentum (opt c); trials 3, 4 with it (opt a)
        if i in (0, 3, 4):
            control.enqueue_trial({"opt": "c" if i == 0 else "a"})
        trial = control.ask()
        opt = trial.suggest_categorical("opt", ["a", "b", "c"])
        x = trial.suggest_float("x", 0.0, 1.0)
        momentum = trial.suggest_float("momentum", 0.0, 0.9) if opt in ("a", "b") else 0.0
        control.tell(trial, [x + momentum, 1 - x])
    assert {name for _, name, done in fallback if done >= 3} == {"momentum"}


def test_restore_rebuilds_the_study_from_the_journal(tmp_path):
    """Killed inside the random initial design (10 trials): the resumed sweep draws new
    configurations (its sampler is seeded from the journal; a fresh sampler with the
    sweep's seed would replay trial 1)."""
    space = build_space(TOY_SPACE, seed=0)
    first = _optimizer(space, tmp_path, "optuna_tpe", n_initial_configs=9)
    trials = []
    for i in range(5):
        suggestion = first.ask(i)
        trials.append(_told(i, suggestion, space, status=CRASHED if i == 3 else SUCCESS))
    told = trials[:4]  # trial 4 was running when the sweep was killed
    first.tell(told)

    def rebuilt() -> OptunaOptimizer:
        again = _optimizer(space, tmp_path, "optuna_tpe", n_initial_configs=9)
        for trial in trials:
            again.register(trial)
        again.tell(told)
        again.restore(None)
        return again

    second = rebuilt()
    study = second.study.get_trials(deepcopy=False)
    assert [t.state for t in study] == [TrialState.COMPLETE] * 4 + [TrialState.RUNNING]
    assert [t.values for t in study[:4]] == [t.cost for t in told]  # crash cost included
    for trial, frozen in zip(trials, study, strict=True):
        assert {k: frozen.params[k] for k in trial.config} == trial.config
        if "momentum" not in trial.config:  # inactive: its default
            assert frozen.params["momentum"] == pytest.approx(0.9)
    assert trials[0].config == dict(space.get_default_configuration())
    following = second.ask(5)
    assert following.config not in [t.config for t in trials]
    assert rebuilt().ask(5) == following  # seeded from the journal
    second.tell([trials[4]])  # the re-launched trial
    assert second.study.get_trials(deepcopy=False)[4].state == TrialState.COMPLETE


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
