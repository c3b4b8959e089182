"""End-to-end training runs: objectives returned, outputs written, failures clean."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from dsnn.config_checks import ConfigError
from dsnn.lit_module import TrainingDivergedError
from dsnn.network import build_network
from dsnn.objectives import TEST_KEYS, TRAIN_KEYS
from dsnn.training import train
from tests.conftest import ROOT

# 2 % of Fashion-MNIST (1100 images), a 1000-image validation split, one epoch, ResNet20 of
# width 4: a complete run (Lightning, CodeCarbon, W&B offline) in seconds.
TINY = [
    "experiment=demo",
    "model.width=4",
    "data.fraction=0.02",
    "data.val_size=1000",
    "trainer.max_epochs=1",
]


def test_train_returns_objectives_and_leaves_an_offline_wandb_run(compose_cfg, tmp_path):
    cfg = compose_cfg(*TINY)
    objectives = train(cfg)

    assert 0.0 <= objectives["val/acc"] <= 1.0
    assert objectives["val/error"] == pytest.approx(1.0 - objectives["val/acc"])
    # CodeCarbon measured both phases; totals add up
    for kind, unit in (("emissions", "g"), ("energy", "kwh")):
        train_v, infer_v = (
            objectives[f"{kind}/train_{unit}"],
            objectives[f"{kind}/inference_{unit}"],
        )
        assert train_v > 0 and infer_v > 0
        assert objectives[f"{kind}/total_{unit}"] == pytest.approx(train_v + infer_v)
    assert objectives["model/shift_layers"] == 20
    assert list(objectives) == list(TRAIN_KEYS)  # the contract of dsnn/objectives.py
    assert all(isinstance(v, float) and math.isfinite(v) for v in objectives.values())
    assert not (tmp_path / "emissions.csv").exists()

    run_dir = tmp_path / "run"
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()

    # the saved, exported model evaluates exactly as the model that was measured
    fresh = build_network(cfg, in_channels=1, num_classes=10)
    fresh.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True))
    assert fresh.state_dict().keys() == torch.load(run_dir / "model.pt").keys()


def test_test_split_is_reported_only_when_asked(compose_cfg):
    objectives = train(compose_cfg(*TINY, "test=true", "logger=none", "energy.enabled=false"))
    assert 0.0 <= objectives["test/acc"] <= 1.0
    assert objectives["test/error"] == pytest.approx(1.0 - objectives["test/acc"])
    assert objectives["emissions/total_g"] == 0.0  # energy.enabled=false
    assert list(objectives) == [*TRAIN_KEYS, *TEST_KEYS]


def test_pretrained_float_weights_are_loaded_before_conversion(compose_cfg, tmp_path):
    cfg = compose_cfg(*TINY, "shift_depth=0", "logger=none", "energy.enabled=false")
    train(cfg)
    float_state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)

    cfg = compose_cfg(*TINY, f"pretrained={tmp_path / 'run' / 'model.pt'}", "quantization=q")
    net = build_network(cfg, in_channels=1, num_classes=10)
    # DeepShift-Q keeps the float weights: the classifier (shifted) starts from the checkpoint
    assert torch.equal(net.linear.weight, float_state["linear.weight"])
    assert torch.equal(net.conv1.weight, float_state["conv1.weight"])

    cfg = compose_cfg(*TINY, f"pretrained={tmp_path / 'run' / 'model.pt'}", "model.width=8")
    # ConfigErrors: train.py prints them as one line (dsnn/cli.py)
    with pytest.raises(ConfigError, match=r"does not fit model ResNet20: .*\(size mismatch for"):
        build_network(cfg, in_channels=1, num_classes=10)
    cfg = compose_cfg(*TINY, f"pretrained={tmp_path / 'missing.pt'}")
    with pytest.raises(FileNotFoundError, match="missing.pt") as missing:
        build_network(cfg, in_channels=1, num_classes=10)
    assert isinstance(missing.value, ConfigError)


def test_a_nan_loss_ends_the_run_as_failed(compose_cfg):
    # a learning rate of 1e30 sends the float (BatchNorm) parameters to inf, then NaN
    cfg = compose_cfg(*TINY, "optimizer.lr=1e30", "optimizer.momentum=0", "energy.enabled=false")
    with pytest.raises(
        TrainingDivergedError, match=r"train/loss became non-finite \(last: nan\) by epoch 0"
    ):
        train(cfg)
    import wandb

    assert wandb.run is None  # the W&B run was finished, not left open


def test_cifar10_run_on_files_in_cifar10_format(compose_cfg, tmp_path, cifar10_root, monkeypatch):
    from dsnn import training
    from dsnn.data import CIFAR10DataModule

    events = []  # the data is prepared (downloaded) before the measured training phase
    prepare, measure = CIFAR10DataModule.prepare_data, training.EnergyMeter.measure
    monkeypatch.setattr(
        CIFAR10DataModule, "prepare_data", lambda dm: events.append("prepare") or prepare(dm)
    )
    monkeypatch.setattr(
        training.EnergyMeter, "measure", lambda m, p: events.append(p) or measure(m, p)
    )
    cfg = compose_cfg(
        "data=cifar10", f"data.root={cifar10_root}", "data.download=false", "data.val_size=20",
        "data.num_workers=0", "data.batch_size=16", "model.width=4", "trainer.max_epochs=1",
        "logger=none", "energy.enabled=false", "test=true",
    )  # fmt: skip
    objectives = train(cfg)
    assert 0.0 <= objectives["val/acc"] <= 1.0 and 0.0 <= objectives["test/acc"] <= 1.0
    assert events[:2] == ["prepare", "train"] and "inference" in events


@pytest.mark.slow
def test_demo_command_learns_fashion_mnist(tmp_path):
    """`python train.py experiment=demo`, as in the README."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "experiment=demo", f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, check=True,
    )  # fmt: skip
    line = next(
        ln
        for ln in result.stderr.splitlines() + result.stdout.splitlines()
        if "val/acc" in ln and "gCO2eq" in ln
    )
    accuracy = float(line.split("val/acc")[1].split()[0])
    assert accuracy > 0.70, line
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_wandb_online_without_login_or_network_falls_back_to_offline(
    compose_cfg, tmp_path, monkeypatch
):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))  # no stored login
    cfg = compose_cfg(*TINY, "logger.wandb.mode=online", "energy.enabled=false")
    objectives = train(cfg)
    assert 0.0 <= objectives["val/acc"] <= 1.0
    assert len(list((tmp_path / "run" / "wandb").glob("offline-run-*"))) == 1


def test_every_optimizer_trains_under_lightning(compose_cfg):
    """Lightning runs forward/backward in the closure it passes to `optimizer.step`."""
    for optimizer in ("ranger", "adadelta", "rmsprop"):
        cfg = compose_cfg(
            *TINY, f"optimizer={optimizer}", "logger=none", "energy.enabled=false",
            "callbacks=none", "data.fraction=0.005",
        )  # fmt: skip
        assert 0.0 <= train(cfg)["val/acc"] <= 1.0
