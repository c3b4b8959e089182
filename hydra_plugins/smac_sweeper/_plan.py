"""What a sweep is made of before its first trial: the command line's overrides, the search
space without what they fix, the budget, the settings a resume must match, and the override
strings of a trial; checked once against the app's config (the preflight)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf

from ._budget import Budget, make_budget
from ._overrides import fixed_overrides, is_hydra_override, trial_overrides
from ._settings import bad, known_functions
from ._space import build_space, default_config
from ._trials import Trial
from .config import SMACSweeperConf

log = logging.getLogger(__name__)


@dataclass
class SweepPlan:
    settings: SMACSweeperConf
    arguments: list[str]  # the command line's overrides, passed to every trial
    fixed: dict[str, Any]  # key -> value of those overrides
    space: Any  # ConfigSpace.ConfigurationSpace
    budget: Budget
    sweep_name: str
    fingerprint: dict[str, Any]  # the settings a resume must match
    preset: str | None = None  # the hydra/sweeper choice (smac_mfmo ...), for W&B tags

    def run_name(self, trial: Trial) -> str:
        """The trial's W&B run name: trial id and budget (t3-b10)."""
        budget = "" if trial.budget_value is None else f"-b{trial.budget_value}"
        return f"t{trial.trial_id}{budget}"

    def overrides(
        self, trial: Trial, config_id: int | None = None, resume_dir: str | None = None
    ) -> list[str]:
        """`resume_dir`: the job dir of the trial this one continues (budget.continuation)."""
        keys = self.settings.override_keys
        variable = self.budget.variable
        extra: dict[str, Any] = {}
        if variable is not None:
            extra[variable] = trial.budget_value
            if trial.budget is not None and trial.budget < self.budget.top:
                extra.update(self.settings.budget.low_fidelity)
        if self.budget.continuation:  # one schedule over the top budget for every trial
            extra[keys.schedule_epochs] = self.budget.value(self.budget.top)
            if resume_dir is not None:
                extra[keys.resume_from] = resume_dir
        if keys.seed:
            extra[keys.seed] = trial.seed
        if keys.run_group:
            extra[keys.run_group] = self.sweep_name
        if keys.run_name:
            extra[keys.run_name] = self.run_name(trial)
        if keys.job_type:
            extra[keys.job_type] = "trial"
        if keys.trial_info:
            extra[keys.trial_info] = {
                "trial_id": trial.trial_id,
                "config_id": trial.trial_id if config_id is None else config_id,
                "budget": trial.budget_value,
                "budget_variable": variable,
                "sweep": self.sweep_name,
            }
        if keys.tags:
            tags = [f"sweep={self.sweep_name}", f"sweeper={self.preset or self.settings.algorithm}"]
            if variable is not None:
                tags.append(f"{variable}={trial.budget_value}")
            extra[keys.tags] = tags
        # a key fixed on the command line (e.g. seed=3) stays as given
        return trial_overrides(self.arguments, trial.config, extra, fixed=self.fixed)

    def rerun_overrides(self, trial: Trial) -> list[str]:
        """The overrides that re-run `trial` alone (`python train.py <these>`): the command
        line's, its hyperparameters, the budget variable at full fidelity and its seed."""
        extra: dict[str, Any] = {}
        if self.budget.variable is not None:
            extra[self.budget.variable] = self.budget.value(self.budget.top)
        if self.settings.override_keys.seed:
            extra[self.settings.override_keys.seed] = trial.seed
        return trial_overrides(self.arguments, trial.config, extra, fixed=self.fixed)

    def default_config(self) -> dict[str, Any]:
        """The search space's default configuration, as a trial's config holds it."""
        return default_config(self.space)


