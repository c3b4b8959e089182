"""`train(cfg)`: one DSNN training run composed from Hydra config, returning its objectives.

The returned dict is the contract with sweepers (all floats, lower is better for the
error, energy and emission keys):

    val/acc, val/error, val/loss           final model, one pass over the validation split
    emissions/train_g, emissions/inference_g, emissions/total_g   CodeCarbon, gCO2eq
    energy/train_kwh, energy/inference_kwh, energy/total_kwh      CodeCarbon, kWh
    time/train_s, time/inference_s         wall time of the two measured phases
    model/shift_layers                     number of weight layers converted to shifts
    energy/model_uj_per_image              analytic energy of one inference, µJ (op counts x
                                           Horowitz 45 nm energies, dsnn/energy_model.py)
    test/acc, test/error                   only with test=true
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from torch import nn

from dsnn.config_checks import check_config
from dsnn.energy import EnergyMeter
from dsnn.energy_model import OBJECTIVE_KEY, estimate_energy
from dsnn.lit_module import DSNNLitModule
from dsnn.shift import ShiftConfig, convert_to_shift, export_quantized, shift_layers
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
    net = build_network(cfg, datamodule.in_channels, datamodule.num_classes)
    module = DSNNLitModule(
        net,
        num_classes=datamodule.num_classes,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        shift_penalty=cfg.shift_penalty,
    )
    loggers = [start_logger(c) for c in (cfg.get("logger") or {}).values()]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    trainer: L.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    meter = EnergyMeter(**cfg.energy)
    output_dir = Path(cfg.paths.output_dir)

    failed = True
    try:
        for lg in loggers:
            lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        with meter.measure("train") as train_energy:
            trainer.fit(module, datamodule=datamodule)
        if trainer.interrupted:
            raise KeyboardInterrupt("training was interrupted")

        # Round parameters to their exact shift values: the saved model evaluates exactly
        # as the fake-quant model did, and the inference pass below measures that model.
        export_quantized(net)
        output_dir.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), output_dir / "model.pt")

        with meter.measure("inference") as inference_energy:
            (val,) = trainer.validate(module, datamodule=datamodule, verbose=False)
        objectives = {
            "val/acc": val["val/acc"],
            "val/error": 1.0 - val["val/acc"],
            "val/loss": val["val/loss"],
            "emissions/train_g": train_energy.emissions_g,
            "emissions/inference_g": inference_energy.emissions_g,
            "emissions/total_g": train_energy.emissions_g + inference_energy.emissions_g,
            "energy/train_kwh": train_energy.energy_kwh,
            "energy/inference_kwh": inference_energy.energy_kwh,
            "energy/total_kwh": train_energy.energy_kwh + inference_energy.energy_kwh,
            "time/train_s": train_energy.duration_s,
            "time/inference_s": inference_energy.duration_s,
            "model/shift_layers": float(sum(1 for _ in shift_layers(net))),
            OBJECTIVE_KEY: estimate_energy(net, image_shape(datamodule)).total_uj,
        }
        if cfg.test:
            (test,) = trainer.test(module, datamodule=datamodule, verbose=False)
            objectives |= {"test/acc": test["test/acc"], "test/error": 1.0 - test["test/acc"]}
        objectives = {k: float(v) for k, v in objectives.items()}
        for lg in loggers:
            lg.log_metrics({f"final/{k}": v for k, v in objectives.items()})
        log_summary(objectives, output_dir)
        failed = False
        return objectives
    finally:
        finish_wandb(loggers, failed)


def build_network(cfg: DictConfig, in_channels: int, num_classes: int) -> nn.Module:
    """The float network of `cfg.model`, pretrained if asked, with `shift_depth` layers shifted."""
    net = instantiate(cfg.model, in_channels=in_channels, num_classes=num_classes)
    if cfg.get("pretrained"):
        load_float_weights(net, cfg.pretrained)
    return convert_to_shift(net, cfg.shift_depth, ShiftConfig(**cfg.quantization))


def image_shape(datamodule) -> tuple[int, int, int]:
    """(C, H, W) of one input image of the data module."""
    return (datamodule.in_channels, datamodule.image_size, datamodule.image_size)


def load_float_weights(net: nn.Module, path: str) -> None:
    """Load a float checkpoint of this project: a Lightning .ckpt or a plain state_dict."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"pretrained={path!r}: no such file; train one with shift_depth=0 "
            "(`make pretrained`) or set pretrained=null"
        )
    state = torch.load(file, map_location="cpu", weights_only=True)
    if "state_dict" in state:  # Lightning checkpoint: the network sits under `net.`
        state = {
            k.removeprefix("net."): v
            for k, v in state["state_dict"].items()
            if k.startswith("net.")
        }
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"pretrained={path!r} does not fit model {type(net).__name__}: it must be a float "
            f"checkpoint (shift_depth=0) of the same model and data shape.\n{err}"
        ) from err


def log_summary(objectives: dict[str, float], output_dir: Path) -> None:
    log.info(
        "val/acc %.4f | emissions train %.4g g + inference %.4g g = %.4g gCO2eq "
        "| energy %.4g kWh | train %.1f s",
        objectives["val/acc"],
        objectives["emissions/train_g"],
        objectives["emissions/inference_g"],
        objectives["emissions/total_g"],
        objectives["energy/total_kwh"],
        objectives["time/train_s"],
    )
    if "test/acc" in objectives:
        log.info("test/acc %.4f", objectives["test/acc"])
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
