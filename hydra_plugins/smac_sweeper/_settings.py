"""The sweeper's options as a checked SMACSweeperConf."""

from __future__ import annotations

import logging
import math
import operator
import re
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .config import SMACSweeperConf

log = logging.getLogger(__name__)

CONTINUABLE = "trainer.max_epochs"  # the one budget variable a trial can continue


def load_settings(options: Mapping[str, Any]) -> tuple[SMACSweeperConf, dict[str, Any]]:
    """(settings, plain options) from what Hydra passes the sweeper; ValueError if unusable."""
    # plain containers first: Hydra's plugin scan may have re-executed config.py, so the
    # options' dataclass types need not be the classes imported here
    plain = OmegaConf.to_container(OmegaConf.create(dict(options)), resolve=True)
    merged = OmegaConf.merge(OmegaConf.structured(SMACSweeperConf), plain)
    settings: SMACSweeperConf = OmegaConf.to_object(merged)  # type: ignore[assignment]
    check(settings)
    return settings, OmegaConf.to_container(merged, resolve=True)  # type: ignore[return-value]


class SweeperSettingError(ValueError):
    """A sweeper setting outside what is allowed (one line: key, value, what is allowed)."""


CHOICES = {
    "algorithm": ("smac", "random", "optuna_gp", "optuna_tpe", "gp_ehvi"),
    "multi_objective": ("parego", "mean", "hypervolume"),
    "intensifier": ("hyperband", "successive_halving", "pareto_promotion", "hv_promotion"),
    "initial_design": ("random", "lhs"),
    "budget.model": ("highest", "bohb"),  # what the sampler learns from
    "budget.promote_by": ("contribution", "improvement"),  # hv_promotion's rank
}
OPTUNA = ("optuna_gp", "optuna_tpe")  # hypervolume scalarisation; OPTUNA_INTENSIFIERS
OPTUNA_INTENSIFIERS = ("pareto_promotion", "hv_promotion")  # optuna_*, with a budget
SMAC_INTENSIFIERS = ("hyperband", "successive_halving")  # smac and random, with a budget


def bad(key: str, value: Any, allowed: str) -> SweeperSettingError:
    """The one-line refusal of hydra.sweeper.<key>=<value>: what is allowed."""
    return SweeperSettingError(f"hydra.sweeper.{key}={value!r} is invalid: {allowed}")


