"""Evaluation outputs: CSV/JSON files, printed tables, mean ± std, and the W&B summary run."""

from __future__ import annotations

import csv
import json
import logging
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dsnn.wandb_online import offline_reason

log = logging.getLogger(__name__)


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value); NaN for none."""
    values = [float(v) for v in values]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Rows (dicts) as CSV, columns in order of first appearance."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain text table; floats with 4 significant digits."""

    def cell(value: Any) -> str:
        if isinstance(value, float) and value.is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"  # counts and bytes in full
        if isinstance(value, float):
            return f"{value:.4g}"
        return "" if value is None else str(value)

    table = [list(columns)] + [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def pm(mean: float, std: float, scale: float = 1.0, digits: int = 4) -> str:
    """'mean ± std' as text, both multiplied by `scale`."""
    if math.isnan(mean):
        return "n/a"
    return f"{mean * scale:.{digits}g} ± {std * scale:.{digits}g}"


def new_figure() -> tuple[Figure, Any]:
    """A figure on the Agg canvas (no pyplot: the process-wide backend is left alone)."""
    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def log_to_wandb(
    settings: Mapping[str, Any],
    name: str,
    output_dir: Path,
    tables: Mapping[str, Sequence[Mapping[str, Any]]] = (),
    images: Mapping[str, Path] = (),
    summary: Mapping[str, Any] = (),
) -> None:
    """One W&B run with the evaluation's tables, images and summary values.

    mode offline (default) needs nothing; online falls back to offline when the W&B host
    does not answer a 3 s probe or wandb.init fails within init_timeout; disabled skips
    W&B. A W&B error is logged and never fails the evaluation.
    """
    mode = settings.get("mode", "offline")
    if mode == "disabled":
        return
    try:
        import wandb

        run = _start(wandb, settings, name, output_dir, mode)
        try:
            for key, rows in dict(tables).items():
                columns = list(dict.fromkeys(k for row in rows for k in row))
                data = [[_cell(row.get(c)) for c in columns] for row in rows]
                run.log({key: wandb.Table(columns=columns, data=data)})
            for key, path in dict(images).items():
                run.log({key: wandb.Image(str(path))})
            for key, value in dict(summary).items():
                run.summary[key] = value
        finally:
            run.finish()
    except Exception as err:  # W&B must never break a finished evaluation
        log.warning(f"W&B summary run skipped: {type(err).__name__}: {err}")


def _start(wandb: Any, settings: Mapping[str, Any], name: str, output_dir: Path, mode: str):
    timeout = float(settings.get("init_timeout", 20))
    host = {"base_url": settings["base_url"]} if settings.get("base_url") else {}  # as probed

    def init(mode: str):
        return wandb.init(
            project=settings.get("project", "dsnn"),
            name=name,
            group="evaluate",
            job_type="evaluate",
            mode=mode,
            dir=str(output_dir),
            reinit="create_new",
            settings=wandb.Settings(
                init_timeout=timeout, login_timeout=timeout, console="off", silent=True, **host
            ),
        )

    if mode == "online" and (reason := offline_reason(settings)):
        log.warning(f"W&B cannot go online ({reason}); logging offline instead")
        return init("offline")
    try:
        return init(mode)
    except wandb.errors.Error as err:
        if mode != "online":
            raise
        log.warning(f"W&B cannot go online ({err}); logging offline instead")
        return init("offline")


def _cell(value: Any) -> Any:
    # W&B tables want one type per column: numbers stay, blank -> None, the rest as text
    if value is None or value == "":
        return None
    return value if isinstance(value, (int, float)) else str(value)
