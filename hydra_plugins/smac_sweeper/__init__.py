"""Hydra sweeper driving SMAC3 by ask/tell: multi-fidelity (Hyperband), multi-objective
(ParEGO) and both, as in "Towards Leveraging AutoML for Sustainable Deep Learning: A
Multi-Objective HPO Approach on Deep Shift Neural Networks" (sections 3-4).

Select it with `hydra/sweeper=smac_mfmo` (or smac_mf, smac_mo, random; Optuna's samplers
with optuna_gp, optuna_tpe). Importing this package imports neither SMAC nor Optuna nor W&B
nor matplotlib; they load when a sweep starts.
POSIX only (Linux, macOS): the sweep journal is locked with `fcntl`.

Public names, for scripts that score fronts the way the sweeper does (loaded on first use,
since Hydra imports this package on every run): `hypervolume`, `pareto_mask`,
`default_reference_point`.
"""

from typing import Any

__all__ = ["default_reference_point", "hypervolume", "pareto_mask"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import _pareto

        return getattr(_pareto, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
