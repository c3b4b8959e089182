"""Train one deep shift neural network: `python train.py [overrides]`.

Configuration is composed from conf/ (see conf/config.yaml). With `-m` and a sweeper
(`hydra/sweeper=smac_mfmo`), each trial is one call of `main`, whose return value -- the
objectives dict documented in dsnn/objectives.py -- the sweeper reads back.
"""

import hydra
from omegaconf import DictConfig

from dsnn.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, float]:
    return train(cfg)


if __name__ == "__main__":
    main()