def check(s: SMACSweeperConf) -> None:
    """Raise SweeperSettingError for the first setting out of range; runs before the sweep
    writes anything, so a refused start leaves its folder as it was."""
    objectives = list(s.objectives)
    if not objectives or len(set(objectives)) != len(objectives):
        raise bad("objectives", objectives, "must be distinct keys, at least one")
    for key, options in CHOICES.items():
        value = operator.attrgetter(key)(s)
        if value not in options:
            raise bad(key, value, f"must be one of {', '.join(options)}")
    if s.n_trials < 1:
        raise bad("n_trials", s.n_trials, "must be an integer >= 1")
    if s.n_workers < 1:
        raise bad("n_workers", s.n_workers, "must be an integer >= 1")
    for key in ("walltime_limit", "trial_timeout"):
        value = getattr(s, key)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise bad(key, value, "must be null (no limit) or seconds > 0")
    # SMAC refuses an initial design (plus the default configuration) above n_trials.
    most = max(s.n_trials - int(s.use_default_config), 1)
    if s.n_initial_configs is not None and not 1 <= s.n_initial_configs <= most:
        raise bad(
            "n_initial_configs",
            s.n_initial_configs,
            f"must be null or in [1, {most}] (n_trials={s.n_trials}, "
            f"use_default_config={s.use_default_config})",
        )
    if not 0.0 <= s.max_failure_rate <= 1.0:
        raise bad("max_failure_rate", s.max_failure_rate, "must be in [0, 1]")
    if s.initial_design != "random" and s.algorithm not in OPTUNA:
        raise bad(
            "initial_design",
            s.initial_design,
            f"needs algorithm {' or '.join(OPTUNA)} (got {s.algorithm}); set random",
        )
    if not 0.0 <= s.interleave_random <= 1.0:
        raise bad("interleave_random", s.interleave_random, "must be in [0, 1]")
    if not 0.0 <= s.interleave_flip <= 1.0:
        raise bad("interleave_flip", s.interleave_flip, "must be in [0, 1]")
    # intensifier=hv_promotion ranks a stage's results (search_cost, budget.promote_by)
    hv_ranks = s.algorithm in OPTUNA and s.intensifier == "hv_promotion" and s.budget.variable
    proposing = s.budget.variable is not None or (
        s.multi_objective == "hypervolume" and len(objectives) > 1
    )
    if s.interleave_flip and not (s.algorithm in OPTUNA and proposing):
        raise bad(
            "interleave_flip",
            s.interleave_flip,
            f"needs algorithm {' or '.join(OPTUNA)} with multi_objective=hypervolume (2+ "
            f"objectives) or a budget.variable (got {s.algorithm}, {s.multi_objective}, "
            f"budget.variable {s.budget.variable or 'null'}); set 0",
        )
    if s.tpe_gamma is not None and not 0.0 < s.tpe_gamma <= 1.0:
        raise bad("tpe_gamma", s.tpe_gamma, "must be in (0, 1], or null (Optuna's 0.1)")
    if s.tpe_gamma is not None and s.algorithm != "optuna_tpe":
        raise bad("tpe_gamma", s.tpe_gamma, f"needs algorithm optuna_tpe (got {s.algorithm})")
    if s.interleave_random and s.algorithm not in OPTUNA:
        raise bad(
            "interleave_random",
            s.interleave_random,
            f"needs algorithm {' or '.join(OPTUNA)} (got {s.algorithm}; SMAC interleaves its "
            "own); set 0",
        )
    if s.multi_objective == "hypervolume" and s.algorithm not in OPTUNA:
        raise bad(
            "multi_objective",
            s.multi_objective,
            f"needs algorithm {' or '.join(OPTUNA)} (got {s.algorithm}); smac takes parego or mean",
        )
    if s.algorithm != "gp_ehvi":
        if s.known_objectives:
            raise bad(
                "known_objectives",
                s.known_objectives,
                "is used by algorithm=gp_ehvi only; unset it",
            )
        if s.search_cost and not hv_ranks:
            raise bad(
                "search_cost",
                s.search_cost,
                "is used by algorithm=gp_ehvi and by intensifier=hv_promotion with a budget "
                "only; unset it",
            )
    elif len(objectives) > 2:
        raise bad("objectives", objectives, "algorithm=gp_ehvi takes 1 or 2 objectives")
    else:
        known = known_functions(s)  # checks the entries
        unknown = sorted(set(known) - set(objectives))
        if unknown:
            raise bad("known_objectives", s.known_objectives, f"names no objective: {unknown}")
        if set(known) == set(objectives):
            raise bad(
                "known_objectives",
                s.known_objectives,
                "leaves no objective to model: at least one must be measured by the trials",
            )
    w = s.warm_start
    if isinstance(w.n_configs, bool) or not isinstance(w.n_configs, int) or w.n_configs < 1:
        raise bad("warm_start.n_configs", w.n_configs, "must be an integer >= 1")
    b = s.budget
    if b.variable is None and b.stages is not None:
        raise bad(
            "budget.stages",
            [float(x) for x in b.stages],
            "needs a budget.variable (got null: every trial runs at full fidelity); set "
            f"budget.variable={CONTINUABLE} or budget.stages=null",
        )
    if b.model != "highest" and (b.variable is None or s.algorithm not in OPTUNA):
        raise bad(
            "budget.model",
            b.model,
            f"needs algorithm {' or '.join(OPTUNA)} and a budget.variable (got algorithm "
            f"{s.algorithm}, budget.variable {b.variable or 'null'}); set budget.model=highest",
        )
    if b.promote_by != "contribution" and not hv_ranks:
        raise bad(
            "budget.promote_by",
            b.promote_by,
            f"needs intensifier hv_promotion with algorithm {' or '.join(OPTUNA)} and a "
            f"budget.variable (got {s.intensifier}, {s.algorithm}, budget.variable "
            f"{b.variable or 'null'}); set budget.promote_by=contribution",
        )
    if b.variable is not None and s.algorithm == "gp_ehvi":
        raise bad(
            "budget.variable",
            b.variable,
            "must be null with algorithm=gp_ehvi (it runs every trial at full fidelity)",
        )
    if b.variable is not None:
        optuna = s.algorithm in OPTUNA
        if optuna and s.intensifier not in OPTUNA_INTENSIFIERS:
            raise bad(
                "intensifier",
                s.intensifier,
                f"must be {' or '.join(OPTUNA_INTENSIFIERS)} with algorithm={s.algorithm} "
                f"and a budget ({' and '.join(SMAC_INTENSIFIERS)} are SMAC's)",
            )
        if not optuna and s.intensifier not in SMAC_INTENSIFIERS:
            raise bad(
                "intensifier",
                s.intensifier,
                f"must be {' or '.join(SMAC_INTENSIFIERS)} with algorithm={s.algorithm} "
                f"({' and '.join(OPTUNA_INTENSIFIERS)} need {' or '.join(OPTUNA)})",
            )
        if int(b.eta) != b.eta or b.eta < 2:
            raise bad("budget.eta", b.eta, "must be an integer >= 2")
        if not (math.isfinite(b.min) and b.min > 0):
            raise bad("budget.min", b.min, "must be > 0")
        if not (math.isfinite(b.max) and b.max > b.min):
            raise bad("budget.max", b.max, f"must be above budget.min={b.min}")
        if b.stages is not None:
            stages = [float(x) for x in b.stages]
            if not optuna:
                raise bad(
                    "budget.stages",
                    list(b.stages),
                    f"needs algorithm {' or '.join(OPTUNA)} (SMAC's Hyperband takes its "
                    "stages from budget.min, max and eta); set budget.stages=null",
                )
            increasing = all(a < z for a, z in zip(stages, stages[1:], strict=False))
            if len(stages) < 2 or not increasing or stages[0] != b.min or stages[-1] != b.max:
                raise bad(
                    "budget.stages",
                    list(b.stages),
                    f"must rise strictly from budget.min={b.min} to budget.max={b.max}, "
                    "at least 2 stages",
                )
    if b.low_fidelity and b.variable is None:
        raise bad(
            "budget.low_fidelity",
            dict(b.low_fidelity),
            "needs a budget.variable (got null: every trial runs at full fidelity); set "
            "budget.low_fidelity={}",
        )
    if b.variable is not None and b.variable in b.low_fidelity:
        raise bad(
            "budget.low_fidelity",
            dict(b.low_fidelity),
            f"must not set the budget variable {b.variable!r} (the stages set it)",
        )
    if b.continuation and b.variable != CONTINUABLE:
        raise bad(
            "budget.continuation",
            b.continuation,
            f"needs budget.variable={CONTINUABLE} (got {b.variable}): only more epochs continue "
            "a checkpoint (a data fraction or shift depth changes what is trained); set "
            "budget.continuation=false",
        )
    for name, mapping in (("crash_cost", s.crash_cost), ("reference_point", s.reference_point)):
        unknown = set(mapping) - set(objectives)
        if unknown:
            raise bad(name, dict(mapping), f"names keys that are not objectives: {sorted(unknown)}")
        if any(not math.isfinite(float(v)) for v in mapping.values()):
            raise bad(name, dict(mapping), "values must be finite")


