"""Search efficiency (study v2): which sweeper reaches random search's error/energy
trade-offs with the least energy spent on the search itself?

One fixed task, `experiment=search_bench` (a 4-layer DeepShift-Q SmallCNN on 5 % of
Fashion-MNIST) trained for 9 epochs at full fidelity, so that the lowest epoch fidelity
(1 epoch) costs at most a ninth of a full trial. One search space (`search_space=
search_bench`: width, batch size, optimizer and quantization; no fidelity is searched),
the same wall time per sweep, several sweeper seeds, ten methods, all run through
`train.py -m` exactly as a user would:

    random        hydra/sweeper=random: random configurations, 9 epochs each
    mo            hydra/sweeper=smac_mo: SMAC + ParEGO, 9 epochs each
    mfmo_depth    hydra/sweeper=smac_mfmo: Hyperband on shift_depth 1, 2, 4 (the paper), 9 epochs
    mfmo_epochs   hydra/sweeper=smac_mfmo_epochs: Hyperband on epochs 1, 3, 9, continuation
    gp            hydra/sweeper=optuna_gp: Optuna's Gaussian-process sampler, 9 epochs each
    tpe           hydra/sweeper=optuna_tpe: Optuna's TPE sampler, 9 epochs each
    gp_hv         hydra/sweeper=optuna_gp_hv: GPSampler on random hypervolume scalarisations
                  in the reference box (multi_objective=hypervolume), 9 epochs each
    tpe_hv        hydra/sweeper=optuna_tpe_hv: TPE on the same scalarisations, 9 epochs each
    tpe_hv_epochs hydra/sweeper=optuna_tpe_hv_epochs: tpe_hv with epochs 1, 3, 9 as fidelity
                  (continuation), a configuration promoted while on its stage's front
                  (intensifier=pareto_promotion)
    tpe_hv_init1  tpe_hv with n_initial_configs=1: the model proposes from the third trial
    gp_ehvi       hydra/sweeper=gp_ehvi: a GP on the error, EHVI with the analytic energy
                  known before training, per unit of predicted search energy, 9 epochs each
    gp_ehvi_nocost  gp_ehvi with search_cost=null (EHVI alone)
    random_warm, tpe_hv_warm, gp_ehvi_warm
                  random, tpe_hv and gp_ehvi warm-started (hydra.sweeper.warm_start) from
                  one earlier sweep of a related task, SOURCE: tpe_hv for 100 s on
                  another 5 % sample of Fashion-MNIST with another initialisation
                  (seed=1) and a third of the epochs (3); its front's configurations
                  (at most 4) are asked after the default. The source sweep runs once
                  (kept in the runs folder); its energy is reported apart, not counted
                  in the warm-started sweeps' search energy (it was spent before, on
                  another task). gp_ehvi_warm also fits its GP on SOURCE's results (the
                  task as an input); gp_ehvi_warm_configs is it without them, and
                  gp_ehvi_warm2 it with 2 transferred configurations instead of 4

Objectives of every method: val/error and energy/model_uj_per_image (the analytic energy of
one inference). Every trial uses the same data split and initialisation (`seed=0`), so the
objectives are a function of the configuration; the sweeper seed changes the search only.

Wall time: the sweeper starts no trial after `walltime_limit` (the one running then still
ends and counts, for every method alike). Hypervolume: of the full-fidelity successful
trials (a lower fidelity describes another network), on linear axes, as a share of the
reference box [0, 1.0] x [0, E_ref]. E_ref is fixed from the task, not from the results:
the analytic energy of the float network (shift_depth 0) at the task's default
configuration; it bounds every full-fidelity configuration of the space (checked: the most
expensive one, all layers shifted at the largest width and bit widths, costs less). Every
sweep gets the same point (`hydra.sweeper.reference_point`), so the sweepers' own
hypervolumes match.

Search energy: the summed measured CodeCarbon energy of a sweep's trials, all fidelities
and crashed ones (which report none) included; a continued trial counts its own stage
(energy/stage_train_kwh + energy/inference_kwh), not the cumulative training of the
checkpoint it continued. Target: the median final HV of random search. Per run, the
energy and time at which its HV first reached the target; a run that never did is null in
the JSON and counts with its whole search energy (time: its whole sweep) in the medians.
`recommended`: the non-random method with the lowest median energy to the target among
those that reached it in at least half of their seeds (ties: the higher median final HV;
none qualifies: the highest median final HV).

Sweeps run one after another, interleaved by seed (drift of the machine hits all methods
alike); a finished sweep is not rerun, so an interrupted study resumes. Writes
benchmarks/results/search_efficiency_v2{.json,.png,_trials.csv}. The files
search_efficiency{.json,.png,_trials.csv} there are study v1's (emissions objective,
4 epochs, data-fraction fidelity): they came from the earlier version of this script,
git commit f53492e.

    .venv/bin/python -m benchmarks.search_efficiency      # 10 methods x 5 seeds x 100 s, ~95 min
    .venv/bin/python -m benchmarks.search_efficiency --seeds 0 --walltime 25 \\
        --methods random mfmo_epochs --out-dir /tmp/bench_v2          # ~2 min
    .venv/bin/python -m benchmarks.search_efficiency --analyze-only   # redraw from the runs
    .venv/bin/python -m benchmarks.search_efficiency --methods random tpe_hv \
        --seeds 0 1 2 3 4 5 6 7 8 9 --pool seeds5-9 pooled10 --tag pooled_again
        # pool committed results (their JSON and _trials.csv) once the runs are gone
"""

import argparse
import csv
import itertools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from math import comb
from pathlib import Path

import numpy as np

