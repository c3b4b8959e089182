"""Evaluate DSNNs: `python evaluate.py mode=checkpoint|sweep|figure1|table1 [overrides]`.

Re-tests a trained run or a sweep's Pareto front over seeds, reproduces the paper's
Figure 1 and Table 1, and exports multiplication-free models; see conf/evaluate.yaml and
dsnn/evaluation/.

A config or data error ends a single run with one line on stderr and exit code 1
(dsnn/cli.py).
"""

import hydra
from omegaconf import DictConfig

from dsnn.cli import one_line_errors
from dsnn.evaluation import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> dict:
    with one_line_errors():  # a config or data error: one line, exit 1
        return evaluate(cfg)


if __name__ == "__main__":
    main()
