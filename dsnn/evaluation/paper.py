"""The paper's results (Hennig et al., section 4.2), trained again with train(cfg):

* Figure 1: test accuracy against shift depth, one curve per experiment preset
  (the paper: `paper_default` against `pos1`, shift depth 0 ... 20).
* Table 1: the accuracy (Top-1 test, %) and emissions (gCO2eq) row of each preset.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dsnn.evaluation.report import (
    format_table,
    log_to_wandb,
    mean_std,
    new_figure,
    pm,
    write_csv,
    write_json,
)
from dsnn.evaluation.runs import compose_train_config, run_training, seed_list
from dsnn.objectives import (
    EMISSIONS_INFERENCE_G,
    EMISSIONS_TOTAL_G,
    EMISSIONS_TRAIN_G,
    MODEL_ENERGY_UJ,
    TEST_ACC,
)

log = logging.getLogger(__name__)

# Table 1 of the paper (CIFAR-10, A100): Top-1 test accuracy (%) and emissions (gCO2eq)
PAPER_TABLE1 = {
    "paper_default": {"accuracy_pct": None, "emissions_g": None},
    "pos1": {"accuracy_pct": 83.50, "emissions_g": 0.1661},
    "pos2": {"accuracy_pct": 84.67, "emissions_g": 0.1673},
}


def train_preset(
    preset: str, seed: int, out: Path, overrides: list[str], extra: list[str] = ()
) -> dict[str, Any]:
    """One run of `python train.py experiment=<preset> test=true seed=<seed> ...`."""
    cfg = compose_train_config([f"experiment={preset}", *extra, *overrides])
    return run_training(cfg, out, {"seed": seed, "test": True})


def figure1(cfg: DictConfig) -> dict[str, Any]:
    out = Path(cfg.output_dir)
    configs, depths = list(cfg.configs), [int(d) for d in cfg.depths]
    seeds = seed_list(cfg.seeds, default=1)
    if len(configs) < 1 or not depths:
        raise ValueError("mode=figure1 needs configs=[...] and depths=[...]")
    runs = []
    for name in configs:
        for depth in depths:
            for seed in seeds:
                label = f"{name}-d{depth}-s{seed}"
                extra = [f"shift_depth={depth}", "run_group=figure1", f"run_name={label}"]
                record = train_preset(name, seed, out / "runs" / label, list(cfg.overrides), extra)
                runs.append({"config": name, "shift_depth": depth, "seed": seed, **record})
    points = []
    for name in configs:
        for depth in depths:
            mine = [
                r for r in runs
                if r["config"] == name and r["shift_depth"] == depth and r["status"] == "success"
            ]  # fmt: skip
            acc, acc_std = mean_std(r[TEST_ACC] for r in mine)
            uj, _ = mean_std(r[MODEL_ENERGY_UJ] for r in mine)
            points.append(
                {"config": name, "shift_depth": depth, "runs": len(mine),
                 "test_acc_pct_mean": 100 * acc, "test_acc_pct_std": 100 * acc_std,
                 "energy_model_uj_per_image": uj}
            )  # fmt: skip
    write_csv(out / "figure1_runs.csv", runs)
    write_csv(out / "figure1.csv", points)
    png = plot_figure1(out / "figure1.png", points, configs, len(seeds))
    print(format_table(points, list(points[0])))
    print(f"\nFigure 1: {png}; data {out / 'figure1.csv'}")
    log_to_wandb(cfg.wandb, "figure1", out, tables={"figure1": points}, images={"figure1": png})
    _fail_if_all_crashed(runs, out / "figure1_runs.csv")
    return {"points": points, "runs": runs}


def plot_figure1(path: Path, points: list[dict[str, Any]], configs: list[str], seeds: int) -> Path:
    fig, ax = new_figure()
    for name in configs:
        mine = [p for p in points if p["config"] == name and p["runs"]]
        ax.errorbar(
            [p["shift_depth"] for p in mine],
            [p["test_acc_pct_mean"] for p in mine],
            yerr=[p["test_acc_pct_std"] for p in mine] if seeds > 1 else None,
            marker="o", capsize=3, label=name,
        )  # fmt: skip
    ax.set_xlabel("shift depth (weight layers converted to shift layers)")
    ax.set_ylabel("Top-1 test accuracy (%)")
    title = "Test accuracy of DSNNs against shift depth"
    ax.set_title(title + (f" (mean ± std, {seeds} seeds)" if seeds > 1 else ""), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path)
    return path


def table1(cfg: DictConfig) -> dict[str, Any]:
    out = Path(cfg.output_dir)
    presets = list(cfg.configs)
    seeds = seed_list(cfg.seeds, default=1)
    runs, rows = [], []
    for name in presets:
        for seed in seeds:
            extra = ["run_group=table1", f"run_name={name}-s{seed}"]
            record = train_preset(
                name, seed, out / "runs" / f"{name}-s{seed}", list(cfg.overrides), extra
            )
            runs.append({"experiment": name, "seed": seed, **record})
        ok = [r for r in runs if r["experiment"] == name and r["status"] == "success"]
        acc = mean_std(r[TEST_ACC] for r in ok)
        total = mean_std(r[EMISSIONS_TOTAL_G] for r in ok)
        paper = PAPER_TABLE1.get(name, {})
        rows.append(
            {
                "experiment": name,
                "runs": f"{len(ok)}/{len(seeds)}",
                "accuracy (%)": pm(*acc, 100),
                "emissions (gCO2eq)": pm(*total),
                "train (g)": mean_std(r[EMISSIONS_TRAIN_G] for r in ok)[0],
                "inference (g)": mean_std(r[EMISSIONS_INFERENCE_G] for r in ok)[0],
                "µJ/image": mean_std(r[MODEL_ENERGY_UJ] for r in ok)[0],
                "paper accuracy (%)": paper.get("accuracy_pct"),
                "paper emissions (g)": paper.get("emissions_g"),
                "test_acc_mean": acc[0], "test_acc_std": acc[1],
                "emissions_total_g_mean": total[0], "emissions_total_g_std": total[1],
            }
        )  # fmt: skip
    write_csv(out / "table1_runs.csv", runs)
    write_csv(out / "table1.csv", rows)
    write_json(out / "table1.json", rows)
    print(format_table(rows, [k for k in rows[0] if not k.endswith(("_mean", "_std"))]))
    print("\nemissions = training + one validation pass (CodeCarbon); "
          f"paper: CIFAR-10 on an A100. Files in {out}")  # fmt: skip
    log_to_wandb(cfg.wandb, "table1", out, tables={"table1": rows, "table1_runs": runs})
    _fail_if_all_crashed(runs, out / "table1_runs.csv")
    return {"rows": rows, "runs": runs}


def _fail_if_all_crashed(runs: list[dict[str, Any]], path: Path) -> None:
    if not any(r["status"] == "success" for r in runs):
        raise RuntimeError(f"every training run failed; see {path}")
