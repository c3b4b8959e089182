"""Continuing a training run: `resume_from=<run dir | .ckpt>` (conf/config.yaml).

Lightning's `trainer.fit(ckpt_path=...)` restores weights, optimizer, LR scheduler and the
epoch counter. For an exact continuation (3 epochs, then 6 more == 9 epochs in one go) two
more things travel in the checkpoint: the global torch/numpy/python RNG states
(`RNGStateCallback`) and the train loader's shuffling generator (the DataModule's
`state_dict`, dsnn/data/base.py). The LR schedule spans `schedule_epochs`, not the run's own
`trainer.max_epochs`, so that a short run's schedule is the first part of a long one's.
On CPU with `trainer.deterministic=true`, 1 + 2 epochs give bit for bit the weights of 3 in
one go (tests/test_resume.py), for Q and PS, with and without per-epoch validation.

A run also leaves `train_totals.json` in its run dir: its cumulative measured training
energy, emissions, time and epochs. A continued run adds its own stage to the totals it finds
next to the checkpoint, so `energy/train_kwh` means the same as for an uninterrupted run.
Everything here reads files as data: the checkpoint is opened with `weights_only=True`.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch

log = logging.getLogger(__name__)

TOTALS_FILE = "train_totals.json"


@dataclass(frozen=True)
class TrainTotals:
    """Measured training cost of a run's stages so far (all zeros for a fresh run)."""

    energy_kwh: float = 0.0
    emissions_g: float = 0.0
    time_s: float = 0.0
    epochs: int = 0

    def plus(self, energy_kwh: float, emissions_g: float, time_s: float, epochs: int):
        return TrainTotals(
            self.energy_kwh + energy_kwh,
            self.emissions_g + emissions_g,
            self.time_s + time_s,
            self.epochs + epochs,
        )


@dataclass(frozen=True)
class Resume:
    """Where a run continues from: the checkpoint (None: from scratch), its epoch, and the
    earlier stages' totals."""

    ckpt: Path | None = None
    epoch: int = 0  # epochs the checkpoint has trained
    earlier: TrainTotals = TrainTotals()


def find_resume(resume_from: str | None) -> Resume:
    """The checkpoint `resume_from` names (a run dir means its checkpoints/last.ckpt).
    Missing or unreadable: a warning, and the run trains from scratch."""
    if not resume_from:
        return Resume()
    path = Path(str(resume_from))
    ckpt = path / "checkpoints" / "last.ckpt" if path.is_dir() else path
    if not ckpt.is_file():
        log.warning("resume_from=%s: no checkpoint at %s; training from scratch", path, ckpt)
        return Resume()
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        # epochs whose training finished (state["epoch"] depends on when it was saved)
        epoch = int(state["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
        _ = state["state_dict"]
    except Exception as err:
        log.warning("resume_from=%s: cannot read %s (%s); training from scratch", path, ckpt, err)
        return Resume()
    earlier = read_totals(ckpt)
    log.info("Continuing from %s (%d epochs trained)", ckpt, epoch)
    return Resume(ckpt=ckpt, epoch=epoch, earlier=earlier)


def read_totals(ckpt: Path) -> TrainTotals:
    """The totals a run left next to its checkpoint (its run dir or the checkpoint's own
    folder); none: a warning, and only this stage is counted."""
    for folder in (ckpt.parent.parent, ckpt.parent):
        path = folder / TOTALS_FILE
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                totals = TrainTotals(
                    energy_kwh=float(data["energy_kwh"]),
                    emissions_g=float(data["emissions_g"]),
                    time_s=float(data["time_s"]),
                    epochs=int(data["epochs"]),
                )
                if all(math.isfinite(v) for v in asdict(totals).values()):
                    return totals
            except (ValueError, KeyError, TypeError):
                pass
            log.warning("%s is unreadable; counting only this stage's training energy", path)
            return TrainTotals()
    log.warning(
        "No %s next to %s: the earlier stages' training energy is unknown; counting only "
        "this stage",
        TOTALS_FILE,
        ckpt,
    )
    return TrainTotals()


def write_totals(output_dir: Path, totals: TrainTotals) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / TOTALS_FILE).write_text(json.dumps(asdict(totals)), encoding="utf-8")


class RNGStateCallback(L.Callback):
    """Saves the global RNG states with every checkpoint and puts them back when a fit
    continues from one (at the start of training, after Lightning's sanity check).
    Plain types only, so the checkpoint loads with `weights_only=True`."""

    def __init__(self) -> None:
        self._restored: dict | None = None

    def state_dict(self) -> dict:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
            "python": _to_lists(random.getstate()),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self._restored = state_dict

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._restored is None:
            return
        state, self._restored = self._restored, None
        torch.set_rng_state(state["torch"])
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
        random.setstate(_to_tuples(state["python"]))


def _to_lists(value):
    return [_to_lists(v) for v in value] if isinstance(value, tuple) else value


def _to_tuples(value):
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value
