"""The sweep's W&B summary run: trials table, Pareto front, hypervolume after each batch
(the rows of hypervolume.csv), in the trials' project and group.

Written once when the sweep ends (trials may open their own W&B runs in this process, so
none is held open while they run). Offline by default; any W&B failure is logged and
ignored, and `init_timeout` bounds an online start without network.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._outputs import config_ids, trial_rows
from ._pareto import FrontSummary
from ._trials import Trial

log = logging.getLogger(__name__)


def summary_project(settings: Mapping[str, Any], app_config: Any) -> tuple[str, str | None]:
    """(project, entity) of the summary run: the sweeper's settings, else the trials' own
    (the app's logger.wandb.project / .entity), else project "dsnn-hpo"."""
    from omegaconf import OmegaConf

    def app(key: str) -> Any:
        return OmegaConf.select(app_config, f"logger.wandb.{key}", default=None)

    project = settings.get("project") or app("project") or "dsnn-hpo"
    return str(project), settings.get("entity") or app("entity")


def log_summary(
    settings: Mapping[str, Any],
    app_config: Any,
    sweep_dir: Path,
    plan: Any,
    trials: Sequence[Trial],
    summary: FrontSummary,
    sweeper_options: Mapping[str, Any],
) -> None:
    """The summary run, in the trials' project and group (job_type "sweep-summary"); its
    tables name each trial's W&B run (column wandb_run)."""
    mode = settings.get("mode", "offline")
    if mode == "disabled":
        return
    sweep_name = plan.sweep_name
    project, entity = summary_project(settings, app_config)
    try:
        import wandb

        run = wandb.init(
            project=project,
            entity=entity,
            group=sweep_name,
            name=f"{sweep_name}-summary",
            job_type="sweep-summary",
            mode=mode,
            dir=str(sweep_dir),
            config=dict(sweeper_options),
            tags=[f"sweep={sweep_name}", f"sweeper={plan.preset or plan.settings.algorithm}"],
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
            ids_of_all = config_ids(trials)
            for key, group in (("trials", trials), ("pareto_front", summary.front)):
                header, rows = trial_rows(
                    group, summary.objectives, by_id=key == "trials", sweep_dir=sweep_dir,
                    budget_variable=plan.budget.variable, ids=ids_of_all,
                )  # fmt: skip
                ids = [row[0] for row in rows]
                names = {t.trial_id: plan.run_name(t) for t in group}
                table = wandb.Table(
                    columns=[*header, "wandb_run"],
                    data=_cells([[*r, names[i]] for r, i in zip(rows, ids, strict=True)]),
                )
                run.log({key: table})
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