def known_functions(s: SMACSweeperConf) -> dict[str, str]:
    """hydra.sweeper.known_objectives as objective -> the function's dotted path;
    SweeperSettingError unless each entry is {objective, function}, objectives distinct."""
    functions: dict[str, str] = {}
    for entry in s.known_objectives:
        if not (
            isinstance(entry, Mapping)
            and set(entry) == {"objective", "function"}
            and all(isinstance(v, str) for v in entry.values())
        ):
            raise bad(
                "known_objectives",
                s.known_objectives,
                f"each entry must be {{objective: <key>, function: <package.module.function>}}, "
                f"got {entry!r}",
            )
        if entry["objective"] in functions:
            named = entry["objective"]
            raise bad("known_objectives", s.known_objectives, f"{named!r} is named twice")
        functions[entry["objective"]] = entry["function"]
    return functions


def check_against_app(s: SMACSweeperConf, app_config: DictConfig) -> None:
    """Settings that name keys of the app's config: the budget variable and the keys of
    budget.low_fidelity must be ones (else no trial would change: `++key=value` adds a key
    nobody reads). A warning when each epoch stage trains afresh under a per-epoch
    learning-rate schedule."""
    variable = s.budget.variable
    if variable is None:
        # a preset's budget.min/max/eta/integer stay unread without a variable (gp_ehvi
        # inherits smac_mfmo's), so only the user's own override of one is refused
        for key in budget_keys_overridden(app_config):
            if key in UNREAD_WITHOUT_VARIABLE:
                raise bad(
                    f"budget.{key}",
                    getattr(s.budget, key),
                    "needs a budget.variable (got null: every trial runs at full fidelity); "
                    f"set a budget.variable or drop the override of budget.{key}",
                )
        return
    for key in s.budget.low_fidelity:
        if not _app_has(app_config, key):
            raise bad(
                "budget.low_fidelity",
                dict(s.budget.low_fidelity),
                f"{key!r} must be a key of the app's config",
            )
    afresh = variable == CONTINUABLE and not s.budget.continuation
    if afresh and app_config.get("schedule_interval") == "epoch":
        log.warning(
            "Each epoch stage trains afresh (budget.continuation=false) with schedule_interval"
            "=epoch: a 1-epoch run keeps its initial learning rate throughout, and its error "
            "ranks configurations poorly (benchmarks/README.md); add schedule_interval=step"
        )
    if not _app_has(app_config, variable):
        top = sorted(k for k in app_config if k != "hydra")
        raise bad(
            "budget.variable",
            variable,
            f"must be a key of the app's config (top-level keys: {', '.join(top)})",
        )


UNREAD_WITHOUT_VARIABLE = ("min", "max", "eta", "integer")  # the other keys: check()


def budget_keys_overridden(config: DictConfig) -> list[str]:
    """The keys of hydra.sweeper.budget that the command line sets (from the composed
    config's hydra.overrides.hydra; `+`, `++` and `~` included)."""
    given = OmegaConf.select(config, "hydra.overrides.hydra", default=None) or []
    found = (re.match(r"[+~]*hydra\.sweeper\.budget\.(\w+)", str(o)) for o in given)
    return [m.group(1) for m in found if m]


_ABSENT = object()


def _app_has(app_config: DictConfig, key: str) -> bool:
    found = OmegaConf.select(app_config, key, default=_ABSENT, throw_on_resolution_failure=False)
    return found is not _ABSENT