from benchmarks.machine import machine
from hydra_plugins.smac_sweeper import hypervolume

ROOT = Path(__file__).resolve().parent.parent
FULL_EPOCHS = "trainer.max_epochs=9"  # full fidelity of every method
# TPE on hypervolume scalarisations behind a 1-epoch screen, the top third promoted to 9
# epochs trained afresh (hv_promotion): what the screen methods below vary; spelled from
# optuna_tpe_hv_asha, so that a change of the preset optuna_tpe_hv_screen leaves them alone
SCREEN = ["hydra/sweeper=optuna_tpe_hv_asha", "hydra.sweeper.budget.stages=[1,9]"]
# what the preset optuna_tpe_hv_screen sets (tests/test_sweeper_presets.py): the screen with
# 1 in 5 new configurations random, the top quarter promoted, the screens validated on a
# tenth of the validation images (method tpe_hv_screen_val10 and its variants below)
PICK = [*SCREEN, "hydra.sweeper.interleave_random=0.2", "hydra.sweeper.budget.eta=4",
        "++hydra.sweeper.budget.low_fidelity={data.val_fraction:0.1}"]  # fmt: skip
METHODS = {
    "random": ["hydra/sweeper=random", FULL_EPOCHS],
    "mo": ["hydra/sweeper=smac_mo", FULL_EPOCHS],
    "mfmo_depth": ["hydra/sweeper=smac_mfmo", FULL_EPOCHS,
                   "hydra.sweeper.budget.min=1", "hydra.sweeper.budget.max=4"],
    "mfmo_epochs": ["hydra/sweeper=smac_mfmo_epochs"],  # its budget sets the epochs: 1, 3, 9
    "gp": ["hydra/sweeper=optuna_gp", FULL_EPOCHS],
    "tpe": ["hydra/sweeper=optuna_tpe", FULL_EPOCHS],
    "gp_hv": ["hydra/sweeper=optuna_gp_hv", FULL_EPOCHS],
    # run as optuna_tpe + hydra.sweeper.multi_objective=hypervolume, what the preset sets
    "tpe_hv": ["hydra/sweeper=optuna_tpe_hv", FULL_EPOCHS],
    # TPE on the scalarisations, epochs 1, 3, 9 with continuation, promoted while on the
    # front of their epoch count (intensifier=pareto_promotion)
    "tpe_hv_epochs": ["hydra/sweeper=optuna_tpe_hv_epochs"],
    # tpe_hv whose model proposes from the third trial: the default and 1 random first
    "tpe_hv_init1": ["hydra/sweeper=optuna_tpe_hv", FULL_EPOCHS],
    # a GP on the error, EHVI with the analytic energy known before training, per unit of
    # predicted search energy; and the same without the cost (EHVI alone)
    "gp_ehvi": ["hydra/sweeper=gp_ehvi", FULL_EPOCHS],
    "gp_ehvi_nocost": ["hydra/sweeper=gp_ehvi", FULL_EPOCHS],
    # the same three warm-started from SOURCE's front (sweep_command adds its folder)
    "random_warm": ["hydra/sweeper=random", FULL_EPOCHS],
    "tpe_hv_warm": ["hydra/sweeper=optuna_tpe_hv", FULL_EPOCHS],
    "gp_ehvi_warm": ["hydra/sweeper=gp_ehvi", FULL_EPOCHS],
    # gp_ehvi_warm without the earlier results in its GP (the configurations alone)
    "gp_ehvi_warm_configs": ["hydra/sweeper=gp_ehvi", FULL_EPOCHS],
    # gp_ehvi_warm with 2 transferred configurations: its GP proposes from the 4th trial
    "gp_ehvi_warm2": ["hydra/sweeper=gp_ehvi", FULL_EPOCHS],
    # tpe_hv_epochs where each stage trains afresh with its own schedule (no continuation):
    # successive halving whose low fidelity is a short run that anneals (with
    # --schedule-interval step)
    "tpe_hv_sh": ["hydra/sweeper=optuna_tpe_hv_epochs", "hydra.sweeper.budget.continuation=false"],
    # the same, a configuration promoted once among the top 1/3 of its stage by hypervolume
    # contribution (ASHA's rule; intensifier=hv_promotion) instead of while on its front
    "tpe_hv_asha": ["hydra/sweeper=optuna_tpe_hv_epochs", "hydra.sweeper.budget.continuation=false",
                    "hydra.sweeper.intensifier=hv_promotion"],
    # tpe_hv_asha without the 3-epoch stage: the top third of the 1-epoch results go straight
    # to 9 epochs, so a full-fidelity result costs ~1.45 trials' energy, not ~3.4
    "tpe_hv_asha19": SCREEN,
    # the same, the 1-epoch results ranked by contribution per kWh their run measured
    "tpe_hv_asha19c": [*SCREEN, "hydra.sweeper.search_cost=energy/total_kwh"],
    # tpe_hv_asha19c with 10 random configurations before TPE (cheap at 1 epoch; with 3,
    # TPE never tried the optimizer it had not seen in 3 seeds)
    "tpe_hv_screen10": [*SCREEN, "hydra.sweeper.search_cost=energy/total_kwh"],
    # tpe_hv_asha19 with its 3 initial configurations a Latin hypercube: every optimizer tried
    "tpe_hv_screen_lhs": [*SCREEN, "hydra.sweeper.initial_design=lhs"],
    # tpe_hv_asha19 with a random configuration instead of TPE's proposal for 1 in 5 new
    # configurations (SMAC's facades' share): exploration inside the model phase
    "tpe_hv_screen_ri": [*SCREEN, "hydra.sweeper.interleave_random=0.2"],
    # the same, 1 in 3
    "tpe_hv_screen_ri33": [*SCREEN, "hydra.sweeper.interleave_random=0.33"],
    # tpe_hv_screen_ri promoting the top quarter of the 1-epoch results, not the top third;
    # the preset optuna_tpe_hv_screen until its screens validated on a tenth (_val10)
    "tpe_hv_screen_ri_eta4": [*SCREEN, "hydra.sweeper.interleave_random=0.2",
                              "hydra.sweeper.budget.eta=4"],
    # the same, the top sixth
    "tpe_hv_screen_ri_eta6": [*SCREEN, "hydra.sweeper.interleave_random=0.2",
                              "hydra.sweeper.budget.eta=6"],
    # tpe_hv_screen_ri_eta4 (the preset) with the 1-epoch results ranked by contribution per
    # kWh their run measured: a wide network's promotion costs ~3.6x a small one's
    "tpe_hv_screen_ri_eta4c": [*SCREEN, "hydra.sweeper.interleave_random=0.2",
                               "hydra.sweeper.budget.eta=4",
                               "hydra.sweeper.search_cost=energy/total_kwh"],
    # tpe_hv_screen_ri_eta4 (the preset) whose TPE learns from the 1-epoch results alone
    # until a stage holds enough results (budget.model=bohb), not from each configuration's
    # highest stage, where the promoted ones' 9-epoch errors beat every 1-epoch error
    "tpe_hv_screen_bohb": [*SCREEN, "hydra.sweeper.interleave_random=0.2",
                           "hydra.sweeper.budget.eta=4", "hydra.sweeper.budget.model=bohb"],
    # tpe_hv_screen_ri_eta4 (the preset) whose TPE models the best quarter of the results
    # as the good ones (hydra.sweeper.tpe_gamma=0.25, hyperopt's), not Optuna's best tenth:
    # with ~20 results, the best 2, and whatever rounding mode or optimizer they share
    "tpe_hv_screen_g25": [*SCREEN, "hydra.sweeper.interleave_random=0.2",
                          "hydra.sweeper.budget.eta=4", "hydra.sweeper.tpe_gamma=0.25"],
    # tpe_hv_screen_ri_eta4 (the preset) with the 1-epoch results ranked by the hypervolume
    # each would add to the 9-epoch front, its error scaled by the median 9-/1-epoch ratio
    # (budget.promote_by=improvement): a wide network goes on only when its predicted error
    # beats the small networks' already there
    "tpe_hv_screen_imp": [*SCREEN, "hydra.sweeper.interleave_random=0.2",
                          "hydra.sweeper.budget.eta=4",
                          "hydra.sweeper.budget.promote_by=improvement"],
    # tpe_hv_screen_ri_eta4 (the preset) whose proposals get one categorical changed to
    # another choice 1 time in 4 (hydra.sweeper.interleave_flip=0.25): the seeds that never
    # reached the target kept stochastic rounding or SGD in 16-24 of 18-29 screens
    "tpe_hv_screen_flip": [*SCREEN, "hydra.sweeper.interleave_random=0.2",
                           "hydra.sweeper.budget.eta=4", "hydra.sweeper.interleave_flip=0.25"],
    # tpe_hv_screen_ri_eta4 (the preset) whose 1-epoch screens validate on a tenth of the
    # validation images (budget.low_fidelity): a screen's inference pass was 13-28 % of its
    # energy, and ~200 images rank configurations as well as 2000 (benchmarks/README.md);
    # the preset optuna_tpe_hv_screen (PICK)
    "tpe_hv_screen_val10": PICK,
    # the same warm-started from SOURCE's front (sweep_command adds its folder): with a
    # budget the earlier configurations start at the 1-epoch screen like any new one
    "tpe_hv_screen_val10_warm": PICK,
    # tpe_hv_screen_val10 (the preset) with the 1-epoch results ranked by contribution per
    # kWh their run measured: TPE's 9-epoch runs sit at small batches (96 of 214 below 48,
    # ~0.042 Wh against ~0.020 at 96-160), and a screen's energy, now nearly all training,
    # scales with the steps a promotion repeats
    "tpe_hv_screen_val10c": [*PICK, "hydra.sweeper.search_cost=energy/total_kwh"],
}  # fmt: skip
WARM = (
    "random_warm",
    "tpe_hv_warm",
    "gp_ehvi_warm",
    "gp_ehvi_warm_configs",
    "gp_ehvi_warm2",
    "tpe_hv_screen_val10_warm",
)
# The earlier sweep the WARM methods start from: a related task, not this one (another data
# sample and initialisation, a third of the epochs), searched by tpe_hv for 100 s.
SOURCE = {
    "method": "tpe_hv",
    "seed": 0,  # the sweeper's
    "walltime_s": 100.0,
    "task": {"seed=0": "seed=1", FULL_EPOCHS: "trainer.max_epochs=3"},  # replaces
    "dir": "source/tpe_hv_seed1_3epochs",  # under --runs-dir
}
# what a method sets on top of the shared settings of sweep_command (given after them)
METHOD_SETTINGS = {
    "tpe_hv_init1": ["hydra.sweeper.n_initial_configs=1"],
    "tpe_hv_screen10": ["hydra.sweeper.n_initial_configs=10"],
    "gp_ehvi_nocost": ["hydra.sweeper.search_cost=null"],
    "gp_ehvi_warm_configs": ["hydra.sweeper.warm_start.observations=false"],
    "gp_ehvi_warm2": ["hydra.sweeper.warm_start.n_configs=2"],
}
BASELINE = "random"
OBJECTIVES = ("val/error", "energy/model_uj_per_image")
STEM = "search_efficiency_v2"  # the results' file names: STEM{.json,.png,_trials.csv}
INITIAL_CONFIGS = 3  # random configurations after the default, before a model proposes
ERROR_REFERENCE = 1.0  # the worst possible error
SEARCH_SPACE = ROOT / "conf" / "search_space" / "search_bench.yaml"


