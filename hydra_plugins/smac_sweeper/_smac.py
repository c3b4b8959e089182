"""The SMAC3 (2.4) adapter of the sweep loop (see _optimizer.py): SMAC's facade, and the
translation between the loop's trials and SMAC's TrialInfo / TrialValue.

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
import os
from collections.abc import Sequence
from typing import Any

from ConfigSpace import Configuration
from smac import (
    HyperbandFacade,
    HyperparameterOptimizationFacade,
    MultiFidelityFacade,
    RandomFacade,
    Scenario,
)
from smac.intensifier import Hyperband, SuccessiveHalving
from smac.intensifier.hyperband_utils import determine_HB
from smac.multi_objective.aggregation_strategy import MeanAggregationStrategy
from smac.multi_objective.parego import ParEGO
from smac.runhistory import StatusType
from smac.runhistory.dataclasses import TrialInfo, TrialValue

from ._optimizer import Optimizer, Problem, Suggestion
from ._space import to_python
from ._trials import SUCCESS, Trial
from .config import SMACSweeperConf

log = logging.getLogger(__name__)

_MAX_INCUMBENTS = 100_000


class SMACOptimizer(Optimizer):
    """SMAC's facades behind the loop's ask / tell / register / state / restore."""

    def __init__(self, problem: Problem, settings: SMACSweeperConf) -> None:
        if os.environ.get("PYTHONHASHSEED") in (None, "random"):
            log.warning(
                "PYTHONHASHSEED is not set: SMAC's suggestions after its initial design depend "
                "on Python's string hashing, so this sweep is not bit-reproducible from its seed. "
                "Run as `PYTHONHASHSEED=0 python ... -m` for that."
            )
        self.space = problem.space
        self.smac = make_smac(problem, settings)
        self.infos: dict[int, TrialInfo] = {}  # trial id -> what SMAC asked or was given

    def ask(self, trial_id: int) -> Suggestion | None:
        try:
            info = self.smac.ask()
        except StopIteration:
            return None
        self.infos[trial_id] = info
        return Suggestion(
            config={k: to_python(v) for k, v in info.config.items()},
            budget=None if info.budget is None else float(info.budget),
            seed=int(info.seed),
        )

    def register(self, trial: Trial) -> None:
        # a configuration rebuilt from the journal: SMAC keys configurations by repr, so this
        # one object serves the running entry and the tell
        config = Configuration(self.space, values=trial.config)
        info = TrialInfo(config=config, seed=trial.seed, budget=trial.budget)
        self.infos[trial.trial_id] = info
        self.smac.runhistory.add_running_trial(info)

    def tell(self, trials: Sequence[Trial]) -> None:
        if not trials:
            return
        for trial in trials:
            self.smac.tell(self.infos[trial.trial_id], trial_value(trial), save=False)
        self.smac.optimizer.save()  # SMAC's own folder (for DeepCAVE), once per call

    def state(self) -> Any:
        return self.smac.intensifier.get_state()  # Hyperband's brackets

    def restore(self, state: Any) -> None:
        if state is not None:
            self.smac.intensifier.set_state(state)
        self.smac.optimizer.save()


def trial_value(trial: Trial) -> TrialValue:
    """A told trial as SMAC's TrialValue (a crashed one with its crash cost)."""
    status = StatusType.SUCCESS if trial.status == SUCCESS else StatusType.CRASHED
    assert trial.cost is not None and trial.told_at is not None, "tell a told trial"
    seconds = trial.duration or 0.0
    error = (trial.error or "").strip().splitlines()
    return TrialValue(
        cost=trial.cost if len(trial.cost) > 1 else trial.cost[0],
        time=seconds,
        status=status,
        starttime=trial.told_at - seconds,
        endtime=trial.told_at,
        additional_info={
            "trial_id": trial.trial_id,
            "job_dir": trial.job_dir,
            "error": error[-1] if error else None,
        },
    )


