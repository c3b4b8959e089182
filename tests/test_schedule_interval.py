"""schedule_interval: the cosine schedule stepped per epoch (DeepShift's) or per optimizer
step, its period still given in epochs (schedule_epochs). Per step, a 1-epoch run anneals
to 0 within its epoch, so a short run is a usable low fidelity."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from dsnn.config_checks import ConfigError, check_config
from dsnn.training import train
from tests.test_train import TINY

pytestmark = pytest.mark.usefixtures("one_thread")

QUIET = [*TINY, "experiment=search_bench", "logger=none", "energy.enabled=false"]


class LearningRates(L.Callback):
    """The float group's learning rate used by every optimizer step, in order."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def _lrs(compose_cfg, monkeypatch, *overrides) -> tuple[list[float], float, dict]:
    """(learning rates per step, the initial lr, train's result) of a short real run."""
    seen = LearningRates()
    original = L.Trainer.__init__

    def with_recorder(self, *args, callbacks=None, **kwargs):
        original(self, *args, callbacks=[*(callbacks or []), seen], **kwargs)

    monkeypatch.setattr(L.Trainer, "__init__", with_recorder)
    cfg = compose_cfg(*QUIET, "data.fraction=0.01", "data.batch_size=64", *overrides)
    result = train(cfg)
    return seen.lrs, float(cfg.optimizer.lr), result


def test_per_step_cosine_follows_the_closed_form_over_epochs_times_steps(compose_cfg, monkeypatch):
    lrs, lr0, _ = _lrs(compose_cfg, monkeypatch, "trainer.max_epochs=2", "schedule_interval=step")
    total = len(lrs)  # 2 epochs of steps
    assert total >= 4 and total % 2 == 0
    expected = [0.5 * lr0 * (1 + math.cos(math.pi * k / total)) for k in range(total)]
    assert lrs == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert len(set(lrs)) == total  # it changes at every step, not only per epoch


def test_per_epoch_cosine_is_unchanged_and_a_one_epoch_run_never_anneals(compose_cfg, monkeypatch):
    lrs, lr0, _ = _lrs(compose_cfg, monkeypatch, "trainer.max_epochs=2")
    half = len(lrs) // 2
    assert lrs[:half] == pytest.approx([lr0] * half)  # cos(0): the whole first epoch
    assert lrs[half:] == pytest.approx([0.5 * lr0 * (1 + math.cos(math.pi / 2))] * half)
    one, _, _ = _lrs(compose_cfg, monkeypatch, "trainer.max_epochs=1")
    assert one == pytest.approx([lr0] * len(one))


def test_a_one_epoch_run_per_step_ends_near_zero_and_spans_schedule_epochs(
    compose_cfg, monkeypatch
):
    one, lr0, _ = _lrs(compose_cfg, monkeypatch, "trainer.max_epochs=1", "schedule_interval=step")
    assert one[0] == pytest.approx(lr0) and one[-1] < 0.05 * lr0
    # a schedule over 3 epochs (a run that may be continued): the first third of it
    part, _, _ = _lrs(
        compose_cfg,
        monkeypatch,
        "trainer.max_epochs=1",
        "schedule_epochs=3",
        "schedule_interval=step",
    )
    n = len(part)
    assert part == pytest.approx(
        [0.5 * lr0 * (1 + math.cos(math.pi * k / (3 * n))) for k in range(n)], rel=1e-6
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["schedule_interval=batch"],
            r"^schedule_interval='batch' is invalid; allowed: epoch, step$",
        ),
        (
            [
                "schedule_interval=step",
                "scheduler._target_=torch.optim.lr_scheduler.StepLR",
                "~scheduler.T_max",
                "+scheduler.step_size=1",
            ],
            r"^schedule_interval=step needs a scheduler whose period is T_max in epochs "
            r"\(scheduler=cosine\); got torch.optim.lr_scheduler.StepLR$",
        ),
    ],
)
def test_a_bad_schedule_interval_is_one_line(compose_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_cfg(*QUIET, *overrides))


def test_per_step_without_a_scheduler_is_a_constant_rate(compose_cfg, monkeypatch):
    lrs, lr0, result = _lrs(compose_cfg, monkeypatch, "scheduler=none", "schedule_interval=step")
    assert lrs == pytest.approx([lr0] * len(lrs))
    assert torch.isfinite(torch.tensor(result["val/error"]))
