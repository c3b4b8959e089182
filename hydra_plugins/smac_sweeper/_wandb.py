"""The sweep's W&B summary run: trials table, Pareto front, hypervolume over trials.

Written once when the sweep ends (trials may open their own W&B runs in this process, so
none is held open while they run). Offline by default; any W&B failure is logged and
ignored, and `init_timeout` bounds an online start without network.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._outputs import trial_rows
from ._pareto import FrontSummary
from ._trials import Trial

log = logging.getLogger(__name__)


def log_summary(
    settings: Mapping[str, Any],
    sweep_dir: Path,
    sweep_name: str,
    trials: Sequence[Trial],
    summary: FrontSummary,
    sweeper_options: Mapping[str, Any],
) -> None:
    mode = settings.get("mode", "offline")
    if mode == "disabled":
        return
    try:
        import wandb

        run = wandb.init(
            project=settings.get("project"),
            entity=settings.get("entity"),
            group=sweep_name,
            name=f"{sweep_name}-summary",
            job_type="sweep-summary",
            mode=mode,
            dir=str(sweep_dir),
            config=dict(sweeper_options),
            reinit="create_new",
            settings=wandb.Settings(
                init_timeout=float(settings.get("init_timeout", 30.0)),
                login_timeout=float(settings.get("init_timeout", 30.0)),  # no endless prompt
                console="off",
                silent=True,
                x_disable_stats=True,
            ),
        )
        try:
            for row in summary.history:  # the rows of hypervolume.csv, same numbers
                run.log({k: v for k, v in row.items() if v is not None})
            header, rows = trial_rows(trials, summary.objectives)
            run.log({"trials": wandb.Table(columns=header, data=_cells(rows))})
            header, rows = trial_rows(summary.front, summary.objectives)
            run.log({"pareto_front": wandb.Table(columns=header, data=_cells(rows))})
            plot = sweep_dir / "pareto.png"
            if plot.exists():
                run.log({"pareto_plot": wandb.Image(str(plot))})
            run.summary["hypervolume"] = summary.hypervolume
            run.summary["hypervolume_normalised"] = summary.hypervolume_normalised
            run.summary["reference_point"] = summary.reference_point
            run.summary["n_trials"] = len(trials)
        finally:
            run.finish()
    except Exception as err:  # W&B must never break or stall a finished sweep
        log.warning(f"W&B summary run skipped: {type(err).__name__}: {err}")


def _cells(rows: list[list]) -> list[list]:
    # W&B tables want one type per column: keep numbers, blank -> None, the rest as text
    return [
        [None if v == "" else v if isinstance(v, (int, float)) else str(v) for v in row]
        for row in rows
    ]
