"""Fixed cost of a near-empty trial: where the time from one tell to the next goes.

An in-process sweep (Hydra's basic launcher, `hydra/sweeper=random` over the learning rate
only) of N trials of `train(cfg)` on a near-empty task: 275 Fashion-MNIST training images
(data.fraction=0.005), 500 validation images, ResNet20 of width 4, 1 epoch, W&B offline,
CodeCarbon and checkpoints on. Two sweeps run side by side in this one process, after a
two-trial warm-up sweep (imports, CodeCarbon's first start) that is not counted:

    before   val_every_epoch=true data.cache=false: fit validates every epoch and the
             measured pass validates again; every trial decodes the data files
    after    the defaults: one validation pass (the measured one), decoded data cached

Phases are timed by wrapping the functions that do them (phases inside fit are indented);
`composition` is the sweeper's launch time minus the task's own time (Hydra composes each
job's config), `sweeper` its ask, tell and output files; `tell to tell` comes from the
journal's tell times. Writes benchmarks/results/trial_overhead.json with the machine.

    .venv/bin/python -m benchmarks.trial_overhead                  # 20 trials per sweep
    .venv/bin/python -m benchmarks.trial_overhead --trials 3 --out /tmp/overhead.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import yaml

from benchmarks.machine import machine, write_report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
TASK = [
    "experiment=demo",
    "model.width=4",
    "data.fraction=0.005",  # 275 of the 55000 training images
    "data.val_size=500",
    "trainer.max_epochs=1",
    "logger=wandb",
    "logger.wandb.mode=offline",
    "hydra.sweeper.wandb.mode=disabled",
]
VARIANTS = {"before": ["val_every_epoch=true", "data.cache=false"], "after": []}
SPACE = {"hyperparameters": {"optimizer.lr": {"type": "float", "lower": 0.01, "upper": 0.1}}}

SECONDS: dict[str, float] = defaultdict(float)  # phase -> seconds, summed over trials


def timed(owner, name: str, phase: str) -> None:
    """Replace owner.name by a wrapper that adds its time to SECONDS[phase]."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            SECONDS[phase] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def instrument() -> None:
    import codecarbon.emissions_tracker as cc
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import WandbLogger

    import dsnn.training as training
    from dsnn.data.base import ImageDataModule

    timed(ImageDataModule, "setup", "  of fit: data set-up (decode, split)")
    timed(training, "build_lit_module", "model build (network, conversion)")
    timed(pl.Trainer, "__init__", "Lightning Trainer set-up")
    timed(training, "start_logger", "loggers (start, hyperparameters, finish)")
    timed(WandbLogger, "log_hyperparams", "loggers (start, hyperparameters, finish)")
    timed(training, "finish_wandb", "loggers (start, hyperparameters, finish)")
    timed(cc.BaseEmissionsTracker, "__init__", "CodeCarbon (create, start, stop)")
    timed(cc.BaseEmissionsTracker, "start", "CodeCarbon (create, start, stop)")
    timed(cc.BaseEmissionsTracker, "stop", "CodeCarbon (create, start, stop)")
    timed(pl.Trainer, "fit", "fit (1 epoch, data set-up, checkpoints, per-epoch val.)")
    timed(pl.Trainer, "save_checkpoint", "  of fit: checkpoint writing")
    timed(pl.Trainer, "validate", "measured validation pass")
    timed(training, "export_quantized", "export + model.pt")
    timed(training, "estimate_energy", "analytic energy count")


@contextmanager
def search_path():
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "search_space").mkdir()
        (Path(tmp) / "search_space" / "overhead_lr.yaml").write_text(yaml.safe_dump(SPACE))
        yield tmp


def sweep(sweep_dir: Path, n_trials: int, extra: list[str], searchpath: str) -> dict:
    from hydra._internal.hydra import Hydra
    from hydra.core.global_hydra import GlobalHydra

    from dsnn.training import train

    args = [
        "hydra/sweeper=random",
        f"hydra.searchpath=[file://{searchpath}]",
        "search_space@hydra.sweeper.search_space=overhead_lr",
        f"hydra.sweeper.n_trials={n_trials}",
        f"hydra.sweep.dir={sweep_dir}",
        *TASK,
        *extra,
    ]
    SECONDS.clear()
    GlobalHydra.instance().clear()
    start = time.perf_counter()
    try:
        hydra = Hydra.create_main_hydra_file_or_module(
            calling_file=str(ROOT / "train.py"), calling_module=None, config_path="conf",
            job_name="train",
        )  # fmt: skip
        hydra.multirun(config_name="config", task_function=train, overrides=args)
    finally:
        GlobalHydra.instance().clear()
    wall = time.perf_counter() - start
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    sweeper_ms = results["sweeper_ms_per_trial"]
    tells = [
        r["t"]
        for r in map(json.loads, (sweep_dir / "journal.jsonl").read_text().splitlines())
        if r["event"] == "tell"
    ]
    gaps = [b - a for a, b in zip(tells, tells[1:], strict=False)]
    per_trial = {k: v / n_trials for k, v in SECONDS.items()}
    per_trial["composition (Hydra, per job)"] = (sweeper_ms["launch"] - sweeper_ms["task"]) / 1e3
    per_trial["sweeper ask + tell + files"] = (
        sweeper_ms["ask"] + sweeper_ms["tell"] + sweeper_ms["outputs"]
    ) / 1e3
    task_s = sweeper_ms["task"] / 1e3
    counted = sum(v for k, v in per_trial.items() if not k.startswith("  ") and "sweeper" not in k)
    counted -= per_trial["composition (Hydra, per job)"]
    per_trial["rest of the task (checks, W&B metrics, ...)"] = task_s - counted
    return {
        "seconds_per_trial": {k: round(v, 4) for k, v in sorted(per_trial.items())},
        "task_s_per_trial": round(task_s, 4),
        "tell_to_tell_s_mean": round(statistics.mean(gaps), 4) if gaps else None,
        "tell_to_tell_s_median": round(statistics.median(gaps), 4) if gaps else None,
        "sweep_wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS / "trial_overhead.json")
    args = parser.parse_args()
    instrument()
    results = {}
    with search_path() as sp, tempfile.TemporaryDirectory() as tmp:
        sweep(Path(tmp) / "warmup", 2, [], sp)  # imports, CodeCarbon's first start
        for name, extra in VARIANTS.items():
            print(f"{name}: {args.trials} trials ({' '.join(extra) or 'defaults'})", flush=True)
            results[name] = sweep(Path(tmp) / name, args.trials, extra, sp)
    phases = sorted({k for r in results.values() for k in r["seconds_per_trial"]})
    print(f"\nseconds per near-empty trial ({args.trials} trials per sweep)")
    print(f"{'phase':<58}" + "".join(f"{n:>10}" for n in results))
    for phase in phases:
        print(f"{phase:<58}" + "".join(f"{r['seconds_per_trial'].get(phase, 0):>10.3f}"
                                        for r in results.values()))  # fmt: skip
    for key in ("task_s_per_trial", "tell_to_tell_s_mean", "tell_to_tell_s_median"):
        print(f"{key:<58}" + "".join(f"{r[key]:>10.3f}" for r in results.values()))
    report = {
        "benchmark": "fixed cost of a near-empty train.py trial in an in-process sweep",
        "machine": machine(),
        "setup": {"trials": args.trials, "task": TASK, "variants": VARIANTS,
                  "sweeper": "random over optimizer.lr, basic launcher, in-process"},
        "results": results,
    }  # fmt: skip
    write_report(args.out, report)


if __name__ == "__main__":
    main()
