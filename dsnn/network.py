"""The one place that turns a run's config, or an export's spec, into a DSNN and its
LightningModule, and that loads weights into it.

A spec is the plain-typed description of a network that an export stores:

    model         {"name": a registered network (dsnn.models.MODELS), "args": {width ...}}
    in_channels   of the data (from the data module)
    num_classes   of the data (from the data module)
    shift_depth   weight layers converted to shifts, counted from the classifier
    quantization  ShiftConfig fields
    data          (exports) {"name": a registered data module (dsnn.data.DATA), "args": ...}

A spec holds data only: `build_from_spec` looks the model's name up in the registry and
calls the class with the checked plain arguments; it never instantiates a `_target_` taken
from a file. An old export's `model` (a `_target_` and its arguments) is accepted when the
target is a registered network and every argument is plain (dsnn/safe_files.py). A run
config builds through its spec (`network_spec`), so `build_from_spec` is the only function
that instantiates what a config or a file names.

Weights on disk are data, read with `weights_only=True`: a plain state_dict (model.pt) or a
Lightning checkpoint, whose network entries carry the `net.` prefix of
`DSNNLitModule.net`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from dsnn.config_checks import ConfigError
from dsnn.lit_module import DSNNLitModule
from dsnn.models import MODELS
from dsnn.safe_files import UnsafeFileError, check_plain, registered, registered_name
from dsnn.shift import ShiftConfig, convert_to_shift
from dsnn.shift.convert import ShiftDepthError


class PretrainedFileError(ConfigError, FileNotFoundError):
    """pretrained= names no file."""


LIGHTNING_PREFIX = "net."  # DSNNLitModule keeps the network as `self.net`
SPEC_KEYS = {"model", "in_channels", "num_classes", "shift_depth", "quantization", "data"}


def network_spec(cfg: DictConfig, in_channels: int, num_classes: int) -> dict[str, Any]:
    """The spec (see the module docstring) of the network a run config describes."""
    return {
        "model": named(MODELS, "dsnn.models", cfg.model, "the run config", "model"),
        "in_channels": in_channels,
        "num_classes": num_classes,
        "shift_depth": cfg.shift_depth,
        "quantization": OmegaConf.to_container(cfg.quantization, resolve=True),
    }


def data_spec(cfg: DictConfig) -> dict[str, Any]:
    """The export's `data` entry: the registered name and plain arguments of `cfg.data`."""
    from dsnn.data import DATA

    return named(DATA, "dsnn.data", cfg.data, "the run config", "data")


def named(
    registry: Mapping[str, type], package: str, node: Any, where: str, path: str
) -> dict[str, Any]:
    """{"name", "args"} of a config node with a `_target_` in `registry` and plain args."""
    args = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    if not isinstance(args, dict):
        raise UnsafeFileError(f"{where}: {path} is a {type(args).__name__}, not a mapping")
    args = dict(args)
    name = registered_name(registry, package, args.pop("_target_", None), where, path)
    check_plain(args, where, path)
    return {"name": name, "args": args}


def spec_entry(
    registry: Mapping[str, type], package: str, node: Any, where: str, path: str
) -> dict[str, Any]:
    """{"name", "args"} of a spec entry, checked: {"name", "args"} with a registered name,
    or an old export's {"_target_", **args} whose target is registered; plain args only."""
    if isinstance(node, dict) and "_target_" in node:  # an export of an earlier version
        try:
            return named(registry, package, node, where, path)
        except UnsafeFileError as err:
            raise UnsafeFileError(f"{err}; refused: re-export the model with this version") from err
    if not isinstance(node, dict) or set(node) - {"name", "args"}:
        raise UnsafeFileError(f"{where}: {path} must be {{name, args}}, got {node!r:.200}")
    registered(registry, node.get("name"), where, f"{path}.name")
    args = node.get("args") or {}
    if not isinstance(args, dict):
        raise UnsafeFileError(f"{where}: {path}.args is not a mapping")
    check_plain(args, where, f"{path}.args")
    return {"name": node["name"], "args": args}


