"""Sweeps with the Optuna algorithms (optuna_gp, optuna_tpe) on the toy app, in-process:
crashes, a sweep that only fails, parallel batches with joblib, the seed, a resume, the
intensifiers they take with a budget (pareto_promotion, with continuation; hv_promotion,
each stage afresh) and SMAC's that they refuse."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import yaml

from hydra_plugins.smac_sweeper._impl import SweepFailedError
from hydra_plugins.smac_sweeper._optuna import ALGORITHMS
from tests.toy_app.harness import calls, overrides, read_csv, read_journal, run_inprocess

TOY_OBJECTIVES = "hydra.sweeper.objectives=[val/error,emissions/total_g]"
CONFIG_KEYS = ("x", "y", "opt", "momentum", "n", "shift_depth")  # the toy's hyperparameters
# GPSampler's asks take seconds: cases that add nothing over TPE's are slow
WITH_SLOW_GP = ["optuna_tpe", pytest.param("optuna_gp", marks=pytest.mark.slow)]


def _refused(tmp_path, key, value, allowed, *settings, written=None):
    """A sweep of `settings` with hydra.sweeper.<key>=<value> stops before any trial with
    one line: the key, the value and what is allowed. `written`: the override as given on
    the command line, where it is not `hydra.sweeper.<key>=<value>` (a dict is added)."""
    with pytest.raises(ValueError) as err:
        run_inprocess(overrides(tmp_path, *settings, written or f"hydra.sweeper.{key}={value}"))
    assert str(err.value) == f"hydra.sweeper.{key}={value!r} is invalid: {allowed}"
    assert calls(tmp_path) == []


def _rows_and_calls(sweep):
    rows = read_csv(sweep / "trials.csv")
    told = [r for r in read_journal(sweep) if r["event"] == "tell"]
    assert [int(r["trial_id"]) for r in rows] == list(range(len(rows))) and len(told) == len(rows)
    assert not (sweep / "smac3_output").exists()
    configs = [tuple(r[k] for k in CONFIG_KEYS) for r in rows]
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
def test_smacs_intensifier_with_a_budget_is_refused_in_one_line(tmp_path, algorithm):
    sweep = tmp_path / "bad"
    args = overrides(
        sweep,
        algorithm,
        TOY_OBJECTIVES,
        "hydra.sweeper.budget.variable=shift_depth",
        "hydra.sweeper.intensifier=hyperband",
    )
    with pytest.raises(ValueError) as err:
        run_inprocess(args)
    assert str(err.value) == (
        f"hydra.sweeper.intensifier='hyperband' is invalid: must be pareto_promotion or "
        f"hv_promotion with algorithm={algorithm} and a budget (hyperband and "
        "successive_halving are SMAC's)"
    )
    assert calls(sweep) == [] and not (sweep / "journal.jsonl").exists()


@pytest.mark.parametrize("stages", ["[1,3]", "[3,9]", "[1,9,3]", "[1,1,9]", "[9]"])
def test_stages_that_do_not_climb_from_min_to_max_are_refused_in_one_line(tmp_path, stages):
    args = overrides(tmp_path, *EPOCHS, f"hydra.sweeper.budget.stages={stages}")
    shown = [float(v) for v in stages.strip("[]").split(",")]
    with pytest.raises(ValueError) as err:
        run_inprocess(args)
    assert str(err.value) == (
        f"hydra.sweeper.budget.stages={shown} is invalid: must rise strictly from "
        "budget.min=1.0 to budget.max=9.0, at least 2 stages"
    )
    assert calls(tmp_path) == []


@pytest.mark.parametrize(
    ("written", "key", "value"),
    [
        ("hydra.sweeper.budget.eta=3", "eta", 3),
        ("hydra.sweeper.budget.max=9", "max", 9.0),
        ("++hydra.sweeper.budget.integer=true", "integer", True),
    ],
)
def test_budget_settings_without_a_budget_variable_are_refused_in_one_line(
    tmp_path, written, key, value
):
    # unread at full fidelity: the user's override is refused (a preset's own are not:
    # gp_ehvi inherits smac_mfmo's min and max, and its toy sweeps run)
    _refused(
        tmp_path,
        f"budget.{key}",
        value,
        "needs a budget.variable (got null: every trial runs at full fidelity); set a "
        f"budget.variable or drop the override of budget.{key}",
        "optuna_tpe_hv",
        TOY_OBJECTIVES,
        written=written,
    )


def test_stages_without_a_budget_variable_are_refused_in_one_line(tmp_path):
    args = overrides(tmp_path, "optuna_tpe_hv", TOY_OBJECTIVES, "hydra.sweeper.budget.stages=[1,9]")
    with pytest.raises(ValueError) as err:
        run_inprocess(args)
    assert str(err.value) == (
        "hydra.sweeper.budget.stages=[1.0, 9.0] is invalid: needs a budget.variable (got "
        "null: every trial runs at full fidelity); set budget.variable=trainer.max_epochs "
        "or budget.stages=null"
    )
    assert calls(tmp_path) == []


def test_pareto_promotion_is_refused_for_smac_in_one_line(tmp_path):
    args = overrides(tmp_path, "smac_mfmo", "hydra.sweeper.intensifier=pareto_promotion")
    with pytest.raises(ValueError, match=r"^hydra.sweeper.intensifier='pareto_promotion' is inv"):
        run_inprocess(args)


# optuna_tpe_hv_epochs on the toy: epochs 1, 3, 9 with continuation (the toy's error does
# not change with the epochs, so a promotion keeps its cost and meets new peers)
EPOCHS = ("optuna_tpe_hv_epochs", TOY_OBJECTIVES, "hydra.sweeper.n_initial_configs=3")


def _promotions_follow_the_rule(sweep):
    """Each result below 9 epochs was promoted exactly when no earlier result of its stage
    (in told order) dominated it, with continuation; recomputed from the journal."""
    told = [r for r in read_journal(sweep) if r["event"] == "tell"]
    asked = {r["trial_id"]: r for r in read_journal(sweep) if r["event"] == "ask"}
    rows = {int(r["trial_id"]): r for r in read_csv(sweep / "trials.csv")}
    key = lambda trial_id: json.dumps(asked[trial_id]["config"], sort_keys=True)  # noqa: E731
    first_stage = {}
    for trial_id, ask in sorted(asked.items()):
        first_stage.setdefault(key(trial_id), ask["budget"])
    assert set(first_stage.values()) == {1.0}  # every configuration starts at 1 epoch
    higher = {(key(i), a["budget"]): i for i, a in asked.items() if a["budget"] > 1}
    peers, promoted, kept = {1.0: [], 3.0: []}, 0, 0
    for tell in told:
        budget = asked[tell["trial_id"]]["budget"]
        if tell["status"] != "success" or budget == 9.0:
            continue
        cost = np.array(tell["cost"])
        earlier = np.array(peers[budget]).reshape(-1, len(cost))
        dominated = np.any(np.all(earlier <= cost, axis=1) & np.any(earlier < cost, axis=1))
        peers[budget].append(cost)
        up = higher.get((key(tell["trial_id"]), {1.0: 3.0, 3.0: 9.0}[budget]))
        if dominated:
            assert up is None, tell["trial_id"]
            kept += 1
        elif up is not None:
            promoted += 1  # continued: trained only the missing epochs
            row = rows[up]
            assert int(row["resumed_from"]) == tell["trial_id"]
            assert float(row["train/stage_epochs"]) == int(row["budget"]) - budget
    return promoted, kept


# optuna_tpe's own multi-objective TPE and one objective inside pareto_promotion too
BUDGET = (
    "hydra.sweeper.budget.variable=trainer.max_epochs",
    "hydra.sweeper.budget.min=1",
    "hydra.sweeper.budget.max=9",
    "hydra.sweeper.budget.eta=3",
    "hydra.sweeper.budget.continuation=true",
    "hydra.sweeper.n_initial_configs=3",
)
PROMOTING = {
    "tpe_hv_epochs": EPOCHS,
    "tpe_epochs": ("optuna_tpe", TOY_OBJECTIVES, *BUDGET),
    "tpe_epochs_one_objective": ("optuna_tpe", "hydra.sweeper.objectives=[val/error]", *BUDGET),
}


@pytest.mark.parametrize("case", sorted(PROMOTING))
def test_pareto_promotion_with_continuation_on_the_epochs(tmp_path, case):
    sweep = tmp_path / "epochs"
    preset, *extra = PROMOTING[case]
    run_inprocess(overrides(sweep, preset, "hydra.sweeper.n_trials=24", *extra))
    rows = read_csv(sweep / "trials.csv")
    assert len(rows) == 24 and all(r["status"] == "success" for r in rows)
    assert [r["budget"] for r in rows[:3]] == ["1", "3", "9"]  # the default goes up at once
    promoted, kept = _promotions_follow_the_rule(sweep)
    # both happen (MOTPE's proposals on the toy's front are all non-dominated at 1 epoch)
    assert promoted >= 4 and kept >= (0 if case == "tpe_epochs" else 4)
    assert Counter(r["budget"] for r in rows)["9"] >= (2 if "one_objective" in case else 3)
    front = read_csv(sweep / "pareto.csv")
    assert front and {r["budget"] for r in front} == {"9"}  # the front is taken at 9 epochs
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["hypervolume"] > 0


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


# intensifier=hv_promotion: each stage trained afresh (no continuation); a configuration goes
# up once among the top floor(n / eta) of its stage by exclusive hypervolume contribution
HV_PROMOTION = (
    "optuna_tpe_hv_epochs",
    TOY_OBJECTIVES,
    "hydra.sweeper.n_initial_configs=3",
    "hydra.sweeper.intensifier=hv_promotion",
    "hydra.sweeper.budget.continuation=false",
    "++hydra.sweeper.reference_point={val/error:1.0,emissions/total_g:0.1}",
)


def _union_2d(points, reference):
    """The area of the box below `reference` that `points` dominate (minimisation): the
    union of their rectangles, measured by a sweep along the first objective."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    pts = sorted((p for p in points if np.all(p < reference)), key=lambda p: p[0])
    area, lowest = 0.0, reference[1]
    for k, (x, y) in enumerate(pts):
        lowest = min(lowest, y)
        right = pts[k + 1][0] if k + 1 < len(pts) else reference[0]
        area += (right - x) * (reference[1] - lowest)
    return area


