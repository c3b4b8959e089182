"""Running the toy app's sweeps from tests: in-process (fast: SMAC is imported once) or as
a subprocess (for kill -9 and the command line), and reading what they left behind."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOY = Path(__file__).with_name("toy.py")
if str(ROOT) not in sys.path:  # hydra_plugins/ must be importable for Hydra to find it
    sys.path.insert(0, str(ROOT))


def overrides(sweep_dir: Path, preset: str, *extra: str) -> list[str]:
    """A preset from conf/hydra/sweeper on the toy app, with the toy search space."""
    return [
        f"hydra/sweeper={preset}",
        f"hydra.searchpath=[file://{ROOT / 'conf'}]",
        "search_space@hydra.sweeper.search_space=toy",
        "hydra.sweeper.wandb.mode=disabled",
        f"hydra.sweep.dir={sweep_dir}",
        f"log_dir={sweep_dir / 'calls'}",
        *extra,
    ]


def run_inprocess(args: list[str]) -> None:
    """`toy.py -m args` inside this process (as Hydra's own sweeper tests do); a sweeper
    error is raised (HYDRA_FULL_ERROR=1), not printed as one line and exit 1."""
    from hydra._internal.hydra import Hydra
    from hydra.core.global_hydra import GlobalHydra

    from .toy import task

    GlobalHydra.instance().clear()
    full_error = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra = Hydra.create_main_hydra_file_or_module(
            calling_file=str(TOY), calling_module=None, config_path="conf", job_name="toy"
        )
        hydra.multirun(
            config_name="toy", task_function=task, overrides=args, with_log_configuration=False
        )
    finally:
        GlobalHydra.instance().clear()
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR")
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "PYTHONHASHSEED": "0",
        "WANDB_MODE": "disabled",
        "WANDB_SILENT": "true",
        "HYDRA_FULL_ERROR": "1",
    }


def command(args: list[str]) -> list[str]:
    return [sys.executable, str(TOY), "-m", *args]


def run_subprocess(args: list[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(args), cwd=cwd, env=env(), capture_output=True, text=True, timeout=300, **kwargs
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_journal(sweep_dir: Path) -> list[dict[str, Any]]:
    """The journal's records; a last line still being written is left out."""
    records = []
    for line in (sweep_dir / "journal.jsonl").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            break
    return records


def calls(sweep_dir: Path) -> list[dict[str, Any]]:
    """One record per toy invocation (written by the toy task itself)."""
    folder = sweep_dir / "calls"
    if not folder.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def kill_inside_a_trial(args: list[str], cwd: Path, told: int) -> None:
    """Start `toy.py -m args` and kill -9 it once `told` trials are told and one more is
    inside the task (give the toy a `sleep`)."""
    sweep_dir = Path(next(a for a in args if a.startswith("hydra.sweep.dir=")).split("=", 1)[1])
    first = subprocess.Popen(
        command(args), cwd=cwd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    def n_told() -> int:
        if not (sweep_dir / "journal.jsonl").exists():
            return 0
        return sum(r["event"] == "tell" for r in read_journal(sweep_dir))

    try:
        deadline = time.monotonic() + 180
        while n_told() < told or len(calls(sweep_dir)) <= n_told():
            assert first.poll() is None, first.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the first sweep did not get going"
            time.sleep(0.02)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