# ------------------------------------------------------------------ the reference point
def task_energy_uj(*overrides: str) -> float:
    """Analytic energy of one inference (µJ) of search_bench's network with `overrides`."""
    from hydra import compose, initialize_config_dir

    from dsnn.energy.analytic import config_energy_uj

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=search_bench", *overrides])
    return config_energy_uj(cfg)


def reference_point() -> dict:
    """E_ref = the float network at the task's default configuration, checked to bound the
    most expensive full-fidelity configuration of the search space."""
    import yaml

    space = yaml.safe_load(SEARCH_SPACE.read_text())["hyperparameters"]
    top = {k: space[k]["upper"] for k in ("model.width", "quantization.weight_bits",
           "quantization.activation_integer_bits",
           "quantization.activation_fraction_bits")}  # fmt: skip
    reference = float(f"{task_energy_uj('shift_depth=0'):.6g}")  # as on the command line
    most = task_energy_uj(*(f"{k}={v}" for k, v in top.items()))
    if most >= reference:
        raise RuntimeError(f"the space's most expensive network ({most:.3f} µJ) exceeds the "
                           f"reference ({reference:.3f} µJ)")  # fmt: skip
    return {
        "values": [ERROR_REFERENCE, reference],
        "source": "val/error 1.0 (worst possible); energy: the float network (shift_depth=0) "
        "at search_bench's default configuration (width 8), dsnn/energy/analytic.py",
        "most_expensive_in_space_uj": most,
        "most_expensive_in_space": {"shift_depth": 4, **top},
    }


