"""pareto.png: every successful trial coloured by budget, the front at the highest budget
highlighted. Uses the Agg canvas directly (no pyplot), so the process-wide matplotlib
backend of an in-process task is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._pareto import FrontSummary
from ._trials import SUCCESS, Trial


def plot_trials(path: Path, trials: Sequence[Trial], summary: FrontSummary) -> None:
    objectives = summary.objectives
    ok = [t for t in trials if t.status == SUCCESS]
    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    budgets = sorted({t.budget_value for t in ok}, key=lambda b: (b is None, b))
    cmap = matplotlib.colormaps["viridis"]
    one = len(objectives) == 1
    for i, budget in enumerate(budgets):
        group = [t for t in ok if t.budget_value == budget]
        xs = [t.trial_id for t in group] if one else [t.objectives[objectives[0]] for t in group]
        ys = [t.objectives[objectives[0 if one else 1]] for t in group]
        colour = cmap(i / max(len(budgets) - 1, 1))
        label = "trials" if budget is None else f"budget {budget}"
        ax.scatter(xs, ys, s=18, color=colour, alpha=0.75, label=label)
    front = summary.front
    if front:
        if one:
            fx = [t.trial_id for t in front]
            fy = [t.objectives[objectives[0]] for t in front]
        else:
            fx = [t.objectives[objectives[0]] for t in front]
            fy = [t.objectives[objectives[1]] for t in front]
            ax.step(fx, fy, where="post", color="crimson", lw=1.2)
        label = "best" if one else "Pareto front"
        ax.scatter(fx, fy, s=60, facecolors="none", edgecolors="crimson", lw=1.5, label=label)
    title = f"{len(ok)} successful of {len(trials)} trials"
    if summary.hypervolume is not None:
        title += f"; hypervolume {summary.hypervolume:.4g}"
    if len(objectives) > 2:
        title += f" (showing {objectives[0]} vs {objectives[1]})"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("trial id" if one else objectives[0])
    ax.set_ylabel(objectives[0] if one else objectives[1])
    if summary.reference_point is not None and not one:
        rx, ry = summary.reference_point[0], summary.reference_point[1]
        ax.scatter([rx], [ry], marker="x", color="black", label=f"reference ({rx:.3g}, {ry:.3g})")
    if ok:
        ax.legend(fontsize=8, loc="upper right")  # a fixed place: "best" is slow
    ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.11, top=0.92)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, path)
