"""The LightningModule: steps, metrics, and optimizers with DeepShift parameter groups."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from dsnn.config_checks import SCHEDULE_INTERVALS
from dsnn.shift import ShiftLayer, project_shift_parameters, shift_penalty

log = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; the run ends as failed."""


def parameter_groups(net: nn.Module, shift_lr_scale: float = 1.0) -> list[dict]:
    """Split parameters by the type of the module that owns them.

    DeepShift-PS `shift` and `sign` tensors form the group "shift_sign": no plain weight
    decay (DeepShift regularises them with `shift_penalty` instead) and `lr_scale` =
    `shift_lr_scale`, the factor on the optimizer's learning rate for them (a shift moves
    by lr * g * W * ln 2 per step and must cross a rounding boundary 0.5 away to change the
    weight). Every other parameter, DeepShift-Q's float weights included, is in "float".
    """
    shift_params, float_params = [], []
    for module in net.modules():
        for name, param in module.named_parameters(recurse=False):
            is_ps = isinstance(module, ShiftLayer) and name in ("shift", "sign")
            (shift_params if is_ps else float_params).append(param)
    groups = [{"name": "float", "params": float_params, "lr_scale": 1.0}]
    if shift_params:
        groups.append(
            {
                "name": "shift_sign",
                "params": shift_params,
                "weight_decay": 0.0,
                "lr_scale": float(shift_lr_scale),
            }
        )
    return groups


def scale_learning_rates(optimizer: torch.optim.Optimizer) -> None:
    """lr *= lr_scale in every group (after the optimizer filled in its default lr, before
    a scheduler records it as the group's initial lr)."""
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * group.get("lr_scale", 1.0)


class DSNNLitModule(L.LightningModule):
    """Classifier training for float, DeepShift-Q and DeepShift-PS networks.

    Args:
        net: the (partly) converted network.
        num_classes: width of the classifier's output, from the data module.
        optimizer: a partial optimizer (Hydra `_partial_: true`), completed with the
            parameter groups in `configure_optimizers`.
        scheduler: a partial LR scheduler, or None for a constant learning rate.
        scheduler_interval: "epoch" steps the scheduler after every epoch; "step" after
            every optimizer step, its period `T_max` (given in epochs) then counted in
            steps, so that even a 1-epoch run anneals its learning rate.
        shift_penalty: coefficient of DeepShift-PS's 0.5 * sum((2^P)^2) regulariser.
        shift_lr_scale: learning-rate factor of the PS shift and sign parameters.
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        shift_penalty: float = 0.0,
        shift_lr_scale: float = 1.0,
        scheduler_interval: str = "epoch",
    ):
        super().__init__()
        if scheduler_interval not in SCHEDULE_INTERVALS:
            raise ValueError(
                f"scheduler_interval={scheduler_interval!r}; allowed: "
                + ", ".join(SCHEDULE_INTERVALS)
            )
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.shift_penalty = float(shift_penalty)
        self.shift_lr_scale = float(shift_lr_scale)
        self._diverged: torch.Tensor | None = None  # any non-finite loss since the last check
        self._last_loss: torch.Tensor | None = None
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        # No host synchronisation per step: the flag stays on the device and is read every
        # `log_every_n_steps` steps and at the epoch's end (`_check_finite`).
        bad = ~torch.isfinite(loss.detach())
        self._diverged = bad if self._diverged is None else self._diverged | bad
        self._last_loss = loss.detach()
        self.train_acc(logits, y)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        if self.shift_penalty > 0:
            loss = loss + self.shift_penalty * shift_penalty(self.net)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # Keep shifts, signs and Q weights in their ranges after each optimizer step
        # (DeepShift does this with hidden `.data` writes inside forward).
        project_shift_parameters(self.net)
        every = self.trainer.log_every_n_steps if self._trainer is not None else 1
        if (batch_idx + 1) % max(every, 1) == 0:
            self._check_finite()

    def on_train_epoch_end(self) -> None:
        self._check_finite()

    def _check_finite(self) -> None:
        """Fail the run if a training loss since the last check was NaN or infinite."""
        if self._diverged is not None and bool(self._diverged):  # one host sync
            raise TrainingDivergedError(
                f"train/loss became non-finite (last: {self._last_loss.item()}) by epoch "
                f"{self.current_epoch}, step {self.global_step}; lower optimizer.lr or raise "
                "the activation bits"
            )
        self._diverged = None

    def _eval_step(self, batch, stage: str, metric: MulticlassAccuracy) -> None:
        x, y = batch
        logits = self.net(x)
        metric(logits, y)
        self.log(f"{stage}/loss", F.cross_entropy(logits, y), prog_bar=stage == "val")
        self.log(f"{stage}/acc", metric, prog_bar=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "val", self.val_acc)

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_acc)

    def on_validation_epoch_end(self) -> None:
        self.log("val/error", 1.0 - self.val_acc.compute())

    def on_test_epoch_end(self) -> None:
        self.log("test/error", 1.0 - self.test_acc.compute())

    def configure_optimizers(self):
        groups = parameter_groups(self.net, self.shift_lr_scale)
        optimizer = self.optimizer_factory(params=groups)
        scale_learning_rates(optimizer)
        for group in optimizer.param_groups:
            n = sum(p.numel() for p in group["params"])
            log.info(
                "parameter group %s: %d tensors, %d values, lr %g",
                group["name"], len(group["params"]), n, group["lr"],
            )  # fmt: skip
        if self.scheduler_factory is None:
            return optimizer
        factory = self.scheduler_factory
        if self.scheduler_interval == "step":
            factory = functools.partial(factory, T_max=self._period_in_steps(factory))
        scheduler = factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
        }

    def _period_in_steps(self, factory: Callable) -> int:
        """The scheduler's period `T_max`, configured in epochs (`schedule_epochs`), in
        optimizer steps: epochs x this run's steps per epoch (a continued run has the same)."""
        epochs = getattr(factory, "keywords", {}).get("T_max")
        if epochs is None:
            raise ValueError(
                "schedule_interval=step needs a scheduler whose period is T_max in epochs "
                "(scheduler=cosine)"
            )
        steps_per_epoch = self.trainer.estimated_stepping_batches / self.trainer.max_epochs
        return max(1, round(float(epochs) * steps_per_epoch))
