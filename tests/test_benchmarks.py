"""The analysis of benchmarks/search_efficiency.py (study v2) on hand-made runs (no timing
asserted, no sweep started)."""

import json
from pathlib import Path

import pytest

from benchmarks.search_efficiency import (
    analyze,
    curves,
    fidelity_rank_correlation,
    first_reach,
    paired_scores,
    proposals,
    read_results,
    read_trials,
    recommend,
    sign_test_p,
    source_command,
    stage_energy_kwh,
    summarize,
    sweep_command,
    value_at,
)

REFERENCE = [1.0, 2.0]  # box area 2.0


def row(t, err, uj, kwh=1e-4, full=True, status="success"):
    return {"told_s": t, "val_error": err, "model_uj": uj, "energy_kwh": kwh,
            "full_fidelity": full, "status": status}  # fmt: skip


def run(*rows):
    return {"launched": 0.0, "ended": 1.0, "startup_s": 0.5, "trials": list(rows)}


def test_curves_count_full_fidelity_successes_and_all_energy():
    rows = [
        row(10, 0.5, 1.0),  # box (1 - 0.5) x (2 - 1) = 0.5 of the reference box 2.0
        row(20, 0.1, 0.1, full=False),  # a low-fidelity result: energy counts, HV not
        row(30, 0.9, 0.9, status="crashed", kwh=5e-5),
        row(40, 0.25, 1.5),  # adds (0.5 - 0.25) x (2 - 1.5) = 0.125
    ]
    c = curves(rows, REFERENCE)
    assert [t for t, _, _ in c] == [0.0, 10, 20, 30, 40]
    assert [e for _, e, _ in c] == pytest.approx([0, 1e-4, 2e-4, 2.5e-4, 3.5e-4])
    assert [h for _, _, h in c] == pytest.approx([0, 0.25, 0.25, 0.25, 0.3125])
    assert value_at(c, 0, 39.9) == pytest.approx(0.25)
    assert value_at(c, 1, 1e-3) == pytest.approx(0.3125)
    assert first_reach(c, 0, 0.3) == 40 and first_reach(c, 1, 0.25) == pytest.approx(1e-4)
    assert first_reach(c, 0, 0.5) is None


def test_a_continued_trial_counts_its_own_stage_not_the_cumulative_energy():
    continued = {"energy/total_kwh": 9e-4, "energy/train_kwh": 8e-4,
                 "energy/stage_train_kwh": 3e-4, "energy/inference_kwh": 1e-4}  # fmt: skip
    assert stage_energy_kwh(continued) == pytest.approx(4e-4)
    assert stage_energy_kwh({"energy/total_kwh": 2e-5}) == 2e-5  # an older record
    assert stage_energy_kwh({}) == 0.0  # a crash reports nothing


def test_proposals_are_the_trials_after_the_initial_design():
    first = [row(t, 0.9, 0.1) for t in range(4)]  # the default + INITIAL_CONFIGS (3)
    later = [row(10, 0.2, 0.5), row(11, 0.4, 0.3), row(12, 0.1, 0.2, full=False),
             row(13, 1.0, 0.9, status="crashed"), row(14, 0.3, 0.4)]  # fmt: skip
    out = proposals([first + later, first + later[:1]])
    assert out == {"later_trials": 4, "later_median_error": pytest.approx(0.25),
                   "later_median_uj": pytest.approx(0.45)}  # fmt: skip
    assert proposals([first])["later_median_error"] is None


def test_fidelity_rank_correlation_pairs_one_configuration_across_budgets():
    def at(budget, config, err, status="success"):
        return {**row(0, err, 0.1), "budget": budget, "config": config, "status": status}

    one = [at(1, "a", 0.8), at(1, "b", 0.7), at(1, "c", 0.9), at(1, "d", 0.6),
           at(3, "a", 0.5), at(3, "b", 0.4), at(3, "d", 0.3), at(9, "d", 0.2)]  # fmt: skip
    # seed 2: "a" is another run's configuration; its 3-epoch trial crashed
    two = [at(1, "a", 0.9), at(1, "e", 0.5), at(3, "e", 0.6), at(3, "a", 1.0, "crashed")]
    out = fidelity_rank_correlation([one, two])
    # 1 -> 3: (0.8, 0.5), (0.7, 0.4), (0.6, 0.3) and seed 2's (0.5, 0.6); ranks (4, 3),
    # (3, 2), (2, 1), (1, 4): sum d^2 = 12, rho = 1 - 6 * 12 / (4 * 15) = -0.2
    first = out["1->3"]
    assert first["configurations"] == 4 and first["spearman"] == pytest.approx(-0.2)
    assert "1->9" not in out and "3->9" not in out  # one pair only: too few
    assert fidelity_rank_correlation([[row(0, 0.5, 0.1)]]) == {}  # full fidelity: nothing


