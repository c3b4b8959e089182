"""mode=sweep: retrain the Pareto-optimal configurations of a SMAC sweep at full fidelity
with several seeds, and set the re-tested front (test split, mean ± std) next to the front
the sweep saw (validation split, one seed each).

Reads what hydra_plugins/smac_sweeper writes: pareto.csv (the front at the highest
budget), optimization_results.yaml (the objectives; the budget variable and its full-fidelity
value) and each trial's job folder <sweep_dir>/<trial id>/.hydra/config.yaml.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from dsnn.evaluation.report import (
    format_table,
    log_to_wandb,
    mean_std,
    new_figure,
    pm,
    write_csv,
    write_json,
)
from dsnn.evaluation.runs import apply_dotlist, run_training, seed_list
from dsnn.objectives import (
    EMISSIONS_INFERENCE_G,
    EMISSIONS_TOTAL_G,
    EMISSIONS_TRAIN_G,
    MODEL_ENERGY_UJ,
    TEST_ACC,
    TEST_ERROR,
    VAL_ERROR,
)
from dsnn.safe_files import check_targets

log = logging.getLogger(__name__)

# Reported per configuration (mean and std over seeds), besides the sweep's objectives
REPORTED = (
    TEST_ACC,
    TEST_ERROR,
    VAL_ERROR,
    EMISSIONS_TOTAL_G,
    EMISSIONS_TRAIN_G,
    EMISSIONS_INFERENCE_G,
    MODEL_ENERGY_UJ,
)


def read_front(sweep_dir: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(objectives, pareto.csv rows) of a sweep folder."""
    results = sweep_dir / "optimization_results.yaml"
    front = sweep_dir / "pareto.csv"
    if not results.is_file() or not front.is_file():
        raise FileNotFoundError(
            f"{sweep_dir} is not a SMAC sweep folder: it needs optimization_results.yaml and "
            "pareto.csv (written by hydra/sweeper=smac_*)"
        )
    objectives = list(yaml.safe_load(results.read_text())["objectives"])
    with front.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{front} is empty: the sweep has no successful trial at full budget")
    return objectives, rows


def full_fidelity(sweep_dir: Path) -> dict[str, Any]:
    """{budget variable: its full-fidelity value} from optimization_results.yaml's
    `fidelity`; {} for a sweep without a budget."""
    results = sweep_dir / "optimization_results.yaml"
    doc = yaml.safe_load(results.read_text(encoding="utf-8")) if results.is_file() else {}
    if "fidelity" not in (doc or {}):
        log.warning(
            f"{results} does not name the sweep's budget (written before the sweeper did; "
            "re-run the sweep command once to rewrite it): the trials' own budgets are kept"
        )
        return {}
    fidelity = doc["fidelity"]
    if not fidelity:
        return {}
    top = fidelity["max"]
    if fidelity.get("integer"):
        top = int(round(top))
    return {fidelity["variable"]: top}


def trial_config(sweep_dir: Path, row: dict[str, str]) -> DictConfig:
    """The trial's saved job config (its job folder under the sweep, else job_dir, which
    trials.csv gives relative to the sweep folder), its targets checked before it is trained
    (dsnn/safe_files.py)."""
    job_dir = [sweep_dir / row["job_dir"]] if row.get("job_dir") else []
    folders = [sweep_dir / row["trial_id"], *job_dir]
    for folder in folders:
        saved = folder / ".hydra" / "config.yaml"
        if saved.is_file():
            cfg = OmegaConf.load(saved)
            check_targets(cfg, str(saved))
            return cfg
    raise FileNotFoundError(f"trial {row['trial_id']}: no .hydra/config.yaml in its job folder")


