"""Cost of the DeepShift fake-quant layers (dsnn.shift) against the float network, on CPU.

ResNet20 on a batch of 3x32x32 images with all 20 weight layers shifted (shift_depth=20),
for Q and PS at weight_bits 3 and 5 and once with stochastic rounding. Per variant:

    train step: forward, cross entropy (+ weight_decay * shift_penalty for PS), backward,
                SGD step (momentum 0.9), project_shift_parameters
    inference:  eval mode, torch.no_grad(), forward

All variants are timed side by side in one process: warm-up, then `--repeats` rounds in
which every variant runs once (random order), each time next to a run of float. The
tables show median times and the ratio to float (median over these pairs of variant /
float), of wall-clock time and of the process's CPU time; the JSON keeps minima and samples.
The run repeats for each `--threads` value (default: all cores, then 1). With one thread
the CPU time depends least on other load on the machine; the 1-minute load average is
recorded. Writes benchmarks/results/layer_cost_cpu.json.

    .venv/bin/python benchmarks/layer_cost.py            # ~8 min on 2 idle cores
    .venv/bin/python benchmarks/layer_cost.py --repeats 2 --batch-size 16 --out /tmp/x.json
"""

import argparse
import copy
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dsnn.models.resnet20 import ResNet20
from dsnn.shift import ShiftConfig, convert_to_shift, project_shift_parameters, shift_penalty

VARIANTS = {
    "float": None,
    "Q w3": ShiftConfig("Q", 3),
    "Q w5": ShiftConfig("Q", 5),
    "PS w3": ShiftConfig("PS", 3),
    "PS w5": ShiftConfig("PS", 5),
    "PS w5 stochastic": ShiftConfig("PS", 5, rounding="stochastic"),
}
WEIGHT_DECAY = 1e-4


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def build(config: ShiftConfig | None, base: torch.nn.Module):
    model = copy.deepcopy(base)
    if config is not None:
        model = convert_to_shift(model, 20, config)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    penalize = config is not None and config.shift_type == "PS"
    return model, optimizer, penalize


def train_step(model, optimizer, penalize, x, y) -> None:
    model.train()
    loss = F.cross_entropy(model(x), y)
    if penalize:
        loss = loss + WEIGHT_DECAY * shift_penalty(model)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    project_shift_parameters(model)


def inference(model, x) -> None:
    model.eval()
    with torch.no_grad():
        model(x)


def timed(fn) -> tuple[float, float]:
    """(wall ms, CPU ms of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


def run(threads: int, args, base, x, y) -> dict:
    torch.set_num_threads(threads)
    jobs = {}
    for name, cfg in VARIANTS.items():
        model, optimizer, penalize = build(cfg, base)
        jobs[(name, "train_step")] = lambda m=model, o=optimizer, p=penalize: train_step(
            m, o, p, x, y
        )
        jobs[(name, "inference")] = lambda m=model: inference(m, x)
    load_before = os.getloadavg()[0]
    for _ in range(args.warmup):
        for job in jobs.values():
            job()
    # Every measurement of a variant is paired with one of float right before or after it
    # (order drawn at random), and the ratio is the median over these pairs: load from
    # other processes, which comes and goes over seconds, then hits both sides alike.
    samples = {key: [] for key in jobs}
    ratios = {key: [] for key in jobs}
    names = [n for n in VARIANTS if n != "float"]
    rng = random.Random(0)
    for _ in range(args.repeats):
        rng.shuffle(names)
        for name in names:
            for kind in ("train_step", "inference"):
                pair = [("float", kind), (name, kind)]
                rng.shuffle(pair)
                timing = {key: timed(jobs[key]) for key in pair}
                for key, value in timing.items():
                    samples[key].append(value)
                variant, reference = timing[(name, kind)], timing[("float", kind)]
                ratios[(name, kind)].append(
                    tuple(v / f for v, f in zip(variant, reference, strict=True))
                )

    results = {}
    for (name, kind), pairs in samples.items():
        entry = results.setdefault(name, {})
        for i, clock in enumerate(("wall", "cpu")):
            values = [p[i] for p in pairs]
            key = f"{kind}_{clock}"
            entry[f"{key}_ms"] = statistics.median(values)
            entry[f"{key}_min_ms"] = min(values)
            paired = [r[i] for r in ratios[(name, kind)]] or [1.0]  # float: 1 by definition
            entry[f"{key}_ratio"] = statistics.median(paired)
            entry[f"{key}_samples_ms"] = [round(v, 1) for v in values]

    load_after = os.getloadavg()[0]
    print(f"\n{threads} thread(s), load average {load_before:.2f} -> {load_after:.2f}")
    print("median ms; x = median over pairs (variant / float measured next to it)")
    print(f"{'':<18}{'train step':^30}{'inference':^30}")
    print(f"{'variant':<18}" + f"{'wall ms':>8}{'x':>7}{'cpu ms':>8}{'x':>7}" * 2)
    for name, e in results.items():
        row = f"{name:<18}"
        for key in ("train_step_wall", "train_step_cpu", "inference_wall", "inference_cpu"):
            row += f"{e[f'{key}_ms']:>8.1f}{e[f'{key}_ratio']:>7.3f}"
        print(row)
    return {"load_average_1min_before_after": [load_before, load_after], "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=None)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "layer_cost_cpu.json"
    )
    args = parser.parse_args()
    threads = args.threads or list(dict.fromkeys([os.cpu_count() or 1, 1]))

    torch.manual_seed(0)
    base = ResNet20(in_channels=3, num_classes=10)
    x = torch.randn(args.batch_size, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch_size,))
    print(f"ResNet20, batch {args.batch_size}x3x32x32, all 20 weight layers shifted")
    runs = {f"threads={n}": run(n, args, base, x, y) for n in threads}

    report = {
        "benchmark": "ResNet20 train step and inference, float vs DeepShift fake-quant",
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "platform": platform.platform(),
        },
        "setup": {
            "batch_size": args.batch_size,
            "input": [3, 32, 32],
            "shift_depth": 20,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "statistic": "ms: median over interleaved rounds (random order per round); "
            "ratio: median over pairs of variant / float run right next to it; "
            "wall = perf_counter, cpu = process_time",
            "train_step": "forward + CE (+1e-4 * shift_penalty for PS) + backward + SGD "
            "(momentum 0.9) + project_shift_parameters",
            "inference": "eval mode, no_grad forward",
            "configs": {n: (c.as_dict() if c else None) for n, c in VARIANTS.items()},
        },
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
