"""The machine a benchmark ran on, written into every results file."""

import json
import os
import platform
from pathlib import Path

import torch

CPU = torch.device("cpu")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gpu_model(device: torch.device) -> str | None:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else None


def machine(device: torch.device = CPU) -> dict:
    gpu = device.type == "cuda"
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu_model": gpu_model(device),
        "cuda_version": torch.version.cuda if gpu else None,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
    }


def write_report(path: Path, report: dict) -> None:
    """Write a benchmark's results file (JSON) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}")
