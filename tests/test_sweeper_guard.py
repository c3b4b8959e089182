"""Trials that hang, exit or interrupt themselves are crashed rows and the sweep goes on;
a real Ctrl-C still stops it; a refused sweep is one line and exit 1 (_guard.py, _trials.py,
_settings.py, smac_sweeper.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter

import pytest

from hydra_plugins.smac_sweeper._failures import ObjectivesMissingError
from hydra_plugins.smac_sweeper._trials import TimedTask
from tests.toy_app.harness import calls, command, env, overrides, read_csv, run_inprocess

# random search with seed 1 on the toy space: n = 5 (the default), 7, 6, 5, ...
RANDOM = ["hydra.sweeper.seed=1", "hydra.sweeper.max_failure_rate=1.0"]
LAUNCHERS = {
    "basic": [],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_workers=2"],
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.sweeper.n_workers=2"],
}


def _rows_by_n(rows):
    return {n: [r for r in rows if r["n"] == n] for n in {r["n"] for r in rows}}


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_a_hanging_trial_times_out_and_an_exiting_one_crashes(tmp_path, launcher):
    sweep = tmp_path / launcher
    args = ["hydra.sweeper.n_trials=4", "hydra.sweeper.trial_timeout=2", "hang=5", "exit=7"]
    start = time.monotonic()
    run_inprocess(overrides(sweep, "random", *RANDOM, *args, *LAUNCHERS[launcher]))
    assert time.monotonic() - start < 120  # the hanging calls sleep an hour each
    rows = read_csv(sweep / "trials.csv")
    assert len(rows) == 4
    by_n = _rows_by_n(rows)
    assert len(by_n["5"]) >= 1 and len(by_n["7"]) >= 1
    for row in by_n["5"]:
        assert row["status"] == "crashed"
        assert "timed out after 2 s (hydra.sweeper.trial_timeout)" in row["error"]
    for row in by_n["7"]:
        assert row["status"] == "crashed" and "the task called sys.exit(3)" in row["error"]
    assert all(r["status"] == "success" for r in rows if r["n"] not in ("5", "7"))
    # a resume does not relaunch what timed out or crashed: each trial ran once
    run_inprocess(overrides(sweep, "random", *RANDOM, *args, "hydra.sweeper.n_trials=5"))
    names = Counter(c["run_name"] for c in calls(sweep))
    assert len(read_csv(sweep / "trials.csv")) == 5
    assert len(names) == 5 and set(names.values()) == {1}


def test_a_keyboard_interrupt_the_task_raises_is_a_crashed_row(tmp_path):
    sweep = tmp_path / "interrupt"
    run_inprocess(overrides(sweep, "random", *RANDOM, "hydra.sweeper.n_trials=3", "interrupt=7"))
    rows = read_csv(sweep / "trials.csv")
    assert [r["status"] for r in rows] == ["success", "crashed", "success"]
    assert "the task raised KeyboardInterrupt itself" in rows[1]["error"]


def test_timed_task_stops_a_hang_and_restores_the_signal_handlers():
    before = (signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT))
    start = time.monotonic()
    outcome = TimedTask(lambda cfg: time.sleep(60), timeout=0.2)(None)
    assert time.monotonic() - start < 5
    assert outcome.error.strip().endswith("timed out after 0.2 s (hydra.sweeper.trial_timeout)")
    assert (signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT)) == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert TimedTask(lambda cfg: {"a": 1.0}, timeout=5)(None).value == {"a": 1.0}


def test_a_real_ctrl_c_during_a_trial_stops_the_sweep():
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default handler here")

    def task(cfg):
        os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C in the terminal would
        time.sleep(5)

    def lightning_like(cfg):  # Lightning's fit turns a Ctrl-C into sys.exit(1)
        try:
            task(cfg)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            raise SystemExit(1) from None

    for function in (task, lightning_like):
        with pytest.raises(KeyboardInterrupt):
            TimedTask(function, timeout=10)(None)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_objectives_the_task_never_returns_stop_the_sweep_at_once(tmp_path):
    sweep = tmp_path / "objectives"
    args = ["hydra.sweeper.n_trials=10", "hydra.sweeper.objectives=[val/error,val/nope]"]
    with pytest.raises(ObjectivesMissingError) as err:
        run_inprocess(overrides(sweep, "random", *args))
    message = str(err.value)
    assert "hydra.sweeper.objectives=['val/error', 'val/nope'] is invalid" in message
    assert "returned no ['val/nope']" in message and "'emissions/total_g'" in message
    assert len(read_csv(sweep / "trials.csv")) == 1  # not after 5 crashed trials


@pytest.mark.parametrize(
    ("option", "line", "journal"),
    [
        ("hydra.sweeper.n_trials=0", "error: hydra.sweeper.n_trials=0 is invalid", False),
        ("hydra.sweeper.budget.variable=not_a_key",
         "error: hydra.sweeper.budget.variable='not_a_key' is invalid", False),
        ("hydra.sweeper.objectives=[val/error,val/nope]",
         "error: hydra.sweeper.objectives=['val/error', 'val/nope'] is invalid", True),
    ],
)  # fmt: skip
def test_a_refused_sweep_is_one_line_and_exit_1(tmp_path, option, line, journal):
    sweep = tmp_path / "sweep"
    quiet = {k: v for k, v in env().items() if k != "HYDRA_FULL_ERROR"}
    result = subprocess.run(
        command(overrides(sweep, "smac_mfmo", "hydra.sweeper.n_trials=4", option)),
        cwd=tmp_path, env=quiet, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(line), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert (sweep / "journal.jsonl").exists() == journal
