"""Every option of every config group composes, instantiates and trains a step.

Bad values fail early, naming the key, the value and the range.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

from dsnn.config_checks import ConfigError, check_config, check_evaluate_config
from dsnn.energy.measured import EnergyMeter
from dsnn.lit_module import DSNNLitModule
from dsnn.network import build_lit_module, build_network
from dsnn.shift import ShiftConv2d, ShiftLinear
from dsnn.training import trainer_arguments
from tests.conftest import CONF, ROOT

GROUPS = [
    "data",
    "model",
    "quantization",
    "optimizer",
    "scheduler",
    "trainer",
    "callbacks",
    "logger",
    "energy",
]
OPTIONS = [(g, f.stem) for g in GROUPS for f in sorted((CONF / g).glob("*.yaml"))]
EXPERIMENTS = sorted(f.stem for f in (CONF / "experiment").glob("*.yaml"))


def one_training_step(cfg) -> tuple[DSNNLitModule, torch.Tensor]:
    """Instantiate what train() instantiates and run one forward/backward/step on a tiny batch."""
    datamodule = instantiate(cfg.data)  # constructor only: no files are read
    module = build_lit_module(cfg, datamodule)
    optimizers = module.configure_optimizers()
    optimizer = optimizers["optimizer"] if isinstance(optimizers, dict) else optimizers
    size = datamodule.image_size
    x = torch.randn(4, datamodule.in_channels, size, size)
    y = torch.arange(4) % datamodule.num_classes
    loss = module.training_step((x, y), 0)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    module.on_train_batch_end(None, (x, y), 0)
    return module, loss


pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_group_option_composes_and_trains(compose_cfg, group, option):
    # a thin ResNet20 keeps this fast; the small CNN has 4 weight layers
    size = "shift_depth=4" if option == "small_cnn" else "model.width=4"
    cfg = compose_cfg(f"{group}={option}", size)
    check_config(cfg)
    module, loss = one_training_step(cfg)
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in module.parameters())
    # the instantiable parts of the other groups build too
    if cfg.trainer.accelerator != "gpu" or torch.cuda.is_available():
        trainer = instantiate(trainer_arguments(cfg), logger=False, callbacks=[])
        assert trainer.max_epochs == 100
    for lg in (cfg.get("logger") or {}).values():
        assert instantiate(lg) is not None
    for cb in (cfg.get("callbacks") or {}).values():
        assert instantiate(cb) is not None


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_preset_composes_and_trains(compose_cfg, experiment):
    cfg = compose_cfg(f"experiment={experiment}")
    check_config(cfg)
    module, loss = one_training_step(cfg)
    assert torch.isfinite(loss)
    shifted = [m for m in module.net.modules() if isinstance(m, ShiftConv2d | ShiftLinear)]
    assert len(shifted) == cfg.shift_depth


@pytest.mark.parametrize("optimizer", [f.stem for f in sorted((CONF / "optimizer").glob("*.yaml"))])
@pytest.mark.parametrize("experiment", ["demo", "paper_default"])
def test_presets_leave_the_optimizer_choice_open(compose_cfg, experiment, optimizer):
    """A sweep over `optimizer` starts from a preset: its keys must fit every optimizer."""
    cfg = compose_cfg(f"experiment={experiment}", f"optimizer={optimizer}")
    instantiate(cfg.optimizer)(params=[torch.nn.Parameter(torch.zeros(2))])


def test_paper_presets_match_table_1(compose_cfg):
    """The three columns of Table 1 (Hennig et al.) as presets."""
    rows = {
        # batch, optimizer, lr, epochs, weight/int/frac bits, depth, type, rounding, wd
        "paper_default": (
            128,
            "torch.optim.SGD",
            0.1,
            200,
            5,
            16,
            16,
            20,
            "PS",
            "deterministic",
            1e-4,
        ),
        "pos1": (97, "dsnn.optim.Ranger", 0.0847, 67, 4, 4, 4, 5, "Q", "stochastic", 0.0026),
        "pos2": (102, "torch.optim.SGD", 0.0798, 91, 7, 29, 10, 16, "Q", "deterministic", 0.00012),
    }
    for experiment, row in rows.items():
        c = compose_cfg(f"experiment={experiment}")
        q = c.quantization
        got = (
            c.data.batch_size, c.optimizer._target_, c.optimizer.lr, c.trainer.max_epochs,
            q.weight_bits, q.activation_integer_bits, q.activation_fraction_bits,
            c.shift_depth, q.shift_type, q.rounding, c.optimizer.weight_decay,
        )  # fmt: skip
        assert got == row, experiment
    assert compose_cfg("experiment=paper_default").optimizer.momentum == 0.9
    assert compose_cfg("experiment=pos2").optimizer.momentum == 0.6738


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("quantization.weight_bits=1", "quantization.weight_bits"),
        ("quantization.weight_bits=9", "[2, 8]"),
        ("quantization.activation_integer_bits=33", "quantization.activation_integer_bits"),
        ("quantization.activation_fraction_bits=1", "[2, 32]"),
        ("quantization.shift_type=X", "quantization.shift_type"),
        ("quantization.rounding=up", "quantization.rounding"),
        ("shift_depth=-1", "shift_depth=-1"),
        ("data.fraction=0", "data.fraction=0"),
        ("data.fraction=1.5", "(0, 1]"),
        ("data.val_fraction=0", "data.val_fraction=0"),
        ("data.val_fraction=1.5", "(0, 1]"),
        ("data.batch_size=0", "data.batch_size"),
        ("optimizer.lr=-0.1", "optimizer.lr"),
        ("optimizer.momentum=1.0", "optimizer.momentum"),
        ("optimizer.weight_decay=-1", "optimizer.weight_decay"),
        ("trainer.max_epochs=0", "trainer.max_epochs"),
        ("energy.country_iso_code=Germany", "energy.country_iso_code"),
        ("seed=-3", "seed"),
        # CodeCarbon would use the world average for a code it does not know
        ("energy.country_iso_code=XXX", "energy.country_iso_code"),
        ("energy.country_iso_code=deu", "did you mean 'DEU'"),
        ("data.val_size=0", "data.val_size"),  # train() reports val/*
        ("data.val_size=50000", "[1, 50000)"),  # CIFAR-10's training images
        ("data.val_size=2.5", "data.val_size"),
        ("model.width=0", "model.width"),
        ("optimizer.lr=inf", "optimizer.lr"),
        ("optimizer.lr=nan", "optimizer.lr"),
        ("optimizer.lr=0", "(0, inf)"),
        ("optimizer.weight_decay=inf", "optimizer.weight_decay"),
        ("logger.wandb.mode=bogus", "online, offline, disabled"),
    ],
)
def test_bad_values_name_key_value_and_range(compose_cfg, override, needle):
    cfg = compose_cfg(override)
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    message = str(err.value)
    assert needle in message
    assert override.split("=", 1)[1] in message  # the value is named


def compose_evaluate(*overrides: str):
    """The config of `python evaluate.py overrides...` (without Hydra's own node)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("evaluate", overrides=list(overrides))


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["mode=bogus"], "checkpoint, sweep, figure1, table1"),
        (["wandb.mode=bogus"], "online, offline, disabled"),
        (["energy.country_iso_code=XXX"], "energy.country_iso_code"),
        (["mode=checkpoint", "checkpoint=null"], "checkpoint=<path>"),
        (["mode=checkpoint", "checkpoint=/no/such/run"], "no such file or folder"),
        (["mode=sweep", "sweep_dir=/no/such/sweep"], "sweep_dir='/no/such/sweep'"),
        (["mode=table1", "seeds=0"], "seeds=0"),
        (["device=tpu"], "cpu, cuda, auto"),
        (["verify_images=-1"], "verify_images=-1"),
    ],
)
def test_bad_evaluate_values_name_key_value_and_range(tmp_path, overrides, needle):
    from dsnn.evaluation import MODES

    cfg = compose_evaluate(f"checkpoint={tmp_path}", *overrides)
    try:
        with pytest.raises(ConfigError, match=re.escape(needle)):
            check_evaluate_config(cfg, tuple(MODES))
    finally:
        GlobalHydra.instance().clear()
    assert check_evaluate_config(compose_evaluate(f"checkpoint={tmp_path}"), tuple(MODES)) is None


