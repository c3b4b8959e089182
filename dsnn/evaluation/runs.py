"""Training runs of an evaluation: configs composed like `python train.py ...` or read from
a saved run, then `train(cfg)` (dsnn/training.py) -- no second training loop."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from dsnn.training import train

log = logging.getLogger(__name__)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_train_config(overrides: Sequence[str]) -> DictConfig:
    """The job config of `python train.py overrides...` (Hydra overrides, groups included)."""
    overrides = [str(o) for o in overrides]
    if GlobalHydra.instance().is_initialized():  # inside @hydra.main of evaluate.py
        return compose("config", overrides=overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


def apply_dotlist(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """`key=value` overrides on a saved (flat) config; `+key=` / `++key=` may add keys.

    Values are parsed as YAML (100 -> int). A config group choice (`trainer=gpu`) cannot
    apply to a saved config: set its keys instead (`trainer.accelerator=gpu`).
    """
    cfg = cfg.copy()
    for override in overrides:
        key, sep, value = str(override).partition("=")
        if not sep:
            raise ValueError(f"override {override!r} is not key=value")
        adding = key.startswith("+")
        key = key.lstrip("+")
        current = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
        if current is _ABSENT and not adding:
            raise KeyError(f"override {override!r}: no key {key!r} in the saved config (use ++)")
        if isinstance(current, DictConfig):
            raise ValueError(
                f"override {override!r}: {key!r} is a config node of the saved run, not a "
                f"value; set its keys (e.g. {key}.<name>=...)"
            )
        parsed = OmegaConf.from_dotlist([f"v={value}"]).v
        with open_dict(cfg):
            OmegaConf.update(cfg, key, parsed, merge=False, force_add=True)
    return cfg


_ABSENT = object()


def run_training(cfg: DictConfig, output_dir: Path, values: Mapping[str, Any]) -> dict[str, Any]:
    """train(cfg) with `paths.output_dir` and the given keys set; never raises.

    Returns {"status": "success" | "crashed", "output_dir", "error", **objectives}.
    """
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        for key, value in values.items():
            OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg), encoding="utf-8")
    record: dict[str, Any] = {"status": "success", "output_dir": str(output_dir), "error": ""}
    try:
        record |= train(cfg)
    except Exception:  # one failed run must not lose the others (hours on a GPU)
        error = traceback.format_exc()
        log.error(f"training run in {output_dir} failed:\n{error}")
        record |= {"status": "crashed", "error": error.strip().splitlines()[-1]}
    return record


def seed_list(seeds: int | None, default: int) -> list[int]:
    """Seeds 0..n-1 (n = `seeds`, or `default` when null)."""
    n = default if seeds is None else int(seeds)
    if n < 1:
        raise ValueError(f"seeds={seeds} must be >= 1")
    return list(range(n))
