"""What a user acts on after a sweep of the toy app (issue 12): the hypervolume after every
batch against a reference point fixed once, re-runnable solutions, no duplicate
configuration in Hyperband's first bracket, trials.csv's ids and times, multirun.yaml."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from tests.toy_app.harness import TOY, overrides, read_csv, read_journal, run_inprocess

OBJECTIVES = ["val/error", "emissions/total_g"]
DEFAULT = {"x": 0.5, "y": 0.1, "opt": "a", "momentum": 0.9, "n": 5}  # toy search space


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """smac_mfmo on the toy app, 14 trials in batches of 2."""
    sweep_dir = tmp_path_factory.mktemp("outputs") / "mfmo"
    run_inprocess(
        overrides(sweep_dir, "smac_mfmo", "hydra.sweeper.n_trials=14", "hydra.sweeper.n_workers=2")
    )
    return sweep_dir


def independent_hv_2d(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area of the union of the boxes [p, ref], by cells of the coordinate grid: a cell
    counts when some point is <= its lower corner in both objectives."""
    points = [p for p in points if p[0] < ref[0] and p[1] < ref[1]]
    xs = sorted({p[0] for p in points} | {ref[0]})
    ys = sorted({p[1] for p in points} | {ref[1]})
    area = 0.0
    for x0, x1 in zip(xs, xs[1:], strict=False):
        for y0, y1 in zip(ys, ys[1:], strict=False):
            if any(px <= x0 and py <= y0 for px, py in points):
                area += (x1 - x0) * (y1 - y0)
    return area


def _told_order(sweep_dir: Path) -> list[int]:
    return [r["trial_id"] for r in read_journal(sweep_dir) if r["event"] == "tell"]


def test_reference_point_is_fixed_from_the_default_and_journaled(sweep):
    records = [r for r in read_journal(sweep) if r["event"] == "reference"]
    assert len(records) == 1
    rows = read_csv(sweep / "trials.csv")
    assert {k: type(v)(rows[0][k]) for k, v in DEFAULT.items()} == DEFAULT  # trial 0 = default
    emissions = float(rows[0]["emissions/total_g"])
    assert records[0]["values"] == {"val/error": 1.0, "emissions/total_g": 2 * emissions}
    assert records[0]["source"]["emissions/total_g"] == "2 x trial 0"
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    ref = results["reference_point"]
    assert ref["emissions/total_g"]["value"] == 2 * emissions
    assert results["ideal_point"] == {"val/error": 0.0, "emissions/total_g": 0.0}


def test_hypervolume_per_batch_grows_and_matches_an_independent_computation(sweep):
    rows = {int(r["trial_id"]): r for r in read_csv(sweep / "trials.csv")}
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    ref = tuple(results["reference_point"][k]["value"] for k in OBJECTIVES)
    order = _told_order(sweep)
    history = read_csv(sweep / "hypervolume.csv")
    assert len(history) == 7  # 14 trials in batches of 2
    assert [int(h["told_trials"]) for h in history] == list(range(2, 15, 2))
    hvs = [float(h["hypervolume"]) for h in history]
    assert all(b >= a for a, b in zip(hvs, hvs[1:], strict=False))
    assert hvs[-1] > 0
    for h in history:
        told = [rows[i] for i in order[: int(h["told_trials"])]]
        points = [
            tuple(float(r[k]) for k in OBJECTIVES)
            for r in told
            if r["status"] == "success" and r["budget"] == "20"
        ]
        expected = independent_hv_2d(points, ref)
        assert float(h["hypervolume"]) == pytest.approx(expected, rel=1e-9, abs=1e-15)
        assert float(h["hypervolume_normalised"]) == pytest.approx(expected / (ref[0] * ref[1]))
        assert float(h["wall_time_s"]) >= 0 and float(h["search_energy_kwh"]) == 0.0
    assert results["hypervolume"] == pytest.approx(hvs[-1])