def retest_sweep(cfg: DictConfig) -> dict[str, Any]:
    if not cfg.sweep_dir:
        raise ValueError("mode=sweep needs sweep_dir=<folder of a SMAC sweep>")
    sweep_dir = Path(cfg.sweep_dir)
    out = Path(cfg.output_dir)
    objectives, front = read_front(sweep_dir)
    fidelity = full_fidelity(sweep_dir)
    seeds = seed_list(cfg.seeds, default=3)
    group = f"retest-{sweep_dir.name}"
    log.info(
        f"Re-testing {len(front)} Pareto configurations of {sweep_dir} with seeds {seeds} "
        f"at {fidelity or 'their own fidelity'}"
    )

    runs: list[dict[str, Any]] = []
    for row in front:
        base = apply_dotlist(trial_config(sweep_dir, row), list(cfg.overrides))
        for seed in seeds:
            # from scratch: a trial that continued another (budget.continuation) saved its
            # resume_from, which a re-test with a new seed must not follow
            values = {**fidelity, "seed": seed, "test": True, "resume_from": None}
            values |= {"run_group": group, "run_name": f"t{row['trial_id']}-s{seed}"}
            record = run_training(
                base, out / "runs" / f"t{row['trial_id']}" / f"seed{seed}", values
            )
            runs.append({"trial_id": row["trial_id"], "seed": seed, **record})

    summary = summarise(front, runs, objectives)
    write_csv(out / "retest_runs.csv", runs)
    write_csv(out / "retest_summary.csv", summary)
    plot = plot_fronts(out / "retest_front.png", summary, objectives, len(seeds))
    write_json(
        out / "retest.json",
        {"sweep_dir": str(sweep_dir), "objectives": objectives, "fidelity": fidelity,
         "seeds": seeds, "summary": summary},
    )  # fmt: skip
    printed = [
        {
            "trial": s["trial_id"],
            **{f"sweep {k}": s[f"sweep/{k}"] for k in objectives},
            "test acc (%)": pm(s["test/acc_mean"], s["test/acc_std"], 100),
            "emissions (g)": pm(s["emissions/total_g_mean"], s["emissions/total_g_std"]),
            "µJ/image": s.get("energy/model_uj_per_image_mean"),
            "runs": f"{s['runs_ok']}/{s['runs']}",
        }
        for s in summary
    ]
    print(format_table(printed, list(printed[0])))
    print(f"\nre-tested with seeds {seeds} at {fidelity or 'the trials fidelity'}; files in {out}")
    log_to_wandb(
        cfg.wandb, group, out,
        tables={"retest_summary": summary, "retest_runs": runs},
        images={"retest_front": plot},
    )  # fmt: skip
    if not any(r["status"] == "success" for r in runs):
        raise RuntimeError(f"every re-test run failed; see {out / 'retest_runs.csv'}")
    return {"summary": summary, "runs": runs}


def summarise(
    front: list[dict[str, str]], runs: list[dict[str, Any]], objectives: list[str]
) -> list[dict[str, Any]]:
    """One row per Pareto configuration: the sweep's values, then mean and std over seeds."""
    rows = []
    for row in front:
        mine = [r for r in runs if r["trial_id"] == row["trial_id"]]
        ok = [r for r in mine if r["status"] == "success"]
        entry: dict[str, Any] = {"trial_id": row["trial_id"], "sweep/budget": row.get("budget")}
        entry |= {f"sweep/{k}": float(row[k]) for k in objectives}
        entry |= {"runs": len(mine), "runs_ok": len(ok)}
        for key in dict.fromkeys([*REPORTED, *objectives]):
            mean, std = mean_std(r[key] for r in ok if key in r)
            entry |= {f"{key}_mean": mean, f"{key}_std": std}
        rows.append(entry)
    return rows


def _retest_key(key: str, summary: list[dict[str, Any]]) -> str:
    """The re-test's counterpart of a sweep objective: its test-split value where there is one."""
    test = key.replace("val/", "test/", 1)
    return test if f"{test}_mean" in summary[0] else key


def plot_fronts(
    path: Path, summary: list[dict[str, Any]], objectives: list[str], seeds: int
) -> Path:
    """The sweep's front and the re-tested configurations (mean ± std), first two objectives."""
    fig, ax = new_figure()
    x_key = objectives[0]
    y_key = objectives[1] if len(objectives) > 1 else None
    xs = [s[f"sweep/{x_key}"] for s in summary]
    ys = [s[f"sweep/{y_key}"] for s in summary] if y_key else list(range(len(summary)))
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    if y_key:
        ax.step([xs[i] for i in order], [ys[i] for i in order], where="post", color="grey", lw=1)
    ax.scatter(xs, ys, color="grey", s=40, label="sweep (validation, 1 seed)")
    rx = _retest_key(x_key, summary)
    ry = _retest_key(y_key, summary) if y_key else None
    ax.errorbar(
        [s[f"{rx}_mean"] for s in summary],
        [s[f"{ry}_mean"] for s in summary] if ry else ys,
        xerr=[s[f"{rx}_std"] for s in summary],
        yerr=[s[f"{ry}_std"] for s in summary] if ry else None,
        fmt="o", color="crimson", capsize=4, label=f"re-tested ({rx}, mean ± std of {seeds} seeds)",
    )  # fmt: skip
    for s, x, y in zip(summary, xs, ys, strict=True):
        ax.annotate(
            f"t{s['trial_id']}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8
        )
    ax.set_xlabel(f"{x_key} (sweep) / {rx} (re-test)")
    ax.set_ylabel(y_key or "configuration")
    ax.set_title("Pareto front: as the sweep saw it and re-tested", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path)
    return path
