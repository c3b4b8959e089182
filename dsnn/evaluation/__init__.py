"""`evaluate(cfg)`: the modes of `python evaluate.py` (conf/evaluate.yaml).

checkpoint  test accuracy, CodeCarbon energy of a test pass, analytic energy, model
            size, multiplication-free export and the integer-only forward check
sweep       the Pareto configurations of a SMAC sweep retrained over seeds
figure1     test accuracy over shift depth per preset (Hennig et al., Figure 1)
table1      a preset's accuracy and emissions row (Hennig et al., Table 1)
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    # modes imported on use: each pulls in what only it needs
    if cfg.mode == "checkpoint":
        from dsnn.evaluation.checkpoint import evaluate_checkpoint as run
    elif cfg.mode == "sweep":
        from dsnn.evaluation.retest import retest_sweep as run
    elif cfg.mode == "figure1":
        from dsnn.evaluation.paper import figure1 as run
    elif cfg.mode == "table1":
        from dsnn.evaluation.paper import table1 as run
    else:
        raise ValueError(f"mode={cfg.mode!r}; allowed: checkpoint, sweep, figure1, table1")
    return run(cfg)
