"""Early validation: a bad value stops the run before any work, naming key, value and range.

Layer settings (quantization.*) and energy settings are validated by their own
dataclasses (`ShiftConfig`, `EnergyMeter`); data settings by the DataModules; the shift
depth against the model by `convert_to_shift`. Here: the keys that no constructor checks
with a message that names the key, the country against CodeCarbon's own table, and
evaluate.py's keys (`check_evaluate_config`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hydra.utils import get_class
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
        if not math.isfinite(value):  # inf and nan are never a setting
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
    "shift_lr_scale": Range(0, low_open=True),
    "trainer.max_epochs": Range(1, integer=True),
    "data.batch_size": Range(1, integer=True),
    "data.fraction": Range(0, 1, low_open=True),
    "data.val_fraction": Range(0, 1, low_open=True),
    "model.width": Range(1, integer=True),
}
# schedule_epochs: in [trainer.max_epochs, inf) (a shorter schedule would rise again)
WANDB_MODES = ("online", "offline", "disabled")
SCHEDULE_INTERVALS = ("epoch", "step")  # when the LR scheduler steps (schedule_interval)
CHOICES: dict[str, tuple[str, ...]] = {
    "logger.wandb.mode": WANDB_MODES,
    "schedule_interval": SCHEDULE_INTERVALS,
}
EVALUATE_RANGES: dict[str, Range] = {
    "seeds": Range(1, integer=True),
    "test_images": Range(1, integer=True),
    "verify_images": Range(0, integer=True),
}
EVALUATE_CHOICES: dict[str, tuple[str, ...]] = {
    "wandb.mode": WANDB_MODES,
    "device": ("cpu", "cuda", "auto"),
}
# what each evaluate.py mode cannot run without
EVALUATE_NEEDS = {"checkpoint": "checkpoint", "sweep": "sweep_dir"}


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first key outside its range; build the checked dataclasses."""
    from dsnn.shift import ShiftConfig

    schedule = Range(OmegaConf.select(cfg, "trainer.max_epochs", default=1), integer=True)
    check_keys(
        cfg, RANGES | {"data.val_size": val_size_range(cfg), "schedule_epochs": schedule}, CHOICES
    )
    scheduler = cfg.get("scheduler") or {}
    if cfg.get("schedule_interval") == "step" and scheduler and "T_max" not in scheduler:
        raise ConfigError(
            f"schedule_interval=step needs a scheduler whose period is T_max in epochs "
            f"(scheduler=cosine); got {scheduler.get('_target_')}"
        )
    with key_prefix("quantization"):
        ShiftConfig(**cfg.quantization)
    check_energy(cfg.energy)


def check_evaluate_config(cfg: DictConfig, modes: tuple[str, ...]) -> None:
    """`check_config` for evaluate.py: the mode, its other keys, what the mode needs, energy."""
    check_keys(cfg, EVALUATE_RANGES, {"mode": modes} | EVALUATE_CHOICES)
    needed = EVALUATE_NEEDS.get(cfg.mode)
    if needed and not cfg.get(needed):
        raise ConfigError(f"mode={cfg.mode} needs {needed}=<path>; got {needed}={cfg.get(needed)}")
    if needed and not Path(cfg[needed]).exists():
        raise ConfigError(f"{needed}={cfg[needed]!r}: no such file or folder")
    check_energy(cfg.energy)


def check_keys(cfg: DictConfig, ranges: dict[str, Range], choices: dict[str, tuple]) -> None:
    """Raise ConfigError for the first key (when present) outside its range or choices."""
    for key, allowed in ranges.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not allowed.contains(value):
            raise ConfigError(f"{key}={value!r} is out of range: allowed {allowed}")
    for key, options in choices.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and value not in options:
            raise ConfigError(f"{key}={value!r} is invalid; allowed: {', '.join(options)}")


def val_size_range(cfg: DictConfig) -> Range:
    """At least one validation image (train() reports val/*), fewer than the data set's
    official training images (the DataModule class says how many)."""
    target = OmegaConf.select(cfg, "data._target_", default=None)
    size = getattr(get_class(target), "official_train_size", math.inf) if target else math.inf
    return Range(1, size, integer=True, high_open=True)


def check_energy(energy: DictConfig) -> None:
    """EnergyMeter's checks, then the country against the table CodeCarbon's offline tracker
    reads (it would silently use the world average for a code it does not know)."""
    from dsnn.energy.measured import EnergyMeter

    with key_prefix("energy"):
        EnergyMeter(**energy)
    code = energy.country_iso_code
    known = codecarbon_countries()
    if code not in known:
        hint = f"; did you mean {code.upper()!r}?" if code.upper() in known else ""
        raise ConfigError(
            f"energy.country_iso_code={code!r} is not a country CodeCarbon knows: allowed one "
            f"of the {len(known)} 3-letter ISO codes in its global_energy_mix.json (DEU, FRA, "
            f"USA ...){hint}"
        )


def codecarbon_countries() -> set[str]:
    """The ISO codes of CodeCarbon's global energy mix table (its offline country lookup)."""
    from codecarbon.input import DataSource  # deferred: reads CodeCarbon's data files

    return set(DataSource().get_global_energy_mix_data())


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