def test_paired_scores_and_sign_test():
    # seed 0: a reached the target with less energy; 1: only b reached it; 2: neither
    # reached it, a's final HV is higher; 3: same energy, a tie
    a = {0: (1.0, 0.6), 1: (None, 0.4), 2: (None, 0.3), 3: (2.0, 0.6)}
    b = {0: (2.0, 0.6), 1: (3.0, 0.6), 2: (None, 0.2), 3: (2.0, 0.5)}
    assert paired_scores(a, b) == [1, 0, 1, 0.5]
    assert sum(paired_scores(a, b)) / 4 == pytest.approx((1 + 0 + 1 + 0.5) / 4)
    assert sign_test_p(5, 0) == pytest.approx(2 / 32)
    assert sign_test_p(2, 2) == 1.0 and sign_test_p(0, 0) == 1.0
    assert sign_test_p(4, 1) == pytest.approx(2 * 6 / 32)


def synthetic_runs():
    """random reaches HV 0.25 (one point at error 0.5, 1 µJ) at 2e-4 kWh in seeds 0 and 1
    and only 0.125 in seed 2; mo reaches 0.25 at 1e-4 kWh in every seed; mfmo never does."""
    runs = {}
    for s in range(3):
        hit = row(20, 0.5, 1.0) if s < 2 else row(20, 0.75, 1.0)
        runs[("random", s)] = run(row(10, 0.9, 1.9), hit)
        runs[("mo", s)] = run(row(10, 0.5, 1.0), row(20, 0.9, 1.9, kwh=3e-4))
        runs[("mfmo_epochs", s)] = run(row(10, 0.1, 0.1, full=False, kwh=2e-5),
                                       row(20, 0.5, 1.4, kwh=2e-5))  # fmt: skip
    return runs


def test_energy_to_target_never_reached_and_the_ratio():
    core = summarize(synthetic_runs(), REFERENCE)
    assert core["random_median_final_hv"] == pytest.approx(0.25)
    r, mo, mf = (core["methods"][m] for m in ("random", "mo", "mfmo_epochs"))
    assert r["energy_to_random_hv_wh"] == pytest.approx([0.2, 0.2, None])
    assert r["search_energy_wh"] == pytest.approx([0.2, 0.2, 0.2])
    assert r["seconds_to_random_hv"] == [20, 20, None]
    assert mo["energy_to_random_hv_wh"] == pytest.approx([0.1, 0.1, 0.1])
    assert mf["energy_to_random_hv_wh"] == [None, None, None]  # never: null ...
    assert mf["median_energy_to_target_wh"] == pytest.approx(0.04)  # ... counted whole
    assert mf["trials"] == [2, 2, 2] and mf["full_fidelity_trials"] == [1, 1, 1]
    # random's runs count their energy at the target (0.2 Wh; seed 2 never: its whole 0.2)
    assert core["random_median_energy_wh"] == pytest.approx(0.2)
    # mfmo's median is lower, but only a lower bound: it reached the target in no seed
    assert core["recommended"] == "mo"
    assert core["energy_ratio_recommended_vs_random"] == pytest.approx(0.5)
    assert mo["wins_ties_losses_vs_random"] == [3, 0, 0] and mo["win_share_vs_random"] == 1.0
    # mfmo: seeds 0, 1 lost (random reached it); seed 2 neither, mfmo's HV 0.15 > 0.125
    assert mf["wins_ties_losses_vs_random"] == [1, 0, 2]
    assert mo["energy_ratio_vs_random_ci95"] == pytest.approx([0.5, 0.5])
    assert "mo reached" in core["verdict"] and "0.50x" in core["verdict"]