# ------------------------------------------------------------------------ the sweeps
def sweep_command(
    method: str,
    seed: int,
    walltime: float,
    sweep_dir: Path,
    reference: list[float],
    interval: str = "epoch",
) -> list[str]:
    ref = f"{{{OBJECTIVES[0]}:{reference[0]},{OBJECTIVES[1]}:{reference[1]}}}"
    return [
        sys.executable, "train.py", "-m", *METHODS[method],
        "experiment=search_bench", f"schedule_interval={interval}",
        "search_space@hydra.sweeper.search_space=search_bench",
        f"hydra.sweeper.objectives=[{','.join(OBJECTIVES)}]",
        f"++hydra.sweeper.reference_point={ref}",
        "seed=0",  # every trial: same split and init
        f"hydra.sweeper.seed={seed}",
        f"hydra.sweeper.walltime_limit={walltime}",
        "hydra.sweeper.n_trials=1000",  # the wall time ends each sweep, not the trial count
        # a sweep tells ~12-15 full-fidelity trials: a model takes over after the default + 3
        f"hydra.sweeper.n_initial_configs={INITIAL_CONFIGS}",
        "hydra.sweeper.wandb.mode=disabled",
        f"hydra.sweep.dir={sweep_dir}",
        *METHOD_SETTINGS.get(method, []),
        *([f"hydra.sweeper.warm_start.sweep_dir={source_dir(sweep_dir.parent.parent, interval)}"]
          if method in WARM else []),
    ]  # fmt: skip


def interval_suffix(interval: str) -> str:
    """Folder-name suffix of the runs of a schedule interval (none for the original)."""
    return "" if interval == "epoch" else f"_{interval}"


def source_dir(runs_dir: Path, interval: str = "epoch") -> Path:
    return runs_dir / (SOURCE["dir"] + interval_suffix(interval))


def source_command(runs_dir: Path, reference: list[float], interval: str) -> list[str]:
    """SOURCE's sweep: its method's command with the task's overrides replaced."""
    command = sweep_command(SOURCE["method"], SOURCE["seed"], SOURCE["walltime_s"],
                            source_dir(runs_dir, interval), reference, interval)  # fmt: skip
    return [SOURCE["task"].get(arg, arg) for arg in command]


def run_source(runs_dir: Path, reference: list[float], interval: str) -> dict:
    """SOURCE's sweep (run once, then kept) -> what it cost and found."""
    folder = source_dir(runs_dir, interval)
    times = run_sweep(SOURCE["method"], -1, 0, folder, reference,
                      command=source_command(runs_dir, reference, interval))  # fmt: skip
    rows = read_trials("source", SOURCE["seed"], folder, times)
    ok = [r for r in rows if r["status"] == "success"]
    return {
        "command": " ".join(["python", *source_command(Path("RUNS"), reference, interval)[1:]]),
        "trials": len(rows),
        "search_energy_wh": 1000 * sum(r["energy_kwh"] for r in rows),
        "hypervolume_on_its_task": hypervolume(
            [[r["val_error"], r["model_uj"]] for r in ok], reference
        )
        / math.prod(reference),
    }


def run_sweep(
    method: str,
    seed: int,
    walltime: float,
    sweep_dir: Path,
    reference,
    command=None,
    interval: str = "epoch",
) -> dict:
    """Run one sweep (`command`, else the method's) unless it finished before; -> its
    launch/end times."""
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
            command or sweep_command(method, seed, walltime, sweep_dir, reference, interval),
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    record = {"launched": launched, "ended": time.time(), "returncode": proc.returncode}
    if proc.returncode != 0:
        raise RuntimeError(f"sweep {method} seed {seed} failed; see {sweep_dir / 'bench.log'}")
    done.write_text(json.dumps(record))
    return record


