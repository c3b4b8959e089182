"""Building the SMAC3 (2.4) optimiser for a sweep.

With a budget: Hyperband (or successive halving) on the budget, with SMAC's random forest
(MultiFidelityFacade) or random configurations (HyperbandFacade). Without: full fidelity,
HyperparameterOptimizationFacade or RandomFacade. Several objectives are scalarised by
ParEGO (a new random weighting at every surrogate refit, Knowles 2006), as in the paper's
section 3; the facades' default would be the mean.

Two settings work around SMAC 2.4 limits with multi-fidelity + multi-objective
(SMAC3 issue 1050): `incumbent_selection="highest_budget"` (the default compares
incumbents across budgets and trips an assertion), and a large `max_incumbents` (cutting
the incumbent list calls the crowding distance with mismatched lists). The sweeper's own
Pareto front does not use SMAC's incumbents.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from smac import (
    HyperbandFacade,
    HyperparameterOptimizationFacade,
    MultiFidelityFacade,
    RandomFacade,
    Scenario,
)
from smac.intensifier import Hyperband, SuccessiveHalving
from smac.multi_objective.aggregation_strategy import MeanAggregationStrategy
from smac.multi_objective.parego import ParEGO

_MAX_INCUMBENTS = 100_000


def budget_stages(budget: Any) -> list[float]:
    """Hyperband's budgets, smallest first (min 5, max 20, eta 2 -> [5.0, 10.0, 20.0])."""
    eta, low, high = int(budget.eta), float(budget.min), float(budget.max)
    s_max = SuccessiveHalving._get_max_iterations(eta, high, low)
    stages, _ = SuccessiveHalving._compute_configs_and_budgets_for_stages(eta, high, s_max)
    return [float(b) for b in stages]


def make_smac(
    space: Any,
    settings: Any,
    *,
    n_trials: int,
    output_directory: Path,
    min_budget: float | None,
    max_budget: float | None,
) -> Any:
    """An ask/tell SMAC facade; overwrite=True: the journal, not SMAC's folder, is the state."""
    logging.getLogger("smac").setLevel(settings.smac_log_level)
    objectives = list(settings.objectives)
    crash = [float(settings.crash_cost.get(k, 1.0)) for k in objectives]
    scenario = Scenario(
        space,
        name="smac",
        output_directory=output_directory,
        deterministic=True,  # one seed per configuration
        objectives=objectives if len(objectives) > 1 else objectives[0],
        crash_cost=crash if len(crash) > 1 else crash[0],
        n_trials=n_trials,
        min_budget=min_budget,
        max_budget=max_budget,
        seed=settings.seed,
        use_default_config=settings.use_default_config,
    )
    model_based = settings.algorithm == "smac"
    if max_budget is not None:
        facade_cls = MultiFidelityFacade if model_based else HyperbandFacade
        intensifier_cls = Hyperband if settings.intensifier == "hyperband" else SuccessiveHalving
        intensifier = intensifier_cls(
            scenario,
            eta=int(settings.budget.eta),
            incumbent_selection="highest_budget",
            max_incumbents=_MAX_INCUMBENTS,
            seed=settings.seed,
        )
    else:
        facade_cls = HyperparameterOptimizationFacade if model_based else RandomFacade
        intensifier = facade_cls.get_intensifier(scenario, max_incumbents=_MAX_INCUMBENTS)
    multi_objective = None
    if len(objectives) > 1:
        multi_objective = (
            ParEGO(scenario, seed=settings.seed)
            if settings.multi_objective == "parego"
            else MeanAggregationStrategy(scenario)
        )
    initial = {}
    if model_based and settings.n_initial_configs is not None:
        # max_ratio=1: SMAC would still cap an explicit n_configs at 25 % of n_trials.
        initial["initial_design"] = facade_cls.get_initial_design(
            scenario, n_configs=int(settings.n_initial_configs), max_ratio=1.0
        )
    return facade_cls(
        scenario,
        target_function=None,
        intensifier=intensifier,
        **initial,
        multi_objective_algorithm=multi_objective,
        logging_level=False,  # leave Hydra's logging alone
        overwrite=True,
    )