def _exclusive_2d(points, reference):
    """Each point's exclusive hypervolume contribution (minimisation): the area of the box
    below `reference` that only it dominates, HV(all) - HV(all but it)."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    whole = _union_2d(points, reference)
    return np.array(
        [whole - _union_2d(np.delete(points, i, axis=0), reference) for i in range(len(points))]
    )


def _hv_promotions_follow_the_rule(sweep, eta=3, stages=(1.0, 3.0, 9.0), per=None):
    """Every ask above the first stage promoted a configuration whose result one stage below
    was, at that ask, among the top floor(n / eta) of that stage's results by exclusive
    area (per unit of metric `per`, with search_cost); recomputed from the journal in order.
    -> (promotions, results that never went up)."""
    records = read_journal(sweep)
    reference = np.array([1.0, 0.1])
    key = lambda config: json.dumps(config, sort_keys=True)  # noqa: E731
    asked = {r["trial_id"]: r for r in records if r["event"] == "ask"}
    assert {a["budget"] for a in asked.values()} <= set(stages)
    results = {s: [] for s in stages[:-1]}  # (config, cost) told so far, by stage
    promotions = 0
    below = dict(zip(stages[:-1], stages[1:], strict=True))  # stage -> the one above
    for record in records:
        if record["event"] == "tell" and record["status"] == "success":
            budget = asked[record["trial_id"]]["budget"]
            if budget in results:
                spent = record["metrics"][per] if per else 1.0
                config = key(asked[record["trial_id"]]["config"])
                results[budget].append((config, record["cost"], spent))
        elif record["event"] == "ask" and record["budget"] > stages[0]:
            stage = stages[stages.index(record["budget"]) - 1]
            peers = results[stage]
            areas = _exclusive_2d([c for _, c, _ in peers], reference)
            areas = areas / np.array([spent for _, _, spent in peers])
            quota = len(peers) // eta
            top = {peers[i][0] for i in np.argsort(-areas, kind="stable")[:quota] if areas[i] > 0}
            assert key(record["config"]) in top, record["trial_id"]
            assert record.get("resumed_from") is None  # trained afresh
            promotions += 1
    up = {(key(a["config"]), a["budget"]) for a in asked.values()}
    stayed = sum(
        (config, below[stage]) not in up
        for stage, peers in results.items()
        for config, _, _ in peers
    )
    return promotions, stayed


def test_hv_promotion_promotes_the_top_third_by_contribution_and_trains_afresh(tmp_path):
    sweep = tmp_path / "hvp"
    run_inprocess(overrides(sweep, *HV_PROMOTION, "hydra.sweeper.n_trials=30"))
    rows = read_csv(sweep / "trials.csv")
    assert len(rows) == 30 and all(r["status"] == "success" for r in rows)
    assert [r["budget"] for r in rows[:3]] == ["1", "1", "1"]  # no promotion before 3 results
    promoted, stayed = _hv_promotions_follow_the_rule(sweep)
    counts = Counter(r["budget"] for r in rows)
    assert promoted == counts["3"] + counts["9"] and counts["3"] >= 4 and counts["9"] >= 1
    assert counts["1"] >= 2 * counts["3"] and stayed >= counts["1"] // 2  # a stage screens
    assert all(float(r["train/stage_epochs"]) == float(r["budget"]) for r in rows)
    assert all(r["resumed_from"] == "" for r in rows)
    front = read_csv(sweep / "pareto.csv")
    assert front and {r["budget"] for r in front} == {"9"}


def test_hv_promotion_climbs_the_configured_stages(tmp_path):
    """budget.stages=[1,9]: the top third of the 1-epoch results go straight to 9 epochs,
    by the same rule; a resume asks what the uninterrupted sweep asked."""
    stages = (*HV_PROMOTION, "hydra.sweeper.budget.stages=[1,9]")
    run_inprocess(overrides(tmp_path / "whole", *stages, "hydra.sweeper.n_trials=20"))
    rows = read_csv(tmp_path / "whole" / "trials.csv")
    assert len(rows) == 20 and all(r["status"] == "success" for r in rows)
    promoted, stayed = _hv_promotions_follow_the_rule(tmp_path / "whole", stages=(1.0, 9.0))
    counts = Counter(r["budget"] for r in rows)
    assert set(counts) == {"1", "9"} and promoted == counts["9"] >= 3
    assert rows[3]["budget"] == "9"  # after 3 results at 1 epoch, the best goes up at once
    assert stayed >= counts["1"] // 2
    assert all(float(r["train/stage_epochs"]) == float(r["budget"]) for r in rows)
    _resumed_alike(tmp_path, stages, first=9, total=20)


def test_low_fidelity_settings_reach_the_trials_below_the_top_stage_only(tmp_path):
    """budget.low_fidelity={sleep: 0.001}: every 1-epoch trial runs with it, every 9-epoch
    one with the app's own value; the trials asked and promoted are those of the sweep
    without it (the toy's objectives do not read sleep); the journal's fingerprint holds
    it; a resume asks the same trials."""
    stages = (*HV_PROMOTION, "hydra.sweeper.budget.stages=[1,9]")
    low = (*stages, "++hydra.sweeper.budget.low_fidelity={sleep:0.001}")
    run_inprocess(overrides(tmp_path / "plain", *stages, "hydra.sweeper.n_trials=14"))
    run_inprocess(overrides(tmp_path / "whole", *low, "hydra.sweeper.n_trials=14"))
    keep = (*CONFIG_KEYS, "budget", "val/error")
    plain, whole = (
        [[r[k] for k in keep] for r in read_csv(tmp_path / name / "trials.csv")]
        for name in ("plain", "whole")
    )
    assert whole == plain and {r[-2] for r in whole} == {"1", "9"}
    sleeps = {(c["epochs"], c["sleep"]) for c in calls(tmp_path / "whole")}
    assert sleeps == {(1, 0.001), (9, 0.0)}
    assert all(c["sleep"] == 0.0 for c in calls(tmp_path / "plain"))
    (header,) = [r for r in read_journal(tmp_path / "whole") if r["event"] == "sweep"]
    assert header["fingerprint"]["budget"]["low_fidelity"] == {"sleep": 0.001}
    (header,) = [r for r in read_journal(tmp_path / "plain") if r["event"] == "sweep"]
    assert "low_fidelity" not in header["fingerprint"]["budget"]
    _resumed_alike(tmp_path, low, first=6, total=14)


@pytest.mark.parametrize(
    ("preset", "value", "allowed"),
    [
        (("optuna_tpe_hv", TOY_OBJECTIVES), {"sleep": 0.001},
         "needs a budget.variable (got null: every trial runs at full fidelity); set "
         "budget.low_fidelity={}"),
        (HV_PROMOTION, {"trainer.max_epochs": 1},
         "must not set the budget variable 'trainer.max_epochs' (the stages set it)"),
        (HV_PROMOTION, {"slep": 0.001}, "'slep' must be a key of the app's config"),
        (HV_PROMOTION, {"x": 0.2}, "'x' is also searched; the low fidelity must own its keys"),
        ((*HV_PROMOTION, "sleep=0.0"), {"sleep": 0.001},
         "'sleep' is also set on the command line; the low fidelity must own its keys"),
    ],
)  # fmt: skip
def test_low_fidelity_is_refused_in_one_line(tmp_path, preset, value, allowed):
    setting = "{" + ",".join(f"{k}:{v}" for k, v in value.items()) + "}"
    written = f"++hydra.sweeper.budget.low_fidelity={setting}"
    _refused(tmp_path, "budget.low_fidelity", value, allowed, *preset, written=written)


def _resumed_alike(tmp_path, settings, first, total):
    """A sweep stopped after `first` trials and resumed to `total` asked what the sweep
    in tmp_path/whole (of `total` trials) asked."""
    run_inprocess(overrides(tmp_path / "parts", *settings, f"hydra.sweeper.n_trials={first}"))
    run_inprocess(overrides(tmp_path / "parts", *settings, f"hydra.sweeper.n_trials={total}"))
    keep = (*CONFIG_KEYS, "budget")
    whole, parts = (
        [[r[k] for k in keep] for r in read_csv(tmp_path / name / "trials.csv")]
        for name in ("whole", "parts")
    )
    assert len(whole) == total and parts == whole


def test_hv_promotion_with_search_cost_ranks_by_contribution_per_unit_of_it(tmp_path):
    """search_cost=train/cost (the toy's 1 + 10 x): the rule recomputed with the areas
    divided by each result's cost; the promotions differ from those by area alone."""
    runs = {}
    for name, extra in (("area", ()), ("per_cost", ("hydra.sweeper.search_cost=train/cost",))):
        run_inprocess(
            overrides(tmp_path / name, *HV_PROMOTION, "hydra.sweeper.n_trials=24", *extra)
        )
        runs[name] = read_csv(tmp_path / name / "trials.csv")
    promoted, _ = _hv_promotions_follow_the_rule(tmp_path / "per_cost", per="train/cost")
    assert promoted >= 4
    with pytest.raises(AssertionError):  # the cost changed what went up
        _hv_promotions_follow_the_rule(tmp_path / "per_cost")
    up = {
        name: [(r["x"], r["budget"]) for r in rows if r["budget"] != "1"]
        for name, rows in runs.items()
    }
    assert up["area"] != up["per_cost"]


def _improvement_promotions_follow_the_rule(sweep, eta=3):
    """budget.promote_by=improvement with stages [1, 9]: every 9-epoch ask promoted the
    1-epoch result not yet promoted that adds the most area to the 9-epoch front, its costs
    scaled by the median 9-/1-epoch ratio of the configurations told at both (1 before
    any), then by exclusive area, while the stage's promotions were below floor(n / eta);
    recomputed from the journal in order. -> the promotions."""
    records = read_journal(sweep)
    reference = np.array([1.0, 0.1])
    key = lambda config: json.dumps(config, sort_keys=True)  # noqa: E731
    asked = {r["trial_id"]: r for r in records if r["event"] == "ask"}
    results = {1.0: [], 9.0: []}  # (config, cost) told so far, by stage
    asked_so_far = set()  # (config, budget)
    promotions = 0
    for record in records:
        if record["event"] == "tell" and record["status"] == "success":
            ask = asked[record["trial_id"]]
            results[ask["budget"]].append((key(ask["config"]), record["cost"]))
        elif record["event"] == "ask" and record["budget"] == 9.0:
            low, top = results[1.0], results[9.0]
            at_low = dict(low)
            assert all(v > 0 for _, cost in low for v in cost)
            ratios = [np.divide(cost, at_low[k]) for k, cost in top if k in at_low]
            scale = np.median(ratios, axis=0) if ratios else np.ones(2)
            front = [cost for _, cost in top]
            base = _union_2d(front, reference)
            gains = [
                round(_union_2d([*front, np.multiply(cost, scale)], reference) - base, 12)
                for _, cost in low
            ]
            areas = _exclusive_2d([cost for _, cost in low], reference)
            order = sorted(range(len(low)), key=lambda i: (-gains[i], -areas[i]))
            up = {k for k, b in asked_so_far if b == 9.0}
            waiting = [i for i in order if low[i][0] not in up]
            made = len({k for k, _ in low} & up)
            picks = waiting[: len(low) // eta - made]
            assert picks and (gains[picks[0]] > 0 or areas[picks[0]] > 0)
            assert key(record["config"]) == low[picks[0]][0], record["trial_id"]
            promotions += 1
        if record["event"] == "ask":
            asked_so_far.add((key(record["config"]), record["budget"]))
    return promotions


@pytest.mark.slow  # ~20 s: CI runs it
def test_hv_promotion_by_improvement_follows_its_rule_and_resumes_alike(tmp_path):
    """budget.promote_by=improvement on stages [1, 9]: the rule recomputed from the journal
    holds for every promotion, and not for a sweep by contribution, whose promotions
    differ; in the fingerprint only when set; a resume asks what the uninterrupted sweep
    asked."""
    stages = (*HV_PROMOTION, "hydra.sweeper.budget.stages=[1,9]")
    improvement = (*stages, "hydra.sweeper.budget.promote_by=improvement")
    run_inprocess(overrides(tmp_path / "whole", *improvement, "hydra.sweeper.n_trials=24"))
    run_inprocess(overrides(tmp_path / "area", *stages, "hydra.sweeper.n_trials=24"))
    rows = read_csv(tmp_path / "whole" / "trials.csv")
    assert len(rows) == 24 and all(r["status"] == "success" for r in rows)
    promoted = _improvement_promotions_follow_the_rule(tmp_path / "whole")
    assert promoted == sum(r["budget"] == "9" for r in rows) >= 4
    with pytest.raises(AssertionError):  # a sweep by contribution does not follow it
        _improvement_promotions_follow_the_rule(tmp_path / "area")
    up = [
        [(r["x"], r["budget"]) for r in read_csv(tmp_path / name / "trials.csv")]
        for name in ("whole", "area")
    ]
    assert up[0] != up[1]
    journal = read_journal(tmp_path / "whole")
    assert journal[0]["fingerprint"]["budget"]["promote_by"] == "improvement"
    assert "promote_by" not in read_journal(tmp_path / "area")[0]["fingerprint"]["budget"]
    _resumed_alike(tmp_path, improvement, 10, 24)


@pytest.mark.parametrize(
    "preset, extra, allowed",
    [
        (
            "optuna_tpe_hv_epochs",
            ("hydra.sweeper.intensifier=hv_promotion",),
            "must be one of contribution, improvement",
        ),
        (
            "optuna_tpe_hv_epochs",
            (),
            "needs intensifier hv_promotion with algorithm optuna_gp or optuna_tpe and a "
            "budget.variable (got pareto_promotion, optuna_tpe, budget.variable "
            "trainer.max_epochs); set budget.promote_by=contribution",
        ),
        (
            "optuna_tpe_hv",
            ("hydra.sweeper.intensifier=hv_promotion",),
            "needs intensifier hv_promotion with algorithm optuna_gp or optuna_tpe and a "
            "budget.variable (got hv_promotion, optuna_tpe, budget.variable null); set "
            "budget.promote_by=contribution",
        ),
    ],
)
def test_promote_by_is_refused_in_one_line(tmp_path, preset, extra, allowed):
    value = "gain" if "one of" in allowed else "improvement"
    _refused(tmp_path, "budget.promote_by", value, allowed, preset, TOY_OBJECTIVES, *extra)


# both promotion rules: their rule holds with crashes in joblib batches of 2, and a resume
# asks what the uninterrupted sweep asked; (settings, rule check, trials before the resume)
PROMOTION_RULES = {
    "pareto_promotion": (EPOCHS, _promotions_follow_the_rule, 7),
    "hv_promotion": (HV_PROMOTION, _hv_promotions_follow_the_rule, 8),
}


@pytest.mark.parametrize("rule", sorted(PROMOTION_RULES))
def test_promotion_with_crashes_and_parallel_batches(tmp_path, rule):
    settings, follows_the_rule, _ = PROMOTION_RULES[rule]
    sweep = tmp_path / "epochs-joblib"
    run_inprocess(
        overrides(
            sweep,
            *settings,
            "hydra.sweeper.n_trials=16",
            "hydra.sweeper.n_workers=2",
            "fail=mixed",
            "hydra.sweeper.max_failure_rate=0.9",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
        )
    )
    rows = read_csv(sweep / "trials.csv")
    assert len(rows) == 16 and Counter(r["batch"] for r in rows) == {str(b): 2 for b in range(8)}
    crashed = [r for r in rows if r["status"] == "crashed"]
    assert crashed and all(r["budget"] == "1" for r in crashed)  # never promoted
    promoted, _ = follows_the_rule(sweep)
    assert promoted >= 1
    asked = [(r["n"], r["x"], r["budget"]) for r in rows]
    assert len(set(asked)) == len(asked)  # no stage of a configuration asked twice


@pytest.mark.parametrize("rule", sorted(PROMOTION_RULES))
def test_promotion_resumes_with_the_trials_of_the_uninterrupted_sweep(tmp_path, rule):
    settings, _, first = PROMOTION_RULES[rule]
    run_inprocess(overrides(tmp_path / "whole", *settings, "hydra.sweeper.n_trials=16"))
    run_inprocess(overrides(tmp_path / "parts", *settings, f"hydra.sweeper.n_trials={first}"))
    run_inprocess(overrides(tmp_path / "parts", *settings, "hydra.sweeper.n_trials=16"))
    keep = ("x", "y", "opt", "momentum", "n", "shift_depth", "budget", "resumed_from")
    whole, parts = (
        [[r[k] for k in keep] for r in read_csv(tmp_path / name / "trials.csv")]
        for name in ("whole", "parts")
    )
    assert len(whole) == 16 and parts == whole
    assert {r[6] for r in whole[first:]} >= {"1", "3"}  # new and promoted trials after it


# initial_design=lhs: the configurations between the default and the model form a Latin
# hypercube (_optuna.latin_hypercube)
LHS = (
    "optuna_tpe_hv",
    TOY_OBJECTIVES,
    "hydra.sweeper.n_initial_configs=3",
    "hydra.sweeper.initial_design=lhs",
)


def test_lhs_initial_design_tries_every_choice_and_resumes_alike(tmp_path):
    run_inprocess(overrides(tmp_path / "whole", *LHS, "hydra.sweeper.n_trials=8"))
    rows = read_csv(tmp_path / "whole" / "trials.csv")
    assert len(rows) == 8 and rows[0]["opt"] == "a" and rows[0]["x"] == "0.5"  # the default
    design = rows[1:4]
    assert sorted(r["opt"] for r in design) == ["a", "b", "c"]  # 3 strata, 3 choices
    # one value per third of each scale: x linear on [0, 1], y log on [0.001, 1]
    for name, unit in (("x", float), ("y", lambda v: np.log(float(v) / 0.001) / np.log(1000))):
        thirds = sorted(int(3 * unit(r[name])) for r in design)
        assert thirds == [0, 1, 2], (name, [r[name] for r in design])
    assert all((r["momentum"] == "") == (r["opt"] == "c") for r in rows)  # conditions hold
    _resumed_alike(tmp_path, LHS, first=4, total=8)


def test_lhs_initial_design_without_n_initial_configs_fills_optunas_ten(tmp_path):
    """n_initial_configs=null: Optuna's 10 startup trials, the default and 9 design points."""
    settings = (
        "optuna_tpe_hv",  # its 3 unset
        TOY_OBJECTIVES,
        "hydra.sweeper.n_initial_configs=null",
        "hydra.sweeper.initial_design=lhs",
    )
    run_inprocess(overrides(tmp_path, *settings, "hydra.sweeper.n_trials=11"))
    rows = read_csv(tmp_path / "trials.csv")
    assert len(rows) == 11 and rows[0]["x"] == "0.5"  # the default
    design = rows[1:10]
    assert Counter(r["opt"] for r in design) == {"a": 3, "b": 3, "c": 3}
    assert sorted(int(9 * float(r["x"])) for r in design) == list(range(9))  # one per ninth


def test_lhs_initial_design_is_refused_for_smac_in_one_line(tmp_path):
    args = overrides(tmp_path, "smac_mo", "hydra.sweeper.initial_design=lhs")
    with pytest.raises(ValueError) as err:
        run_inprocess(args)
    assert str(err.value) == (
        "hydra.sweeper.initial_design='lhs' is invalid: needs algorithm optuna_gp or "
        "optuna_tpe (got smac); set random"
    )


# interleave_random=p: after the initial design, a new configuration is a random draw with
# probability p (a coin per trial id), else TPE's proposal
INTERLEAVE = ("optuna_tpe_hv", TOY_OBJECTIVES, "hydra.sweeper.n_initial_configs=2")


def _configs(sweep):
    return [tuple(r[k] for k in CONFIG_KEYS) for r in read_csv(sweep / "trials.csv")]


def test_interleave_random_replaces_the_proposals_its_coin_picks_and_resumes_alike(tmp_path):
    n, p, first = 12, 0.5, 3  # the default + 2 random configurations before TPE
    sweeps = {}
    for share in (0.0, p, 1.0):
        sweep = tmp_path / ("whole" if share == p else f"share{share}")
        run_inprocess(
            overrides(
                sweep,
                *INTERLEAVE,
                f"hydra.sweeper.interleave_random={share}",
                f"hydra.sweeper.n_trials={n}",
            )
        )
        sweeps[share] = _configs(sweep)
    # the coin of trial t, seeded from the sweeper's seed (0) and t
    coin = [np.random.default_rng(np.random.SeedSequence([0, t, 1])).random() for t in range(n)]
    drawn = [t for t in range(first, n) if coin[t] < p]
    proposed = [t for t in range(first, n) if coin[t] >= p]
    assert drawn and proposed, coin  # this seed's coins pick both
    assert sweeps[p][:first] == sweeps[0.0][:first] == sweeps[1.0][:first]  # initial design
    assert [sweeps[p][t] for t in drawn] == [sweeps[1.0][t] for t in drawn]  # the same draws
    # TPE's proposals are not the random draws of their trial ids
    assert all(sweeps[p][t] != sweeps[1.0][t] for t in proposed)
    # the random draws are not what TPE proposed without interleaving
    assert sum(sweeps[1.0][t] != sweeps[0.0][t] for t in range(first, n)) == n - first
    rows = read_csv(tmp_path / "whole" / "trials.csv")
    assert all((r["momentum"] == "") == (r["opt"] == "c") for r in rows)  # conditions hold
    _resumed_alike(tmp_path, (*INTERLEAVE, f"hydra.sweeper.interleave_random={p}"), 5, n)
    # a resume with another share would ask other configurations: refused before any trial
    launched = len(calls(tmp_path / "whole"))
    for other in (0.0, 0.25):
        resume = overrides(
            tmp_path / "whole",
            *INTERLEAVE,
            f"hydra.sweeper.interleave_random={other}",
            f"hydra.sweeper.n_trials={n + 2}",
        )
        with pytest.raises(RuntimeError, match=r"other settings \(interleave_random\)"):
            run_inprocess(resume)
    assert len(calls(tmp_path / "whole")) == launched


@pytest.mark.parametrize(
    "value, algorithm, allowed",
    [
        (1.5, "optuna_tpe_hv", "must be in [0, 1]"),
        (-0.1, "optuna_tpe_hv", "must be in [0, 1]"),
        (
            0.2,
            "smac_mo",
            "needs algorithm optuna_gp or optuna_tpe (got smac; SMAC interleaves its own); set 0",
        ),
    ],
)
def test_interleave_random_is_refused_in_one_line(tmp_path, value, algorithm, allowed):
    _refused(tmp_path, "interleave_random", value, allowed, algorithm)


def test_interleave_flip_changes_one_categorical_of_the_proposals_its_coin_picks(tmp_path):
    """interleave_flip=q: the first proposal its coin picks is the unflipped sweep's
    proposal with another optimizer (the toy's one categorical), its numeric values kept;
    up to it the sweeps agree; conditions hold; a resume asks the same trials."""
    n, q, first = 12, 0.5, 3  # the default + 2 random configurations before TPE
    sweeps = {}
    for share in (0.0, q):
        sweep = tmp_path / ("whole" if share == q else "plain")
        settings = (*INTERLEAVE, f"hydra.sweeper.interleave_flip={share}")
        run_inprocess(overrides(sweep, *settings, f"hydra.sweeper.n_trials={n}"))
        sweeps[share] = read_csv(sweep / "trials.csv")
    coin = [np.random.default_rng(np.random.SeedSequence([0, t, 2])).random() for t in range(n)]
    flipped = [t for t in range(first, n) if coin[t] < q]
    assert flipped and flipped[0] < n - 1, coin  # this seed's coins flip some
    t0 = flipped[0]
    keep = ("x", "y", "n", "shift_depth")
    plain, flip = sweeps[0.0], sweeps[q]
    assert [[r[k] for k in CONFIG_KEYS] for r in flip[:t0]] == [
        [r[k] for k in CONFIG_KEYS] for r in plain[:t0]
    ]
    assert flip[t0]["opt"] != plain[t0]["opt"]
    assert [flip[t0][k] for k in keep] == [plain[t0][k] for k in keep]
    assert all((r["momentum"] == "") == (r["opt"] == "c") for r in flip)  # conditions hold
    assert read_journal(tmp_path / "whole")[0]["fingerprint"]["interleave_flip"] == q
    assert "interleave_flip" not in read_journal(tmp_path / "plain")[0]["fingerprint"]
    _resumed_alike(tmp_path, (*INTERLEAVE, f"hydra.sweeper.interleave_flip={q}"), 5, n)


@pytest.mark.parametrize(
    "value, preset, allowed",
    [
        (1.5, "optuna_tpe_hv", "must be in [0, 1]"),
        (
            0.2,
            "smac_mo",
            "needs algorithm optuna_gp or optuna_tpe with multi_objective=hypervolume (2+ "
            "objectives) or a budget.variable (got smac, parego, budget.variable null); set 0",
        ),
        (
            0.2,
            "optuna_tpe",
            "needs algorithm optuna_gp or optuna_tpe with multi_objective=hypervolume (2+ "
            "objectives) or a budget.variable (got optuna_tpe, parego, budget.variable "
            "null); set 0",
        ),
    ],
)
def test_interleave_flip_is_refused_in_one_line(tmp_path, value, preset, allowed):
    _refused(tmp_path, "interleave_flip", value, allowed, preset, TOY_OBJECTIVES)


def _learned_from(monkeypatch):
    """Per proposal: (the stage budget.model picked, the costs the sampler learned from,
    the sweep's results at each stage then), recorded around OptunaOptimizer._propose."""
    from hydra_plugins.smac_sweeper import _optuna

    seen = []
    scalarize, propose = _optuna.hypervolume_scalarization, _optuna.OptunaOptimizer._propose

    def scalarization(cost, reference, weights):
        seen[-1][1].append(tuple(cost))
        return scalarize(cost, reference, weights)

    def proposing(self, trial_id):
        stages = {s: sorted(map(tuple, r.values())) for s, r in self.at_stage.items()}
        seen.append((self._model_stage(), [], stages))
        return propose(self, trial_id)

    monkeypatch.setattr(_optuna, "hypervolume_scalarization", scalarization)
    monkeypatch.setattr(_optuna.OptunaOptimizer, "_propose", proposing)
    return seen


@pytest.mark.slow  # ~20 s: CI runs it
def test_bohb_model_learns_from_one_stage_and_resumes_alike(tmp_path, monkeypatch):
    """budget.model=bohb: each proposal learns from the results of one stage only, the
    highest with at least 7 (the toy's 6 hyperparameters + 1), else the 1-epoch ones;
    with budget.model=highest a promoted configuration's 9-epoch cost is learned from
    while the 9-epoch stage holds fewer than 7."""
    stages = (*HV_PROMOTION, "hydra.sweeper.budget.stages=[1,9]")
    seen = _learned_from(monkeypatch)
    bohb = (*stages, "hydra.sweeper.budget.model=bohb")
    run_inprocess(overrides(tmp_path / "whole", *bohb, "hydra.sweeper.n_trials=40"))
    assert len(read_csv(tmp_path / "whole" / "trials.csv")) == 40
    modelled = [stage for stage, _, _ in seen]
    for stage, learned, results in seen:
        rich = [s for s, r in results.items() if len(r) >= 7]
        assert stage == max(rich, default=1.0)
        assert sorted(learned) == results[stage]  # that stage's results, all of them, alone
    assert modelled[0] == 1.0 and modelled[-1] == 9.0  # it moved up once 9 epochs had 7
    assert modelled == sorted(modelled)

    seen.clear()
    run_inprocess(overrides(tmp_path / "highest", *stages, "hydra.sweeper.n_trials=20"))
    mixed = [
        learned
        for stage, learned, results in seen
        if stage is None and len(results[9.0]) < 7 and set(results[9.0]) & set(learned)
    ]
    assert mixed  # highest: 9-epoch costs next to 1-epoch ones

    monkeypatch.undo()
    _resumed_alike(tmp_path, bohb, 12, 40)


@pytest.mark.parametrize(
    "preset, model, allowed",
    [
        ("optuna_tpe_hv_epochs", "bohb_kde", "must be one of highest, bohb"),
        (
            "smac_mfmo_epochs",
            "bohb",
            "needs algorithm optuna_gp or optuna_tpe and a budget.variable (got algorithm "
            "smac, budget.variable trainer.max_epochs); set budget.model=highest",
        ),
        (
            "optuna_tpe_hv",
            "bohb",
            "needs algorithm optuna_gp or optuna_tpe and a budget.variable (got algorithm "
            "optuna_tpe, budget.variable null); set budget.model=highest",
        ),
    ],
)
def test_budget_model_is_refused_in_one_line(tmp_path, preset, model, allowed):
    _refused(tmp_path, "budget.model", model, allowed, preset, TOY_OBJECTIVES)


def test_tpe_gamma_sets_the_share_of_good_trials_and_resumes_alike(tmp_path, monkeypatch):
    from optuna.samplers._tpe.sampler import default_gamma

    from hydra_plugins.smac_sweeper import _optuna

    for n in (1, 4, 20, 99, 200):
        assert _optuna.make_sampler("optuna_tpe", 0, 3, 0.25)._gamma(n) == min(-(-n // 4), 25)
    assert _optuna.make_sampler("optuna_tpe", 0, 3)._gamma is None  # Optuna's rule then:
    assert [default_gamma(n) for n in (10, 20, 21)] == [1, 2, 3]  # the best tenth
    shares, make = [], _optuna.make_sampler

    def recording(algorithm, seed, n_startup, gamma=None):
        shares.append(gamma)
        return make(algorithm, seed, n_startup, gamma)

    monkeypatch.setattr(_optuna, "make_sampler", recording)
    settings = (*INTERLEAVE, "hydra.sweeper.tpe_gamma=0.25")
    run_inprocess(overrides(tmp_path / "whole", *settings, "hydra.sweeper.n_trials=12"))
    assert len(shares) == 12 - 1 and set(shares) == {0.25}  # every ask after the default
    run_inprocess(overrides(tmp_path / "tenth", *INTERLEAVE, "hydra.sweeper.n_trials=12"))
    assert _configs(tmp_path / "whole")[:3] == _configs(tmp_path / "tenth")[:3]
    assert _configs(tmp_path / "whole") != _configs(tmp_path / "tenth")
    _resumed_alike(tmp_path, settings, 5, 12)


@pytest.mark.parametrize(
    "value, algorithm, allowed",
    [
        (0.0, "optuna_tpe_hv", "must be in (0, 1], or null (Optuna's 0.1)"),
        (1.5, "optuna_tpe_hv", "must be in (0, 1], or null (Optuna's 0.1)"),
        (0.25, "optuna_gp", "needs algorithm optuna_tpe (got optuna_gp)"),
    ],
)
def test_tpe_gamma_is_refused_in_one_line(tmp_path, value, algorithm, allowed):
    _refused(tmp_path, "tpe_gamma", value, allowed, algorithm)
