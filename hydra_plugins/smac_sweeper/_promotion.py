"""Which configuration goes up a budget stage next, for the Optuna algorithms with a budget:
asynchronous promotion of the configurations that are on their stage's Pareto front
(intensifier=pareto_promotion, `ParetoPromotion`), or of the top 1/eta of their stage by
hypervolume contribution (intensifier=hv_promotion, `HypervolumePromotion`, below).

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

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._pareto import hypervolume, pareto_mask
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


class HypervolumePromotion:
    """ASHA's rule (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning")
    with the hypervolume contribution as the rank: a result at stage k < top is promotable
    once it is among the best floor(n_k / eta) of the n_k results told at its stage, ranked
    by its exclusive contribution to their hypervolume in the sweep's reference box (the
    area only it dominates: what the stage's hypervolume loses without it; a dominated
    result adds nothing and is never promoted).
    With one objective the rank is the value itself.

    Why: on the stage's front (ParetoPromotion) promotes every result that extends the
    front, and at the energy end every new smallest network does, whatever its error (seen
    in the study with a short run as the low fidelity: ~90 % of the 3-epoch results went on
    to 9 epochs). The contribution weighs a result by how much of the box it adds: a tiny
    network with a high error adds a thin sliver, one that lowers the error across a wide
    energy range adds much; and the top 1/eta bounds the share that goes on, so a stage
    screens. Each ask takes a promotable configuration not yet asked at the next stage
    before any new one: the highest stage first, the largest contribution first.

    With `search_cost` (a metric of the trials' results, e.g. energy/total_kwh) the rank is
    the contribution per unit of what the result cost to measure: a promotion repeats that
    run at a larger budget, so its price scales with it. Why: at 1 epoch a wide network's
    error is far below a small one's (it learns more per epoch), so by contribution alone
    the wide networks go on, at 2-3x the energy of a small one per promotion, for a part of
    the front that holds little of the box. Measured (benchmarks/README.md): no better
    over 15 seeds than the contribution alone, so the presets leave it unset.
    A result without a positive cost counts with its stage's median cost.

    With `promote_by="improvement"` the rank is the hypervolume a result would add to the
    top stage's front (what the sweep reports) if it were trained there, its cost scaled
    per objective by the median ratio top/stage among the configurations told at both (1
    before any; an analytic energy keeps ratio 1, a measured one grows with the budget);
    the contribution breaks ties, and a result ranks if either is positive. Its own top
    result takes a promoted configuration's gain to 0, so here the quota counts the
    promotions made from the stage (at most floor(n_k / eta)), not the places held. Why: the
    contribution favours the lowest error at 1 epoch, most often the widest network, whose
    box reaches to the reference energy; but once the top front holds a small network with
    a lower predicted error, the wide one would add nothing there. Against an empty top
    front it is the box the result alone dominates, which weighs error and energy alike.
    Measured (benchmarks/README.md): level with the contribution over 15 seeds (0.44x of
    random search's energy to its hypervolume against 0.37x; 14 seeds of 15 reached it
    against 12), so the presets keep the contribution.

    A function of the stages' results and of what was asked (no order, no state), so a
    resumed sweep promotes as the uninterrupted one would.
    """

    def __init__(
        self,
        stages: Sequence[float],
        eta: int,
        reference: Callable[[], list[float] | None],
        search_cost: str | None = None,
        promote_by: str = "contribution",
    ) -> None:
        assert stages and list(stages) == sorted(stages), stages
        assert eta >= 2, eta
        assert promote_by in ("contribution", "improvement"), promote_by
        self.stages = [float(s) for s in stages]
        self.eta = int(eta)
        self.reference = reference  # the sweep's reference point, once it is known
        self.search_cost = search_cost
        self.promote_by = promote_by
        # (configuration, cost, what measuring it cost: None without search_cost)
        self.results: dict[float, list[tuple[dict[str, Any], list[float], float | None]]] = {
            s: [] for s in self.stages
        }
        self.asked: set[tuple[str, float]] = set()

    def record_ask(self, config: dict[str, Any], budget: float) -> None:
        self.asked.add((config_key(config), float(budget)))

    def record_tell(self, trial: Trial) -> bool:
        """Enter a told trial's result (crashes are not promoted). -> False: promotion is
        decided at the next ask, when the stage's other results are known."""
        if trial.status == SUCCESS and trial.cost is not None and trial.budget is not None:
            spent = trial.metrics.get(self.search_cost) if self.search_cost else None
            self.results[float(trial.budget)].append((dict(trial.config), list(trial.cost), spent))
        return False

    def next(self) -> tuple[dict[str, Any], float] | None:
        """(configuration, stage) of the next promotion, or None."""
        reference = self.reference()
        for index in range(len(self.stages) - 2, -1, -1):  # the highest stage first
            stage, above = self.stages[index], self.stages[index + 1]
            results = self.results[stage]
            quota = len(results) // self.eta
            if quota == 0:
                continue
            costs = np.array([cost for _, cost, _ in results], dtype=float)
            scores = stage_scores(costs, reference)
            gains = np.zeros(len(results))
            if self.promote_by == "improvement" and reference is not None and costs.shape[1] > 1:
                top = [cost for _, cost, _ in self.results[self.stages[-1]]]
                gains = improvements(costs * self.scale(stage), top, reference)
            if self.search_cost:
                spent = measuring_costs([spent for _, _, spent in results])
                scores, gains = scores / spent, gains / spent
            order = np.lexsort((-scores, -gains))  # gains first, stable
            keys = [config_key(config) for config, _, _ in results]
            if self.promote_by == "improvement":
                # a promoted configuration's own top result takes its gain to 0: the quota
                # counts the promotions made, not the places held
                made = len({k for k in keys if (k, above) in self.asked})
                waiting = [i for i in order if (keys[i], above) not in self.asked]
                picks = waiting[: max(quota - made, 0)]
            else:
                picks = [i for i in order[:quota] if (keys[i], above) not in self.asked]
            for i in picks:
                if scores[i] > 0 or gains[i] > 0:
                    return dict(results[i][0]), above
        return None

    def scale(self, stage: float) -> np.ndarray:
        """Per objective, the median ratio (cost at the top stage) / (cost at `stage`) over
        the configurations told at both; 1.0 where no pair has a positive cost at `stage`."""
        here = {config_key(config): cost for config, cost, _ in self.results[stage]}
        pairs = [
            (top, here[key])
            for config, top, _ in self.results[self.stages[-1]]
            if (key := config_key(config)) in here
        ]
        dims = len(self.results[stage][0][1])
        ratios = np.full((len(pairs), dims), np.nan)
        for row, (top, low) in enumerate(pairs):
            for j in range(dims):
                if low[j] > 0:
                    ratios[row, j] = top[j] / low[j]
        known = np.isfinite(ratios).any(axis=0)
        medians = np.ones(dims)
        for j in np.flatnonzero(known):
            medians[j] = float(np.nanmedian(ratios[:, j]))
        return medians


def measuring_costs(spent: Sequence[float | None]) -> np.ndarray:
    """What each result cost; a missing or non-positive one counts as the median of the
    positive ones (1.0 when there are none)."""
    values = np.array([np.nan if v is None else float(v) for v in spent], dtype=float)
    ok = np.isfinite(values) & (values > 0)
    fill = float(np.median(values[ok])) if ok.any() else 1.0
    return np.where(ok, values, fill)


def stage_scores(costs: np.ndarray, reference: Sequence[float] | None) -> np.ndarray:
    """A stage's results ranked for promotion (higher is better): with several objectives
    each one's exclusive hypervolume contribution in the box below `reference` (None: 0
    for all); with one, the negative value shifted to be positive."""
    n, dims = costs.shape
    if dims == 1:
        return costs[:, 0].max() - costs[:, 0] + 1.0
    if reference is None:
        return np.zeros(n)
    ref = np.asarray(reference, dtype=float)
    whole = hypervolume(costs, ref)
    return np.array([whole - hypervolume(np.delete(costs, i, axis=0), ref) for i in range(n)])


def improvements(
    points: np.ndarray, front: Sequence[Sequence[float]], reference: Sequence[float]
) -> np.ndarray:
    """The hypervolume each of `points` would add, alone, to `front`'s, in the box below
    `reference` (0 for a point that `front` dominates or that lies outside the box)."""
    ref = np.asarray(reference, dtype=float)
    base_points = np.asarray(front, dtype=float).reshape(-1, ref.size)
    base = hypervolume(base_points, ref)
    return np.array([hypervolume(np.vstack([base_points, p]), ref) - base for p in points])