def test_recommend_skips_methods_that_rarely_reached_the_target():
    def o(energy, reached, hv):
        return {"median_energy_to_target_wh": energy, "reached_target": reached,
                "final_hv": [hv] * 4}  # fmt: skip

    out = {"random": o(1.0, 2, 0.5), "a": o(0.2, 1, 0.3), "b": o(0.6, 2, 0.5), "c": o(0.6, 4, 0.6)}
    assert recommend(out) == "c"  # b ties on energy, c has the higher final HV; a: 1 of 4
    out = {"random": o(1.0, 2, 0.5), "a": o(0.2, 1, 0.3), "b": o(0.6, 0, 0.4)}
    assert recommend(out) == "b"  # none qualifies: the highest median final HV
    runs = synthetic_runs()
    core = summarize({k: v for k, v in runs.items() if k[0] != "mo"}, REFERENCE)
    assert core["recommended"] == "mfmo_epochs"
    assert core["verdict"].startswith("no method beat random search")


def test_analyze_writes_the_v2_files_with_the_agreed_json_shape(tmp_path):
    setup = {"reference": {"values": REFERENCE, "source": "test"}}
    analyze(synthetic_runs(), 50, tmp_path, setup)
    report = json.loads((tmp_path / "search_efficiency_v2.json").read_text())
    for key in ("objectives", "reference_point", "walltime_s", "seeds", "methods",
                "random_median_final_hv", "random_median_energy_wh", "recommended",
                "energy_ratio_recommended_vs_random"):  # fmt: skip
        assert key in report
    assert report["objectives"] == ["val/error", "energy/model_uj_per_image"]
    assert report["reference_point"] == REFERENCE and report["seeds"] == [0, 1, 2]
    assert report["walltime_s"] == 50 and report["recommended"] == "mo"
    for m in ("random", "mo", "mfmo_epochs"):
        per_seed = report["methods"][m]
        for key in ("final_hv", "energy_to_random_hv_wh", "seconds_to_random_hv", "trials",
                    "full_fidelity_trials"):  # fmt: skip
            assert len(per_seed[key]) == 3
    assert report["methods"]["mfmo_epochs"]["energy_to_random_hv_wh"] == [None] * 3
    lines = (tmp_path / "search_efficiency_v2_trials.csv").read_text().splitlines()
    assert len(lines) == 1 + 18
    assert (tmp_path / "search_efficiency_v2.png").stat().st_size > 0


def test_pooling_committed_results_gives_back_the_runs_and_their_summary(tmp_path):
    # rows as read_trials writes them (every column of _trials.csv), budgets and crashes in
    runs = {}
    for (method, seed), r in synthetic_runs().items():
        rows = []
        for i, x in enumerate(r["trials"]):
            full = x["full_fidelity"]
            rows.append({"method": method, "seed": seed, "trial_id": i,
                         "budget": None if method != "mfmo_epochs" else (9 if full else 1),
                         "continued": False, "energy_cumulative_kwh": x["energy_kwh"],
                         "emissions_g": 0.01, "epochs_trained": 9.0 if full else 1.0,
                         "duration_s": 1.5, "config": json.dumps({"w": i}), **x})  # fmt: skip
        runs[(method, seed)] = {**r, "trials": rows}
    runs[("mo", 2)]["trials"][1].update(status="crashed", val_error=None, model_uj=None)
    setup = {"reference": {"values": REFERENCE, "source": "test"}}
    analyze(runs, 50, tmp_path, setup, "search_efficiency_v2_a")
    pooled = read_results(tmp_path, "search_efficiency_v2_a", ["random", "mo"])
    assert set(pooled) == {(m, s) for m in ("random", "mo") for s in range(3)}
    for key, run_ in pooled.items():
        assert run_["trials"] == runs[key]["trials"]  # the same values and types
        assert run_["startup_s"] == runs[key]["startup_s"]
    before = summarize({k: v for k, v in runs.items() if k[0] != "mfmo_epochs"}, REFERENCE)
    after = summarize(pooled, REFERENCE)
    assert after["methods"] == before["methods"]
    assert (
        after["energy_ratio_recommended_vs_random"] == before["energy_ratio_recommended_vs_random"]
    )


