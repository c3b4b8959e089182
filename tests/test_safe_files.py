"""Files hold data, never code: crafted exports and run configs are refused before anything
is built from them (dsnn/safe_files.py, dsnn/network.py, dsnn/evaluation/checkpoint.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from dsnn.evaluation.checkpoint import find_source
from dsnn.models import SmallCNN
from dsnn.network import build_from_spec
from dsnn.safe_files import ALLOWED_TARGETS, UnsafeFileError, check_targets
from dsnn.shift import ShiftConfig, convert_to_shift
from dsnn.shift.export import load_exported, save_exported
from tests.conftest import CONF, ROOT

QUANT = ShiftConfig("PS", 5, 8, 8).as_dict()


def _spec(model) -> dict:
    return {"model": model, "in_channels": 1, "num_classes": 10, "shift_depth": 4,
            "quantization": QUANT}  # fmt: skip


def _net():
    return convert_to_shift(SmallCNN(1, 10, 4), 4, ShiftConfig(**QUANT)).eval()


def test_allowlist_is_every_target_conf_ships():
    shipped = set()
    for path in CONF.rglob("*.yaml"):
        shipped |= set(re.findall(r"^\s*_target_:\s*(\S+)", path.read_text(), re.M))
    assert shipped == ALLOWED_TARGETS


def test_a_spec_by_registered_name_builds_and_round_trips(tmp_path):
    net = _net()
    save_exported(net, tmp_path / "m.dsnn", _spec({"name": "small_cnn", "args": {"width": 4}}))
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(load_exported(tmp_path / "m.dsnn")(x), net(x))


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        # an old export's target that is not a registered network
        (lambda m: {"_target_": "pathlib.Path.touch", "self": m}, "refused: re-export the model"),
        # a registered network with a nested target in its arguments
        (lambda m: {"_target_": "dsnn.models.SmallCNN",
                    "width": {"_target_": "pathlib.Path.touch", "self": m}}, "width._target_"),
        (lambda m: {"name": "small_cnn", "args": {"width": {"_target_": "pathlib.Path.touch",
                                                           "self": m}}}, "width._target_"),
        (lambda m: {"name": "pathlib.Path.touch", "args": {"self": m}}, "not a registered name"),
        (lambda m: {"name": "small_cnn", "args": {"width": 4}, "_args_": [m]}, "{name, args}"),
    ],
)  # fmt: skip
def test_a_crafted_export_is_refused_without_running_anything(tmp_path, model, needle):
    marker = tmp_path / "marker"
    path = tmp_path / "crafted.dsnn"
    save_exported(_net(), path, _spec(model(str(marker))))
    with pytest.raises(UnsafeFileError, match=re.escape(needle)) as err:
        load_exported(path)
    assert str(path) in str(err.value)
    assert not marker.exists()
    with pytest.raises(UnsafeFileError):
        build_from_spec(_spec(model(str(marker))))
    assert not marker.exists()


def _run_with_config(tmp_path, config: dict):
    """A run folder: model.pt and a .hydra/config.yaml written as given."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    torch.save(SmallCNN(1, 10, 4).state_dict(), run / "model.pt")
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    return run


@pytest.mark.parametrize(
    ("node", "needle"),
    [
        ({"_target_": "pathlib.Path.touch", "self": "{marker}"}, "data._target_='pathlib.Path"),
        ({"_target_": "dsnn.data.FashionMNISTDataModule",
          "root": {"_target_": "pathlib.Path.touch", "self": "{marker}"}}, "data.root._target_"),
        ({"_target_": "dsnn.data.FashionMNISTDataModule",
          "root": "${oc.decode:'{_target_: pathlib.Path.touch, self: {marker}}'}"}, "oc.decode"),
    ],
)  # fmt: skip
def test_a_crafted_run_config_next_to_a_checkpoint_is_refused(tmp_path, node, needle):
    marker = tmp_path / "marker"
    node = yaml.safe_load(yaml.safe_dump(node).replace("{marker}", str(marker)))
    run = _run_with_config(tmp_path, {"data": node, "model": {"_target_": "dsnn.models.SmallCNN"}})
    with pytest.raises(UnsafeFileError, match=re.escape(needle)) as err:
        find_source(str(run))
    assert str(run / ".hydra" / "config.yaml") in str(err.value)
    assert not marker.exists()


def test_the_run_config_inside_an_old_export_is_checked_too(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "old.dsnn"
    run_yaml = OmegaConf.to_yaml({"data": {"_target_": "pathlib.Path.touch", "self": str(marker)}})
    save_exported(_net(), path, _spec({"_target_": "dsnn.models.SmallCNN", "width": 4}), run_yaml)
    with pytest.raises(UnsafeFileError, match="its run_config.*data._target_"):
        find_source(str(path))
    assert not marker.exists()


def test_shipped_configs_pass_the_check(compose_cfg):
    cfg = compose_cfg("logger=wandb", "optimizer=ranger", "scheduler=cosine")
    check_targets(OmegaConf.create(OmegaConf.to_yaml(cfg)), "the composed config")


def test_evaluate_py_refuses_a_crafted_export_in_one_line(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "crafted.dsnn"
    model = {"_target_": "dsnn.models.SmallCNN",
             "width": {"_target_": "pathlib.Path.touch", "self": str(marker)}}  # fmt: skip
    save_exported(_net(), path, _spec(model))
    result = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "mode=checkpoint", f"checkpoint={path}",
         "wandb.mode=disabled", "energy.enabled=false", f"hydra.run.dir={tmp_path / 'eval'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(f"error: {path}: spec.model.width._target_")
    assert "Traceback" not in result.stderr
    assert not marker.exists()
