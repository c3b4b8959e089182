"""Sweeper overhead per trial: what the SMAC sweeper itself costs around each trial.

Runs the presets random, smac_mo and smac_mfmo on the toy Hydra app of the tests (its task
returns at once), through `toy.py -m` as a user would run `train.py -m`, with the basic
launcher and with joblib (2 workers). The sweeper times its own phases with perf_counter
and writes them to optimization_results.yaml (`sweeper_ms_per_trial`):

    ask      SMAC proposes (random forest fit + acquisition for smac_*)
    launch   Hydra composes the job's config and calls the task (minus the task's own time)
    tell     results to SMAC, journal line (fsync)
    outputs  trials.csv, pareto.csv, optimization_results.yaml, pareto.png

The share of a typical trial uses the median full-fidelity trial of the search-efficiency
study (benchmarks/results/search_efficiency_trials.csv) when it is there. Writes
benchmarks/results/sweeper_overhead.json.

    .venv/bin/python -m benchmarks.sweeper_overhead                # ~4 min
    .venv/bin/python -m benchmarks.sweeper_overhead --trials 10 --out /tmp/overhead.json
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.machine import machine, write_report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
# The tests' toy Hydra app, run as a program (nothing of the tests is imported)
TOY = ROOT / "tests" / "toy_app" / "toy.py"
# smac_mfmo: the toy's shift_depth 5, 10, 20 is the budget, as for ResNet20
PRESETS = ("random", "smac_mo", "smac_mfmo")
LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                                     "hydra.sweeper.n_workers=2"]}  # fmt: skip
PHASES = ("ask", "launch", "tell", "outputs")


def toy_sweep(sweep_dir: Path, preset: str, *extra: str) -> list[str]:
    """`toy.py -m` with a preset of conf/hydra/sweeper and the toy's search space."""
    return [sys.executable, str(TOY), "-m", f"hydra/sweeper={preset}",
            f"hydra.searchpath=[file://{ROOT / 'conf'}]",
            "search_space@hydra.sweeper.search_space=toy", "hydra.sweeper.wandb.mode=disabled",
            f"hydra.sweep.dir={sweep_dir}", *extra]  # fmt: skip


def run(preset: str, launcher: str, trials: int, folder: Path) -> dict:
    sweep_dir = folder / f"{preset}_{launcher}"
    args = [f"hydra.sweeper.n_trials={trials}", *LAUNCHERS[launcher]]
    if preset != "random":  # as in the search-efficiency study (the default is added on top)
        args.append(f"hydra.sweeper.n_initial_configs={min(5, trials - 1)}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0", "WANDB_MODE": "disabled"}
    launched, start = time.time(), time.perf_counter()
    proc = subprocess.run(toy_sweep(sweep_dir, preset, *args), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{preset}/{launcher} failed:\n{proc.stderr[-3000:]}")
    doc = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    ms = doc["sweeper_ms_per_trial"]
    # the session record of the sweeper's journal: when the sweep itself began
    records = map(json.loads, (sweep_dir / "journal.jsonl").read_text().splitlines())
    session = next(r for r in records if r["event"] == "session")
    overhead = {k: ms[k] for k in PHASES}
    overhead["launch"] = ms["launch"] - ms["task"]  # Hydra's part of the launch
    return {
        "trials": doc["n_trials"]["total"],
        "ms_per_trial": {**overhead, "total": sum(overhead.values()), "task": ms["task"]},
        "process_wall_s": wall,
        "startup_s": session["t"] - launched,  # interpreter, imports, composing the sweep
    }


def typical_trial_s() -> dict:
    path = RESULTS / "search_efficiency_trials.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["full_fidelity"] == "True"]
    durations = [float(r["duration_s"]) for r in rows if r["status"] == "success"]
    return {"search_bench trial (median, search-efficiency study)": statistics.median(durations)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--out", type=Path, default=RESULTS / "sweeper_overhead.json")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in PRESETS:
            for launcher in LAUNCHERS:
                print(f"{preset} / {launcher}: {args.trials} trials", flush=True)
                results[f"{preset}/{launcher}"] = run(preset, launcher, args.trials, Path(tmp))
    typical = typical_trial_s()
    print(f"\nms per trial ({args.trials} trials, task returns at once)")
    print(f"{'preset/launcher':<20}" + "".join(f"{p:>9}" for p in (*PHASES, "total"))
          + "".join(f"{'% of ' + k.split()[0]:>22}" for k in typical))  # fmt: skip
    for name, r in results.items():
        ms = r["ms_per_trial"]
        shares = {k: 100 * ms["total"] / (1000 * s) for k, s in typical.items()}
        r["share_of_typical_trial_percent"] = shares
        print(f"{name:<20}" + "".join(f"{ms[p]:>9.0f}" for p in (*PHASES, "total"))
              + "".join(f"{v:>21.1f}%" for v in shares.values()))  # fmt: skip
    report = {
        "benchmark": "sweeper overhead per trial on a task that returns at once",
        "machine": machine(),
        "setup": {"trials": args.trials, "app": "tests/toy_app/toy.py", "presets": list(PRESETS),
                  "launchers": LAUNCHERS, "typical_trial_s": typical,
                  "note": "joblib: ms per trial of the sweep (2 trials per batch); launch "
                  "includes starting the workers"},
        "results": results,
    }  # fmt: skip
    write_report(args.out, report)


if __name__ == "__main__":
    main()