def make_plan(
    s: SMACSweeperConf, arguments: list[str], config: DictConfig, sweep_dir: Path
) -> SweepPlan:
    parsed = OverridesParser.create().parse_overrides(list(arguments))
    # overrides of the sweeper's own config (e.g. its search space) stay out of trials
    kept = [o.input_line for o in parsed if not is_hydra_override(o)]
    fixed = fixed_overrides(kept)
    budget_var = s.budget.variable
    if budget_var is not None and budget_var in fixed:
        raise ValueError(f"the budget variable {budget_var!r} is also set on the command line")
    spec = OmegaConf.to_container(OmegaConf.create(s.search_space), resolve=True) or {}
    hp_names = set(spec.get("hyperparameters") or {})
    for key in s.budget.low_fidelity:
        if key in fixed or key in hp_names:
            where = "set on the command line" if key in fixed else "searched"
            raise bad(
                "budget.low_fidelity",
                dict(s.budget.low_fidelity),
                f"{key!r} is also {where}; the low fidelity must own its keys",
            )
    remove = {k: v for k, v in fixed.items() if k in hp_names}
    if budget_var is not None:
        remove[budget_var] = None
    for name, value in remove.items():
        why = "budget variable" if value is None else f"fixed to {value!r} on the command line"
        if name in hp_names:
            log.info(f"Search space: {name} removed ({why})")
    space = build_space(spec, remove=remove, seed=s.seed)
    fingerprint = {
        "search_space": spec,
        "removed": sorted(remove),
        "arguments": kept,
        "objectives": list(s.objectives),
        "algorithm": s.algorithm,
        "multi_objective": s.multi_objective,
        "intensifier": s.intensifier,
        "budget": _budget_fingerprint(s),
        "seed": s.seed,
        "use_default_config": s.use_default_config,
        "n_initial_configs": s.n_initial_configs,
    }
    if s.algorithm == "gp_ehvi":  # (absent from the other algorithms' journals)
        fingerprint["known_objectives"] = known_functions(s)
        fingerprint["search_cost"] = s.search_cost
    elif s.search_cost is not None:  # hv_promotion's (absent from sweeps without one)
        fingerprint["search_cost"] = s.search_cost
    if s.initial_design != "random":  # (absent from the journals of random designs)
        fingerprint["initial_design"] = s.initial_design
    if s.interleave_random:  # (absent from sweeps without it)
        fingerprint["interleave_random"] = s.interleave_random
    if s.interleave_flip:  # (absent from sweeps without it)
        fingerprint["interleave_flip"] = s.interleave_flip
    if s.tpe_gamma is not None:  # (absent from sweeps without it)
        fingerprint["tpe_gamma"] = s.tpe_gamma
    if s.warm_start.sweep_dir is not None:  # (absent from sweeps without one)
        fingerprint["warm_start"] = OmegaConf.to_container(OmegaConf.structured(s.warm_start))
    return SweepPlan(
        settings=s,
        arguments=kept,
        fixed=fixed,
        space=space,
        budget=make_budget(s.budget, config),
        sweep_name=s.sweep_name or _sweep_name(sweep_dir),
        fingerprint=fingerprint,
        preset=OmegaConf.select(config, "hydra.runtime.choices.hydra/sweeper", default=None),
    )


def preflight(plan: SweepPlan, hydra_context: HydraContext, config: DictConfig) -> None:
    """Compose the default configuration's trial once at the top stage (and once at the
    lowest, with budget.low_fidelity): a search-space key the app does not have (a typo)
    stops the sweep here instead of crashing every trial."""
    stages = [plan.budget.top]
    if plan.settings.budget.low_fidelity:
        stages.append(plan.budget.stages[0])
    for stage in stages:
        probe = Trial(
            trial_id=0,
            batch=0,
            config=plan.default_config(),
            budget=stage,
            seed=0,
            budget_value=plan.budget.value(stage),
        )
        overrides = plan.overrides(probe)
        try:
            hydra_context.config_loader.load_sweep_config(config, overrides)
        except Exception as err:
            raise ValueError(
                f"The trials' overrides do not compose with the app's config "
                f"({' '.join(overrides)}): {err}"
            ) from err


def _budget_fingerprint(s: SMACSweeperConf) -> dict[str, Any]:
    """The budget settings; budget.stages only when set, budget.model only when not
    highest, budget.promote_by only when not contribution and budget.low_fidelity only
    when not empty (absent from earlier journals)."""
    budget = OmegaConf.to_container(OmegaConf.structured(s.budget))
    assert isinstance(budget, dict)
    if budget.get("stages") is None:
        budget.pop("stages", None)
    if budget.get("model") == "highest":
        budget.pop("model", None)
    if budget.get("promote_by") == "contribution":
        budget.pop("promote_by", None)
    if not budget.get("low_fidelity"):
        budget.pop("low_fidelity", None)
    return budget


def _sweep_name(sweep_dir: Path) -> str:
    """The folder name; with its parent's when it has no letters (a time stamp)."""
    name = sweep_dir.name
    if not any(c.isalpha() for c in name) and sweep_dir.parent.name:
        name = f"{sweep_dir.parent.name}_{name}"
    return name
