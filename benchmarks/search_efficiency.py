"""Search efficiency: which sweeper preset finds the best error/emissions trade-offs for
the wall time and for the energy that the search itself consumes?

One fixed task (`experiment=search_bench`: a 4-layer DeepShift-Q CNN on 5 % of
Fashion-MNIST, 4 epochs, a few seconds per trial on a CPU), one search space
(`search_space=search_bench`), the same wall-time limit per sweep, several sweeper seeds,
and five methods, all run through `train.py -m` exactly as a user would:

    random          hydra/sweeper=random: random configurations at full fidelity
    mo              hydra/sweeper=smac_mo: SMAC + ParEGO at full fidelity
    mfmo_depth      smac_mfmo, Hyperband budget = shift_depth 1, 2, 4 (the paper's choice)
    mfmo_epochs     smac_mfmo, budget = trainer.max_epochs 1, 2, 4
    mfmo_fraction   smac_mfmo, budget = data.fraction 0.0125, 0.025, 0.05

Every trial uses the same data split and initialisation (`seed=0`), so the objectives
(val/error, emissions/total_g) are a function of the configuration; the sweeper seed
changes the search only. The hypervolume of a run at time t counts only the trials told by
t at full fidelity (a lower-fidelity result describes another network). All runs share
one reference point: val/error 0.9 (chance on 10 classes) and the largest emissions of any
full-fidelity trial of the study. The search energy is the summed CodeCarbon energy
(training + inference) of a run's trials, all fidelities and crashed ones included.

Sweeps run one after another (interleaved by seed, so slow drift of the machine hits all
methods alike); a finished sweep is not rerun, so an interrupted study resumes.
Writes benchmarks/results/search_efficiency{.json,_trials.csv,.png}.

    .venv/bin/python -m benchmarks.search_efficiency      # 3 seeds x 5 methods, ~45 min
    .venv/bin/python -m benchmarks.search_efficiency --seeds 0 --walltime 40 \\
        --methods random mfmo_epochs --out-dir /tmp/bench             # ~3 min
    .venv/bin/python -m benchmarks.search_efficiency --analyze-only   # replot from the runs
"""

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import machine
from hydra_plugins.smac_sweeper import hypervolume

ROOT = Path(__file__).resolve().parent.parent
MFMO = "hydra/sweeper=smac_mfmo"
METHODS = {
    "random": ["hydra/sweeper=random"],
    "mo": ["hydra/sweeper=smac_mo"],
    "mfmo_depth": [MFMO, "hydra.sweeper.budget.variable=shift_depth", "hydra.sweeper.budget.min=1",
                   "hydra.sweeper.budget.max=4"],
    "mfmo_epochs": [MFMO, "hydra.sweeper.budget.variable=trainer.max_epochs",
                    "hydra.sweeper.budget.min=1", "hydra.sweeper.budget.max=4"],
    "mfmo_fraction": [MFMO, "hydra.sweeper.budget.variable=data.fraction",
                      "hydra.sweeper.budget.min=0.0125", "hydra.sweeper.budget.max=0.05"],
}  # fmt: skip
OBJECTIVES = ("val/error", "emissions/total_g")
ERROR_REFERENCE = 0.9  # chance level on 10 classes: worse configurations add nothing


def max_budget(method: str) -> float | None:
    """The full-fidelity budget of a method (None: every trial is at full fidelity)."""
    for override in METHODS[method]:
        if override.startswith("hydra.sweeper.budget.max="):
            return float(override.split("=", 1)[1])
    return None


