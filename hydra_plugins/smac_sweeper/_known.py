"""Objectives known before a trial runs (`hydra.sweeper.known_objectives`): a function of
the trial's composed config, e.g. the analytic energy of one inference of the network it
describes (dsnn.energy.analytic.config_energy_uj). The optimiser uses them to choose what
to run (gp_ehvi: exact in its expected hypervolume improvement); what the trial itself
reports is still what it is told, so a function that only estimates costs no correctness.

    known_objectives:
      - {objective: energy/model_uj_per_image, function: dsnn.energy.analytic.config_energy_uj}

A function is named by its dotted path in the sweeper's own settings (as Hydra's `_target_`
names code); nothing read from a sweep's folder names one. A candidate's config is the
trial's as Hydra composes it (`load_sweep_config` with the trial's overrides), composed once
per combination of config-group choices (`optimizer=adam`), with the other hyperparameters
set on it in place while the function runs (and restored after). Hydra applies value
overrides after the defaults list the same way (checked against full compositions in the
tests), and a candidate then costs the function's time only (a composition: ~0.1 s).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from ._trials import Trial, config_key

KnownFunction = Callable[[DictConfig], float]


def resolve_function(path: str, objective: str) -> KnownFunction:
    """The function `package.module.function` names; ValueError (one line) if none."""
    module_name, _, name = str(path).rpartition(".")
    where = f"hydra.sweeper.known_objectives: {objective}'s function {path!r} is invalid"
    if not module_name:
        raise ValueError(f"{where}: must be a dotted path package.module.function")
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{where}: {err}") from None
    if not callable(function):
        raise ValueError(f"{where}: {type(function).__name__} is not callable")
    return function


class KnownObjectives:
    """Computes the known objectives of configurations (active hyperparameters) of a sweep."""

    def __init__(
        self,
        functions: Mapping[str, str],
        overrides: Callable[[Trial], list[str]],
        compose: Callable[[list[str]], DictConfig],
        is_group: Callable[[str], bool],
        budget: tuple[float | None, Any] = (None, None),
    ) -> None:
        """`overrides`: a trial's override strings (SweepPlan.overrides); `compose`: those
        into the job's config (the config loader's load_sweep_config); `is_group`: whether a
        hyperparameter picks a config group option; `budget`: the (stage, value) the
        trials are composed at (the top one)."""
        self.names = list(functions)
        self.functions = {k: resolve_function(v, k) for k, v in functions.items()}
        self.overrides, self.compose = overrides, compose
        self.is_group = functools.cache(is_group)  # Hydra's answer takes ~20 ms
        self.budget = budget
        self.bases: dict[tuple, DictConfig] = {}
        self.cache: dict[str, dict[str, float]] = {}

    def __call__(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Shape (len(configs), len(names)): each configuration's known objectives."""
        out = np.empty((len(configs), len(self.names)))
        for row, config in enumerate(configs):
            values = self.values(config)
            out[row] = [values[name] for name in self.names]
        return out

    def values(self, config: Mapping[str, Any]) -> dict[str, float]:
        key = config_key(dict(config))
        if key not in self.cache:
            with self.job_config(config) as cfg:
                self.cache[key] = {k: float(f(cfg)) for k, f in self.functions.items()}
        return self.cache[key]

    @contextmanager
    def job_config(self, config: Mapping[str, Any]) -> Iterator[DictConfig]:
        """The config a trial of `config` would run with (see the module's docstring): its
        groups' composition, with the other values set in place while the block runs."""
        groups = {k: v for k, v in sorted(config.items()) if self.is_group(k)}
        signature = tuple(groups.items())
        if signature not in self.bases:
            stage, value = self.budget
            probe = Trial(0, 0, dict(groups), stage, 0, budget_value=value)
            self.bases[signature] = self.compose(self.overrides(probe))
        cfg = self.bases[signature]
        values = {k: v for k, v in config.items() if k not in groups}
        before = {k: OmegaConf.select(cfg, k, default=_ABSENT) for k in values}
        try:
            with open_dict(cfg):
                for name, value in values.items():
                    OmegaConf.update(cfg, name, value, merge=False)
            yield cfg
        finally:
            with open_dict(cfg):
                for name, value in before.items():
                    if value is _ABSENT:
                        parent, _, leaf = name.rpartition(".")
                        node = OmegaConf.select(cfg, parent) if parent else cfg
                        node.pop(leaf, None)
                    else:
                        OmegaConf.update(cfg, name, value, merge=False)


_ABSENT = object()