def test_resume_keeps_the_reference_point_and_the_history(tmp_path):
    sweep_dir = tmp_path / "resume"
    run_inprocess(overrides(sweep_dir, "smac_mfmo", "hydra.sweeper.n_trials=7"))
    first = read_csv(sweep_dir / "hypervolume.csv")
    moved = "hydra.sweeper.reference_point={val/error:2.0}"  # the journal's 1.0 is kept
    run_inprocess(overrides(sweep_dir, "smac_mfmo", "hydra.sweeper.n_trials=11", moved))
    again = read_csv(sweep_dir / "hypervolume.csv")
    assert len(again) == 11 and again[:7] == first
    (record,) = [r for r in read_journal(sweep_dir) if r["event"] == "reference"]
    assert record["values"]["val/error"] == 1.0
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["reference_point"]["val/error"]["value"] == 1.0


def test_no_duplicate_configuration_in_the_first_bracket(tmp_path):
    # n_trials=10: SMAC's rule gives 2 initial configurations + the default, Hyperband's
    # first bracket needs 4 at shift_depth=5; SMAC's fallback sampler used to replay one
    sweep_dir = tmp_path / "dup"
    run_inprocess(overrides(sweep_dir, "smac_mfmo", "hydra.sweeper.n_trials=10"))
    asks = [r for r in read_journal(sweep_dir) if r["event"] == "ask"]
    first = [a for a in asks if a["budget"] == 5.0]
    assert len(first) >= 4 and [a["trial_id"] for a in first[:4]] == [0, 1, 2, 3]
    configs = [json.dumps(a["config"], sort_keys=True) for a in first]
    assert len(set(configs)) == len(configs)
    assert asks[0]["config"] == DEFAULT


def test_trials_csv_ids_times_and_paths(sweep):
    rows = read_csv(sweep / "trials.csv")
    hps = ("x", "y", "opt", "n", "momentum")
    first_id: dict[tuple, str] = {}
    for r in rows:
        key = tuple(r[k] for k in hps)
        assert r["config_id"] == first_id.setdefault(key, r["trial_id"])
        assert r["budget_variable"] == "shift_depth" and r["job_dir"] == r["trial_id"]
        start = datetime.fromisoformat(r["started_at"])
        assert start.tzinfo is not None and datetime.fromisoformat(r["ended_at"]) >= start
        assert [float(r[f"told/{k}"]) for k in OBJECTIVES] == [float(r[k]) for k in OBJECTIVES]
    promoted = [r for r in rows if r["config_id"] != r["trial_id"]]
    assert promoted  # Hyperband promotes: one configuration id at several budgets


def test_a_solution_reruns_with_its_overrides(sweep, tmp_path):
    from hydra._internal.hydra import Hydra
    from hydra.core.global_hydra import GlobalHydra

    from tests.toy_app.toy import task

    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    solution = results["solutions"][0]
    assert "++shift_depth=20" in solution["overrides"]
    assert set(solution["values"]) == set(OBJECTIVES)
    GlobalHydra.instance().clear()
    try:
        hydra = Hydra.create_main_hydra_file_or_module(
            calling_file=str(TOY), calling_module=None, config_path="conf", job_name="toy"
        )
        ret = hydra.run(
            config_name="toy",
            task_function=task,
            overrides=[*solution["overrides"], f"hydra.run.dir={tmp_path / 'rerun'}"],
            with_log_configuration=False,
        )
    finally:
        GlobalHydra.instance().clear()
    for key, value in solution["values"].items():
        assert ret.return_value[key] == pytest.approx(value, rel=1e-12)


def test_multirun_yaml_like_hydras_sweepers(sweep):
    saved = OmegaConf.load(sweep / "multirun.yaml")
    assert saved.hydra.sweeper.n_trials == 14 and saved.hydra.sweep.dir == str(sweep)
    assert f"log_dir={sweep / 'calls'}" in list(saved.hydra.overrides.task)


def test_pareto_plot_is_drawn(sweep):
    png = (sweep / "pareto.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    assert np.frombuffer(png[16:24], dtype=">u4").tolist() == [900, 500]  # width, height