def test_pool_without_a_tag_stops_before_writing(tmp_path, monkeypatch, capsys):
    # else the pooled results would overwrite search_efficiency_v2.json, study v2's own
    from benchmarks import search_efficiency

    argv = ["search_efficiency", "--methods", "random", "--pool", "a", "--out-dir", str(tmp_path)]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as stop:
        search_efficiency.main()
    assert stop.value.code == 2
    assert "--pool needs a --tag" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_read_trials_takes_full_fidelity_and_stage_energy_from_the_journal(tmp_path):
    records = [
        {"event": "sweep", "t": 99.0,
         "fingerprint": {"budget": {"variable": "trainer.max_epochs", "min": 1, "max": 9}}},
        {"event": "session", "t": 100.0},
        {"event": "ask", "trial_id": 0, "budget_value": 3, "config": {"lr": 0.1, "bs": 64}},
        {"event": "ask", "trial_id": 1, "budget_value": 9, "resumed_from": 0,
         "config": {"lr": 0.1, "bs": 64}},
        {"event": "ask", "trial_id": 2, "budget_value": 9, "config": {"lr": 0.2, "bs": 32}},
        {"event": "tell", "t": 105.0, "trial_id": 0, "status": "success", "duration": 3.0,
         "objectives": {"val/error": 0.3, "energy/model_uj_per_image": 1.2},
         "metrics": {"energy/total_kwh": 2e-5}},
        {"event": "tell", "t": 112.0, "trial_id": 1, "status": "success", "duration": 6.0,
         "objectives": {"val/error": 0.2, "energy/model_uj_per_image": 1.2},
         "metrics": {"energy/total_kwh": 7e-5, "energy/stage_train_kwh": 4e-5,
                     "energy/inference_kwh": 1e-5}},
        {"event": "tell", "t": 120.0, "trial_id": 2, "status": "crashed", "duration": 6.0,
         "objectives": {}, "metrics": {}},
    ]  # fmt: skip
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    times = {"launched": 90.0}
    rows = read_trials("mfmo_epochs", 1, tmp_path, times)
    assert times["startup_s"] == 10.0
    assert [(r["trial_id"], r["full_fidelity"], r["continued"], r["told_s"]) for r in rows] == [
        (0, False, False, 5.0),
        (1, True, True, 12.0),
        (2, True, False, 20.0),
    ]
    assert [r["energy_kwh"] for r in rows] == pytest.approx([2e-5, 5e-5, 0.0])
    assert rows[1]["model_uj"] == 1.2 and rows[2]["val_error"] is None
    assert rows[0]["config"] == rows[1]["config"] == '{"bs": 64, "lr": 0.1}'  # sorted keys
    # a sweep without a budget variable: every trial is at full fidelity
    records[0]["fingerprint"] = {"budget": {"variable": None, "min": 5, "max": 20}}
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert all(r["full_fidelity"] for r in read_trials("random", 1, tmp_path, times))


def test_the_schedule_interval_reaches_every_sweep_and_keeps_its_runs_apart():
    reference = [1.0, 2.7]
    step = sweep_command("tpe_hv_asha", 3, 100.0, Path("d"), reference, "step")
    assert "schedule_interval=step" in step and "hydra.sweeper.seed=3" in step
    assert "hydra.sweeper.intensifier=hv_promotion" in step
    assert "hydra.sweeper.budget.continuation=false" in step
    assert "schedule_interval=epoch" in sweep_command("random", 0, 100.0, Path("d"), reference)
    # the warm start's source sweep of a step study: the same interval, its own folder
    source = source_command(Path("runs"), reference, "step")
    assert "schedule_interval=step" in source and "trainer.max_epochs=3" in source
    assert "hydra.sweep.dir=runs/source/tpe_hv_seed1_3epochs_step" in source
    # and a warm-started sweep of that study starts from it, not from the per-epoch one
    warm = sweep_command("tpe_hv_warm", 0, 100.0, Path("runs/w100_step/w"), reference, "step")
    assert "hydra.sweeper.warm_start.sweep_dir=runs/source/tpe_hv_seed1_3epochs_step" in warm
    warm = sweep_command("tpe_hv_warm", 0, 100.0, Path("runs/w100/w"), reference)
    assert "hydra.sweeper.warm_start.sweep_dir=runs/source/tpe_hv_seed1_3epochs" in warm
