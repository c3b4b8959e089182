"""resume_from: a continued run equals an uninterrupted one, reports cumulative training
energy, and falls back to training from scratch (with a warning) without a checkpoint."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch

from dsnn.training import train
from tests.test_train import TINY

pytestmark = pytest.mark.usefixtures("one_thread")

# deterministic CPU run, augmentation on (it draws from the global RNG), no logger
EXACT = [*TINY, "trainer.deterministic=true", "logger=none", "schedule_epochs=3"]


def _run(compose_cfg, out, *overrides):
    return train(compose_cfg(*EXACT, f"paths.output_dir={out}", *overrides))


def _weights(run_dir):
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return ckpt["state_dict"], ckpt["optimizer_states"][0]["state"], ckpt["lr_schedulers"]


@pytest.mark.parametrize(
    "shift_type, per_epoch_val, interval",
    [
        pytest.param("Q", "false", "epoch", marks=pytest.mark.slow),
        pytest.param("PS", "false", "epoch", marks=pytest.mark.slow),
        ("PS", "true", "epoch"),
        ("Q", "false", "step"),
    ],
)  # the two slow ones: ~20 s (CI runs them)
def test_one_then_two_epochs_equal_three_in_one_go(
    compose_cfg, tmp_path, shift_type, per_epoch_val, interval
):
    q = (
        f"quantization.shift_type={shift_type} val_every_epoch={per_epoch_val} "
        f"schedule_interval={interval}"
    ).split()
    whole = _run(compose_cfg, tmp_path / "whole", *q, "trainer.max_epochs=3")
    _run(compose_cfg, tmp_path / "first", *q, "trainer.max_epochs=1")
    cont = _run(
        compose_cfg,
        tmp_path / "cont",
        *q,
        "trainer.max_epochs=3",
        f"resume_from={tmp_path / 'first'}",
    )
    assert (cont["train/epochs"], cont["train/stage_epochs"]) == (3.0, 2.0)
    assert (whole["train/epochs"], whole["train/stage_epochs"]) == (3.0, 3.0)
    state_w, optim_w, sched_w = _weights(tmp_path / "whole")
    state_c, optim_c, sched_c = _weights(tmp_path / "cont")
    assert state_w.keys() == state_c.keys()
    for key in state_w:  # bit for bit
        assert torch.equal(state_w[key], state_c[key]), key
    for i in optim_w:  # momentum buffers too
        assert all(torch.equal(optim_w[i][k], optim_c[i][k]) for k in optim_w[i])
    assert sched_w == sched_c
    # last.ckpt holds the end of fit, also when val/acc did not improve (dsnn/training.py)
    for name in ("whole", "cont"):
        ckpt = torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)
        assert ckpt["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] == 3
    assert cont["val/acc"] == whole["val/acc"]
    exported_w = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    exported_c = torch.load(tmp_path / "cont" / "model.pt", weights_only=True)
    assert all(torch.equal(exported_w[k], exported_c[k]) for k in exported_w)


def test_continued_run_reports_cumulative_training_energy(compose_cfg, tmp_path):
    first = _run(compose_cfg, tmp_path / "first", "trainer.max_epochs=1")
    totals = json.loads((tmp_path / "first" / "train_totals.json").read_text())
    assert totals["epochs"] == 1
    assert totals["energy_kwh"] == pytest.approx(first["energy/train_kwh"])
    assert first["energy/train_kwh"] > 0
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    cont = _run(compose_cfg, tmp_path / "cont", "trainer.max_epochs=2", f"resume_from={ckpt}")
    stage = cont["energy/stage_train_kwh"]
    assert stage > 0
    assert cont["energy/train_kwh"] == pytest.approx(first["energy/train_kwh"] + stage)
    assert cont["emissions/train_g"] == pytest.approx(
        first["emissions/train_g"] + cont["emissions/stage_train_g"]
    )
    assert cont["time/train_s"] == pytest.approx(first["time/train_s"] + cont["time/stage_train_s"])
    assert cont["emissions/total_g"] == pytest.approx(
        cont["emissions/train_g"] + cont["emissions/inference_g"]
    )
    assert cont["emissions/stage_total_g"] == pytest.approx(
        cont["emissions/stage_train_g"] + cont["emissions/inference_g"]
    )
    assert (cont["train/epochs"], cont["train/stage_epochs"]) == (2.0, 1.0)
    saved = json.loads((tmp_path / "cont" / "train_totals.json").read_text())
    assert saved["epochs"] == 2
    assert saved["energy_kwh"] == pytest.approx(cont["energy/train_kwh"])


def test_missing_checkpoint_trains_from_scratch_with_a_warning(compose_cfg, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="dsnn.resume"):
        result = _run(
            compose_cfg,
            tmp_path / "run",
            "trainer.max_epochs=1",
            "energy.enabled=false",
            f"resume_from={tmp_path / 'nowhere'}",
        )
    assert "training from scratch" in caplog.text
    assert (result["train/epochs"], result["train/stage_epochs"]) == (1.0, 1.0)


def test_unreadable_checkpoint_and_bare_checkpoint(compose_cfg, tmp_path, caplog):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.WARNING, logger="dsnn.resume"):
        result = _run(
            compose_cfg,
            tmp_path / "a",
            "trainer.max_epochs=1",
            "energy.enabled=false",
            f"resume_from={bad}",
        )
    assert "cannot read" in caplog.text and "training from scratch" in caplog.text
    assert result["train/stage_epochs"] == 1.0
    # a .ckpt copied away from its run dir: continued, but only this stage's energy counted
    bare = tmp_path / "elsewhere" / "x.ckpt"
    bare.parent.mkdir()
    bare.write_bytes((tmp_path / "a" / "checkpoints" / "last.ckpt").read_bytes())
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dsnn.resume"):
        result = _run(compose_cfg, tmp_path / "b", "trainer.max_epochs=2", f"resume_from={bare}")
    assert "counting only this stage" in caplog.text
    assert result["train/stage_epochs"] == 1.0
    assert result["energy/train_kwh"] == result["energy/stage_train_kwh"]


def test_resume_at_max_epochs_says_so(compose_cfg, tmp_path, caplog):
    _run(compose_cfg, tmp_path / "a", "trainer.max_epochs=1", "energy.enabled=false")
    with caplog.at_level(logging.WARNING, logger="dsnn.training"):
        result = _run(
            compose_cfg,
            tmp_path / "b",
            "trainer.max_epochs=1",
            "energy.enabled=false",
            f"resume_from={tmp_path / 'a'}",
        )
    assert "is reached already; nothing to train" in caplog.text
    assert (result["train/epochs"], result["train/stage_epochs"]) == (1.0, 0.0)


def test_schedule_shorter_than_the_run_is_refused(compose_cfg):
    from dsnn.config_checks import ConfigError

    with pytest.raises(ConfigError, match="schedule_epochs=2 is out of range"):
        train(compose_cfg(*TINY, "trainer.max_epochs=3", "schedule_epochs=2"))


@pytest.mark.parametrize("per_epoch_val", ["false", "true"])
def test_resumed_twice_in_its_own_folder_continues_from_the_latest_epoch(
    compose_cfg, tmp_path, per_epoch_val
):
    """benchmarks/accuracy.py continues an interrupted run in its folder, which may have
    moved since: last.ckpt must be overwritten there (Lightning's version counter wrote
    last-v1.ckpt, as the checkpoint's own last path was elsewhere, and a second resume
    went back to the first epoch)."""
    out = tmp_path / "run"
    common = ("energy.enabled=false", f"val_every_epoch={per_epoch_val}")
    _run(compose_cfg, tmp_path / "before", "trainer.max_epochs=1", *common)
    shutil.move(tmp_path / "before", out)
    for epochs in (2, 3):
        result = _run(
            compose_cfg, out, f"trainer.max_epochs={epochs}", f"resume_from={out}", *common
        )
        assert (result["train/epochs"], result["train/stage_epochs"]) == (epochs, 1.0)
        assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == epochs
    assert not list((out / "checkpoints").glob("last-v*.ckpt"))
    assert json.loads((out / "train_totals.json").read_text())["epochs"] == 3