def test_shift_depth_beyond_the_model_is_an_error(compose_cfg):
    cfg = compose_cfg("shift_depth=21")
    # a ConfigError: train.py prints it as one line (dsnn/cli.py)
    with pytest.raises(ConfigError, match=r"shift_depth.*\[0, 20\].*21"):
        build_network(cfg, in_channels=3, num_classes=10)
    cfg = compose_cfg("model=small_cnn", "shift_depth=5")
    with pytest.raises(ConfigError, match=r"shift_depth.*\[0, 4\].*5"):
        build_network(cfg, in_channels=1, num_classes=10)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("quantization.weight_bits=1", "quantization.weight_bits"),
        ("shift_depth=25", "shift_depth"),
        ("optimizer=lion", "optimizer"),
    ],
)
def test_train_py_exits_nonzero_before_any_work(tmp_path, override, needle):
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "experiment=demo", override,
         f"hydra.run.dir={tmp_path}", "logger=none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert needle in result.stderr + result.stdout
    assert not (tmp_path / "model.pt").exists()
    assert "Epoch 0" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("script", "overrides", "line"),
    [
        # a config error before any work
        ("train.py", ["energy.country_iso_code=XXX"], "error: energy.country_iso_code='XXX' is"),
        # a data error: CIFAR-10 missing, no download
        ("train.py", ["data=cifar10", "data.root=missing", "data.download=false"],
         "error: CIFAR-10 not found: missing"),
        ("evaluate.py", ["wandb.mode=bogus"], "error: wandb.mode='bogus' is invalid; allowed:"),
    ],
)  # fmt: skip
def test_config_and_data_errors_print_one_line_and_exit_1(tmp_path, script, overrides, line):
    start = time.monotonic()
    quiet = ["logger=none"] if script == "train.py" else []
    result = subprocess.run(
        [sys.executable, str(ROOT / script), f"hydra.run.dir={tmp_path / 'run'}", *quiet,
         *overrides],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(line), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "run" / "model.pt").exists()
    assert "Epoch 0" not in result.stderr + result.stdout
    assert time.monotonic() - start < 60


def test_hydra_full_error_keeps_the_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "mode=bogus", f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=os.environ | {"HYDRA_FULL_ERROR": "1"},
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "ConfigError: mode='bogus' is invalid" in result.stderr


def test_shift_penalty_follows_weight_decay_unless_set(compose_cfg):
    assert compose_cfg("optimizer.weight_decay=0.003").shift_penalty == 0.003
    assert compose_cfg("shift_penalty=0").shift_penalty == 0
    assert OmegaConf.select(compose_cfg(), "shift_penalty") == 1e-4


def test_one_energy_group_serves_train_and_evaluate(compose_cfg):
    """conf/energy/ holds the one `energy:` block of both entry configs; overrides reach both."""
    train_cfg = compose_cfg("energy.country_iso_code=FRA")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        evaluate_cfg = compose("evaluate", overrides=["energy.country_iso_code=FRA"])
        default = compose("evaluate").energy
    assert default == OmegaConf.load(CONF / "energy" / "codecarbon.yaml")
    assert train_cfg.energy == evaluate_cfg.energy
    assert EnergyMeter(**evaluate_cfg.energy).country_iso_code == "FRA"
    assert EnergyMeter(**train_cfg.energy).country_iso_code == "FRA"