def stage_energy_kwh(metrics: dict) -> float:
    """What the trial itself spent: its training stage and its inference pass (a continued
    trial's energy/total_kwh also holds the training of the checkpoint it continued)."""
    if "energy/stage_train_kwh" in metrics:
        return metrics["energy/stage_train_kwh"] + metrics.get("energy/inference_kwh", 0.0)
    return metrics.get("energy/total_kwh", 0.0)  # a crash reports nothing: 0


def read_trials(method: str, seed: int, sweep_dir: Path, times: dict) -> list[dict]:
    """One row per told trial, in tell order, with times relative to the sweeper's start
    (after Python's imports, the same for every method; `walltime_limit` counts from there).
    Full fidelity: the sweep's budget.max (from the journal's fingerprint), or every trial."""
    records = [json.loads(line) for line in (sweep_dir / "journal.jsonl").read_text().splitlines()]
    budget = next(r for r in records if r["event"] == "sweep")["fingerprint"].get("budget") or {}
    top = budget.get("max") if budget.get("variable") else None
    start = next(r["t"] for r in records if r["event"] == "session")
    times["startup_s"] = start - times["launched"]
    asked = {r["trial_id"]: r for r in records if r["event"] == "ask"}
    rows = []
    for r in records:
        if r["event"] != "tell":
            continue
        ask, metrics = asked[r["trial_id"]], r.get("metrics") or {}
        value = ask.get("budget_value")
        rows.append(
            {
                "method": method,
                "seed": seed,
                "trial_id": r["trial_id"],
                "budget": value,
                "full_fidelity": top is None or abs(float(value) - float(top)) < 1e-9,
                "continued": ask.get("resumed_from") is not None,
                "status": r["status"],
                "val_error": r["objectives"].get(OBJECTIVES[0]),
                "model_uj": r["objectives"].get(OBJECTIVES[1]),
                "energy_kwh": stage_energy_kwh(metrics),  # this trial's own, for the search
                "energy_cumulative_kwh": metrics.get("energy/total_kwh"),
                "emissions_g": metrics.get("emissions/stage_total_g",
                                           metrics.get("emissions/total_g")),
                "epochs_trained": metrics.get("train/stage_epochs"),
                "duration_s": r["duration"],
                "told_s": r["t"] - start,
                "config": json.dumps(ask["config"], sort_keys=True),  # active hyperparameters
            }
        )  # fmt: skip
    return rows


def read_results(out_dir: Path, stem: str, methods: list[str]) -> dict:
    """{(method, seed): run} of `methods` from committed results (STEM.json's run times,
    STEM_trials.csv's rows, typed as read_trials gives them), to pool studies whose runs
    folders are gone (--pool)."""
    report = json.loads((out_dir / f"{stem}.json").read_text())
    rows = defaultdict(list)
    with open(out_dir / f"{stem}_trials.csv", newline="") as f:
        for row in csv.DictReader(f):
            rows[(row["method"], int(row["seed"]))].append(_typed(row))
    runs = {}
    for key, r in report["runs"].items():
        method, seed = key.rsplit("/seed", 1)
        if method in methods:
            launched, ended = r["launched_ended"]
            runs[(method, int(seed))] = {"launched": launched, "ended": ended,
                                         "startup_s": r["startup_s"],
                                         "trials": rows[(method, int(seed))]}  # fmt: skip
    return runs


def _typed(row: dict) -> dict:
    """A _trials.csv row with read_trials' types (empty: None)."""

    def number(text: str) -> float | int | None:
        if text == "":
            return None
        value = float(text)
        return int(value) if value.is_integer() and "." not in text and "e" not in text else value

    out = dict(row)
    for key in ("seed", "trial_id"):
        out[key] = int(row[key])
    for key in ("full_fidelity", "continued"):
        out[key] = row[key] == "True"
    for key in ("budget", "val_error", "model_uj", "energy_kwh", "energy_cumulative_kwh",
                "emissions_g", "epochs_trained", "duration_s", "told_s"):  # fmt: skip
        out[key] = number(row[key])
    return out


# ---------------------------------------------------------------------- the analysis
def curves(rows: list[dict], reference) -> list[tuple[float, float, float]]:
    """(time s, search energy kWh, normalised HV) after each tell of one run."""
    reference = np.asarray(reference, dtype=float)
    points, out, energy = [], [(0.0, 0.0, 0.0)], 0.0
    for row in rows:
        energy += row["energy_kwh"] or 0.0
        if row["status"] == "success" and row["full_fidelity"]:
            points.append((row["val_error"], row["model_uj"]))
        hv = hypervolume(np.array(points), reference) if points else 0.0
        out.append((row["told_s"], energy, hv / float(np.prod(reference))))
    return out


def first_reach(curve: list[tuple], axis: int, target: float) -> float | None:
    """Smallest time (axis 0) or energy (axis 1) at which the HV reached target; None: never."""
    return next((c[axis] for c in curve if c[2] >= target - 1e-12), None)


def value_at(curve: list[tuple], axis: int, x: float) -> float:
    """HV of the run at time/energy x (step function)."""
    return max((c[2] for c in curve if c[axis] <= x), default=0.0)


def effective(reached: list[float | None], whole: list[float]) -> list[float]:
    """The values to take medians of: a run that never reached the target counts whole."""
    return [w if r is None else r for r, w in zip(reached, whole, strict=True)]


def seed_score(a: tuple, b: tuple) -> float:
    """1, 0.5 or 0: did run a beat run b of the same seed? a = (energy to target or None,
    final HV). It reached the target with less energy (or b never did); neither reached
    it: the higher final HV. Equal: a tie."""
    (ea, ha), (eb, hb) = a, b
    if ea is None and eb is None:
        return (ha > hb) + 0.5 * (ha == hb)
    ea, eb = (float("inf") if e is None else e for e in (ea, eb))
    return (ea < eb) + 0.5 * (ea == eb)