def make_smac(problem: Problem, settings: SMACSweeperConf) -> Any:
    """An ask/tell SMAC facade; overwrite=True: the journal, not SMAC's folder, is the state."""
    logging.getLogger("smac").setLevel(settings.smac_log_level)
    objectives = problem.objectives
    min_budget = problem.budgets[0] if problem.budgets else None
    max_budget = problem.budgets[-1] if problem.budgets else None
    crash = [float(settings.crash_cost.get(k, 1.0)) for k in objectives]
    scenario = Scenario(
        problem.space,
        name=problem.name,  # DeepCAVE lists runs by it: smac3_output/<sweep name>/<seed>
        output_directory=problem.sweep_dir / "smac3_output",
        deterministic=True,  # one seed per configuration
        objectives=objectives if len(objectives) > 1 else objectives[0],
        crash_cost=crash if len(crash) > 1 else crash[0],
        n_trials=problem.n_trials,
        min_budget=min_budget,
        max_budget=max_budget,
        seed=problem.seed,
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
            seed=problem.seed,
        )
    else:
        facade_cls = HyperparameterOptimizationFacade if model_based else RandomFacade
        intensifier = facade_cls.get_intensifier(scenario, max_incumbents=_MAX_INCUMBENTS)
    multi_objective = None
    if len(objectives) > 1:
        multi_objective = (
            ParEGO(scenario, seed=problem.seed)
            if settings.multi_objective == "parego"
            else MeanAggregationStrategy(scenario)
        )
    initial = {}
    warm = [Configuration(problem.space, values=c) for c in problem.initial_configs]
    if model_based:
        initial["initial_design"] = initial_design(facade_cls, scenario, settings, problem, warm)
    elif warm:  # random search: the default, the warm start's, then random ones
        initial["initial_design"] = facade_cls.get_initial_design(
            scenario, additional_configs=list(warm)
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


def initial_design(
    facade_cls: Any,
    scenario: Scenario,
    settings: SMACSweeperConf,
    problem: Problem,
    warm: list[Configuration],
) -> Any:
    """SMAC's initial design for the model-based facades, with two changes.

    Large enough to fill Hyperband's first bracket with distinct configurations: past the
    initial design, SMAC's selector samples the search space while its model has no data,
    and that sampler is seeded like the initial design's, so it replays the design's first
    configuration (a duplicate training in the bracket). Sizing the design keeps SMAC's
    Hyperband bookkeeping untouched; rejecting a duplicate ask would not.

    The default configuration first (SMAC appends it): the first trial is the default,
    whose values fix the hypervolume's reference point (_reference.py). Then a warm start's
    configurations (SMAC's additional configurations, _warm_start.py), which count towards
    n_initial_configs: the design's own fill the rest.
    """
    kwargs: dict[str, Any] = {"additional_configs": list(warm)}
    if settings.n_initial_configs is not None:
        # max_ratio=1: SMAC would still cap an explicit n_configs at 25 % of n_trials.
        n_configs = max(int(settings.n_initial_configs) - len(warm), 0)
        kwargs |= {"n_configs": n_configs, "max_ratio": 1.0}
    design = facade_cls.get_initial_design(scenario, **kwargs)
    default = int(settings.use_default_config)
    if problem.budgets:
        first = first_bracket_size(problem.budgets[0], problem.budgets[-1], settings.budget.eta)
        need = min(first - default, problem.n_trials - default) - len(warm)
        if design.meta["n_configs"] < need:
            log.info(
                f"Initial design: {need} configurations (+ the default and the warm start's), "
                f"enough for Hyperband's first bracket of {first}, instead of "
                f"{design.meta['n_configs']}"
            )
            design = facade_cls.get_initial_design(
                scenario, n_configs=need, max_ratio=1.0, additional_configs=list(warm)
            )
    select = design.select_configurations
    start = scenario.configspace.get_default_configuration() if default else None

    def default_first() -> list[Configuration]:
        configs = select()
        extra = [c for c in configs if c in design._additional_configs]
        extra.sort(key=lambda c: c != start)  # the default, then the warm start's in order
        return extra + [c for c in configs if c not in extra]

    design.select_configurations = default_first
    return design


def first_bracket_size(min_budget: float, max_budget: float, eta: int) -> int:
    """Configurations in the first stage of Hyperband's first (largest) bracket."""
    info = determine_HB(min_budget=min_budget, max_budget=max_budget, eta=int(eta))
    return int(info["n_configs_in_stage"][0][0])
