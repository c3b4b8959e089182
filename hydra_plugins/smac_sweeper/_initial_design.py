"""A Latin hypercube initial design for the Optuna algorithms (initial_design=lhs).

n points in the unit cube, one per row and column stratum of every dimension (scipy's
LatinHypercube), mapped to the search distributions: a float or an integer by its scale
(log where the space says so), a categorical with k choices by the stratum [i/k, (i+1)/k).
So with n >= k every choice of a categorical is tried in the design (with n = k each once),
where n random draws miss a given one of k choices with probability (1 - 1/k)^n (3 draws,
3 choices: 0.30).

Why: a TPE that never saw a choice of a categorical rarely proposes it. In the study
(benchmarks/README.md) three seeds of a 1-epoch screen never tried Adam, the best optimizer
of the task, because none of the default and 3 random configurations used it.
SMAC's own initial designs are quasi-random (Sobol, LHS) for the same reason.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from scipy.stats import qmc


def latin_hypercube(
    distributions: dict[str, BaseDistribution], n: int, seed: int
) -> list[dict[str, Any]]:
    """n parameter dicts (the study's parameters, every distribution), seeded."""
    if n <= 0:
        return []
    names = sorted(distributions)  # an order that does not depend on the space's
    cube = qmc.LatinHypercube(d=len(names), seed=np.random.default_rng(seed)).random(n)
    return [
        {name: _value(distributions[name], float(u)) for name, u in zip(names, row, strict=True)}
        for row in cube
    ]


def _value(dist: BaseDistribution, u: float) -> Any:
    """The point u in [0, 1) of a distribution's scale."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[min(int(u * len(dist.choices)), len(dist.choices) - 1)]
    if isinstance(dist, FloatDistribution):
        if dist.log:
            value = math.exp(math.log(dist.low) + u * (math.log(dist.high) - math.log(dist.low)))
        else:
            value = dist.low + u * (dist.high - dist.low)
        return min(max(value, dist.low), dist.high)
    if isinstance(dist, IntDistribution):  # step 1: each integer an equal stratum
        if dist.log:
            span = math.log(dist.high + 1) - math.log(dist.low)
            value = math.floor(math.exp(math.log(dist.low) + u * span))
        else:
            value = math.floor(dist.low + u * (dist.high - dist.low + 1))
        return int(min(max(value, dist.low), dist.high))
    raise TypeError(f"no Latin hypercube mapping for {type(dist).__name__}")
