"""The sweeper's options as a checked SMACSweeperConf."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

from .config import SMACSweeperConf

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


def check(s: SMACSweeperConf) -> None:
    problems = []
    if not s.objectives or len(set(s.objectives)) != len(s.objectives):
        problems.append(f"objectives must be distinct and non-empty, got {s.objectives}")
    if s.algorithm not in ("smac", "random"):
        problems.append(f"algorithm must be smac or random, got {s.algorithm!r}")
    if s.multi_objective not in ("parego", "mean"):
        problems.append(f"multi_objective must be parego or mean, got {s.multi_objective!r}")
    if s.intensifier not in ("hyperband", "successive_halving"):
        problems.append(
            f"intensifier must be hyperband or successive_halving, got {s.intensifier!r}"
        )
    if s.n_workers < 1 or s.n_trials < 0:
        problems.append("n_workers must be >= 1 and n_trials >= 0")
    # SMAC refuses an initial design (plus the default configuration) above n_trials.
    most = max(s.n_trials - int(s.use_default_config), 1)
    if s.n_initial_configs is not None and not 1 <= s.n_initial_configs <= most:
        problems.append(
            f"n_initial_configs must be null or in [1, {most}] (n_trials={s.n_trials}, "
            f"use_default_config={s.use_default_config}), got {s.n_initial_configs}"
        )
    if not 0.0 <= s.max_failure_rate <= 1.0:
        problems.append(f"max_failure_rate must be in [0, 1], got {s.max_failure_rate}")
    b = s.budget
    if b.variable is not None and not (0 < b.min < b.max and int(b.eta) >= 2):
        problems.append(f"budget needs 0 < min < max and eta >= 2, got {b.min}, {b.max}, {b.eta}")
    if b.continuation and b.variable != CONTINUABLE:
        problems.append(
            f"budget.continuation=true needs budget.variable={CONTINUABLE}, got {b.variable}: "
            "only more epochs continue a checkpoint (a data fraction or shift depth changes "
            "what is trained); set budget.continuation=false"
        )
    for name, mapping in (("crash_cost", s.crash_cost), ("reference_point", s.reference_point)):
        unknown = set(mapping) - set(s.objectives)
        if unknown:
            problems.append(f"{name} names keys that are not objectives: {sorted(unknown)}")
        if any(not math.isfinite(float(v)) for v in mapping.values()):
            problems.append(f"{name} values must be finite")
    if problems:
        raise ValueError("hydra.sweeper: " + "; ".join(problems))
