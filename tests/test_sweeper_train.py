"""End to end: a real (small) MFMO sweep of train.py, the way users run it. Minutes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.toy_app.harness import ROOT, env, read_csv


@pytest.mark.slow
def test_mfmo_sweep_of_train_py(tmp_path):
    sweep = tmp_path / "mfmo"
    # budgets 10 and 20 shift layers: the third trial already runs at the highest budget
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "hydra/sweeper=smac_mfmo",
        "experiment=demo",
        "search_space@hydra.sweeper.search_space=demo",
        "trainer.max_epochs=1",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.budget.min=10",
        # a fixed reference: by the default rule (2 x the default configuration's values at
        # budget 10) the budget-20 result's measured emissions, which vary with the load on
        # the machine, may pass it, and the hypervolume is then 0
        "++hydra.sweeper.reference_point={val/error:1.0,emissions/total_g:10.0}",
        "hydra.sweeper.wandb.mode=offline",
        f"hydra.sweep.dir={sweep}",
    ]
    run_env = {**env(), "WANDB_MODE": "offline"}
    subprocess.run(command, cwd=tmp_path, env=run_env, check=True, timeout=1800)

    rows = read_csv(sweep / "trials.csv")
    assert len(rows) == 3 and all(r["status"] == "success" for r in rows), rows
    assert [r["budget"] for r in rows] == ["10", "10", "20"]
    for row in rows:
        assert 0.0 <= float(row["val/error"]) <= 1.0
        assert float(row["emissions/total_g"]) > 0
        assert "trainer.max_epochs" not in row  # fixed on the command line
        overrides = yaml.safe_load((sweep / row["trial_id"] / ".hydra/overrides.yaml").read_text())
        assert f"++shift_depth={row['budget']}" in overrides
        assert f"++run_name=t{row['trial_id']}-b{row['budget']}" in overrides
        assert "++run_group=mfmo" in overrides
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert len(results["solutions"]) == 1 and results["hypervolume"] > 0
    assert (sweep / "pareto.png").exists() and any((sweep / "wandb").glob("offline-run-*"))