def check_spec(spec: Any, where: str) -> dict[str, Any]:
    """A spec holds only the known keys and plain values; -> its checked model entry."""
    if not isinstance(spec, dict) or set(spec) - SPEC_KEYS:
        extra = sorted(set(spec) - SPEC_KEYS) if isinstance(spec, dict) else spec
        raise UnsafeFileError(f"{where}: the spec has unknown entries {extra!r:.200}")
    for key in SPEC_KEYS - {"model", "data"}:
        check_plain(spec.get(key), where, f"spec.{key}")
    return spec_entry(MODELS, "dsnn.models", spec.get("model"), where, "spec.model")


def build_from_spec(
    spec: dict[str, Any], pretrained: str | None = None, where: str = "the spec"
) -> nn.Module:
    """The float network a spec names, with `pretrained` float weights loaded if given,
    then its last `shift_depth` weight layers made shift layers: converted from the float
    weights (Q, or `pretrained` given), else freshly initialised PS layers."""
    model = check_spec(spec, where)
    net = MODELS[model["name"]](
        **model["args"], in_channels=spec["in_channels"], num_classes=spec["num_classes"]
    )
    if pretrained:
        load_float_weights(net, pretrained)
    config = ShiftConfig(**spec["quantization"])
    # DeepShift's rule: PS layers start from the float weights only when there are trained
    # ones; from scratch they start from their own init (`ShiftConfig.ps_init`). A Q layer's
    # own init is the float layer's, so Q always converts (the same weights either way).
    convert = bool(pretrained) or config.shift_type != "PS"
    return convert_to_shift(net, spec["shift_depth"], config, convert_weights=convert)


def build_network(cfg: DictConfig, in_channels: int, num_classes: int) -> nn.Module:
    """The network of `cfg.model`, pretrained if asked, with `shift_depth` layers shifted."""
    try:
        return build_from_spec(network_spec(cfg, in_channels, num_classes), cfg.get("pretrained"))
    except ShiftDepthError as err:  # its range is the model's: known once the model is built
        raise ConfigError(str(err)) from err


def build_lit_module(cfg: DictConfig, datamodule) -> DSNNLitModule:
    """The LightningModule that trains the network of `cfg` on `datamodule`'s data."""
    net = build_network(cfg, datamodule.in_channels, datamodule.num_classes)
    return DSNNLitModule(
        net,
        num_classes=datamodule.num_classes,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        shift_penalty=cfg.shift_penalty,
        shift_lr_scale=cfg.get("shift_lr_scale", 1.0),
        scheduler_interval=cfg.get("schedule_interval", "epoch"),
    )


def image_shape(datamodule) -> tuple[int, int, int]:
    """(C, H, W) of one input image of the data module."""
    return (datamodule.in_channels, datamodule.image_size, datamodule.image_size)


def is_lightning_checkpoint(state: Any) -> bool:
    """Whether a loaded file is a Lightning checkpoint (else a plain state_dict)."""
    return isinstance(state, dict) and "state_dict" in state


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The network's state_dict from a plain state_dict file or a Lightning checkpoint."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if is_lightning_checkpoint(state):
        return {
            k.removeprefix(LIGHTNING_PREFIX): v
            for k, v in state["state_dict"].items()
            if k.startswith(LIGHTNING_PREFIX)
        }
    return state


def load_float_weights(net: nn.Module, path: str) -> None:
    """Load a float checkpoint of this project: a Lightning .ckpt or a plain state_dict."""
    if not Path(path).is_file():
        raise PretrainedFileError(
            f"pretrained={path!r}: no such file; train one with shift_depth=0 "
            "(`make pretrained`) or set pretrained=null"
        )
    try:
        net.load_state_dict(read_state_dict(path))
    except RuntimeError as err:
        detail = [line.strip() for line in str(err).splitlines()[1:2]]  # the first mismatch
        raise ConfigError(
            f"pretrained={path!r} does not fit model {type(net).__name__}: it must be a float "
            f"checkpoint (shift_depth=0) of the same model and data shape ({', '.join(detail)})"
        ) from err


def load_trained(cfg: DictConfig, in_channels: int, num_classes: int, path: Path) -> nn.Module:
    """The network of a run config with its trained weights from `path` (model.pt or a
    Lightning checkpoint); the run's `pretrained` is not read, the weights replace it."""
    net = build_from_spec(network_spec(cfg, in_channels, num_classes))
    net.load_state_dict(read_state_dict(path))
    return net
