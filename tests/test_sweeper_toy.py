"""The SMAC sweeper end to end on the toy app (milliseconds per call), in-process.

Each test runs a small sweep with one of the presets of conf/hydra/sweeper and checks what
the trials received (the toy logs every call) and what the sweep wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from hydra_plugins.smac_sweeper._impl import SweepFailedError
from hydra_plugins.smac_sweeper._journal import Journal, JournalLockedError
from hydra_plugins.smac_sweeper._space import SearchSpaceError
from tests.toy_app.harness import ROOT, calls, env, overrides, read_csv, read_journal, run_inprocess


def _told(sweep_dir: Path) -> list[dict]:
    return [r for r in read_journal(sweep_dir) if r["event"] == "tell"]


def _check_common(
    sweep_dir: Path, n_trials: int, objectives: list[str], parallel: int = 1
) -> list[dict]:
    """Checks every sweep must pass (`parallel`: trials that run at once); returns trials.csv
    rows."""
    rows = read_csv(sweep_dir / "trials.csv")
    assert len(rows) == n_trials == len(_told(sweep_dir))
    assert [int(r["trial_id"]) for r in rows] == list(range(n_trials))
    assert {r["status"] for r in rows} <= {"success", "crashed"}
    hps = [k for k in rows[0] if k in ("x", "y", "opt", "n", "momentum", "shift_depth")]
    trials = [tuple(r[k] for k in [*hps, "budget"]) for r in rows]
    assert len(set(trials)) == len(trials)  # no configuration ran twice at one budget
    for row in rows:
        assert row["job_dir"] == row["trial_id"]  # relative to the sweep folder
        assert (sweep_dir / row["job_dir"] / ".hydra" / "overrides.yaml").exists()
        assert row["status"] == "crashed" or all(row[k] != "" for k in objectives)
    for name in ("pareto.csv", "optimization_results.yaml", "pareto.png"):
        assert (sweep_dir / name).exists(), name
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["objectives"] == objectives
    assert results["n_trials"]["total"] == n_trials
    ms = results["sweeper_ms_per_trial"]  # the sweeper's own time per trial, by phase
    assert set(ms) == {"ask", "launch", "task", "tell", "outputs"}
    # a launch waits for its trials: its wall time covers their time, shared by the workers
    assert all(v >= 0 for v in ms.values()) and parallel * ms["launch"] >= ms["task"]
    (path,) = sweep_dir.glob(f"smac3_output/{sweep_dir.name}/*/runhistory.json")  # .../<seed>/
    runhistory = json.loads(path.read_text())
    assert len(runhistory["data"]) == n_trials  # SMAC's own output, for DeepCAVE
    # every call is one told trial (no resume here)
    assert Counter(c["run_name"] for c in calls(sweep_dir)) == Counter(
        f"t{r['trial_id']}" + (f"-b{r['budget']}" if r["budget"] else "") for r in rows
    )
    return rows


def test_mfmo_hyperband_on_shift_depth(tmp_path):
    sweep = tmp_path / "mfmo"
    run_inprocess(
        overrides(
            sweep,
            "smac_mfmo",
            "hydra.sweeper.n_trials=10",
            "fail=mixed",
            "hydra.sweeper.max_failure_rate=0.9",
        )
    )
    objectives = ["val/error", "emissions/total_g"]
    rows = _check_common(sweep, 10, objectives)
    # integer Hyperband stages of shift_depth, passed as ints, never searched
    assert {r["budget"] for r in rows} == {"5", "10", "20"}
    for call in calls(sweep):
        assert call["shift_depth"] in (5, 10, 20) and call["shift_depth_type"] == "int"
        assert f"++shift_depth={call['shift_depth']}" in call["overrides"]
        assert call["run_group"] == "mfmo"
        assert isinstance(call["seed"], int)
        # only active hyperparameters: momentum only where opt uses it
        has_momentum = any(o.startswith("momentum=") for o in call["overrides"])
        assert has_momentum == (call["opt"] in ("a", "b"))
    assert "shift_depth" not in rows[0]
    # the front is taken at the highest budget only
    front = read_csv(sweep / "pareto.csv")
    assert front and {r["budget"] for r in front} == {"20"}
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["budget"] == 20.0 and results["hypervolume"] > 0
    assert results["reference_point"]["val/error"] == {"value": 1.0, "source": "configured"}
    assert len(results["solutions"]) == len(front)


def test_n_initial_configs_sets_smacs_initial_design(tmp_path):
    # SMAC's rule would give min(10 per hyperparameter, 25 % of 16 trials) = 4
    sweep = tmp_path / "mo"
    run_inprocess(
        overrides(
            sweep, "smac_mo", "hydra.sweeper.n_trials=16", "hydra.sweeper.n_initial_configs=7"
        )
    )
    (path,) = sweep.glob(f"smac3_output/{sweep.name}/*/runhistory.json")
    origins = list(json.loads(path.read_text())["config_origins"].values())
    assert len(origins) == 16
    initial = [o for o in origins if o.lower().startswith(("initial", "default"))]
    # 7 Sobol configurations asked for, plus the default; 6 of them ran within the 16
    # trials here. SMAC's own rule would allow 4 + the default.
    assert 6 <= len(initial) <= 7, origins
    assert sum(o.lower().startswith("default") or "default" in o.lower() for o in initial) == 1


def test_mf_single_objective_returning_a_float(tmp_path):
    sweep = tmp_path / "mf"
    run_inprocess(overrides(sweep, "smac_mf", "hydra.sweeper.n_trials=8", "return_float=true"))
    rows = _check_common(sweep, 8, ["val/error"])
    assert all(r["status"] == "success" for r in rows)
    assert "emissions/total_g" not in rows[0]
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    best = min(float(r["val/error"]) for r in rows if r["budget"] == "20")
    assert results["best_value"] == pytest.approx(best)
    assert set(results["best_params"]) >= {"x", "y", "opt", "n"}


def test_mo_full_fidelity_with_a_fixed_hyperparameter(tmp_path):
    sweep = tmp_path / "mo"
    run_inprocess(overrides(sweep, "smac_mo", "hydra.sweeper.n_trials=6", "opt=c"))
    rows = _check_common(sweep, 6, ["val/error", "emissions/total_g"])
    assert all(r["budget"] == "" for r in rows)
    assert len({r["shift_depth"] for r in rows}) > 1  # searched, not a budget
    assert "opt" not in rows[0] and "momentum" not in rows[0]  # fixed; condition resolved
    for call in calls(sweep):
        assert call["opt"] == "c"
        assert not any(o.startswith("++shift_depth") for o in call["overrides"])


def test_random_search_records_each_kind_of_crash(tmp_path):
    sweep = tmp_path / "random"
    run_inprocess(
        overrides(
            sweep,
            "random",
            "hydra.sweeper.n_trials=9",
            "hydra.sweeper.seed=1",
            "fail=mixed",
            "hydra.sweeper.max_failure_rate=0.9",
        )
    )
    rows = _check_common(sweep, 9, ["val/error", "emissions/total_g"])
    assert rows[0]["x"] == "0.5" and rows[0]["n"] == "5"  # the default configuration first
    crashed = {r["n"]: r["error"] for r in rows if r["status"] == "crashed"}
    assert "toy failure at n=2" in crashed["2"]
    assert "not a finite number" in crashed["3"]
    assert "lacks objective" in crashed["4"]
    assert all(r["status"] == "success" for r in rows if r["n"] not in ("2", "3", "4"))
    told = {r["trial_id"]: r for r in _told(sweep)}
    assert all(all(c < 1e300 for c in r["cost"]) for r in told.values())  # finite crash costs
    assert told[int(next(r["trial_id"] for r in rows if r["n"] == "3"))]["cost"][0] == 1.0


def test_joblib_launcher_runs_batches_in_parallel(tmp_path):
    sweep = tmp_path / "joblib"
    run_inprocess(
        overrides(
            sweep,
            "smac_mfmo",
            "hydra.sweeper.n_trials=6",
            "hydra.sweeper.n_workers=2",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "sleep=0.3",
        )
    )
    rows = _check_common(sweep, 6, ["val/error", "emissions/total_g"], parallel=2)
    assert Counter(r["batch"] for r in rows) == {"0": 2, "1": 2, "2": 2}
    pids = {c["pid"] for c in calls(sweep)}
    assert len(pids) == 2 and os.getpid() not in pids


def test_a_sweep_that_only_fails_stops(tmp_path):
    sweep = tmp_path / "fails"
    args = overrides(sweep, "random", "hydra.sweeper.n_trials=20", "fail=always")
    with pytest.raises(SweepFailedError, match="5 of 5 trials crashed.*max_failure_rate=0.5"):
        run_inprocess(args)
    assert len(_told(sweep)) == 5
    assert yaml.safe_load((sweep / "optimization_results.yaml").read_text())["solutions"] == []


def test_search_space_key_missing_in_the_app_is_refused_up_front(tmp_path):
    sweep = tmp_path / "typo"
    args = overrides(
        sweep,
        "random",
        "hydra.sweeper.n_trials=8",
        "+hydra.sweeper.search_space.hyperparameters.zz={type:int,lower:0,upper:3}",
    )
    with pytest.raises(ValueError, match="do not compose.*zz"):
        run_inprocess(args)
    assert calls(sweep) == [] and not (sweep / "journal.jsonl").exists()


def test_bad_search_space_is_refused_before_any_trial(tmp_path):
    sweep = tmp_path / "bad"
    args = overrides(sweep, "smac_mo", "hydra.sweeper.search_space.hyperparameters.x.lower=2")
    with pytest.raises(SearchSpaceError, match=r"hyperparameters\['x'\]: lower \(2\)"):
        run_inprocess(args)
    with pytest.raises(ValueError, match="do not sweep them"):
        run_inprocess(overrides(sweep, "smac_mo", "y=0.1,0.2"))


def test_reproducible_from_the_seed(tmp_path):
    tables = []
    for name in ("a", "b"):
        run_inprocess(overrides(tmp_path / name, "smac_mfmo", "hydra.sweeper.n_trials=6"))
        rows = read_csv(tmp_path / name / "trials.csv")
        keep = ("x", "y", "opt", "n", "momentum", "budget", "seed", "val/error")
        tables.append([[r[k] for k in keep] for r in rows])
    assert tables[0] == tables[1]


def test_resume_continues_and_never_reruns(tmp_path):
    sweep = tmp_path / "resume"
    run_inprocess(overrides(sweep, "smac_mfmo", "hydra.sweeper.n_trials=4"))
    first = {c["run_name"] for c in calls(sweep)}
    run_inprocess(overrides(sweep, "smac_mfmo", "hydra.sweeper.n_trials=9"))
    run_inprocess(overrides(sweep, "smac_mfmo", "hydra.sweeper.n_trials=9"))  # nothing left
    names = Counter(c["run_name"] for c in calls(sweep))
    assert len(names) == 9 and set(names.values()) == {1} and first <= set(names)
    _check_common(sweep, 9, ["val/error", "emissions/total_g"])
    sessions = [r for r in read_journal(sweep) if r["event"] == "session"]
    assert len(sessions) == 3
    with pytest.raises(RuntimeError, match="other settings .*objectives"):
        run_inprocess(overrides(sweep, "smac_mfmo", "hydra.sweeper.objectives=[val/error]"))


def test_walltime_limit_stops_launching(tmp_path):
    sweep = tmp_path / "walltime"
    run_inprocess(
        overrides(
            sweep,
            "random",
            "hydra.sweeper.n_trials=50",
            "hydra.sweeper.walltime_limit=1.0",
            "sleep=0.4",
        )
    )
    assert 1 <= len(_told(sweep)) < 10


def test_wandb_summary_run_offline(tmp_path):
    sweep = tmp_path / "wb"
    run_inprocess(
        overrides(sweep, "random", "hydra.sweeper.n_trials=2", "hydra.sweeper.wandb.mode=offline")
    )
    runs = list((sweep / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))


def test_journal_cuts_a_torn_line_and_locks(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        journal.append({"event": "ask", "trial_id": 0})
        journal.append({"event": "tell", "trial_id": 0})
        with pytest.raises(JournalLockedError), Journal(path):
            pass
    with open(path, "a") as f:
        f.write('{"event": "ask", "tri')  # a writer killed mid-line
    with Journal(path) as journal:
        assert [r["event"] for r in journal.read()] == ["ask", "tell"]
        journal.append({"event": "ask", "trial_id": 1})
        assert [r.get("trial_id") for r in journal.read()] == [0, 0, 1]


def test_importing_the_plugin_stays_light():
    """Hydra imports every public plugin module on each run: no SMAC, Optuna, W&B or
    matplotlib."""
    code = (
        "import sys\n"
        "from hydra.core.plugins import Plugins\n"
        "from hydra.plugins.sweeper import Sweeper\n"
        "names = [p.__name__ for p in Plugins.instance().discover(Sweeper)]\n"
        "assert 'SMACSweeper' in names, names\n"
        "import hydra_plugins.smac_sweeper.smac_sweeper\n"
        "heavy = {'smac', 'optuna', 'ConfigSpace', 'wandb', 'matplotlib', 'dask', 'numpy'}\n"
        "assert not heavy & set(sys.modules), heavy & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env(), check=True)


@pytest.mark.parametrize(
    "option, message",
    [
        ("hydra.sweeper.n_initial_configs=0", r"n_initial_configs=0 is .* null or in \[1"),
        ("hydra.sweeper.n_initial_configs=9", r"n_initial_configs=9 is invalid: must be null"),
        ("hydra.sweeper.n_initial_configs=8", r"in \[1, 7\] \(n_trials=8, use_default_config"),
        ("hydra.sweeper.max_failure_rate=1.5", r"max_failure_rate=1.5 is .* be in \[0, 1\]"),
        ("hydra.sweeper.max_failure_rate=-0.1", r"max_failure_rate=-0.1 is invalid"),
        ("hydra.sweeper.n_trials=0", r"n_trials=0 is invalid: must be an integer >= 1"),
        ("hydra.sweeper.walltime_limit=-5", r"walltime_limit=-5.0 is invalid: .* seconds > 0"),
        ("hydra.sweeper.trial_timeout=0", r"trial_timeout=0.0 is invalid: .* seconds > 0"),
        ("hydra.sweeper.trial_timeout=-3", r"trial_timeout=-3.0 is invalid"),
        ("hydra.sweeper.n_workers=0", r"n_workers=0 is invalid: must be an integer >= 1"),
        ("hydra.sweeper.budget.eta=1", r"budget.eta=1 is invalid: must be an integer >= 2"),
        ("hydra.sweeper.budget.min=30", r"budget.max=20.0 is invalid: must be above budget.min=30"),
        ("hydra.sweeper.budget.min=0", r"budget.min=0.0 is invalid: must be > 0"),
        ("hydra.sweeper.budget.stages=[5,20]",
         r"budget.stages=\[5.0, 20.0\] is invalid: needs algorithm optuna_gp or optuna_tpe \(SM"),
        # today's silent no-op: ++not_a_key=... adds a key that the app never reads
        ("hydra.sweeper.budget.variable=not_a_key",
         r"budget.variable='not_a_key' is invalid: must be a key of the app's config \(top-level"),
        ("hydra.sweeper.algorithm=bogus", r"algorithm='bogus' is invalid: must be one of smac, r"),
        ("hydra.sweeper.intensifier=bogus", r"intensifier='bogus' is invalid: must be one of hy"),
        ("hydra.sweeper.multi_objective=bogus", r"multi_objective='bogus' is invalid: .* parego"),
        ("hydra.sweeper.multi_objective=hypervolume",
         r"multi_objective='hypervolume' is invalid: needs algorithm optuna_gp or optuna_t"),
        ("hydra.sweeper.objectives=[]", r"objectives=\[\] is invalid: must be distinct keys"),
        ("hydra.sweeper.objectives=[val/error,val/error]", r"objectives=\['val/error', 'val/e"),
    ],
)  # fmt: skip
def test_bad_sweeper_settings_stop_before_any_trial(tmp_path, option, message):
    """Checked before the journal is written: the refused folder stays usable."""
    sweep = tmp_path / "bad"
    with pytest.raises(ValueError, match=r"^hydra\.sweeper\..*" + message):
        run_inprocess(overrides(sweep, "smac_mfmo", "hydra.sweeper.n_trials=8", option))
    assert calls(sweep) == []
    assert not (sweep / "journal.jsonl").exists()
    run_inprocess(overrides(sweep, "smac_mfmo", "hydra.sweeper.n_trials=2"))  # the folder works
    assert len(_told(sweep)) == 2
