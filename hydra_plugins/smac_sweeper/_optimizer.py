"""The optimiser adapter the sweep loop talks to: ask, tell, register a replayed trial, and
state for resuming; nothing else. SMAC implements it (`_smac.py`, the sweeper's algorithms
`smac` and `random`), and Optuna (`_optuna.py`, `optuna_gp` and `optuna_tpe`);
`_adapters.py` picks the adapter of an algorithm, so the loop imports no optimiser library.

An adapter is built from a `Problem` (the search space, the objectives, the seed, the
budgets) and the sweeper's settings. Trials carry their configuration, budget and seed,
so the loop and later adapters can relate trials of one configuration across budgets.

Resuming: the loop calls `register` for every trial of the journal in the order they were
asked, then `tell` once with the told ones in the order they were told, then `restore`
with the last journaled `state()`. Trials registered but not told are re-launched and
told like new ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._space import default_config
from ._trials import Trial


@dataclass(frozen=True)
class Suggestion:
    """A configuration to run: active hyperparameters (plain Python values), budget, seed."""

    config: dict[str, Any]
    budget: float | None  # None: full fidelity
    seed: int


@dataclass(frozen=True)
class Problem:
    """What every adapter is built from."""

    space: Any  # ConfigSpace.ConfigurationSpace: fixed keys and the budget variable removed
    objectives: list[str]  # minimised; Trial.cost lists them in this order
    seed: int
    budgets: list[float]  # Hyperband's stages, smallest first ([]: full fidelity only)
    n_trials: int  # of the whole sweep (the first session's, across resumes)
    sweep_dir: Path  # the sweep's folder; an optimiser keeps files of its own in a subfolder
    name: str = "smac"  # the sweep's name (SMAC's run folder smac3_output/<name>/<seed>)
    # configurations -> their known objectives (hydra.sweeper.known_objectives, _known.py)
    known: Any = None
    # an earlier sweep's configurations to ask right after the default (they count towards
    # n_initial_configs) and its results (_warm_start.WarmStart); None: no warm start
    warm_start: Any = None

    @property
    def initial_configs(self) -> list[dict[str, Any]]:
        return [] if self.warm_start is None else list(self.warm_start.configs)

    def first_configs(self, use_default: bool) -> list[dict[str, Any]]:
        """Asked before anything is sampled, in order: the space's default (with
        use_default_config), then the warm start's configurations."""
        return ([default_config(self.space)] if use_default else []) + self.initial_configs

    @property
    def related(self) -> list[dict[str, Any]]:
        """The earlier sweep's results, {config, cost} (gp_ehvi models them)."""
        return [] if self.warm_start is None else list(self.warm_start.observations)


class Optimizer(ABC):
    """An optimiser behind ask/tell, e.g. a SMAC facade or an Optuna study (study.ask() /
    study.tell(trial, values=trial.cost), a failed state for crashed trials)."""

    @abstractmethod
    def ask(self, trial_id: int) -> Suggestion | None:
        """The configuration for new trial `trial_id`; None when there is nothing left."""

    @abstractmethod
    def tell(self, trials: Sequence[Trial]) -> None:
        """Results of trials asked or registered before (status, cost, duration, told_at),
        in the order they were told."""

    @abstractmethod
    def register(self, trial: Trial) -> None:
        """A trial asked in an earlier session, replayed from the journal."""

    @abstractmethod
    def state(self) -> Any:
        """JSON-serialisable state to journal after each batch of asks (None: nothing)."""

    @abstractmethod
    def restore(self, state: Any) -> None:
        """The last journaled state (None: none), after the replay's register and tell."""
