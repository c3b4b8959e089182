"""The hypervolume's reference point: fixed once per sweep, so the hypervolume means the same
thing after every batch, after a resume and between sweeps of one preset.

Per objective, in this order:
1. the preset's `reference_point` (a bound the task states: val/error 1.0);
2. otherwise 2 x the default configuration's value, taken from its first successful trial
   (without `use_default_config`, or before the default succeeds: nothing is fixed yet and
   the hypervolume is 0; if the sweep never runs the default, the first successful trial's
   value x 2). A value <= 0 gets 1.0 added instead, so the box keeps a positive width.

The loop journals the point the moment it is complete (a `reference` record); a resume
reads it back and never recomputes it. Why x 2 of the default, not e.g. the float network's
analytic energy: it needs no knowledge of the app (the sweeper stays generic), it holds for
measured objectives (emissions) that have no analytic bound, and the default configuration
is a trial the sweep runs anyway.

Normalised hypervolume: the raw value divided by the volume of the box between the ideal
point 0 (every objective here is an error, energy or emission >= 0) and the reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._space import default_config
from ._trials import SUCCESS, Trial

CONFIGURED = "configured"


@dataclass(frozen=True)
class ReferencePoint:
    values: dict[str, float]  # objective -> reference value
    source: dict[str, str]  # objective -> "configured" | "2 x trial <id>"

    def as_list(self, objectives: Sequence[str]) -> list[float]:
        return [self.values[k] for k in objectives]

    def box_volume(self) -> float | None:
        """Volume between the ideal point 0 and the reference (None if not positive)."""
        if any(v <= 0 for v in self.values.values()):
            return None
        return math.prod(self.values.values())


def resolve_reference(
    objectives: Sequence[str],
    configured: Mapping[str, float],
    told: Sequence[Trial],
    default_config: Mapping[str, Any] | None,
    *,
    sweep_over: bool = False,
) -> ReferencePoint | None:
    """The reference point once every objective has one; None while one is still missing.

    `sweep_over`: no more trials come, so a sweep that never ran the default falls back to
    its first successful trial."""
    values = {k: float(configured[k]) for k in objectives if k in configured}
    source = dict.fromkeys(values, CONFIGURED)
    missing = [k for k in objectives if k not in values]
    if missing:
        ok = [t for t in told if t.status == SUCCESS]
        base = next((t for t in ok if default_config and t.config == dict(default_config)), None)
        if base is None and (default_config is None or sweep_over) and ok:
            base = ok[0]
        if base is None:
            return None
        for key in missing:
            value = float(base.objectives[key])
            values[key] = 2.0 * value if value > 0 else value + 1.0
            source[key] = f"2 x trial {base.trial_id}"
    return ReferencePoint(values={k: values[k] for k in objectives}, source=source)


def proposal_reference(
    objectives: Sequence[str],
    configured: Mapping[str, float],
    told: Sequence[Any],
    space: Any,
    use_default: bool,
) -> list[float] | None:
    """The reference a model-based proposal aims at, by the loop's rule, from the told
    trials (in told order): the default's trial when it succeeded, else the first success
    (sweep_over, so that a sweep whose default crashed is not random throughout)."""
    default = default_config(space) if use_default else None
    reference = resolve_reference(objectives, configured, told, default, sweep_over=True)
    return None if reference is None else reference.as_list(objectives)


def changed_on_resume(journaled: ReferencePoint, configured: Mapping[str, float]) -> list[str]:
    """Objectives whose configured reference differs from the journaled one (kept)."""
    return sorted(k for k, v in configured.items() if float(v) != journaled.values.get(k, float(v)))
