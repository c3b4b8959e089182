"""Which optimiser adapter (see _optimizer.py) serves a sweeper algorithm; a new optimiser
registers here and in _settings.check, the loop stays as it is."""

from __future__ import annotations

from ._optimizer import Optimizer


def optimizer_class(algorithm: str) -> type[Optimizer]:
    """The adapter class of `algorithm` (importing its library)."""
    if algorithm in ("smac", "random"):  # SMAC's model-based and random facades
        from ._smac import SMACOptimizer

        return SMACOptimizer
    if algorithm in ("optuna_gp", "optuna_tpe"):  # Optuna's GPSampler and TPESampler
        from ._optuna import OptunaOptimizer

        return OptunaOptimizer
    if algorithm == "gp_ehvi":  # our GP and EHVI, known objectives exact
        from ._gp_ehvi import GPEHVIOptimizer

        return GPEHVIOptimizer
    raise ValueError(f"no optimiser for algorithm {algorithm!r}")