def paired_scores(a: dict, b: dict) -> list[float]:
    """seed_score of a against b for every seed both have (dicts: seed -> (energy, final
    HV)), in seed order; their mean is a's win share."""
    return [seed_score(a[s], b[s]) for s in sorted(set(a) & set(b))]


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test over the seeds that were not tied."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def ratio(a: list[float], b: list[float]) -> float | None:
    """median(a) / median(b); None when b's median is 0 (a target reached for free)."""
    denominator = statistics.median(b)
    return statistics.median(a) / denominator if denominator > 0 else None


def bootstrap_ratio_ci(a: list[float], b: list[float], n: int = 10000) -> list[float]:
    """95 % bootstrap interval of median(a) / median(b), seeds resampled in each (seed 0)."""
    rng = np.random.default_rng(0)
    ra = np.median(rng.choice(a, (n, len(a))), axis=1)
    rb = np.median(rng.choice(b, (n, len(b))), axis=1)
    if not np.all(rb > 0):
        return [None, None]
    ratios = ra / rb
    return [float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))]


def proposals(sweeps: list[list[dict]]) -> dict:
    """Where a method searched after the initial design (the default and INITIAL_CONFIGS
    random configurations, the first told trials of every method): the median val/error
    and analytic energy of its later successful full-fidelity trials, over all seeds."""
    later = [r for rows in sweeps for r in rows[1 + INITIAL_CONFIGS :]
             if r["full_fidelity"] and r["status"] == "success"]  # fmt: skip
    if not later:
        return {"later_trials": 0, "later_median_error": None, "later_median_uj": None}
    return {
        "later_trials": len(later),
        "later_median_error": statistics.median(r["val_error"] for r in later),
        "later_median_uj": statistics.median(r["model_uj"] for r in later),
    }


def fidelity_rank_correlation(sweeps: list[list[dict]]) -> dict:
    """How well a lower budget ranks like a higher one: Spearman's rank correlation of the
    val/error of one configuration at two budgets of the same sweep, per budget pair, over
    all seeds ({} without budgets). Only promoted configurations have both, the ones that
    looked good at the lower budget, so it is measured on a selected set."""
    from scipy.stats import spearmanr

    errors: dict = defaultdict(dict)  # (sweep, config) -> budget -> val/error
    for i, rows in enumerate(sweeps):
        for r in rows:
            if r["status"] == "success" and r.get("budget") is not None:
                errors[(i, r["config"])][float(r["budget"])] = r["val_error"]
    budgets = sorted({b for by_budget in errors.values() for b in by_budget})
    out = {}
    for low, high in itertools.combinations(budgets, 2):
        pairs = [(e[low], e[high]) for e in errors.values() if low in e and high in e]
        if len(pairs) >= 3:
            rho = float(spearmanr(*zip(*pairs, strict=True)).statistic)
            out[f"{low:g}->{high:g}"] = {
                "spearman": None if math.isnan(rho) else rho,
                "configurations": len(pairs),
            }
    return out


def summarize(runs: dict, reference) -> dict:
    """The report's core (see the module docstring) from {(method, seed): {"trials": rows}}."""
    by_run = {key: curves(r["trials"], reference) for key, r in runs.items()}
    methods = [m for m in METHODS if any(k[0] == m for k in runs)]
    methods += sorted({k[0] for k in runs} - set(methods))
    seeds = sorted({k[1] for k in runs})
    final = {k: c[-1][2] for k, c in by_run.items()}
    target = statistics.median(final[(BASELINE, s)] for s in seeds if (BASELINE, s) in runs)
    out: dict = {}
    for m in methods:
        keys = [(m, s) for s in seeds if (m, s) in runs]
        trials = [runs[k]["trials"] for k in keys]
        whole_wh = [1000 * by_run[k][-1][1] for k in keys]
        reach_e = [first_reach(by_run[k], 1, target) for k in keys]
        reach_t = [first_reach(by_run[k], 0, target) for k in keys]
        energy_wh = [None if e is None else 1000 * e for e in reach_e]
        out[m] = {
            "seeds": [k[1] for k in keys],
            "final_hv": [final[k] for k in keys],
            "energy_to_random_hv_wh": energy_wh,
            "seconds_to_random_hv": reach_t,
            "trials": [len(t) for t in trials],
            "full_fidelity_trials": [
                sum(r["full_fidelity"] and r["status"] == "success" for r in t) for t in trials
            ],
            "crashed_trials": [sum(r["status"] != "success" for r in t) for t in trials],
            "sweep_seconds": [by_run[k][-1][0] for k in keys],
            "search_energy_wh": whole_wh,
            "median_energy_to_target_wh": statistics.median(effective(energy_wh, whole_wh)),
            "median_seconds_to_target": statistics.median(
                effective(reach_t, [by_run[k][-1][0] for k in keys])
            ),
            "reached_target": sum(e is not None for e in energy_wh),
            **proposals(trials),
            "fidelity_rank_correlation": fidelity_rank_correlation(trials),
        }
    random_energy = effective(out[BASELINE]["energy_to_random_hv_wh"],
                              out[BASELINE]["search_energy_wh"])  # fmt: skip
    base = {
        s: (e, h)
        for s, e, h in zip(out[BASELINE]["seeds"], out[BASELINE]["energy_to_random_hv_wh"],
                           out[BASELINE]["final_hv"], strict=True)
    }  # fmt: skip
    for m in methods:
        o = out[m]
        mine = dict(zip(o["seeds"], zip(o["energy_to_random_hv_wh"], o["final_hv"],
                                        strict=True), strict=True))  # fmt: skip
        pairs = paired_scores(mine, base)
        o["win_share_vs_random"] = statistics.mean(pairs) if pairs else None
        o["wins_ties_losses_vs_random"] = [pairs.count(1.0), pairs.count(0.5), pairs.count(0.0)]
        o["sign_test_p_vs_random"] = sign_test_p(pairs.count(1.0), pairs.count(0.0))
        mine_energy = effective(o["energy_to_random_hv_wh"], o["search_energy_wh"])
        o["energy_ratio_vs_random"] = ratio(mine_energy, random_energy)
        o["energy_ratio_vs_random_ci95"] = bootstrap_ratio_ci(mine_energy, random_energy)
    recommended = recommend(out)
    return {
        "methods": out,
        "random_median_final_hv": target,
        "random_median_energy_wh": statistics.median(random_energy),
        "recommended": recommended,
        "energy_ratio_recommended_vs_random": out[recommended]["energy_ratio_vs_random"],
        "verdict": verdict(recommended, out[recommended], len(seeds)),
        "curves": by_run,
    }


