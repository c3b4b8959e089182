"""What a file read from disk may name: files hold data, never code.

A model export (`.dsnn`) names its network and its data by a registered name
(`dsnn.models.MODELS`, `dsnn.data.DATA`) with plain-typed arguments; a run config read
back from disk (a run's `.hydra/config.yaml`, the run config inside an export, a sweep
trial's config) may only name the `_target_`s that conf/ ships (`ALLOWED_TARGETS`), and
only interpolate with resolvers that run no code. Each check runs before anything is
instantiated and raises `UnsafeFileError` naming the file and the offending entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dsnn.config_checks import ConfigError

# Every `_target_` in conf/ (tests/test_safe_files.py keeps the two in step)
ALLOWED_TARGETS = frozenset(
    {
        "dsnn.data.CIFAR10DataModule",
        "dsnn.data.FashionMNISTDataModule",
        "dsnn.models.ResNet20",
        "dsnn.models.SmallCNN",
        "dsnn.optim.Ranger",
        "torch.optim.Adadelta",
        "torch.optim.Adagrad",
        "torch.optim.Adam",
        "torch.optim.RAdam",
        "torch.optim.RMSprop",
        "torch.optim.SGD",
        "torch.optim.lr_scheduler.CosineAnnealingLR",
        "lightning.pytorch.Trainer",
        "lightning.pytorch.callbacks.ModelCheckpoint",
        "lightning.pytorch.loggers.CSVLogger",
        "lightning.pytorch.loggers.WandbLogger",
    }
)
# Interpolation resolvers that only read (oc.decode / oc.create would build new nodes)
ALLOWED_RESOLVERS = frozenset({"oc.env", "hydra", "now"})
_RESOLVER = re.compile(r"\$\{\s*([^\s:{}]+)\s*:")
PLAIN = (int, float, str, bool, type(None))


class UnsafeFileError(ConfigError):
    """A file read from disk names something that is not plain data or not allowed."""


def check_targets(cfg: DictConfig | Mapping, where: str) -> None:
    """Every `_target_` of a config read from `where` is allowlisted, no interpolation uses
    a resolver outside ALLOWED_RESOLVERS; else UnsafeFileError. Nothing is resolved."""
    node = OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg
    if not isinstance(node, dict):
        raise UnsafeFileError(f"{where}: a run config must be a mapping, not {type(node).__name__}")
    for path, key, value in _walk(node, ""):
        if key == "_target_" and not (isinstance(value, str) and value in ALLOWED_TARGETS):
            raise UnsafeFileError(
                f"{where}: {path}={value!r} is not a target this project ships; a config read "
                "from disk may only name these: " + ", ".join(sorted(ALLOWED_TARGETS))
            )
        if isinstance(value, str):
            for resolver in _RESOLVER.findall(value):
                if resolver not in ALLOWED_RESOLVERS:
                    raise UnsafeFileError(
                        f"{where}: {path}={value!r} uses the resolver {resolver!r}; a config "
                        f"read from disk may only use {', '.join(sorted(ALLOWED_RESOLVERS))}"
                    )


def check_plain(value: Any, where: str, path: str) -> None:
    """`value` is int/float/str/bool/None or lists/dicts (str keys, no `_target_`) of
    those; else UnsafeFileError."""
    for item_path, key, item in _walk(value, path):
        if key == "_target_":
            raise UnsafeFileError(
                f"{where}: {item_path} names a _target_; only plain data is allowed here "
                "(int, float, str, bool, None, or lists of those)"
            )
        if not isinstance(item, (dict, list, *PLAIN)):
            raise UnsafeFileError(
                f"{where}: {item_path} is a {type(item).__name__}, not plain data "
                "(int, float, str, bool, None, or lists of those)"
            )


def registered(registry: Mapping[str, type], name: Any, where: str, path: str) -> type:
    """The class registered as `name`; UnsafeFileError for any other name."""
    if not isinstance(name, str) or name not in registry:
        raise UnsafeFileError(
            f"{where}: {path}={name!r} is not a registered name; allowed: "
            + ", ".join(sorted(registry))
        )
    return registry[name]


def registered_name(
    registry: Mapping[str, type], package: str, target: Any, where: str, path: str
) -> str:
    """The registered name of a `_target_` (`package.ClassName`, as conf/ writes it)."""
    for name, cls in registry.items():
        if target == f"{package}.{cls.__name__}":
            return name
    raise UnsafeFileError(
        f"{where}: {path}={target!r} is not one of the registered classes "
        f"({', '.join(f'{package}.{c.__name__}' for c in registry.values())})"
    )


def _walk(node: Any, path: str):
    """(path, key, value) of `node` itself (key None), then of every entry below it."""
    yield path or "<root>", None, node
    yield from _entries(node, path)


def _entries(node: Any, path: str):
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise UnsafeFileError(f"{path or '<root>'} has a key of type {type(key).__name__}")
            child = f"{path}.{key}" if path else key
            yield child, key, value
            yield from _entries(value, child)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield f"{path}[{i}]", None, value
            yield from _entries(value, f"{path}[{i}]")
