"""The analysis of benchmarks/search_efficiency.py on hand-made runs (no timing asserted)."""

import json

import numpy as np
import pytest

from benchmarks.search_efficiency import (
    curves,
    first_reach,
    max_budget,
    read_trials,
    value_at,
    win_share,
)


def row(t, err, em, kwh=1e-4, full=True, status="success"):
    return {"told_s": t, "val_error": err, "emissions_g": em, "energy_kwh": kwh,
            "full_fidelity": full, "status": status}  # fmt: skip


def test_curves_count_full_fidelity_successes_and_all_energy():
    reference = np.array([1.0, 2.0])
    rows = [
        row(10, 0.5, 1.0),  # box (1 - 0.5) x (2 - 1) = 0.5 of the reference box 2.0
        row(20, 0.1, 0.1, full=False),  # a low-fidelity result: energy counts, HV not
        row(30, 0.9, 0.9, status="crashed", kwh=5e-5),
        row(40, 0.25, 1.5),  # adds (0.5 - 0.25) x (2 - 1.5) = 0.125
    ]
    c = curves(rows, reference)
    assert [t for t, _, _ in c] == [0.0, 10, 20, 30, 40]
    assert [e for _, e, _ in c] == pytest.approx([0, 1e-4, 2e-4, 2.5e-4, 3.5e-4])
    assert [h for _, _, h in c] == pytest.approx([0, 0.25, 0.25, 0.25, 0.3125])
    assert value_at(c, 0, 39.9) == pytest.approx(0.25)
    assert value_at(c, 1, 1e-3) == pytest.approx(0.3125)
    assert first_reach(c, 0, 0.3) == 40 and first_reach(c, 1, 0.25) == pytest.approx(1e-4)
    assert first_reach(c, 0, 0.5) == float("inf")


def test_win_share_counts_seed_pairs():
    assert win_share([3, 4], [1, 2]) == 1.0
    assert win_share([1, 2], [3, 4]) == 0.0
    assert win_share([1, 3], [2, 2]) == 0.5 and win_share([2], [2]) == 0.5


def test_read_trials_marks_full_fidelity_from_the_method(tmp_path):
    assert max_budget("mfmo_epochs") == 4 and max_budget("random") is None
    records = [
        {"event": "sweep", "t": 99.0},
        {"event": "session", "t": 100.0},
        {"event": "ask", "trial_id": 0, "budget_value": 2},
        {"event": "ask", "trial_id": 1, "budget_value": 4},
        {"event": "tell", "t": 105.0, "trial_id": 0, "status": "success", "duration": 3.0,
         "objectives": {"val/error": 0.3, "emissions/total_g": 0.01},
         "metrics": {"energy/total_kwh": 2e-5}},
        {"event": "tell", "t": 112.0, "trial_id": 1, "status": "crashed", "duration": 6.0,
         "objectives": {}, "metrics": {}},
    ]  # fmt: skip
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    times = {"launched": 90.0}
    rows = read_trials("mfmo_epochs", 1, tmp_path, times)
    assert times["startup_s"] == 10.0
    assert [(r["trial_id"], r["full_fidelity"], r["told_s"]) for r in rows] == [
        (0, False, 5.0),
        (1, True, 12.0),
    ]
    assert rows[0]["energy_kwh"] == 2e-5 and rows[1]["val_error"] is None
