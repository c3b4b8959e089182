"""Train one deep shift neural network: `python train.py [overrides]`.

Configuration is composed from conf/ (see conf/config.yaml). With `-m` and a sweeper
(`hydra/sweeper=smac_mfmo`), each trial is one call of `main`, whose return value -- the
objectives dict documented in dsnn/objectives.py -- the sweeper reads back.

A config or data error ends a single run with one line on stderr and exit code 1
(dsnn/cli.py).
"""

import hydra
from omegaconf import DictConfig

from dsnn.cli import one_line_errors
from dsnn.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, float]:
    with one_line_errors():  # a config or data error: one line, exit 1
        return train(cfg)


if __name__ == "__main__":
    main()
