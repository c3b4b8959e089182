"""Early validation: a bad value stops the run before any work, naming key, value and range.

Layer settings (quantization.*) and energy settings are validated by their own
dataclasses (`ShiftConfig`, `EnergyMeter`); data settings by the DataModules; the shift
depth against the model by `convert_to_shift`. Here: the keys that no constructor checks
with a message that names the key.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config value outside its allowed range."""


@dataclass(frozen=True)
class Range:
    low: float
    high: float = math.inf
    integer: bool = False
    low_open: bool = False  # (low, high] instead of [low, high]
    high_open: bool = False

    def contains(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open or math.isinf(self.high) else "]"
        kind = "an integer" if self.integer else "a number"
        return f"{kind} in {left}{self.low:g}, {self.high:g}{right}"


# Keys checked when present. data.*, quantization.* and energy.* are checked by the
# classes they configure; repeated here only where the key name helps the user most.
RANGES: dict[str, Range] = {
    "seed": Range(0, 2**32 - 1, integer=True),
    "shift_depth": Range(0, integer=True),
    "optimizer.lr": Range(0, low_open=True),
    "optimizer.momentum": Range(0, 1, high_open=True),
    "optimizer.weight_decay": Range(0),
    "shift_penalty": Range(0),  # after weight_decay, which it follows by default
    "trainer.max_epochs": Range(1, integer=True),
    "data.batch_size": Range(1, integer=True),
    "data.fraction": Range(0, 1, low_open=True),
}


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first key outside its range; build the checked dataclasses."""
    from dsnn.energy.measured import EnergyMeter
    from dsnn.shift import ShiftConfig

    for key, allowed in RANGES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not allowed.contains(value):
            raise ConfigError(f"{key}={value!r} is out of range: allowed {allowed}")
    with key_prefix("quantization"):
        ShiftConfig(**cfg.quantization)
    with key_prefix("energy"):
        EnergyMeter(**cfg.energy)


@contextmanager
def key_prefix(group: str) -> Iterator[None]:
    """Re-raise a dataclass's ValueError as ConfigError with the config group in front."""
    try:
        yield
    except ConfigError:
        raise
    except ValueError as err:
        message = str(err) if str(err).startswith(f"{group}.") else f"{group}.{err}"
        raise ConfigError(message) from err
