"""The sweeper presets compose with train.py's config, and the override strings a trial
gets from the Table 1 search space compose into the config they describe."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from hydra_plugins.smac_sweeper._budget import hyperband_stages
from hydra_plugins.smac_sweeper._overrides import trial_overrides
from hydra_plugins.smac_sweeper._space import build_space, to_python
from hydra_plugins.smac_sweeper.config import BudgetConf, SMACSweeperConf
from tests.toy_app.harness import ROOT

CONF = ROOT / "conf"
PRESETS = {
    "smac_mf": (["val/error"], "smac", "shift_depth"),
    "smac_mfmo": (["val/error", "emissions/total_g"], "smac", "shift_depth"),
    "smac_mo": (["val/error", "emissions/total_g"], "smac", None),
    "random": (["val/error", "emissions/total_g"], "random", None),
    "optuna_gp": (["val/error", "energy/model_uj_per_image"], "optuna_gp", None),
    "optuna_tpe": (["val/error", "energy/model_uj_per_image"], "optuna_tpe", None),
    "optuna_gp_hv": (["val/error", "energy/model_uj_per_image"], "optuna_gp", None),
    "optuna_tpe_hv": (["val/error", "energy/model_uj_per_image"], "optuna_tpe", None),
    "gp_ehvi": (["val/error", "energy/model_uj_per_image"], "gp_ehvi", None),
}


def _compose(*overrides: str):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("config", overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


# Every key each preset sets on top of the plugin's schema (config.SMACSweeperConf) and the
# Table 1 search space: the composed hydra.sweeper must be exactly this.
SHARED = {
    "n_trials": 50,
    "n_workers": 1,
    "crash_cost": {"val/error": 1.0},
    "reference_point": {"val/error": 1.0},
}
SHIFT_DEPTH_BUDGET = {"variable": "shift_depth", "min": 5, "max": 20, "eta": 2}
PRESET_KEYS = {
    "smac_mfmo": {
        "objectives": ["val/error", "emissions/total_g"],
        "algorithm": "smac",
        "multi_objective": "parego",
        "intensifier": "hyperband",
        "budget": SHIFT_DEPTH_BUDGET,
    },
    "smac_mf": {
        "objectives": ["val/error"],
        "algorithm": "smac",
        "intensifier": "hyperband",
        "budget": SHIFT_DEPTH_BUDGET,
    },
    "smac_mo": {
        "objectives": ["val/error", "emissions/total_g"],
        "algorithm": "smac",
        "multi_objective": "parego",
        "budget": {"variable": None},
    },
    "random": {
        "objectives": ["val/error", "emissions/total_g"],
        "algorithm": "random",
        "budget": {"variable": None},
    },
    **{
        name: {
            "objectives": ["val/error", "energy/model_uj_per_image"],
            "algorithm": name,
            "intensifier": "pareto_promotion",
            "budget": {"variable": None},
        }
        for name in ("optuna_gp", "optuna_tpe")
    },
    **{
        f"{name}_hv": {
            "objectives": ["val/error", "energy/model_uj_per_image"],
            "algorithm": name,
            "multi_objective": "hypervolume",
            "intensifier": "pareto_promotion",
            "budget": {"variable": None},
            **({"n_initial_configs": 3} if name == "optuna_tpe" else {}),
        }
        for name in ("optuna_gp", "optuna_tpe")
    },
    "gp_ehvi": {
        "objectives": ["val/error", "energy/model_uj_per_image"],
        "algorithm": "gp_ehvi",
        "known_objectives": [
            {
                "objective": "energy/model_uj_per_image",
                "function": "dsnn.energy.analytic.config_energy_uj",
            }
        ],
        "search_cost": "energy/total_kwh",
        "n_initial_configs": 3,
        "budget": {"variable": None},
    },
}


@pytest.mark.parametrize("preset", sorted(PRESET_KEYS))
def test_preset_is_the_schema_plus_its_keys(preset):
    composed = _compose(f"hydra/sweeper={preset}")
    table1 = OmegaConf.load(CONF / "search_space" / "table1.yaml")
    expected = OmegaConf.merge(
        OmegaConf.structured(SMACSweeperConf),
        {"search_space": table1},
        SHARED,
        PRESET_KEYS[preset],
    )
    assert OmegaConf.to_container(composed.hydra.sweeper) == OmegaConf.to_container(expected)
    assert composed.hydra.runtime.choices["hydra/sweeper"] == preset


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_composes(preset):
    sweeper = _compose(f"hydra/sweeper={preset}").hydra.sweeper
    objectives, algorithm, budget = PRESETS[preset]
    assert sweeper._target_ == "hydra_plugins.smac_sweeper.smac_sweeper.SMACSweeper"
    assert list(sweeper.objectives) == objectives
    assert sweeper.algorithm == algorithm and sweeper.budget.variable == budget
    assert len(sweeper.search_space.hyperparameters) == 12  # Table 1
    if budget:
        assert hyperband_stages(sweeper.budget) == [5.0, 10.0, 20.0]
        assert sweeper.multi_objective == "parego" or len(objectives) == 1


def test_search_space_can_be_swapped():
    sweeper = _compose("hydra/sweeper=smac_mfmo", "search_space@hydra.sweeper.search_space=demo")
    assert "trainer.max_epochs" in sweeper.hydra.sweeper.search_space.hyperparameters


@pytest.mark.parametrize(
    "budget, stages",
    [
        ({"min": 5, "max": 20, "eta": 2}, [5.0, 10.0, 20.0]),
        ({"min": 1, "max": 27, "eta": 3}, [1.0, 3.0, 9.0, 27.0]),
        ({"min": 0.25, "max": 1.0, "eta": 2}, [0.25, 0.5, 1.0]),
        ({"min": 10, "max": 100, "eta": 3}, [100 / 9, 100 / 3, 100.0]),  # rounded for ints
    ],
)
def test_budget_stages(budget, stages):
    assert hyperband_stages(BudgetConf(variable="x", **budget)) == pytest.approx(stages)


def test_every_optimizer_choice_is_a_config_option():
    space = OmegaConf.to_container(_compose("hydra/sweeper=smac_mfmo").hydra.sweeper.search_space)
    for choice in space["hyperparameters"]["optimizer"]["choices"]:
        assert (CONF / "optimizer" / f"{choice}.yaml").exists(), choice


def test_table1_trial_overrides_compose_into_train_config():
    sweeper = _compose("hydra/sweeper=smac_mfmo").hydra.sweeper
    spec = OmegaConf.to_container(sweeper.search_space, resolve=True)
    space = build_space(spec, remove={"shift_depth": None}, seed=5)
    configs = [space.get_default_configuration(), *space.sample_configuration(11)]
    seen = set()
    for i, sample in enumerate(configs):
        config = {k: to_python(v) for k, v in sample.items()}
        extra = {"shift_depth": 10, "seed": 7, "run_group": "g", "run_name": f"t{i}-b10"}
        cfg = _compose(*trial_overrides([], config, extra))
        assert cfg.shift_depth == 10 and cfg.seed == 7 and cfg.run_name == f"t{i}-b10"
        for key, value in config.items():
            if key == "optimizer":
                target = cfg.optimizer._target_.rsplit(".", 1)[-1].lower()
                assert target == value, (target, value)
                seen.add(value)
            else:
                assert OmegaConf.select(cfg, key) == pytest.approx(value), key
        if config["optimizer"] in ("sgd", "rmsprop"):
            assert cfg.optimizer.momentum == pytest.approx(config["optimizer.momentum"])
    assert len(seen) >= 3


def test_epochs_preset_continues_epochs_and_searches_the_shift_depth():
    composed = _compose("hydra/sweeper=smac_mfmo_epochs")
    table1 = OmegaConf.to_container(OmegaConf.load(CONF / "search_space" / "table1.yaml"))
    del table1["hyperparameters"]["trainer.max_epochs"]  # the budget
    # plus DeepShift-PS's learning-rate factor of shifts and signs (not in the paper)
    table1["hyperparameters"]["shift_lr_scale"] = {
        "type": "float", "lower": 1.0, "upper": 100.0, "log": True, "default": 10.0,
    }  # fmt: skip
    table1["conditions"].append(
        {"child": "shift_lr_scale", "parent": "quantization.shift_type", "values": ["PS"]}
    )
    expected = OmegaConf.merge(
        OmegaConf.structured(SMACSweeperConf),
        {"search_space": table1},
        SHARED,
        PRESET_KEYS["smac_mfmo"],
        {
            "objectives": ["val/error", "energy/model_uj_per_image"],
            "budget": {"variable": "trainer.max_epochs", "min": 1, "max": 9, "eta": 3},
        },
        {"budget": {"continuation": True}},
    )
    sweeper = composed.hydra.sweeper
    assert OmegaConf.to_container(sweeper) == OmegaConf.to_container(expected)
    assert hyperband_stages(sweeper.budget) == [1.0, 3.0, 9.0]
    assert sweeper.search_space.hyperparameters.shift_depth.upper == 20
    demo = _compose(
        "hydra/sweeper=smac_mfmo_epochs", "search_space@hydra.sweeper.search_space=demo_epochs"
    )
    space = OmegaConf.to_container(demo.hydra.sweeper.search_space.hyperparameters)
    demo_space = OmegaConf.load(CONF / "search_space" / "demo.yaml").hyperparameters
    assert set(space) == set(demo_space) - {"trainer.max_epochs"}
    # the paper preset is unchanged: Hyperband on the shift depth, no continuation
    assert _compose("hydra/sweeper=smac_mfmo").hydra.sweeper.budget.continuation is False


def test_tpe_hv_epochs_preset_promotes_on_the_epochs_with_continuation():
    from hydra_plugins.smac_sweeper._settings import load_settings

    sweeper = _compose("hydra/sweeper=optuna_tpe_hv_epochs").hydra.sweeper
    settings, _ = load_settings(sweeper)  # the settings check passes
    assert (settings.algorithm, settings.multi_objective) == ("optuna_tpe", "hypervolume")
    assert settings.intensifier == "pareto_promotion" and settings.n_initial_configs == 3
    assert settings.budget.variable == "trainer.max_epochs" and settings.budget.continuation
    assert hyperband_stages(settings.budget) == [1.0, 3.0, 9.0]
    epochs = OmegaConf.load(CONF / "search_space" / "epochs.yaml")
    assert OmegaConf.to_container(sweeper.search_space) == OmegaConf.to_container(epochs)


def test_tpe_hv_asha_preset_promotes_by_contribution_and_trains_each_stage_afresh():
    from hydra_plugins.smac_sweeper._settings import load_settings

    sweeper = _compose("hydra/sweeper=optuna_tpe_hv_asha").hydra.sweeper
    settings, _ = load_settings(sweeper)  # the settings check passes
    assert (settings.algorithm, settings.multi_objective) == ("optuna_tpe", "hypervolume")
    assert settings.intensifier == "hv_promotion" and settings.n_initial_configs == 3
    assert settings.budget.variable == "trainer.max_epochs" and not settings.budget.continuation
    assert hyperband_stages(settings.budget) == [1.0, 3.0, 9.0]


def test_tpe_hv_screen_preset_goes_from_one_epoch_to_nine_as_the_study_ran_it():
    from benchmarks.search_efficiency import METHODS
    from hydra_plugins.smac_sweeper._budget import make_budget
    from hydra_plugins.smac_sweeper._settings import load_settings

    composed = _compose("hydra/sweeper=optuna_tpe_hv_screen", "schedule_interval=step")
    settings, _ = load_settings(composed.hydra.sweeper)  # the settings check passes
    assert (settings.algorithm, settings.multi_objective) == ("optuna_tpe", "hypervolume")
    assert settings.intensifier == "hv_promotion" and settings.search_cost is None
    assert settings.budget.variable == "trainer.max_epochs" and not settings.budget.continuation
    assert make_budget(settings.budget, composed).stages == [1.0, 9.0]
    assert settings.budget.eta == 4 and settings.n_initial_configs == 3
    assert settings.interleave_random == 0.2
    assert settings.budget.low_fidelity == {"data.val_fraction": 0.1}
    # the study's method tpe_hv_screen_val10 is this preset
    studied = _compose(*METHODS["tpe_hv_screen_val10"], "schedule_interval=step").hydra.sweeper
    assert OmegaConf.to_container(studied) == OmegaConf.to_container(composed.hydra.sweeper)
    demo = _compose(  # make demo's shorter ladder
        "hydra/sweeper=optuna_tpe_hv_screen",
        "hydra.sweeper.budget.max=3",
        "hydra.sweeper.budget.stages=[1,3]",
    )
    demo_settings, _ = load_settings(demo.hydra.sweeper)
    assert make_budget(demo_settings.budget, demo).stages == [1.0, 3.0]


@pytest.mark.parametrize(
    ("overrides", "warns"),
    [
        (["hydra/sweeper=optuna_tpe_hv_asha"], True),
        (["hydra/sweeper=optuna_tpe_hv_screen"], True),
        (["hydra/sweeper=optuna_tpe_hv_asha", "schedule_interval=step"], False),
        (["hydra/sweeper=optuna_tpe_hv_epochs"], False),  # continued: one schedule
        (["hydra/sweeper=smac_mfmo"], False),  # the shift depth
    ],
)
def test_epoch_stages_trained_afresh_per_epoch_get_a_warning(caplog, overrides, warns):
    from hydra_plugins.smac_sweeper._settings import check_against_app, load_settings

    composed = _compose(*overrides)
    settings, _ = load_settings(composed.hydra.sweeper)
    with caplog.at_level("WARNING", logger="hydra_plugins.smac_sweeper._settings"):
        check_against_app(settings, composed)
    assert ("add schedule_interval=step" in caplog.text) is warns
