"""Cost of the DeepShift fake-quant layers (dsnn.shift) against the float network (CPU or GPU).

ResNet20 on a batch of 3x32x32 images with all 20 weight layers shifted (shift_depth=20),
for Q and PS at weight_bits 3 and 5 and once with stochastic rounding. Per variant:

    train step: forward, cross entropy (+ 1e-4 * shift_penalty(model) for PS), backward,
                SGD step (momentum 0.9), project_shift_parameters
    inference:  eval mode, torch.no_grad(), forward

All variants are timed side by side in one process: warm-up, then `--repeats` rounds in
which every variant runs once (random order), each time next to a run of float. The
tables show median times and the ratio to float (median over these pairs of variant /
float), of wall-clock time and of the process's CPU time; the JSON keeps minima and samples.
The run repeats for each `--threads` value (default: all cores, then 1). With one thread
the CPU time depends least on other load on the machine; the 1-minute load average is
recorded. On a GPU (`--device cuda`) each sample is `--inner` calls between two
`torch.cuda.synchronize()`. `--compile` adds a run of float, Q w5 and PS w5 under
`torch.compile` (ratios against compiled float).
Writes benchmarks/results/layer_cost_<device>.json.

    .venv/bin/python -m benchmarks.layer_cost            # ~8 min on 2 idle cores
    .venv/bin/python -m benchmarks.layer_cost --repeats 2 --batch-size 16 --out /tmp/x.json
    python -m benchmarks.layer_cost --device cuda --batch-size 128 512 --compile
"""

import argparse
import copy
import json
import os
import random
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.machine import gpu_model, machine
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
COMPILED = ("float", "Q w5", "PS w5")  # compilation is slow: a subset with --compile
PENALTY = 1e-4  # coefficient of the PS penalty: conf/config.yaml's default shift_penalty


def build(config: ShiftConfig | None, base: torch.nn.Module, device: torch.device):
    model = copy.deepcopy(base)
    if config is not None:
        model = convert_to_shift(model, 20, config)
    model = model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    penalize = config is not None and config.shift_type == "PS"
    return model, optimizer, penalize


def train_step(model, optimizer, penalize, x, y) -> None:
    model.train()
    loss = F.cross_entropy(model(x), y)
    if penalize:
        loss = loss + PENALTY * shift_penalty(model)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    project_shift_parameters(model)


def inference(model, x) -> None:
    model.eval()
    with torch.no_grad():
        model(x)


def timed(fn, inner: int, device: torch.device) -> tuple[float, float]:
    """(wall ms, CPU ms of this process) per call, averaged over `inner` calls."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(inner):
        fn()
    sync()
    return (time.perf_counter() - wall) * 1e3 / inner, (time.process_time() - cpu) * 1e3 / inner


def run(threads: int, args, base, x, y, compiled: bool = False) -> dict:
    torch.set_num_threads(threads)
    device = x.device
    jobs = {}
    variants = {n: c for n, c in VARIANTS.items() if not compiled or n in COMPILED}
    for name, cfg in variants.items():
        model, optimizer, penalize = build(cfg, base, device)
        if compiled:
            # One graph per model and grad mode; all share ResNet20.forward's code object.
            torch._dynamo.config.recompile_limit = 4 * len(variants)
            model = torch.compile(model)
        jobs[(name, "train_step")] = lambda m=model, o=optimizer, p=penalize: train_step(
            m, o, p, x, y
        )
        jobs[(name, "inference")] = lambda m=model: inference(m, x)
    compile_start = time.perf_counter()
    load_before = os.getloadavg()[0]
    for _ in range(args.warmup):
        for job in jobs.values():
            job()
    warmup_s = time.perf_counter() - compile_start  # includes compilation with --compile
    # Every measurement of a variant is paired with one of float right before or after it
    # (order drawn at random), and the ratio is the median over these pairs: load from
    # other processes, which comes and goes over seconds, then hits both sides alike.
    samples = {key: [] for key in jobs}
    ratios = {key: [] for key in jobs}
    names = [n for n in variants if n != "float"]
    rng = random.Random(0)
    for _ in range(args.repeats):
        rng.shuffle(names)
        for name in names:
            for kind in ("train_step", "inference"):
                pair = [("float", kind), (name, kind)]
                rng.shuffle(pair)
                timing = {key: timed(jobs[key], args.inner, device) for key in pair}
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
    where = gpu_model(device) or f"{threads} thread(s)"
    label = f"{where}, batch {x.shape[0]}{', torch.compile' if compiled else ''}"
    print(f"\n{label}, load average {load_before:.2f} -> {load_after:.2f}")
    print("median ms; x = median over pairs (variant / float measured next to it)")
    print(f"{'':<18}{'train step':^30}{'inference':^30}")
    print(f"{'variant':<18}" + f"{'wall ms':>8}{'x':>7}{'cpu ms':>8}{'x':>7}" * 2)
    for name, e in results.items():
        row = f"{name:<18}"
        for key in ("train_step_wall", "train_step_cpu", "inference_wall", "inference_cpu"):
            row += f"{e[f'{key}_ms']:>8.1f}{e[f'{key}_ratio']:>7.3f}"
        print(row)
    return {
        "batch_size": x.shape[0],
        "threads": threads,
        "compiled": compiled,
        "warmup_s": round(warmup_s, 2),
        "load_average_1min_before_after": [load_before, load_after],
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[128])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--inner", type=int, default=None, help="calls per sample (GPU: 20)")
    parser.add_argument("--threads", type=int, nargs="+", default=None)
    parser.add_argument("--compile", action="store_true", help="also time under torch.compile")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    args.inner = args.inner or (20 if gpu else 1)
    # On a GPU the host threads hardly matter: one run with the default.
    threads = [torch.get_num_threads()] if gpu else args.threads or [os.cpu_count() or 1, 1]
    out = args.out or Path(__file__).parent / "results" / f"layer_cost_{device.type}.json"

    torch.manual_seed(0)
    base = ResNet20(in_channels=3, num_classes=10)
    runs = {}
    for batch in args.batch_size:
        x = torch.randn(batch, 3, 32, 32, device=device)
        y = torch.randint(0, 10, (batch,), device=device)
        print(f"ResNet20, batch {batch}x3x32x32, all 20 weight layers shifted")
        for n in dict.fromkeys(threads):
            key = f"batch={batch}" + ("" if gpu else f",threads={n}")
            runs[key] = run(n, args, base, x, y)
            if args.compile:
                runs[key + ",compiled"] = run(n, args, base, x, y, compiled=True)

    report = {
        "benchmark": "ResNet20 train step and inference, float vs DeepShift fake-quant",
        "machine": machine(device),
        "setup": {
            "device": device.type,
            "batch_sizes": args.batch_size,
            "input": [3, 32, 32],
            "calls_per_sample": args.inner,
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
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
