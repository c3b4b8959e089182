"""Shared fixtures: compose the project's Hydra config the way `train.py` does, in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture
def compose_cfg(tmp_path):
    """compose_cfg(*overrides) -> the config `python train.py overrides...` would run with.

    Outputs (hydra run dir, checkpoints, W&B offline runs) go to tmp_path.
    """

    def _compose(*overrides: str) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(
                "config",
                overrides=[f"hydra.run.dir={tmp_path / 'run'}", *overrides],
                return_hydra_config=True,
            )
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path / "run")
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]  # train(cfg) sees only the job config, as under @hydra.main
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and immune to a busy machine.

    Module-scoped and not autouse: a test module asks for it with
    `pytestmark = pytest.mark.usefixtures("one_thread")`.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cifar10_root(tmp_path) -> Path:
    """A data.root holding small files in CIFAR-10's own python-pickle format."""
    from tests.test_data import write_cifar

    write_cifar(tmp_path / "cifar10")
    return tmp_path / "cifar10"
