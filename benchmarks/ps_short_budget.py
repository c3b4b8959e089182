"""DeepShift-PS in a short budget: how far do the weights move, how well does it learn?

The setting of `experiment=demo` with DeepShift-PS and the paper's default optimizer (SGD,
lr 0.1, momentum 0.9): a thin ResNet20 (width 8, all 20 layers shifted) on 10 % of
Fashion-MNIST, 3 epochs, seed 0. Variants cross the PS start (`quantization.ps_init`:
convert = the project's old start, deepshift = DeepShift's own from-scratch init, float =
the float init in the log domain) with the learning-rate factor of the shift and sign
parameters (`shift_lr_scale` 1 = DeepShift, 10). Per run: validation accuracy and the
share of quantized weights that differ from the start.
Writes benchmarks/results/ps_short_budget.json.

    .venv/bin/python -m benchmarks.ps_short_budget            # 8 runs, ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from benchmarks.machine import machine, write_report
from dsnn.network import build_network
from dsnn.shift import named_shift_layers
from dsnn.training import train

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
TASK = [
    "experiment=demo", "quantization=ps", "optimizer.lr=0.1", "optimizer.momentum=0.9",
    "logger=none", "callbacks=none", "energy.enabled=false",
]  # fmt: skip
VARIANTS = {
    "convert x1 (old default)": ["quantization.ps_init=convert", "shift_lr_scale=1"],
    "deepshift x1 (DeepShift)": ["quantization.ps_init=deepshift", "shift_lr_scale=1"],
    "float x1": ["quantization.ps_init=float", "shift_lr_scale=1"],
    "float x3": ["quantization.ps_init=float", "shift_lr_scale=3"],
    "convert x10": ["quantization.ps_init=convert", "shift_lr_scale=10"],
    "deepshift x10": ["quantization.ps_init=deepshift", "shift_lr_scale=10"],
    "float x10 (new default)": ["quantization.ps_init=float", "shift_lr_scale=10"],
    "float x30": ["quantization.ps_init=float", "shift_lr_scale=30"],
}


def initial_weights(cfg) -> dict[str, torch.Tensor]:
    """The quantized weights the run starts from (train() seeds, then builds the same way)."""
    L.seed_everything(cfg.seed, workers=True)
    data = instantiate(cfg.data)
    net = build_network(cfg, data.in_channels, data.num_classes)
    return {name: layer.exact_weight() for name, layer in named_shift_layers(net).items()}


def run(overrides: list[str], out: Path) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*TASK, *overrides, f"paths.output_dir={out}"])
    start = initial_weights(cfg)
    began = time.perf_counter()
    objectives = train(cfg)
    seconds = time.perf_counter() - began
    final = torch.load(out / "model.pt", weights_only=True)
    changed = total = 0
    for name, weight in start.items():
        layer = final[f"{name}.shift"].exp2() * final[f"{name}.sign"]
        changed += int((layer != weight).sum())
        total += weight.numel()
    return {
        "val_acc": objectives["val/acc"],
        "weights_changed": changed / total,
        "run_s": seconds,
        "overrides": overrides,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "ps_short_budget.json")
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, overrides) in enumerate(VARIANTS.items()):
            runs[name] = run(overrides, Path(tmp) / str(i))
            r = runs[name]
            changed = 100 * r["weights_changed"]
            print(f"{name:26s} val acc {r['val_acc']:.3f}  weights changed {changed:5.1f} %  "
                  f"{r['run_s']:.0f} s", flush=True)  # fmt: skip
    write_report(args.out, {"benchmark": "ps_short_budget", "machine": machine(),
                            "task": TASK, "runs": runs})  # fmt: skip


if __name__ == "__main__":
    main()
