"""`evaluate(cfg)`: the modes of `python evaluate.py` (conf/evaluate.yaml).

checkpoint  test accuracy, CodeCarbon energy of a test pass, analytic energy, model
            size, multiplication-free export and the integer-only forward check
sweep       the Pareto configurations of a SMAC sweep retrained over seeds
figure1     test accuracy over shift depth per preset (Hennig et al., Figure 1)
table1      a preset's accuracy and emissions row (Hennig et al., Table 1)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from omegaconf import DictConfig

from dsnn.config_checks import check_evaluate_config

# mode -> (module, function); modules imported on use: each pulls in what only it needs
MODES = {
    "checkpoint": ("dsnn.evaluation.checkpoint", "evaluate_checkpoint"),
    "sweep": ("dsnn.evaluation.retest", "retest_sweep"),
    "figure1": ("dsnn.evaluation.paper", "figure1"),
    "table1": ("dsnn.evaluation.paper", "table1"),
}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    check_evaluate_config(cfg, tuple(MODES))
    module, function = MODES[cfg.mode]
    return getattr(import_module(module), function)(cfg)
