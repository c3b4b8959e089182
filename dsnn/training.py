"""`train(cfg)`: one DSNN training run composed from Hydra config, returning its objectives.

The returned dict is the contract with sweepers; its keys and their meaning are defined in
dsnn/objectives.py. `resume_from` continues an earlier run (dsnn/resume.py); `val_every_epoch`
chooses between one validation pass at the end (the measured inference pass) and per-epoch
validation during fit as well.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from dsnn.config_checks import check_config
from dsnn.energy.analytic import estimate_energy
from dsnn.energy.measured import EnergyMeter
from dsnn.network import build_lit_module, image_shape
from dsnn.objectives import (
    EMISSIONS_INFERENCE_G,
    EMISSIONS_STAGE_TOTAL_G,
    EMISSIONS_STAGE_TRAIN_G,
    EMISSIONS_TOTAL_G,
    EMISSIONS_TRAIN_G,
    ENERGY_INFERENCE_KWH,
    ENERGY_STAGE_TRAIN_KWH,
    ENERGY_TOTAL_KWH,
    ENERGY_TRAIN_KWH,
    EPOCHS_STAGE,
    EPOCHS_TRAINED,
    MODEL_ENERGY_UJ,
    SHIFT_LAYERS,
    TEST_ACC,
    TEST_ERROR,
    TIME_INFERENCE_S,
    TIME_STAGE_TRAIN_S,
    TIME_TRAIN_S,
    VAL_ACC,
    VAL_ERROR,
    VAL_LOSS,
)
from dsnn.resume import RNGStateCallback, find_resume, write_totals
from dsnn.shift import export_quantized, shift_layers
from dsnn.wandb_online import offline_reason

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    check_config(cfg)
    L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    # downloads happen here, before any measured phase (fit() calls it again: a no-op); in a
    # multi-process launch rank 0 does it, the others wait for it inside fit()
    if rank_zero_only.rank == 0:
        datamodule.prepare_data()
    module = build_lit_module(cfg, datamodule)
    net = module.net
    resume = find_resume(cfg.get("resume_from"))
    max_epochs = int(cfg.trainer.max_epochs)
    if resume.epoch >= max_epochs:
        log.warning(
            "resume_from: the checkpoint has trained %d epochs, trainer.max_epochs=%d is "
            "reached already; nothing to train, evaluating the checkpoint's model",
            resume.epoch,
            max_epochs,
        )
    per_epoch_val = bool(cfg.get("val_every_epoch", True))
    loggers = [start_logger(c) for c in (cfg.get("logger") or {}).values()]
    callbacks = [make_callback(c, per_epoch_val) for c in (cfg.get("callbacks") or {}).values()]
    callbacks.append(RNGStateCallback())
    # without per-epoch validation fit never validates (no sanity check either): the measured
    # pass below is the one
    no_fit_val = {"check_val_every_n_epoch": max_epochs + 1, "num_sanity_val_steps": 0}
    trainer_cfg = trainer_arguments(cfg)
    if cfg.trainer.get("compile", False):
        # in place (nn.Module.compile): state_dict keys, checkpoints and export stay the
        # eager network's; shift layers skip their evaluation weight cache when compiled
        net.compile()
    trainer: L.Trainer = instantiate(
        trainer_cfg,
        logger=loggers or False,
        callbacks=callbacks,
        **({} if per_epoch_val else no_fit_val),
    )
    meter = EnergyMeter(**cfg.energy)
    output_dir = Path(cfg.paths.output_dir)

    failed = True
    try:
        for lg in loggers:
            lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        with meter.measure("train") as train_energy:
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume.ckpt, weights_only=True)
        if trainer.interrupted:
            raise KeyboardInterrupt("training was interrupted")
        if per_epoch_val:
            save_last_state(trainer)
        stage_epochs = max(trainer.current_epoch - resume.epoch, 0)
        totals = resume.earlier.plus(
            train_energy.energy_kwh, train_energy.emissions_g, train_energy.duration_s, stage_epochs
        )
        write_totals(output_dir, totals)

        # Round parameters to their exact shift values: the saved model evaluates exactly
        # as the fake-quant model did, and the inference pass below measures that model.
        export_quantized(net)
        output_dir.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), output_dir / "model.pt")

        with meter.measure("inference") as inference_energy:
            (val,) = trainer.validate(module, datamodule=datamodule, verbose=False)
        objectives = {
            VAL_ACC: val[VAL_ACC],
            VAL_ERROR: 1.0 - val[VAL_ACC],
            VAL_LOSS: val[VAL_LOSS],
            # cumulative over the run's stages: what an uninterrupted run would report
            EMISSIONS_TRAIN_G: totals.emissions_g,
            EMISSIONS_INFERENCE_G: inference_energy.emissions_g,
            EMISSIONS_TOTAL_G: totals.emissions_g + inference_energy.emissions_g,
            ENERGY_TRAIN_KWH: totals.energy_kwh,
            ENERGY_INFERENCE_KWH: inference_energy.energy_kwh,
            ENERGY_TOTAL_KWH: totals.energy_kwh + inference_energy.energy_kwh,
            TIME_TRAIN_S: totals.time_s,
            TIME_INFERENCE_S: inference_energy.duration_s,
            # this stage alone (= the above for a run that did not continue another)
            EMISSIONS_STAGE_TRAIN_G: train_energy.emissions_g,
            EMISSIONS_STAGE_TOTAL_G: train_energy.emissions_g + inference_energy.emissions_g,
            ENERGY_STAGE_TRAIN_KWH: train_energy.energy_kwh,
            TIME_STAGE_TRAIN_S: train_energy.duration_s,
            EPOCHS_TRAINED: trainer.current_epoch,
            EPOCHS_STAGE: stage_epochs,
            SHIFT_LAYERS: float(sum(1 for _ in shift_layers(net))),
            MODEL_ENERGY_UJ: estimate_energy(net, image_shape(datamodule)).total_uj,
        }
        if cfg.test:
            (test,) = trainer.test(module, datamodule=datamodule, verbose=False)
            objectives |= {TEST_ACC: test[TEST_ACC], TEST_ERROR: 1.0 - test[TEST_ACC]}
        objectives = {k: float(v) for k, v in objectives.items()}
        for lg in loggers:
            lg.log_metrics({f"final/{k}": v for k, v in objectives.items()})
        log_summary(objectives, output_dir)
        failed = False
        return objectives
    finally:
        finish_wandb(loggers, failed)


def trainer_arguments(cfg: DictConfig) -> dict:
    """`cfg.trainer` resolved, without `compile` (ours, not a Trainer argument)."""
    arguments = OmegaConf.to_container(cfg.trainer, resolve=True)
    arguments.pop("compile", None)
    return arguments


def make_callback(callback_cfg: DictConfig, per_epoch_val: bool):
    """A callback from config; without per-epoch validation a checkpoint callback keeps only
    last.ckpt (there is no val/acc to rank by)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    if per_epoch_val or get_class(callback_cfg._target_) is not ModelCheckpoint:
        return instantiate(callback_cfg)
    return instantiate(callback_cfg, monitor=None, save_top_k=0)


