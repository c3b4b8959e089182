"""A tiny Hydra app for the sweeper tests: two cheap objectives with a trade-off.

val/error falls and emissions/total_g rises with shift_depth (the budget), like the real
DSNN. `fail=mixed` makes configurations with n = 2, 3, 4 raise, return NaN, or miss a
key; `fail=always` makes every call raise. `hang`, `exit` and `interrupt` name a value of n
whose calls sleep for an hour, call sys.exit(3), or raise KeyboardInterrupt. With `log_dir`
set, every invocation leaves a JSON file there (its run_name, budget and overrides), so
tests can count the calls. With `wandb_dir` set, every invocation logs an offline W&B run
there, grouped as the sweeper says. Like train.py it honours `resume_from=<job dir>`: it
"trains" only the epochs missing after those the earlier run left in its epochs.json, and
reports train/epochs, train/stage_epochs, and train/cost (growing with x).
"""

import json
import math
import os
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


def task(cfg: DictConfig):
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    epochs = int(cfg.trainer.max_epochs)
    earlier = 0
    if cfg.resume_from and (Path(cfg.resume_from) / "epochs.json").is_file():
        earlier = json.loads((Path(cfg.resume_from) / "epochs.json").read_text())["epochs"]
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "epochs.json").write_text(json.dumps({"epochs": epochs}))
    if cfg.log_dir:
        record = {
            "run_name": cfg.get("run_name"),
            "run_group": cfg.get("run_group"),
            "seed": cfg.get("seed"),
            "shift_depth": cfg.shift_depth,
            "shift_depth_type": type(cfg.shift_depth).__name__,
            "opt": cfg.opt,
            "sleep": cfg.sleep,
            "overrides": list(HydraConfig.get().overrides.task),
            "output_dir": HydraConfig.get().runtime.output_dir,
            "pid": os.getpid(),
            "epochs": epochs,
            "stage_epochs": epochs - earlier,
            "resume_from": cfg.resume_from,
            "schedule_epochs": cfg.get("schedule_epochs"),
        }
        path = Path(cfg.log_dir) / f"{cfg.get('run_name')}_{time.time_ns()}_{os.getpid()}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        # whole or absent: the tests poll this folder while the sweep runs (and kill -9 it)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(record))
        os.replace(partial, path)
    if cfg.wandb_dir:  # a W&B run per trial, as train.py's logger opens one
        import wandb

        wandb.init(
            project=cfg.logger.wandb.project, group=cfg.get("run_group"),
            name=cfg.get("run_name"), job_type=cfg.get("job_type"), tags=list(cfg.get("tags")),
            config=dict(cfg.get("trial_info")), mode="offline", dir=cfg.wandb_dir,
            reinit="create_new", settings=wandb.Settings(console="off", x_disable_stats=True),
        ).finish()  # fmt: skip
    if cfg.sleep:
        time.sleep(cfg.sleep)
    if cfg.hang is not None and cfg.n == cfg.hang:
        time.sleep(3600)  # a trial that hangs (trial_timeout stops it)
    if cfg.exit is not None and cfg.n == cfg.exit:
        sys.exit(3)
    if cfg.interrupt is not None and cfg.n == cfg.interrupt:
        raise KeyboardInterrupt
    error = (cfg.x - 0.3) ** 2 + 0.5 / (1 + cfg.shift_depth) + 0.05 * (cfg.opt == "c")
    error += 0.01 * cfg.n + (0.1 * (0.9 - cfg.momentum) if "momentum" in cfg else 0.0)
    emissions = known_emissions(cfg)
    if cfg.fail == "always" or (cfg.fail == "mixed" and cfg.n == 2):
        raise RuntimeError(f"toy failure at n={cfg.n}")
    if cfg.fail == "mixed" and cfg.n == 3:
        error = math.nan
    if cfg.fail == "mixed" and cfg.n == 4:
        return {"val/error": error}  # emissions missing
    if cfg.return_float:
        return error
    return {
        "val/error": error,
        "emissions/total_g": emissions,
        "val/acc": 1 - error,
        "train/epochs": float(epochs),
        "train/stage_epochs": float(epochs - earlier),
        "train/cost": 1.0 + 10 * cfg.x,  # what the trial "cost" (for search_cost)
    }


def known_emissions(cfg: DictConfig) -> float:
    """emissions/total_g, a function of the config alone: the toy's known objective
    (hydra.sweeper.known_objectives). x1.6 from shift_depth 5 to 20: training cost grows
    mildly with the shift layers."""
    return 0.01 * (1 + 0.05 * cfg.shift_depth) * (1 + cfg.y) + 0.02 * (1 - cfg.x)


main = hydra.main(version_base="1.3", config_path="conf", config_name="toy")(task)

if __name__ == "__main__":
    main()
