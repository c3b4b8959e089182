"""The Optuna adapter (algorithms optuna_gp, optuna_tpe): every search space gives valid active
configurations, each kind of hyperparameter is translated, the sampler's model (not its random
fallback) draws every hyperparameter, and a resume rebuilds the study. Sweeps on the toy app:
test_sweeper_optuna_toy.py."""

from __future__ import annotations

import time

import numpy as np
import optuna
import pytest
import yaml
from ConfigSpace import Configuration
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from optuna.trial import TrialState

from hydra_plugins.smac_sweeper._optimizer import Problem
from hydra_plugins.smac_sweeper._optuna import ALGORITHMS, OptunaOptimizer, make_sampler
from hydra_plugins.smac_sweeper._settings import load_settings
from hydra_plugins.smac_sweeper._space import build_space
from hydra_plugins.smac_sweeper._trials import CRASHED, SUCCESS, Trial
from hydra_plugins.smac_sweeper.config import SMACSweeperConf
from tests.toy_app.harness import ROOT

CONF = ROOT / "conf"
SPACES = sorted(p.stem for p in (CONF / "search_space").glob("*.yaml"))
TOY_SPACE = yaml.safe_load((ROOT / "tests/toy_app/conf/search_space/toy.yaml").read_text())


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
    if status == SUCCESS:
        trial.objectives = dict(zip(["a", "b"], cost, strict=True))
    return trial


# GPSampler's asks take seconds on a 12-dimensional space: its cases are slow
WITH_SLOW_GP = ["optuna_tpe", pytest.param("optuna_gp", marks=pytest.mark.slow)]
PRESETS = {"optuna_tpe": "optuna_tpe", "optuna_gp": "optuna_gp", "optuna_gp_hv": "optuna_gp",
           "optuna_tpe_hv": "optuna_tpe"}  # fmt: skip


@pytest.mark.parametrize(
    "preset",
    [*WITH_SLOW_GP, "optuna_tpe_hv", pytest.param("optuna_gp_hv", marks=pytest.mark.slow)],
)
@pytest.mark.parametrize("space_name", SPACES)
def test_every_search_space_gives_valid_active_configurations(tmp_path, preset, space_name):
    composed = _compose(
        f"hydra/sweeper={preset}", f"search_space@hydra.sweeper.search_space={space_name}"
    )
    settings, _ = load_settings(composed.hydra.sweeper)  # the settings check passes
    assert settings.algorithm == PRESETS[preset] and settings.budget.variable is None
    spec = OmegaConf.to_container(composed.hydra.sweeper.search_space, resolve=True)
    space = build_space(spec, seed=settings.seed)
    optimizer = _optimizer(  # 3 random
        space,
        tmp_path,
        settings.algorithm,
        n_initial_configs=2,
        multi_objective=settings.multi_objective,
    )
    assert optimizer.scalarize == preset.endswith("_hv")
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


def test_each_kind_of_hyperparameter_is_translated(tmp_path):
    spec = {
        "hyperparameters": {
            "lr": {"type": "float", "lower": 0.001, "upper": 0.1, "log": True, "default": 0.01},
            "width": {"type": "int", "lower": 4, "upper": 64, "log": True, "default": 8},
            "depth": {"type": "int", "lower": 0, "upper": 3, "default": 1},
            "opt": {"type": "categorical", "choices": ["sgd", "adam"], "default": "sgd"},
            "bits": {"type": "ordinal", "choices": [2, 4, 8], "default": 4},
            "mode": {"type": "constant", "value": "fast"},
        },
        "conditions": [{"child": "bits", "parent": "opt", "value": "adam"}],
    }
    space = build_space(spec, seed=0)
    optimizer = _optimizer(space, tmp_path, "optuna_tpe", n_initial_configs=2)
    dists = optimizer.distributions
    assert set(dists) == {"lr", "width", "depth", "opt", "bits"}  # a constant is not searched
    assert (dists["lr"].low, dists["lr"].high, dists["lr"].log) == (0.001, 0.1, True)
    assert (dists["width"].low, dists["width"].high, dists["width"].log) == (4, 64, True)
    assert not dists["depth"].log and dists["opt"].choices == ("sgd", "adam")
    assert (dists["bits"].low, dists["bits"].high) == (0, 2)  # the ordinal's index
    configs = []
    for i in range(8):
        suggestion = optimizer.ask(i)
        Configuration(space, values=suggestion.config)
        configs.append(suggestion.config)
        optimizer.tell([_told(i, suggestion, space)])
    assert configs[0] == {"lr": 0.01, "width": 8, "depth": 1, "opt": "sgd", "mode": "fast"}
    assert all(c["mode"] == "fast" for c in configs)
    assert all(("bits" in c) == (c["opt"] == "adam") for c in configs)
    assert {c["bits"] for c in configs if "bits" in c} <= {2, 4, 8}
    assert any("bits" in c for c in configs)
    trials = optimizer.study.get_trials(deepcopy=False)
    assert [t.params["bits"] for t in trials][0] == 1  # the default 4, inactive, as its index


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


def test_hypervolume_mode_takes_the_loops_reference(tmp_path):
    """Configured values first, else 2 x the default's trial, else (the default crashed) 2 x
    the first success; before any success the proposals are random and asking still works."""
    space = build_space(TOY_SPACE, seed=0)
    optimizer = _optimizer(
        space, tmp_path, "optuna_tpe", n_initial_configs=2, multi_objective="hypervolume",
        reference_point={"a": 1.5},
    )  # fmt: skip
    assert optimizer.scalarize
    first = optimizer.ask(0)  # the default
    assert optimizer._reference() is None
    optimizer.tell([_told(0, first, space, status=CRASHED)])
    assert optimizer._reference() is None  # no success yet
    second = optimizer.ask(1)
    trial = _told(1, second, space)
    optimizer.tell([trial])
    assert optimizer._reference() == [1.5, pytest.approx(2 * trial.cost[1])]
    for i in range(2, 5):  # the model proposes from trial 3 on
        suggestion = optimizer.ask(i)
        Configuration(space, values=suggestion.config)
        optimizer.tell([_told(i, suggestion, space)])
    assert [t.state for t in optimizer.study.get_trials(deepcopy=False)] == [
        TrialState.COMPLETE
    ] * 5
