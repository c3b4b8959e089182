"""budget.continuation on the toy app: a promoted trial continues the job dir of its
lower-budget trial (trials.csv `resumed_from`), trains only the missing epochs, and every
trial's schedule spans the top budget; a budget variable that cannot continue is refused."""

from __future__ import annotations

import pytest

from tests.toy_app.harness import calls, overrides, read_csv, run_inprocess

HPS = ("x", "y", "opt", "n", "momentum", "shift_depth")


def _epochs_args(sweep, *extra):
    return overrides(
        sweep,
        "smac_mfmo_epochs",
        "hydra.sweeper.objectives=[val/error,emissions/total_g]",
        *extra,
    )


def test_promoted_trials_continue_and_train_only_the_missing_epochs(tmp_path):
    sweep = tmp_path / "sweep"
    # Hyperband's first bracket, filled by distinct configurations: 9 at 1 epoch, the best 3
    # at 3 epochs, the best one at 9
    run_inprocess(_epochs_args(sweep, "hydra.sweeper.n_trials=13"))
    rows = read_csv(sweep / "trials.csv")
    assert len(rows) == 13 and {r["status"] for r in rows} == {"success"}
    assert [int(r["budget"]) for r in rows] == [1] * 9 + [3] * 3 + [9]
    by_id = {r["trial_id"]: r for r in rows}
    resumed = [r for r in rows if r["resumed_from"]]
    assert len(resumed) == 4  # every promotion (3 to 3 epochs, 1 to 9) continued
    for row in resumed:
        source = by_id[row["resumed_from"]]
        assert int(source["budget"]) < int(row["budget"])
        assert all(source[k] == row[k] for k in HPS if k in row)  # the same configuration
        assert int(source["trial_id"]) < int(row["trial_id"])
        assert float(row["train/stage_epochs"]) == int(row["budget"]) - int(source["budget"])
    top = next(r for r in rows if r["budget"] == "9")
    assert by_id[top["resumed_from"]]["budget"] == "3"  # 9 continues 3, which continued 1
    for row in rows:
        assert float(row["train/epochs"]) == int(row["budget"])
        if not row["resumed_from"]:
            assert float(row["train/stage_epochs"]) == int(row["budget"])
    # the trials received it as overrides: resume_from = the source's job dir
    received = {c["run_name"]: c for c in calls(sweep)}
    for row in rows:
        call = received[f"t{row['trial_id']}-b{row['budget']}"]
        assert call["schedule_epochs"] == 9
        source = by_id.get(row["resumed_from"])
        # trials.csv gives job dirs relative to the sweep folder, the override is absolute
        expected = str(sweep / source["job_dir"]) if source else None
        assert call["resume_from"] == expected
    # 9 x 1 + 3 x (3 - 1) + (9 - 3) epochs instead of 9 x 1 + 3 x 3 + 9
    assert sum(float(r["train/stage_epochs"]) for r in rows) == 21


def test_without_continuation_every_trial_trains_from_scratch(tmp_path):
    sweep = tmp_path / "sweep"
    run_inprocess(
        _epochs_args(sweep, "hydra.sweeper.n_trials=13", "hydra.sweeper.budget.continuation=false")
    )
    rows = read_csv(sweep / "trials.csv")
    assert all(r["resumed_from"] == "" for r in rows)
    assert sum(float(r["train/stage_epochs"]) for r in rows) == 27
    assert all(c["resume_from"] is None and c["schedule_epochs"] is None for c in calls(sweep))


def test_continuation_with_another_budget_variable_is_refused(tmp_path):
    sweep = tmp_path / "sweep"
    refused = r"budget.continuation=True is invalid: needs budget.variable=trainer"
    with pytest.raises(Exception, match=refused):
        run_inprocess(overrides(sweep, "smac_mfmo", "hydra.sweeper.budget.continuation=true"))
    assert not (sweep / "journal.jsonl").exists()
    assert calls(sweep) == []
