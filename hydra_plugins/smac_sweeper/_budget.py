"""The fidelity of a sweep: its variable, its budget stages (Hyperband's, or as configured
with budget.stages), the value a trial receives for a budget (rounded for integer
variables), and which earlier trial a promoted one continues (budget.continuation)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ._trials import SUCCESS, Trial
from .config import BudgetConf

log = logging.getLogger(__name__)


def hyperband_stages(budget: BudgetConf) -> list[float]:
    """Hyperband's budgets, smallest first (min 5, max 20, eta 2 -> [5.0, 10.0, 20.0]):
    max * eta^-k for k = s_max ... 0, s_max = floor(log_eta(max / min)).

    The arithmetic of SMAC 2.4's SuccessiveHalving, which hands out these budgets
    (tests/test_private_apis.py checks that the two agree)."""
    eta, low, high = int(budget.eta), float(budget.min), float(budget.max)
    s_max = int(np.floor(np.log(high / low) / np.log(eta)))
    return [float(b) for b in (high * np.power(eta, -np.linspace(s_max, 0, s_max + 1)))]


@dataclass(frozen=True)
class Budget:
    variable: str | None  # the override key (None: every trial at full fidelity)
    stages: list[float]  # Hyperband's budgets, smallest first ([] without a variable)
    integer: bool  # trials receive budgets rounded to int
    continuation: bool = False  # promotions continue the lower budget's checkpoint

    def continues(self, trial: Trial, trials: Iterable[Trial]) -> Trial | None:
        """With continuation: the successful trial of the same configuration and seed at the
        highest lower budget (it left a checkpoint), or None."""
        if not self.continuation or trial.budget is None:
            return None
        earlier = [
            t
            for t in trials
            if t.status == SUCCESS
            and t.job_dir
            and t.seed == trial.seed
            and t.budget is not None
            and t.budget < trial.budget
            and t.config == trial.config
        ]
        return max(earlier, key=lambda t: (t.budget, t.trial_id), default=None)

    @property
    def top(self) -> float | None:
        """The full-fidelity budget (the front is taken there); None without a variable."""
        return self.stages[-1] if self.stages else None

    def value(self, budget: float | None) -> Any:
        """What a trial at `budget` receives as its variable's value."""
        if budget is None:
            return None
        return int(round(budget)) if self.integer else budget

    def describe(self) -> dict[str, Any] | None:
        """For optimization_results.yaml: the variable and its full-fidelity value."""
        if self.variable is None:
            return None
        return {"variable": self.variable, "max": self.value(self.top), "integer": self.integer}


def make_budget(conf: BudgetConf, app_config: DictConfig) -> Budget:
    """The sweep's budget; integer unless configured otherwise or the app's value is a float."""
    if conf.variable is None:
        return Budget(variable=None, stages=[], integer=False)
    stages = [float(b) for b in conf.stages] if conf.stages else hyperband_stages(conf)
    if conf.integer is not None:
        integer = conf.integer
    else:
        current = OmegaConf.select(app_config, conf.variable, throw_on_resolution_failure=False)
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            integer = all(float(x).is_integer() for x in stages)
        else:
            integer = isinstance(current, int)
    if integer and not all(abs(x - round(x)) < 1e-9 for x in stages):
        log.warning(
            f"Hyperband budgets {stages} are not integers; trials get them rounded to "
            f"{[int(round(x)) for x in stages]}. Pick min/max/eta with integer stages."
        )
    return Budget(conf.variable, stages, integer, continuation=conf.continuation)