def recommend(out: dict) -> str:
    """The non-random method with the lowest median energy to the target, among those that
    reached it in at least half of their seeds (else their median is only a lower bound);
    ties: the higher median final HV. None qualifies: the highest median final HV."""
    others = [m for m in out if m != BASELINE]
    if not others:
        return BASELINE
    qualified = [m for m in others if 2 * out[m]["reached_target"] >= len(out[m]["final_hv"])]
    if not qualified:
        return max(others, key=lambda m: statistics.median(out[m]["final_hv"]))
    return min(qualified, key=lambda m: (out[m]["median_energy_to_target_wh"],
                                         -statistics.median(out[m]["final_hv"])))  # fmt: skip


def verdict(method: str, o: dict, n_seeds: int) -> str:
    """The recommended method's result against random search in plain words."""
    factor, (lo, hi) = o["energy_ratio_vs_random"], o["energy_ratio_vs_random_ci95"]
    wins, ties, losses = o["wins_ties_losses_vs_random"]
    reached, runs = o["reached_target"], len(o["final_hv"])
    if factor is None or lo is None:
        return f"random search reached its own target with no energy: no ratio for {method}"
    if 2 * reached < runs:
        return (
            f"no method beat random search: the best, {method}, reached random search's median "
            f"final hypervolume in {reached} of {runs} seeds only (won {wins}, tied {ties}, "
            f"lost {losses} seed by seed against random)."
        )
    if hi < 1.0 and wins > losses:
        how = "less energy than random search, clearly"
    elif lo > 1.0:
        how = "more energy than random search even so: none of the methods beat random"
    else:
        how = "not clearly less energy than random search (the interval holds 1)"
    return (
        f"{method} reached random search's median final hypervolume with {factor:.2f}x random's "
        f"median search energy (95 % bootstrap interval over seeds {lo:.2f}-{hi:.2f}): {how}. "
        f"Seed by seed it won {wins}, tied {ties} and lost {losses} of {n_seeds} against "
        f"random (sign test p = {o['sign_test_p_vs_random']:.2f}); it reached the target in "
        f"{reached} of {runs} seeds."
    )


def analyze(runs: dict, walltime: float, out_dir: Path, setup: dict, stem: str = STEM) -> dict:
    ref = setup["reference"]
    core = summarize(runs, ref["values"])
    by_run = core.pop("curves")
    seeds = sorted({k[1] for k in runs})
    report = {
        "benchmark": "search efficiency v2: hypervolume of val/error x energy/model_uj_per_image"
        " against wall time and against the measured CodeCarbon energy of the search's trials",
        "objectives": list(OBJECTIVES),
        "reference_point": ref["values"],
        "walltime_s": walltime,
        "seeds": seeds,
        **core,
        "hv_normalisation": "share of the reference box [0, ref_err] x [0, ref_energy], linear "
        "axes; full-fidelity successful trials",
        "recommended_rule": "the non-random method with the lowest median energy to reach "
        "random search's median final HV (a run that never reached it counts its whole "
        "search energy), among those that reached it in at least half of their seeds; ties: "
        "the higher median final HV; none qualifies: the highest median final HV",
        "machine": machine(),
        "setup": setup,
        "runs": {f"{m}/seed{s}": {"launched_ended": [r["launched"], r["ended"]],
                                  "startup_s": r["startup_s"],
                                  "curve_t_kwh_hv": by_run[(m, s)]}
                 for (m, s), r in runs.items()},
    }  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    rows = [row for r in runs.values() for row in r["trials"]]
    with open(out_dir / f"{stem}_trials.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(by_run, list(core["methods"]), seeds, core["random_median_final_hv"],
         out_dir / f"{stem}.png")  # fmt: skip
    print_table(core)
    return report