def save_last_state(trainer: L.Trainer) -> None:
    """Make each checkpoint callback's last.ckpt the state at the end of fit, which
    resume_from continues. With a monitored metric Lightning (2.6) writes last.ckpt only
    when a best-k checkpoint is written, so an epoch without a better val/acc leaves it at an
    earlier epoch. (Without per-epoch validation there is no monitor, and Lightning writes
    last.ckpt once, at the end of fit.)"""
    from lightning.pytorch.callbacks import ModelCheckpoint

    for cb in trainer.checkpoint_callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.save_last and cb.dirpath:
            last = Path(cb.dirpath) / f"{cb.CHECKPOINT_NAME_LAST}{cb.FILE_EXTENSION}"
            trainer.save_checkpoint(last)


def log_summary(objectives: dict[str, float], output_dir: Path) -> None:
    log.info(
        "val/acc %.4f | emissions train %.4g g + inference %.4g g = %.4g gCO2eq "
        "| energy %.4g kWh | train %.1f s",
        objectives[VAL_ACC],
        objectives[EMISSIONS_TRAIN_G],
        objectives[EMISSIONS_INFERENCE_G],
        objectives[EMISSIONS_TOTAL_G],
        objectives[ENERGY_TOTAL_KWH],
        objectives[TIME_TRAIN_S],
    )
    if TEST_ACC in objectives:
        log.info("test/acc %.4f", objectives[TEST_ACC])
    log.info("outputs in %s", output_dir)


def start_logger(logger_cfg: DictConfig):
    """Instantiate a logger with plain-typed arguments (wandb ignores a DictConfig `settings`);
    a W&B run that cannot go online logs offline instead."""
    online = logger_cfg.get("mode") == "online"
    if online and (reason := offline_reason(logger_cfg.get("settings"))):
        log.warning("W&B cannot go online (%s); logging offline instead", reason)
        return instantiate(logger_cfg, mode="offline", _convert_="all")
    logger = instantiate(logger_cfg, _convert_="all")
    if not online:
        return logger  # offline and disabled W&B runs, CSV: nothing to reach
    import wandb

    try:
        _ = logger.experiment  # starts the run: login and network happen here
    except wandb.errors.Error as err:
        log.warning("W&B cannot go online (%s); logging offline instead", err)
        wandb.finish(exit_code=1)
        logger = instantiate(logger_cfg, mode="offline", _convert_="all")
    return logger


def finish_wandb(loggers: list, failed: bool) -> None:
    """Close the W&B run of this job, or the next job of a multirun would log into it."""
    from lightning.pytorch.loggers import WandbLogger

    if any(isinstance(lg, WandbLogger) for lg in loggers):
        import wandb

        wandb.finish(exit_code=1 if failed else 0)
