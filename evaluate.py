"""Evaluate DSNNs: `python evaluate.py mode=checkpoint|sweep|figure1|table1 [overrides]`.

Re-tests a trained run or a sweep's Pareto front over seeds, reproduces the paper's
Figure 1 and Table 1, and exports multiplication-free models; see conf/evaluate.yaml and
dsnn/evaluation/.
"""

import hydra
from omegaconf import DictConfig

from dsnn.evaluation import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> dict:
    return evaluate(cfg)


if __name__ == "__main__":
    main()