def sweep_command(method: str, seed: int, walltime: float, sweep_dir: Path) -> list[str]:
    return [
        sys.executable, "train.py", "-m", *METHODS[method],
        "experiment=search_bench", "search_space@hydra.sweeper.search_space=search_bench",
        "seed=0",  # every trial: same split and init
        f"hydra.sweeper.seed={seed}",
        f"hydra.sweeper.walltime_limit={walltime}",
        "hydra.sweeper.n_trials=1000",  # the wall time ends each sweep, not the trial count
        "hydra.sweeper.n_initial_configs=5",  # SMAC's default would be 25 % of n_trials
        "hydra.sweeper.wandb.mode=disabled",
        f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip


def run_sweep(method: str, seed: int, walltime: float, sweep_dir: Path) -> dict:
    """Run one sweep unless it finished before; -> its launch/end times."""
    done = sweep_dir / "bench_done.json"
    if done.exists():
        return json.loads(done.read_text())
    if sweep_dir.exists():  # an interrupted sweep: start it again from scratch
        shutil.rmtree(sweep_dir)
    sweep_dir.mkdir(parents=True)
    env = {**os.environ, "PYTHONHASHSEED": "0", "WANDB_MODE": "disabled"}
    print(f"[{time.strftime('%H:%M:%S')}] {method} seed {seed} -> {sweep_dir}", flush=True)
    launched = time.time()
    with open(sweep_dir / "bench.log", "w") as log:
        proc = subprocess.run(
            sweep_command(method, seed, walltime, sweep_dir),
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    record = {"launched": launched, "ended": time.time(), "returncode": proc.returncode}
    if proc.returncode != 0:
        raise RuntimeError(f"sweep {method} seed {seed} failed; see {sweep_dir / 'bench.log'}")
    done.write_text(json.dumps(record))
    return record


def read_trials(method: str, seed: int, sweep_dir: Path, times: dict) -> list[dict]:
    """One row per told trial, in tell order, with times relative to the sweeper's start
    (after Python's imports, the same for every method; `walltime_limit` counts from there)."""
    records = [json.loads(line) for line in (sweep_dir / "journal.jsonl").read_text().splitlines()]
    start = next(r["t"] for r in records if r["event"] == "session")
    times["startup_s"] = start - times["launched"]
    asked = {r["trial_id"]: r for r in records if r["event"] == "ask"}
    top = max_budget(method)
    rows = []
    for r in records:
        if r["event"] != "tell":
            continue
        ask = asked[r["trial_id"]]
        budget = ask.get("budget_value")
        full = top is None or abs(float(budget) - top) < 1e-9
        rows.append(
            {
                "method": method,
                "seed": seed,
                "trial_id": r["trial_id"],
                "budget": budget,
                "full_fidelity": full,
                "status": r["status"],
                "val_error": r["objectives"].get("val/error"),
                "emissions_g": r["objectives"].get("emissions/total_g"),
                "energy_kwh": r["metrics"].get("energy/total_kwh", 0.0),
                "duration_s": r["duration"],
                "told_s": r["t"] - start,
            }
        )
    return rows


def curves(rows: list[dict], reference: np.ndarray) -> list[tuple[float, float, float]]:
    """(time s, search energy kWh, hypervolume) after each tell of one run."""
    points, out, energy = [], [(0.0, 0.0, 0.0)], 0.0
    for row in rows:
        energy += row["energy_kwh"] or 0.0
        if row["status"] == "success" and row["full_fidelity"]:
            points.append((row["val_error"], row["emissions_g"]))
        hv = hypervolume(np.array(points), reference) if points else 0.0
        out.append((row["told_s"], energy, hv / float(np.prod(reference))))
    return out


def win_share(a: list[float], b: list[float]) -> float:
    pairs = [(x > y) + 0.5 * (x == y) for x in a for y in b]
    return sum(pairs) / len(pairs)


def first_reach(curve: list[tuple], axis: int, target: float) -> float:
    """Smallest time (axis 0) or energy (axis 1) at which the run's HV reached target."""
    return next((c[axis] for c in curve if c[2] >= target - 1e-12), float("inf"))


def value_at(curve: list[tuple], axis: int, x: float) -> float:
    """HV of the run at time/energy x (step function)."""
    return max((c[2] for c in curve if c[axis] <= x), default=0.0)


def analyze(runs: dict, walltime: float, out_dir: Path, setup: dict) -> dict:
    rows = [row for (method, seed), r in runs.items() for row in r["trials"]]
    full = [r for r in rows if r["status"] == "success" and r["full_fidelity"]]
    reference = np.array([ERROR_REFERENCE, max(r["emissions_g"] for r in full)])
    by_run = {key: curves(r["trials"], reference) for key, r in runs.items()}
    methods = [m for m in METHODS if any(k[0] == m for k in runs)]
    seeds = sorted({k[1] for k in runs})
    # The grid the methods are compared on: the wall-time limit, and the smallest total
    # search energy of any run (every run is defined up to there).
    energy_cap = min(c[-1][1] for c in by_run.values())
    final = {k: value_at(c, 0, walltime) for k, c in by_run.items()}
    final_e = {k: value_at(c, 1, energy_cap) for k, c in by_run.items()}
    # "Energy to reach a given hypervolume": the median final HV of random search.
    target = statistics.median(final[("random", s)] for s in seeds if ("random", s) in final)
    summary = {}
    for m in methods:
        keys = [(m, s) for s in seeds if (m, s) in runs]
        hv_t = [final[k] for k in keys]
        hv_e = [final_e[k] for k in keys]
        trials = [r for k in keys for r in runs[k]["trials"]]
        summary[m] = {
            "hv_at_walltime": {"mean": float(np.mean(hv_t)), "std": float(np.std(hv_t, ddof=1))
                               if len(hv_t) > 1 else 0.0, "per_seed": hv_t},
            "hv_at_energy_cap": {"mean": float(np.mean(hv_e)), "std": float(np.std(hv_e, ddof=1))
                                 if len(hv_e) > 1 else 0.0, "per_seed": hv_e},
            "seconds_to_target": [first_reach(by_run[k], 0, target) for k in keys],
            "wh_to_target": [1000 * first_reach(by_run[k], 1, target) for k in keys],
            "trials_per_run": statistics.mean(len(runs[k]["trials"]) for k in keys),
            "full_fidelity_trials_per_run": statistics.mean(
                sum(r["full_fidelity"] and r["status"] == "success" for r in runs[k]["trials"])
                for k in keys
            ),
            "crashed": sum(r["status"] != "success" for r in trials),
            "search_wh_per_run": statistics.mean(1000 * by_run[k][-1][1] for k in keys),
        }  # fmt: skip
    # How sure: with a few seeds per method, the share of (seed of A, seed of B) pairs in
    # which A's hypervolume is higher (ties count half); 1.0 = A beat B in every pairing.
    wins = {
        a: {b: win_share(summary[a]["hv_at_walltime"]["per_seed"],
                         summary[b]["hv_at_walltime"]["per_seed"]) for b in methods if b != a}
        for a in methods
    }  # fmt: skip
    report = {
        "benchmark": "search efficiency: hypervolume of val/error x emissions/total_g "
        "against wall time and against the summed CodeCarbon energy of the search's trials",
        "machine": machine(),
        "setup": {**setup, "reference_point": {"val/error": reference[0],
                  "emissions/total_g": reference[1]}, "hv_normalised_by": "reference box",
                  "energy_cap_kwh": energy_cap, "target_hv": target,
                  "target": "median final HV of random search"},
        "summary": summary,
        "pairwise_win_share_hv_at_walltime": wins,
        "runs": {f"{m}/seed{s}": {"launched_ended": [r["launched"], r["ended"]],
                                  "startup_s": r["startup_s"],
                                  "curve_t_kwh_hv": by_run[(m, s)]}
                 for (m, s), r in runs.items()},
    }  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "search_efficiency.json").write_text(json.dumps(report, indent=1) + "\n")
    with open(out_dir / "search_efficiency_trials.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(by_run, methods, seeds, walltime, energy_cap, target, out_dir / "search_efficiency.png")
    print_table(summary, target, walltime, energy_cap)
    print(f"\nshare of seed pairs in which the row beats the column (HV @ {walltime:.0f} s)")
    print(f"{'':<15}" + "".join(f"{b:>15}" for b in methods))
    for a in methods:
        print(
            f"{a:<15}" + "".join(f"{wins[a][b]:>15.2f}" if b != a else f"{'':>15}" for b in methods)
        )
    return report


def plot(by_run, methods, seeds, walltime, energy_cap, target, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = dict(zip(METHODS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    for axis, (ax, cap, label, scale) in enumerate(
        zip(axes, (walltime, energy_cap), ("wall time of the sweep (s, after imports)",
            "energy of the search's trials (Wh, CodeCarbon)"), (1.0, 1000.0), strict=True)
    ):  # fmt: skip
        grid = np.linspace(0, cap, 200)
        for m in methods:
            values = np.array(
                [
                    [value_at(by_run[(m, s)], axis, x) for x in grid]
                    for s in seeds
                    if (m, s) in by_run
                ]
            )
            median = np.median(values, axis=0)
            ax.plot(grid * scale, median, color=colors[m], label=f"{m} (median)")
            ax.fill_between(grid * scale, values.min(0), values.max(0), color=colors[m], alpha=0.15)
        ax.axhline(target, color="grey", lw=0.8, ls="--")
        # Any first full-fidelity result already holds most of the box: show the top part
        # (a curve enters where its run told its first full-fidelity trial).
        ax.set_ylim(0.3, 1.02 * max(c[-1][2] for c in by_run.values()))
        ax.set_xlabel(label)
        ax.set_ylabel("hypervolume (share of reference box)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    axes[0].set_title(f"{len(seeds)} seeds: median, band = min-max", fontsize=9)
    axes[1].set_title("dashed: median final HV of random search", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_table(summary: dict, target: float, walltime: float, energy_cap: float) -> None:
    def med(values):
        finite = [v for v in values if v != float("inf")]
        reached = f"{len(finite)}/{len(values)}"
        median = statistics.median(values)  # inf when most seeds never reached the target
        return f"{median:>7.3g} ({reached})" if median != float("inf") else f"  never ({reached})"

    print(f"\nhypervolume (share of reference box); target = {target:.4f}")
    at_time, at_energy = f"HV @ {walltime:.0f} s", f"HV @ {energy_cap * 1000:.2f} Wh"
    print(f"{'method':<15}{at_time:>18}{at_energy:>18}{'s to target':>16}{'Wh to target':>16}"
          f"{'trials':>8}{'full':>6}")  # fmt: skip
    for m, s in summary.items():
        t, e = s["hv_at_walltime"], s["hv_at_energy_cap"]
        print(
            f"{m:<15}{t['mean']:>10.4f} ± {t['std']:.4f}{e['mean']:>10.4f} ± {e['std']:.4f}"
            f"{med(s['seconds_to_target']):>16}{med(s['wh_to_target']):>16}"
            f"{s['trials_per_run']:>8.1f}{s['full_fidelity_trials_per_run']:>6.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--walltime", type=float, default=150.0, help="seconds per sweep")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "multirun" / "search_efficiency")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--analyze-only", action="store_true", help="no new sweeps")
    args = parser.parse_args()

    runs = {}
    for seed in args.seeds:
        for method in args.methods:
            sweep_dir = args.runs_dir / f"w{int(args.walltime)}" / f"{method}_seed{seed}"
            if args.analyze_only and not (sweep_dir / "bench_done.json").exists():
                continue
            times = run_sweep(method, seed, args.walltime, sweep_dir)
            trials = read_trials(method, seed, sweep_dir, times)  # adds times["startup_s"]
            runs[(method, seed)] = {**times, "trials": trials}
    setup = {
        "task": "experiment=search_bench (SmallCNN, all 4 layers DeepShift-Q, 5 % of "
        "Fashion-MNIST, 4 epochs, 2000 validation images)",
        "search_space": "search_space=search_bench",
        "walltime_limit_s": args.walltime,
        "seeds": args.seeds,
        "methods": {m: METHODS[m] for m in args.methods},
        "command": " ".join(
            ["python", *sweep_command("random", 0, args.walltime, Path("DIR"))[1:]]
        ),
    }
    analyze(runs, args.walltime, args.out_dir, setup)


if __name__ == "__main__":
    main()
