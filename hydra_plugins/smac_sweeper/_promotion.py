"""Which configuration goes up a budget stage next, for the Optuna algorithms with a budget
(intensifier=pareto_promotion): asynchronous promotion of the configurations that are on
their stage's Pareto front.

Every new configuration starts at the lowest stage. When a trial at stage k < top succeeds,
its cost is compared with the costs told at stage k before it (all configurations, also
those promoted since): if none of them dominates it, the configuration is queued for stage
k + 1 (with budget.continuation, it trains only the missing epochs). The next ask takes a
queued promotion before any new configuration, from the highest stage first, in the order
they were told: a promising configuration reaches full fidelity, where the front is taken,
as early as it can.

Why the front of the stage, not its top 1/eta (ASHA's rule) or SMAC's non-dominated
sorting over a bracket: both promote a fixed share, so a sweep of few trials promotes the
cheapest networks at the energy end of the front, whose error is high at every budget (seen
in study v2: smac_mfmo_epochs). Here the share falls by itself as the stage fills: of n
results in random order, about ln(n)/n are non-dominated in two objectives, so the first
few of a stage all go on and later ones only when they beat every earlier result of their
stage in some objective. With one objective this promotes a configuration when it is the
best so far at its stage.

A crashed trial is not promoted. The queue is a function of the trials and the order they
were told, so a resumed sweep rebuilds it from the journal; a promotion counts as done once
a trial of its configuration was asked at the next stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._pareto import pareto_mask
from ._trials import SUCCESS, Trial, config_key


class ParetoPromotion:
    """The stages' results, the promotion queue and what was asked at which stage."""

    def __init__(self, stages: Sequence[float]) -> None:
        assert stages and list(stages) == sorted(stages), stages
        self.stages = [float(s) for s in stages]
        self.results: dict[float, list[list[float]]] = {s: [] for s in self.stages}
        self.queue: list[Trial] = []  # promoted at their tell, in told order
        self.asked: set[tuple[str, float]] = set()  # (configuration, stage) asked

    def record_ask(self, config: dict[str, Any], budget: float) -> None:
        self.asked.add((config_key(config), float(budget)))

    def record_tell(self, trial: Trial) -> bool:
        """Enter a told trial's result; True when its configuration is promoted."""
        if trial.status != SUCCESS or trial.cost is None or trial.budget is None:
            return False
        stage = float(trial.budget)
        peers = self.results[stage]
        peers.append(list(trial.cost))
        # on the front of its stage so far: no earlier result dominates it
        promoted = stage < self.stages[-1] and bool(pareto_mask(np.array(peers))[-1])
        if promoted:
            self.queue.append(trial)
        return promoted

    def next(self) -> tuple[dict[str, Any], float] | None:
        """(configuration, stage) of the next promotion, or None: from the highest stage
        first, in told order; promotions already asked are dropped."""
        self.queue = [
            t for t in self.queue if (config_key(t.config), self.above(t)) not in self.asked
        ]
        if not self.queue:
            return None
        highest = max(float(t.budget) for t in self.queue)
        trial = next(t for t in self.queue if float(t.budget) == highest)
        return dict(trial.config), self.above(trial)

    def above(self, trial: Trial) -> float:
        """The stage after the trial's."""
        return self.stages[self.stages.index(float(trial.budget)) + 1]
