"""mode=checkpoint: test accuracy, CodeCarbon energy of one test pass, analytic energy,
model size, the multiplication-free export (round trip) and the integer-only forward."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from dsnn.energy.analytic import estimate_energy
from dsnn.energy.measured import EnergyMeter
from dsnn.evaluation.report import format_table, log_to_wandb, write_csv, write_json
from dsnn.evaluation.runs import apply_dotlist
from dsnn.models import MODELS
from dsnn.network import (
    check_spec,
    data_spec,
    image_shape,
    is_lightning_checkpoint,
    load_trained,
    network_spec,
    spec_entry,
)
from dsnn.objectives import SHIFT_LAYERS, TEST_ACC, TEST_ERROR
from dsnn.safe_files import UnsafeFileError, check_targets
from dsnn.shift import export_quantized, shift_layers
from dsnn.shift.export import FORMAT, load_exported, save_exported, size_report
from dsnn.shift.integer import verify_integer_forward

log = logging.getLogger(__name__)


@dataclass
class Source:
    path: Path  # the weights: model.pt, a .ckpt, or an export
    kind: str  # "state_dict" | "lightning" | "export"
    run_cfg: DictConfig  # the training run's config (an export: the data it names)
    run_yaml: str | None  # the training run's config as text, carried into a new export
    spec: dict | None = None  # an export's spec


def find_source(checkpoint: str) -> Source:
    """Where the weights and the run config of `checkpoint` are. An export carries its
    own (a .hydra folder next to it belongs to whatever run wrote it, e.g. an evaluation);
    a run config read from disk is checked (dsnn/safe_files.py) before anything uses it."""
    path = Path(checkpoint)
    if path.is_dir():  # a run folder: its exported model, else Lightning's last checkpoint
        last = path / "checkpoints" / "last.ckpt"
        path = last if not (path / "model.pt").is_file() and last.is_file() else path / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint={checkpoint!r}: expected a train.py run folder (with model.pt), its "
            "model.pt or checkpoints/*.ckpt, or a model.dsnn export"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and state.get("format") == FORMAT:
        run_yaml = state.get("run_config")
        return Source(path, "export", export_run_config(state, path), run_yaml, state["spec"])
    kind = "lightning" if is_lightning_checkpoint(state) else "state_dict"
    for folder in (path.parent, path.parent.parent):
        saved = folder / ".hydra" / "config.yaml"
        if saved.is_file():
            run_cfg = OmegaConf.load(saved)
            check_targets(run_cfg, str(saved))
            return Source(path, kind, run_cfg, OmegaConf.to_yaml(run_cfg))
    raise FileNotFoundError(f"no .hydra/config.yaml of the run next to or above {path}")


def export_run_config(state: dict, path: Path) -> DictConfig:
    """The data an export was tested on, as a run config with only `data`: from the spec
    (registered name, plain arguments), else (older exports) the run config in the file,
    its targets checked. Change it with overrides (e.g. data.root=...)."""
    from dsnn.data import DATA

    spec = state.get("spec") or {}
    if spec:
        check_spec(spec, str(path))  # the network it names, before anything else
    if spec.get("data") is not None:
        data = spec_entry(DATA, "dsnn.data", spec["data"], str(path), "spec.data")
        target = f"dsnn.data.{DATA[data['name']].__name__}"
        return OmegaConf.create({"data": {"_target_": target, **data["args"]}})
    if state.get("run_config"):
        run_cfg = OmegaConf.create(state["run_config"])
        check_targets(run_cfg, f"{path} (its run_config)")
        if "data" in run_cfg:
            return run_cfg
    raise UnsafeFileError(
        f"{path} names no data to test on (an export without a data spec or run config); "
        "re-export it with this version"
    )


def load_network(source: Source, run_cfg: DictConfig, datamodule) -> nn.Module:
    """The trained network with its parameters at their exact shift values, in eval mode."""
    if source.kind == "export":
        return load_exported(source.path)
    net = load_trained(run_cfg, datamodule.in_channels, datamodule.num_classes, source.path)
    return export_quantized(net).eval()


@torch.no_grad()
def test_accuracy(
    net: nn.Module, loader, device: torch.device, limit: int | None
) -> tuple[int, int]:
    """(correct, images) over the loader, stopping after `limit` images."""
    correct = total = 0
    for x, y in loader:
        if limit is not None and total >= limit:
            break
        if limit is not None:
            x, y = x[: limit - total], y[: limit - total]
        logits = net(x.to(device))
        correct += int((logits.argmax(1).cpu() == y).sum())
        total += len(y)
    return correct, total


def first_images(loader, n: int) -> torch.Tensor:
    batches, count = [], 0
    for x, _ in loader:
        batches.append(x[: n - count])
        count += len(batches[-1])
        if count >= n:
            break
    return torch.cat(batches)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def export_and_compare(
    net: nn.Module, path: Path, spec: dict, run_yaml: str, verify: torch.Tensor | None
) -> dict[str, Any]:
    """Write the export, report sizes, and compare the reloaded network on `verify`."""
    results: dict[str, Any] = size_report(net, save_exported(net, path, spec, run_yaml))
    if verify is not None:
        with torch.no_grad():
            expected, got = net(verify), load_exported(path)(verify)
        results["export/identical_logits"] = bool(torch.equal(expected, got))
        results["export/identical_predictions"] = bool(
            torch.equal(expected.argmax(1), got.argmax(1))
        )
    return results


def export_spec(source: Source, run_cfg: DictConfig, datamodule) -> dict[str, Any]:
    """The spec of the new export: the network's (from the file's own spec for an export,
    in the current form) and the data's, so that the export evaluates wherever it lies."""
    if source.kind == "export":
        spec = dict(source.spec)
        spec["model"] = spec_entry(MODELS, "dsnn.models", spec["model"], str(source.path), "model")
    else:
        spec = network_spec(run_cfg, datamodule.in_channels, datamodule.num_classes)
    return spec | {"data": data_spec(run_cfg)}


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    if not cfg.checkpoint:
        raise ValueError("mode=checkpoint needs checkpoint=<run folder, model.pt, .ckpt or .dsnn>")
    out = Path(cfg.output_dir)
    source = find_source(cfg.checkpoint)
    run_cfg = apply_dotlist(source.run_cfg, cfg.overrides)
    datamodule = instantiate(run_cfg.data)
    datamodule.setup("test")
    net = load_network(source, run_cfg, datamodule)
    device = pick_device(cfg.device)
    net.to(device)

    meter = EnergyMeter(**cfg.energy)
    with meter.measure("test") as reading:
        correct, images = test_accuracy(net, datamodule.test_dataloader(), device, cfg.test_images)
    energy = estimate_energy(net, image_shape(datamodule), cfg.memory)
    results: dict[str, Any] = {
        "checkpoint": str(source.path),
        TEST_ACC: correct / images,
        TEST_ERROR: 1.0 - correct / images,
        "test/images": images,
        "emissions/test_g": reading.emissions_g,
        "energy/test_kwh": reading.energy_kwh,
        "time/test_s": reading.duration_s,
        SHIFT_LAYERS: sum(1 for _ in shift_layers(net)),
        **energy.as_dict(),
    }
    net.cpu()
    verify = (
        first_images(datamodule.test_dataloader(), cfg.verify_images) if cfg.verify_images else None
    )
    exported = out / "model.dsnn" if cfg.export else None
    if exported is not None:
        results |= export_and_compare(net, exported, export_spec(source, run_cfg, datamodule),
                                      source.run_yaml, verify)  # fmt: skip
        if source.kind == "state_dict":
            results["size/model_pt_bytes"] = source.path.stat().st_size
    else:
        results |= size_report(net)
    if verify is not None:
        results |= verify_integer_forward(net, verify)

    write_json(out / "checkpoint.json", results)
    write_csv(out / "checkpoint.csv", [results])
    rows = [{"metric": k, "value": v} for k, v in results.items()]
    print(format_table(rows, ["metric", "value"]))
    print(f"\nresults in {out}" + (f"; export {exported}" if exported else ""))
    log_to_wandb(
        cfg.wandb,
        f"checkpoint-{source.path.parent.name}",
        out,
        tables={"checkpoint": [results]},
        summary={k: v for k, v in results.items() if isinstance(v, (int, float))},
    )
    return results
