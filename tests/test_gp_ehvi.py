"""algorithm=gp_ehvi and known_objectives: the known objectives equal what the trials
report (the toy's emissions; DeepShift-Q's analytic energy against a trained network's),
composing once per config-group choice equals Hydra's full composition, the settings are
checked in one line, and sweeps on the toy app: the model's proposals use the known
objective and the cost, crashes, parallel batches with joblib, the seed, an exact resume.
Its kill -9 resume: test_sweeper_resume.py; every search space: below."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
import yaml
from ConfigSpace import Configuration
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from hydra_plugins.smac_sweeper._gp_ehvi import GPEHVIOptimizer
from hydra_plugins.smac_sweeper._known import KnownObjectives, resolve_function
from hydra_plugins.smac_sweeper._optimizer import Problem
from hydra_plugins.smac_sweeper._overrides import trial_overrides
from hydra_plugins.smac_sweeper._settings import load_settings
from hydra_plugins.smac_sweeper._space import build_space, to_python
from hydra_plugins.smac_sweeper._trials import SUCCESS, Trial
from hydra_plugins.smac_sweeper.config import SMACSweeperConf
from tests.toy_app.harness import ROOT, calls, overrides, read_csv, read_journal, run_inprocess
from tests.toy_app.toy import known_emissions

CONF = ROOT / "conf"
SPACES = sorted(p.stem for p in (CONF / "search_space").glob("*.yaml"))
TOY = [
    "hydra.sweeper.objectives=[val/error,emissions/total_g]",
    "hydra.sweeper.known_objectives=[{objective:emissions/total_g,"
    "function:tests.toy_app.toy.known_emissions}]",
    "hydra.sweeper.search_cost=train/cost",
]
ENERGY = "energy/model_uj_per_image"


def _rows(sweep):
    rows = read_csv(sweep / "trials.csv")
    assert [int(r["trial_id"]) for r in rows] == list(range(len(rows)))
    configs = [tuple(r[k] for k in ("x", "y", "opt", "momentum", "n", "shift_depth")) for r in rows]
    assert len(set(configs)) == len(configs)  # no configuration twice
    for call in calls(sweep):  # only active hyperparameters: momentum only for opt a, b
        has_momentum = any(o.startswith("momentum=") for o in call["overrides"])
        assert has_momentum == (call["opt"] in ("a", "b"))
    return rows


# ------------------------------------------------------------------ known objectives
def test_the_analytic_energy_before_training_is_what_the_trained_network_reports():
    """The study's default trial (SmallCNN width 8, all 4 layers DeepShift-Q, 5-bit
    weights, 16+16-bit activations) reported 0.2063235 µJ after 9 epochs of training
    (benchmarks/results/search_efficiency_v2_trials.csv, random seed 0, trial 0); and width
    13, 6-bit weights, 11+5-bit activations 0.376997705 µJ (trial 1)."""
    from dsnn.energy.analytic import config_energy_uj

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        default = compose("config", overrides=["experiment=search_bench"])
        other = compose(
            "config",
            overrides=[
                "experiment=search_bench",
                "model.width=13",
                "quantization.weight_bits=6",
                "quantization.activation_integer_bits=11",
                "quantization.activation_fraction_bits=5",
            ],
        )
    GlobalHydra.instance().clear()
    assert config_energy_uj(default) == pytest.approx(0.2063235, rel=1e-9)
    assert config_energy_uj(other) == pytest.approx(0.376997705, rel=1e-9)


@pytest.fixture
def bench_known():
    """KnownObjectives of the analytic energy on search_bench, and a full composition."""
    from hydra_plugins.smac_sweeper._plan import SweepPlan  # noqa: F401 (its overrides' rule)

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        arguments = ["experiment=search_bench", "trainer.max_epochs=9"]

        def full(config):
            return compose("config", overrides=trial_overrides(arguments, config, {}))

        known = KnownObjectives(
            {ENERGY: "dsnn.energy.analytic.config_energy_uj"},
            overrides=lambda trial: trial_overrides(arguments, trial.config, {}),
            compose=lambda o: compose("config", overrides=o),
            is_group=lambda name: bool(loader.get_group_options(name.replace(".", "/"))),
        )
        yield known, full
    GlobalHydra.instance().clear()


def test_composing_once_per_group_choice_is_hydras_full_composition(bench_known):
    from dsnn.energy.analytic import config_energy_uj

    known, full = bench_known
    spec = yaml.safe_load((CONF / "search_space" / "search_bench.yaml").read_text())
    space = build_space(spec, seed=4)
    configs = [{k: to_python(v) for k, v in c.items()} for c in space.sample_configuration(12)]
    assert {c["optimizer"] for c in configs} == {"sgd", "adam", "rmsprop"}
    values = known(configs)
    assert len(known.bases) == 3  # one composition per optimizer
    for config, value in zip(configs, values[:, 0], strict=True):
        reference = full(config)
        assert value == pytest.approx(config_energy_uj(reference), rel=1e-12)
        with known.job_config(config) as cfg:  # the same job config, key by key
            for key in ("model", "quantization", "optimizer", "data", "trainer"):
                assert OmegaConf.to_container(cfg[key]) == OmegaConf.to_container(reference[key])
    # set in place, then restored: the base of sgd is the default's composition again
    sgd = next(c for c in configs if c["optimizer"] == "sgd")
    with known.job_config({"optimizer": "sgd"}) as base:
        assert base.model.width == 8 and "momentum" in base.optimizer
    with known.job_config(sgd) as cfg:
        assert cfg.model.width == sgd["model.width"]
    with known.job_config({"optimizer": "sgd"}) as base:
        assert base.model.width == 8 and base.optimizer.momentum == 0.9


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("config_energy_uj", "must be a dotted path package.module.function"),
        ("dsnn.energy.nothing.f", "No module named 'dsnn.energy.nothing'"),
        ("dsnn.energy.analytic.nothing", "has no attribute 'nothing'"),
        ("dsnn.energy.analytic.DEFAULT_MEMORY", "str is not callable"),
    ],
)
def test_a_known_objective_names_a_function_or_is_refused_in_one_line(path, message):
    with pytest.raises(ValueError) as err:
        resolve_function(path, ENERGY)
    text = str(err.value)
    assert text.startswith(
        f"hydra.sweeper.known_objectives: {ENERGY}'s function {path!r} is invalid: "
    )
    assert message in text and "\n" not in text


# ------------------------------------------------------------------ settings
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {
                "algorithm": "optuna_tpe",
                "known_objectives": [{"objective": "b", "function": "m.f"}],
            },
            "hydra.sweeper.known_objectives=[{'objective': 'b', 'function': 'm.f'}] is invalid: "
            "is used by algorithm=gp_ehvi only; unset it",
        ),
        (
            {"algorithm": "smac", "search_cost": "energy/total_kwh"},
            "hydra.sweeper.search_cost='energy/total_kwh' is invalid: is used by "
            "algorithm=gp_ehvi and by intensifier=hv_promotion with a budget only; unset it",
        ),
        (  # hv_promotion without a budget promotes nothing
            {"algorithm": "optuna_tpe", "intensifier": "hv_promotion", "search_cost": "c"},
            "hydra.sweeper.search_cost='c' is invalid: is used by algorithm=gp_ehvi and by "
            "intensifier=hv_promotion with a budget only; unset it",
        ),
        (
            {"objectives": ["a", "b", "c"]},
            "hydra.sweeper.objectives=['a', 'b', 'c'] is invalid: algorithm=gp_ehvi takes 1 "
            "or 2 objectives",
        ),
        (
            {
                "known_objectives": [
                    {"objective": "a", "function": "m.f"},
                    {"objective": "b", "function": "m.g"},
                ]
            },
            "hydra.sweeper.known_objectives=[{'objective': 'a', 'function': 'm.f'}, "
            "{'objective': 'b', 'function': 'm.g'}] is invalid: leaves no objective to model: at "
            "least one must be measured by the trials",
        ),
        (
            {"known_objectives": [{"objective": "c", "function": "m.f"}]},
            "hydra.sweeper.known_objectives=[{'objective': 'c', 'function': 'm.f'}] is invalid: "
            "names no objective: ['c']",
        ),
        (
            {"known_objectives": [{"objective": "b"}]},
            "hydra.sweeper.known_objectives=[{'objective': 'b'}] is invalid: each entry must be "
            "{objective: <key>, function: <package.module.function>}, got {'objective': 'b'}",
        ),
        (
            {"known_objectives": [{"objective": "b", "function": "m.f"}] * 2},
            "hydra.sweeper.known_objectives=[{'objective': 'b', 'function': 'm.f'}, {'objective': "
            "'b', 'function': 'm.f'}] is invalid: 'b' is named twice",
        ),
        (
            {"budget": {"variable": "trainer.max_epochs", "min": 1, "max": 9, "eta": 3}},
            "hydra.sweeper.budget.variable='trainer.max_epochs' is invalid: must be null with "
            "algorithm=gp_ehvi (it runs every trial at full fidelity)",
        ),
    ],
)
def test_settings_out_of_range_are_refused_in_one_line(settings, message):
    options = {"algorithm": "gp_ehvi", "objectives": ["a", "b"], **settings}
    with pytest.raises(ValueError) as err:
        load_settings(options)
    assert str(err.value) == message


def test_a_known_function_that_fails_stops_the_sweep_before_any_trial(tmp_path):
    sweep = tmp_path / "bad"
    args = overrides(
        sweep,
        "gp_ehvi",
        *TOY[:1],
        "hydra.sweeper.known_objectives=[{objective:emissions/total_g,"
        "function:dsnn.energy.analytic.config_energy_uj}]",
    )
    with pytest.raises(ValueError, match=r"^hydra.sweeper.known_objectives: computing them for "):
        run_inprocess(args)
    assert calls(sweep) == [] and not (sweep / "journal.jsonl").exists()


# ------------------------------------------------------------------ the adapter
@pytest.mark.parametrize("space_name", SPACES)
def test_every_search_space_gives_valid_active_configurations(tmp_path, space_name):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        composed = compose(
            "config",
            overrides=[
                "hydra/sweeper=gp_ehvi",
                f"search_space@hydra.sweeper.search_space={space_name}",
            ],
            return_hydra_config=True,
        )
    GlobalHydra.instance().clear()
    settings, _ = load_settings(composed.hydra.sweeper)
    assert settings.algorithm == "gp_ehvi" and settings.known_objectives == [
        {"objective": ENERGY, "function": "dsnn.energy.analytic.config_energy_uj"}
    ]
    spec = OmegaConf.to_container(composed.hydra.sweeper.search_space, resolve=True)
    space = build_space(spec, seed=settings.seed)
    # the known objective: a stand-in function of the configuration (the energy's own
    # composition is tested above), the first objective modelled
    problem = Problem(space, ["val/error", ENERGY], 3, [], 20, tmp_path, known=_stand_in(space))
    optimizer = GPEHVIOptimizer(
        problem, SMACSweeperConf(**{**settings.__dict__, "search_cost": None})
    )
    configs = []
    for i in range(6):  # the default, 3 random, 2 from the model
        suggestion = optimizer.ask(i)
        assert suggestion.budget is None and suggestion.seed == 3
        Configuration(space, values=suggestion.config)  # active and legal
        has_momentum = "optimizer.momentum" in suggestion.config
        assert has_momentum == (suggestion.config["optimizer"] in ("sgd", "rmsprop"))
        configs.append(suggestion.config)
        optimizer.tell([_told(i, suggestion.config, space)])
    assert configs[0] == dict(space.get_default_configuration())
    assert len({tuple(sorted(c.items())) for c in configs}) == 6


def _stand_in(space):
    def known(configs):
        return np.array(
            [[0.1 + np.nansum(Configuration(space, values=c).get_array())] for c in configs]
        )

    return known


def _told(trial_id, config, space):
    vector = Configuration(space, values=config).get_array()
    trial = Trial(trial_id, trial_id, config, None, 3, status=SUCCESS)
    trial.cost = [float(np.nanmean((vector - 0.3) ** 2)), 0.1 + float(np.nansum(vector))]
    trial.objectives = dict(zip(["val/error", ENERGY], trial.cost, strict=True))
    trial.told_at = float(trial_id)
    return trial


def test_proposals_maximise_ehvi_per_cost_with_the_known_objective_exact(tmp_path, monkeypatch):
    """The chosen candidate is the argmax of EHVI / predicted cost over the candidates,
    recomputed here with the GP refitted and the known objective exact."""
    from hydra_plugins.smac_sweeper import _gp_ehvi

    space = build_space(
        yaml.safe_load((ROOT / "tests/toy_app/conf/search_space/toy.yaml").read_text()), seed=0
    )
    seen = {}

    def known(configs):
        seen.setdefault("configs", []).append(list(configs))
        return np.array([[known_emissions(OmegaConf.create(c))] for c in configs])

    problem = Problem(space, ["val/error", "emissions/total_g"], 0, [], 20, tmp_path, known=known)
    settings = SMACSweeperConf(
        algorithm="gp_ehvi",
        objectives=["val/error", "emissions/total_g"],
        known_objectives=[
            {"objective": "emissions/total_g", "function": "tests.toy_app.toy.known_emissions"}
        ],
        search_cost="train/cost",
        n_initial_configs=3,
        reference_point={"val/error": 2.0, "emissions/total_g": 0.1},
    )
    optimizer = GPEHVIOptimizer(problem, settings)
    acquisitions = []
    real = _gp_ehvi.expected_hvi

    def spy(front, reference, mean, std, log):
        out = real(front, reference, mean, std, log)
        acquisitions.append((mean.copy(), std.copy(), out, log))
        return out

    fits = []
    real_fit = _gp_ehvi.fit_gp

    def fit_spy(x, y, rng):
        fits.append(real_fit(x, y, rng))
        return fits[-1]

    monkeypatch.setattr(_gp_ehvi, "expected_hvi", spy)
    monkeypatch.setattr(_gp_ehvi, "fit_gp", fit_spy)
    chosen = []
    for i in range(7):
        config = optimizer.ask(i).config
        chosen.append(config)
        trial = Trial(i, i, config, None, 0, status=SUCCESS)
        cfg = OmegaConf.create({**{"x": 0.5, "y": 0.1, "n": 5, "shift_depth": 20}, **config})
        error = (cfg.x - 0.3) ** 2 + 0.5 / (1 + cfg.shift_depth) + 0.01 * cfg.n
        trial.cost = [error, known_emissions(cfg)]
        trial.objectives = dict(zip(settings.objectives, trial.cost, strict=True))
        trial.metrics = {"train/cost": 1.0 + 10 * cfg.x}
        trial.told_at = float(i)
        optimizer.tell([trial])
    assert len(acquisitions) == 3 and len(fits) == 6  # trials 4-6: an error GP, a cost GP
    for k, ((mean, std, ehvi, log), candidates) in enumerate(
        zip(acquisitions, seen["configs"], strict=True)
    ):
        # the known objective exact (std 0): the candidates' own emissions; the error (> 0)
        # modelled on the log scale
        assert np.all(std[:, 1] == 0) and np.all(std[:, 0] > 0) and log == (True, False)
        full = [{"x": 0.5, "y": 0.1, "shift_depth": 20, **c} for c in candidates]
        assert mean[:, 1] == pytest.approx([known_emissions(OmegaConf.create(c)) for c in full])
        cost = np.exp(fits[2 * k + 1](optimizer.encoder(candidates))[0])
        assert chosen[4 + k] == candidates[int(np.argmax(ehvi / cost))]
        assert np.any(ehvi > 0)


# ------------------------------------------------------------------ sweeps on the toy app
def test_a_sweep_with_crashes_and_parallel_batches(tmp_path):
    sweep = tmp_path / "sweep"
    run_inprocess(
        overrides(
            sweep,
            "gp_ehvi",
            *TOY,
            "hydra.sweeper.n_trials=8",
            "hydra.sweeper.n_initial_configs=2",  # the model asks from trial 3, one pending
            "hydra.sweeper.n_workers=2",
            "fail=mixed",
            "hydra.sweeper.max_failure_rate=0.9",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
        )
    )
    rows = _rows(sweep)
    assert len(rows) == 8 and Counter(r["batch"] for r in rows) == {str(b): 2 for b in range(4)}
    assert rows[0]["x"] == "0.5" and rows[0]["n"] == "5"  # the default configuration first
    assert len({c["pid"] for c in calls(sweep)}) == 2
    crashed = [r for r in rows if r["status"] == "crashed"]
    assert crashed and all(r["n"] in ("2", "3", "4") for r in crashed)
    told = {r["trial_id"]: r for r in read_journal(sweep) if r["event"] == "tell"}
    assert all(len(t["cost"]) == 2 and all(np.isfinite(t["cost"])) for t in told.values())
    for row in rows:  # what a success reported is what the known function says
        if row["status"] == "success":
            cfg = OmegaConf.create({k: _num(row[k]) for k in ("x", "y", "shift_depth")})
            assert float(row["emissions/total_g"]) == pytest.approx(known_emissions(cfg))
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["hypervolume"] > 0 and results["n_trials"]["total"] == 8


def _num(text):
    return float(text) if re.search(r"[.e]", text) else int(text)


def test_a_sweep_that_only_fails_stops(tmp_path):
    from hydra_plugins.smac_sweeper._impl import SweepFailedError

    sweep = tmp_path / "fails"
    args = overrides(sweep, "gp_ehvi", *TOY, "hydra.sweeper.n_trials=20", "fail=always")
    with pytest.raises(SweepFailedError, match="5 of 5 trials crashed"):
        run_inprocess(args)


def test_reproducible_from_the_seed_and_a_resume_proposes_what_the_whole_sweep_did(tmp_path):
    extra = [*TOY, "hydra.sweeper.n_initial_configs=2"]
    run_inprocess(overrides(tmp_path / "whole", "gp_ehvi", "hydra.sweeper.n_trials=7", *extra))
    run_inprocess(overrides(tmp_path / "again", "gp_ehvi", "hydra.sweeper.n_trials=7", *extra))
    run_inprocess(overrides(tmp_path / "parts", "gp_ehvi", "hydra.sweeper.n_trials=4", *extra))
    run_inprocess(overrides(tmp_path / "parts", "gp_ehvi", "hydra.sweeper.n_trials=7", *extra))
    other = [*extra, "hydra.sweeper.seed=1"]
    run_inprocess(overrides(tmp_path / "other", "gp_ehvi", "hydra.sweeper.n_trials=7", *other))
    keep = ("x", "y", "opt", "momentum", "n", "shift_depth", "val/error")
    whole, again, parts, seed1 = (
        [[r[k] for k in keep] for r in _rows(tmp_path / name)]
        for name in ("whole", "again", "parts", "other")
    )
    assert len(whole) == 7 and again == whole and parts == whole  # 4-6 from the model
    assert seed1[1:] != whole[1:]
    sessions = [r for r in read_journal(tmp_path / "parts") if r["event"] == "session"]
    assert len(sessions) == 2