def plot(by_run, methods, seeds, target, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]  # one colour per plotted method
    colors = {m: cycle[i % len(cycle)] for i, m in enumerate(methods)}
    labels = ("wall time of the sweep (s, after imports)",
              "energy of the search's trials (Wh, CodeCarbon)")  # fmt: skip
    for axis, (ax, label, scale) in enumerate(zip(axes, labels, (1.0, 1000.0), strict=True)):
        for m in methods:
            keys = [(m, s) for s in seeds if (m, s) in by_run]
            ends = [by_run[k][-1][axis] for k in keys]
            grid = np.linspace(0, max(ends), 200)
            # on the energy axis a run's curve ends where its search energy ends; in time a
            # finished run keeps its final HV
            values = np.array(
                [[value_at(by_run[k], axis, x) if axis == 0 or x <= end else np.nan
                  for x in grid] for k, end in zip(keys, ends, strict=True)]
            )  # fmt: skip
            color = colors[m]
            ax.plot(grid * scale, np.nanmedian(values, 0), color=color, label=f"{m} (median)")
            ax.fill_between(grid * scale, np.nanmin(values, 0), np.nanmax(values, 0),
                            color=color, alpha=0.15)  # fmt: skip
        ax.axhline(target, color="grey", lw=0.8, ls="--")
        ax.set_xlabel(label)
        ax.set_ylabel("hypervolume (share of reference box)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    axes[0].set_title(f"{len(seeds)} seeds: median, band = min-max", fontsize=9)
    axes[1].set_title("dashed: median final HV of random search (the target)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def print_table(core: dict) -> None:
    print(f"\ntarget HV (random's median final) = {core['random_median_final_hv']:.4f}")
    print(f"{'method':<13}{'final HV (median)':>19}{'Wh to target':>14}{'reached':>9}"
          f"{'ratio vs random':>17}{'wins':>7}{'trials':>8}{'full':>6}"
          f"{'later error':>13}{'later uJ':>10}")  # fmt: skip
    for m, o in core["methods"].items():
        print(
            f"{m:<13}{statistics.median(o['final_hv']):>19.4f}"
            f"{o['median_energy_to_target_wh']:>14.3f}"
            f"{o['reached_target']:>5}/{len(o['final_hv'])}"
            f"{o['energy_ratio_vs_random'] or 0:>17.2f}"
            f"{o['win_share_vs_random']:>7.2f}{statistics.mean(o['trials']):>8.1f}"
            f"{statistics.mean(o['full_fidelity_trials']):>6.1f}"
            f"{_or_nan(o['later_median_error']):>13.3f}{_or_nan(o['later_median_uj']):>10.3f}"
        )
    print(f"\nrecommended: {core['recommended']}. {core['verdict']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--walltime", type=float, default=100.0, help="seconds per sweep")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "multirun" / "search_efficiency_v2")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--analyze-only", action="store_true", help="no new sweeps")
    parser.add_argument(
        "--pool", nargs="+", metavar="TAG", default=None,
        help="no sweeps: pool --methods over the committed results search_efficiency_v2_TAG"
        "{.json,_trials.csv} in --out-dir (a later TAG's run of a method and seed replaces an "
        "earlier one's)",
    )  # fmt: skip
    parser.add_argument("--tag", default="", help="results as search_efficiency_v2_TAG.*")
    parser.add_argument(
        "--schedule-interval", choices=("epoch", "step"), default="epoch",
        help="the task's schedule_interval (step: every trial's cosine anneals per step, so a "
        "short run anneals too); step runs are kept apart (w<walltime>_step)",
    )  # fmt: skip
    args = parser.parse_args()
    interval = args.schedule_interval
    if BASELINE not in args.methods:
        parser.error(f"--methods must include {BASELINE} (the target comes from it)")

    if args.pool:
        if not args.tag:
            parser.error("--pool needs a --tag (its results are new files)")
        runs = {}
        for tag in args.pool:
            runs.update(read_results(args.out_dir, f"{STEM}_{tag}", args.methods))
        last = json.loads((args.out_dir / f"{STEM}_{args.pool[-1]}.json").read_text())["setup"]
        setup = {**last, "methods": {m: METHODS[m] for m in args.methods}, "pooled": args.pool}
        analyze(runs, args.walltime, args.out_dir, setup, f"{STEM}_{args.tag}")
        return
    reference = reference_point()
    source = None
    if set(WARM) & set(args.methods):
        folder = source_dir(args.runs_dir, interval)
        if args.analyze_only and not (folder / "bench_done.json").exists():
            sys.exit(f"no finished source sweep in {folder}")
        source = run_source(args.runs_dir, reference["values"], interval)
    runs = {}
    walltime_dir = args.runs_dir / f"w{int(args.walltime)}{interval_suffix(interval)}"
    for seed in args.seeds:
        for method in args.methods:
            sweep_dir = walltime_dir / f"{method}_seed{seed}"
            if args.analyze_only and not (sweep_dir / "bench_done.json").exists():
                continue
            times = run_sweep(
                method, seed, args.walltime, sweep_dir, reference["values"], interval=interval
            )
            trials = read_trials(method, seed, sweep_dir, times)  # adds times["startup_s"]
            runs[(method, seed)] = {**times, "trials": trials}
    if not any(k[0] == BASELINE for k in runs):
        sys.exit(f"no finished {BASELINE} sweep under {args.runs_dir}: nothing to analyze")
    ref = reference["values"]
    setup = {
        "task": f"experiment=search_bench trainer.max_epochs=9 schedule_interval={interval} "
        "(SmallCNN, all 4 layers DeepShift-Q, 5 % of Fashion-MNIST, 2000 validation images)",
        "search_space": "search_space=search_bench",
        "reference": reference,
        "search_energy": "energy/stage_train_kwh + energy/inference_kwh of every trial of the "
        "sweep (a continued trial's own stage; crashes report 0)",
        "walltime_limit_s": args.walltime,
        "methods": {m: METHODS[m] for m in args.methods},
        **({"warm_start_source": {**SOURCE, **source}} if source else {}),
        "command": " ".join(
            ["python", *sweep_command(BASELINE, 0, args.walltime, Path("DIR"), ref, interval)[1:]]
        ),
    }
    analyze(runs, args.walltime, args.out_dir, setup, f"{STEM}_{args.tag}" if args.tag else STEM)


if __name__ == "__main__":
    main()
