"""How much of a 1-epoch screen's energy its validation costs, and whether a smaller
validation sample ranks configurations as well (data.val_fraction, set on the screens by
hydra.sweeper.budget.low_fidelity).

The configurations: those of the search-efficiency study's preset sweeps (method
tpe_hv_screen_ri_eta4, schedule_interval=step) that were screened at 1 epoch and promoted
to 9, read from a committed trials CSV; every second one, up to --configs. Each one's 1-epoch
screen is run again in this process, once per validation fraction, the fractions side by
side per configuration (so load changes hit them alike). Reported per fraction: Spearman of
the screen's val/error against the configuration's 9-epoch val/error (from the CSV, full
validation) and against the full-validation screen's; the summed measured energy of the
screens (CodeCarbon, train + inference pass) and its ratio to full validation. Writes
benchmarks/results/screen_validation.json with the machine.

    .venv/bin/python -m benchmarks.screen_validation                        # ~8 min
    .venv/bin/python -m benchmarks.screen_validation --configs 6 --out /tmp/sv.json
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import tempfile
from collections import defaultdict
from pathlib import Path

from benchmarks.machine import machine, write_report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
TRIALS = RESULTS / "search_efficiency_v2_step_promote_flip_trials.csv"
METHOD = "tpe_hv_screen_ri_eta4"
TASK = ["experiment=search_bench", "schedule_interval=step", "seed=0", "trainer.max_epochs=1"]


def screened_and_promoted(trials: Path, method: str) -> list[tuple[dict, float]]:
    """(configuration, its 9-epoch val/error) of every configuration of `method` with a
    successful 1-epoch and 9-epoch trial in the same sweep, in file order."""
    errors: dict[tuple[str, str], dict[float, float]] = defaultdict(dict)
    with trials.open() as f:
        for row in csv.DictReader(f):
            if row["method"] == method and row["status"] == "success":
                epochs = float(row["epochs_trained"])
                errors[(row["seed"], row["config"])][epochs] = float(row["val_error"])
    return [(json.loads(c), e[9.0]) for (_, c), e in errors.items() if {1.0, 9.0} <= set(e)]


def screen(config: dict, val_fraction: float, output_dir: Path) -> dict[str, float]:
    """One 1-epoch screen of `config` with data.val_fraction, in this process."""
    from hydra import compose, initialize_config_dir

    from dsnn.training import train
    from hydra_plugins.smac_sweeper._overrides import trial_overrides

    extra = {"data.val_fraction": val_fraction, "paths.output_dir": str(output_dir)}
    overrides = trial_overrides(TASK, config, extra)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return train(cfg)


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def run(configs: int, fractions: list[float], trials: Path) -> dict:
    pairs = screened_and_promoted(trials, METHOD)[::2][:configs]
    if len(pairs) < 3:
        raise SystemExit(f"{trials}: {len(pairs)} screened-and-promoted configurations of {METHOD}")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        screen({**pairs[0][0]}, 1.0, Path(tmp))  # warm-up: data decoding, first imports
        for i, (config, error9) in enumerate(pairs):
            row = {"config": config, "val_error_9_epochs": error9}
            for fraction in fractions:
                result = screen(config, fraction, Path(tmp) / f"{i}_{fraction}")
                row[str(fraction)] = {
                    "val_error": result["val/error"],
                    "energy_kwh": result["energy/total_kwh"],
                    "inference_kwh": result["energy/inference_kwh"],
                }
            rows.append(row)
            print(f"{i + 1}/{len(pairs)} done", flush=True)
    full = str(fractions[0])
    nine = [r["val_error_9_epochs"] for r in rows]
    summary = {}
    for fraction in fractions:
        key = str(fraction)
        energy = sum(r[key]["energy_kwh"] for r in rows)
        summary[key] = {
            "spearman_vs_9_epochs": spearman([r[key]["val_error"] for r in rows], nine),
            "spearman_vs_full_validation": spearman(
                [r[key]["val_error"] for r in rows], [r[full]["val_error"] for r in rows]
            ),
            "energy_wh": 1000 * energy,
            "inference_share": sum(r[key]["inference_kwh"] for r in rows) / energy,
            "energy_ratio_vs_full_validation": energy / sum(r[full]["energy_kwh"] for r in rows),
        }
    return {
        "benchmark": "1-epoch screens validated on a share of the validation split",
        "task": " ".join(TASK),
        "configurations_from": f"{_shown(trials)} (method {METHOD})",
        "configurations": len(rows),
        "val_fractions": fractions,
        "summary": summary,
        "machine": machine(),
        "rows": rows,
    }


def _shown(path: Path) -> str:
    """`path` relative to the repository when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=70, help="at most this many")
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.25, 0.1],
                        help="data.val_fraction values, full validation first")  # fmt: skip
    parser.add_argument("--trials", type=Path, default=TRIALS)
    parser.add_argument("--out", type=Path, default=RESULTS / "screen_validation.json")
    args = parser.parse_args()
    if args.fractions[0] != 1.0:
        parser.error("--fractions must start with 1.0 (full validation)")
    report = run(args.configs, args.fractions, args.trials.resolve())
    for fraction, s in report["summary"].items():
        print(
            f"val_fraction {fraction}: Spearman vs 9 epochs {s['spearman_vs_9_epochs']:.3f}, "
            f"vs full validation {s['spearman_vs_full_validation']:.3f}; energy "
            f"{s['energy_wh']:.4f} Wh ({s['energy_ratio_vs_full_validation']:.2f}x), "
            f"inference pass {100 * s['inference_share']:.0f} %"
        )
    write_report(args.out, report)


if __name__ == "__main__":
    main()
