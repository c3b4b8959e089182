"""Resume after kill -9: the same command on the same sweep folder finishes the sweep,
telling exactly n_trials trials, re-running none that finished, re-running the one that
was in flight."""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest

from tests.toy_app.harness import (
    calls,
    command,
    env,
    kill_inside_a_trial,
    overrides,
    read_csv,
    read_journal,
)


def _events(sweep_dir, event):
    path = sweep_dir / "journal.jsonl"
    if not path.exists():
        return []
    return [r for r in read_journal(sweep_dir) if r["event"] == event]


# smac_mfmo_epochs: with continuation, trial 9 (the first promotion to 3 epochs, asked after
# the resume: the first bracket has 9 distinct configurations at 1 epoch) continues its 1-epoch
# trial, found through the journal
PRESETS = {
    "smac_mfmo": ([], {"5", "10", "20"}),
    "smac_mfmo_epochs": (["hydra.sweeper.objectives=[val/error,emissions/total_g]"], {"1", "3"}),
    # full fidelity; the study is rebuilt from the journal, GPSampler's model asks trial 9
    "optuna_gp": (
        [
            "hydra.sweeper.objectives=[val/error,emissions/total_g]",
            "hydra.sweeper.n_initial_configs=8",
        ],
        {""},
    ),
    # TPE on the scalarisations with pareto_promotion on the epochs (1, 3, 9; continuation):
    # the default goes 1 -> 3 -> 9 before the kill; promotions after the resume continue
    # trials told before it
    "optuna_tpe_hv_epochs": (
        [
            "hydra.sweeper.objectives=[val/error,emissions/total_g]",
            "hydra.sweeper.n_initial_configs=2",
        ],
        {"1", "3", "9"},
    ),
    # TPE on the scalarisations with hv_promotion (each stage afresh): promotions after the
    # resume are decided on the results told before and after it
    "optuna_tpe_hv_asha": (
        [
            "hydra.sweeper.objectives=[val/error,emissions/total_g]",
            "hydra.sweeper.n_initial_configs=2",
            "++hydra.sweeper.reference_point={val/error:1.0,emissions/total_g:0.1}",
        ],
        {"1", "3", "9"},
    ),
    # the preset (stages 1 and 9, the top quarter promoted, 1 in 5 new configurations
    # random), ranked per unit of the toy's cost
    "optuna_tpe_hv_screen": (
        [
            "hydra.sweeper.objectives=[val/error,emissions/total_g]",
            "hydra.sweeper.n_initial_configs=2",
            "++hydra.sweeper.reference_point={val/error:1.0,emissions/total_g:0.1}",
            "hydra.sweeper.search_cost=train/cost",
        ],
        {"1", "9"},
    ),
    # our GP and EHVI with the toy's emissions known, per unit of its cost: trials 3-9 from
    # the model, before and after the resume
    "gp_ehvi": (
        [
            "hydra.sweeper.objectives=[val/error,emissions/total_g]",
            "hydra.sweeper.known_objectives=[{objective:emissions/total_g,"
            "function:tests.toy_app.toy.known_emissions}]",
            "hydra.sweeper.search_cost=train/cost",
            "hydra.sweeper.n_initial_configs=2",
        ],
        {""},
    ),
    # GPSampler on random hypervolume scalarisations: the same resume, trial 9 from the model
    "optuna_gp_hv": (
        [
            "hydra.sweeper.objectives=[val/error,emissions/total_g]",
            "hydra.sweeper.n_initial_configs=8",
        ],
        {""},
    ),
}


# the GP presets and the two other epoch ladders take ~45 s together: slow (CI runs them)
SLOW_PRESETS = {"optuna_gp", "optuna_gp_hv", "optuna_tpe_hv_epochs", "optuna_tpe_hv_asha"}


@pytest.mark.parametrize(
    "preset",
    [pytest.param(p, marks=pytest.mark.slow) if p in SLOW_PRESETS else p for p in sorted(PRESETS)],
)
def test_resume_after_kill(tmp_path, preset):
    sweep = tmp_path / "sweep"
    extra, budgets = PRESETS[preset]
    args = overrides(sweep, preset, "hydra.sweeper.n_trials=10", "sleep=0.4", *extra)
    kill_inside_a_trial(args, tmp_path, told=3)  # 3 told, a 4th inside its 0.4 s sleep
    told_before = {r["trial_id"] for r in _events(sweep, "tell")}
    asked_before = {r["trial_id"] for r in _events(sweep, "ask")}
    runs_before = Counter(c["run_name"] for c in calls(sweep))
    assert 3 <= len(told_before) < 10

    again = subprocess.run(
        command(args), cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming the sweep" in again.stderr + again.stdout

    tells = [r["trial_id"] for r in _events(sweep, "tell")]
    assert sorted(tells) == list(range(10))  # exactly n_trials told, each once
    rows = read_csv(sweep / "trials.csv")
    assert [r["status"] for r in rows] == ["success"] * 10
    runs = Counter(c["run_name"] for c in calls(sweep))
    assert len(runs) == 10
    names = {  # run names: t<id>-b<budget>, t<id> at full fidelity
        int(r["trial_id"]): f"t{r['trial_id']}" + (f"-b{r['budget']}" if r["budget"] else "")
        for r in rows
    }
    for trial_id in told_before:
        assert runs[names[trial_id]] == 1, f"finished trial {trial_id} ran again"
    in_flight = asked_before - told_before
    assert in_flight and all(runs_before[names[i]] == 1 for i in in_flight)
    for trial_id in in_flight:  # launched, never told: run again
        assert runs[names[trial_id]] == 2
    for trial_id in set(range(10)) - asked_before:
        assert runs[names[trial_id]] == 1
    assert {r["budget"] for r in rows} <= budgets
    resumed = [r for r in rows if r["resumed_from"]]
    if preset == "optuna_tpe_hv_epochs":  # every trial above 1 epoch continues one
        assert resumed and resumed == [r for r in rows if r["budget"] != "1"]
    else:
        assert len(resumed) == (1 if preset == "smac_mfmo_epochs" else 0)
    by_id = {r["trial_id"]: r for r in rows}
    for row in resumed:  # continued the trial with its configuration at a lower budget
        source = by_id[row["resumed_from"]]
        assert int(source["budget"]) < int(row["budget"]) and source["x"] == row["x"]
        assert float(row["train/stage_epochs"]) == int(row["budget"]) - int(source["budget"])
    assert (sweep / "pareto.png").exists()
