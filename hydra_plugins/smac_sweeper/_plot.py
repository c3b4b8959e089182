"""pareto.png: the trials of the first two objectives, read at a glance.

Trials at the top budget (where the front is taken) are large and dark, lower budgets small
and pale; one configuration's trials across budgets are joined by a thin line; the front is
a step line with each point's trial id; the axes carry units and cover the trials only (a
reference point off them is named in the legend, not drawn). The legend sits beside the
axes, so it hides no point. Uses the Agg canvas directly (no pyplot), so the process-wide
matplotlib backend of an in-process task is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._pareto import FrontSummary
from ._trials import SUCCESS, Trial

FRONT = "crimson"


def axis_label(key: str) -> str:
    """An objective key with its unit (val/error -> 'val/error (fraction)')."""
    if key.endswith("/error") or key.endswith("/acc"):
        return f"{key} (fraction)"
    if key.startswith("emissions/"):
        return f"{key} (g CO$_2$eq)"
    if key.endswith("_uj_per_image"):
        return f"{key} (µJ/image)"
    if key.endswith("_kwh"):
        return f"{key} (kWh)"
    if key.endswith("_s"):
        return f"{key} (s)"
    return key


def plot_trials(
    path: Path,
    trials: Sequence[Trial],
    summary: FrontSummary,
    *,
    ids: Mapping[int, int] | None = None,
    variable: str | None = None,
) -> None:
    objectives = summary.objectives
    one = len(objectives) == 1
    ok = [t for t in trials if t.status == SUCCESS]
    fig = Figure(figsize=(9.0, 5.0), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    def xy(group: Sequence[Trial]) -> tuple[list[float], list[float]]:
        if one:
            return [t.trial_id for t in group], [t.objectives[objectives[0]] for t in group]
        return [t.objectives[objectives[0]] for t in group], [
            t.objectives[objectives[1]] for t in group
        ]

    name = variable or "budget"
    top = summary.budget
    if ids and not one:  # one configuration across budgets
        by_config: dict[int, list[Trial]] = {}
        for t in ok:
            by_config.setdefault(ids.get(t.trial_id, t.trial_id), []).append(t)
        label = "same configuration, lower -> higher budget"
        for group in by_config.values():
            if len({t.budget for t in group}) > 1:
                xs, ys = xy(sorted(group, key=lambda t: t.budget or 0.0))
                ax.plot(xs, ys, color="grey", lw=0.7, alpha=0.6, zorder=1, label=label)
                label = "_"
    budgets = sorted({t.budget_value for t in ok}, key=lambda b: (b is None, b))
    pale = matplotlib.colormaps["Blues"]
    for i, value in enumerate(budgets):
        group = [t for t in ok if t.budget_value == value]
        xs, ys = xy(group)
        if group[0].budget == top or value is None:
            label = "trials" if value is None else f"{name}={value} (top budget)"
            ax.scatter(xs, ys, s=46, color="navy", edgecolors="white", lw=0.5, zorder=3,
                       label=label)  # fmt: skip
        else:
            colour = pale(0.3 + 0.35 * i / max(len(budgets) - 1, 1))
            ax.scatter(xs, ys, s=16, color=colour, alpha=0.9, zorder=2, label=f"{name}={value}")
    front = summary.front
    if front:
        fx, fy = xy(front)
        where = "" if top is None else f" at {name}={front[0].budget_value}"
        if not one:
            ax.step(fx, fy, where="post", color=FRONT, lw=1.4, zorder=4)
        label = f"best{where}" if one else f"front{where}"
        ax.scatter(fx, fy, s=110, facecolors="none", edgecolors=FRONT, lw=1.6, zorder=5,
                   label=label)  # fmt: skip
        for t, x, y in zip(front, fx, fy, strict=True):
            ax.annotate(f"t{t.trial_id}", (x, y), xytext=(5, 4), textcoords="offset points",
                        fontsize=8, color=FRONT, zorder=6)  # fmt: skip
    ax.margins(0.08)
    ax.autoscale_view()
    if summary.reference_point is not None and not one and ok:
        rx, ry = summary.reference_point[:2]
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        inside = x0 <= rx <= x1 and y0 <= ry <= y1
        label = f"reference ({rx:.3g}, {ry:.3g})" + ("" if inside else ", off the axes")
        ax.scatter([rx], [ry], marker="x", color="black", label=label, zorder=5)
        ax.set_xlim(x0, x1)  # the reference does not stretch the axes
        ax.set_ylim(y0, y1)
    title = f"{len(ok)} successful of {len(trials)} trials"
    if summary.hypervolume is not None:
        title += f"\nhypervolume {summary.hypervolume:.4g}"
        if summary.hypervolume_normalised is not None:
            title += f" ({100 * summary.hypervolume_normalised:.1f} % of the reference box)"
    if len(objectives) > 2:
        title += f" (showing {objectives[0]} vs {objectives[1]})"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("trial id" if one else axis_label(objectives[0]))
    ax.set_ylabel(axis_label(objectives[0 if one else 1]))
    if ok:
        fig.legend(loc="outside right upper", fontsize=8)
    ax.grid(alpha=0.3)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, path)
