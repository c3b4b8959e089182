"""Append-only trial journal (JSON lines): the sweep's source of truth for resuming.

Each record is written with one `write` on an O_APPEND descriptor and fsync'ed, so a
sweep killed at any instant (kill -9 included) leaves at most a torn last line, which
opening the journal cuts off. An exclusive `fcntl` lock refuses a second sweeper on the
same folder, which makes the plugin POSIX-only (Linux, macOS).

The records, one builder and one reader each (the format of journals already on disk):

    sweep    first record: the settings a resume must match, SMAC's n_trials
    session  one per run of the sweep command (start time, pid)
    ask      a trial handed out: id, batch, configuration, budget, seed, overrides, and
             the trial it continues (resumed_from, with budget.continuation)
    tell     its result: status, objectives, metrics, cost told, duration, job dir, error
    state    the optimiser's state after a batch of asks (Hyperband's brackets)
    reference  the hypervolume's reference point, once fixed (_reference.py)
    warm_start  the configurations an earlier sweep hands this one (_warm_start.py), once

`replay` turns the records back into trials, the order they were told and the last state.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._reference import ReferencePoint
from ._trials import Trial

try:
    import fcntl
except ImportError as err:  # Windows
    raise ImportError(
        "hydra_plugins.smac_sweeper runs on POSIX systems only (Linux, macOS): its sweep "
        "journal is locked with fcntl, which this platform lacks (on Windows, use WSL)"
    ) from err


class JournalLockedError(RuntimeError):
    """Another sweeper process holds the journal of this sweep directory."""


class Journal:
    """Records of one sweep directory; use as a context manager (holds the lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> Journal:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            os.close(self._fd)
            self._fd = None
            raise JournalLockedError(
                f"{self.path} is locked: another sweep is running in this directory"
            ) from err
        self._cut_torn_tail()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None

    def read(self) -> list[dict[str, Any]]:
        """All complete records, in write order."""
        return read_records(self.path)

    def append(self, record: dict[str, Any]) -> None:
        assert self._fd is not None, "use the journal as a context manager"
        line = json.dumps(record, default=_to_json, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode("utf-8"))
        os.fsync(self._fd)

    def _cut_torn_tail(self) -> None:
        """Drop a last line that a killed writer left without its newline or unparsable."""
        data = self.path.read_bytes()
        if not data:
            return
        end = len(data)
        last_start = data.rfind(b"\n", 0, end - 1) + 1 if data.endswith(b"\n") else None
        if last_start is None:  # no trailing newline: the tail is torn
            end = data.rfind(b"\n") + 1
        else:
            try:
                json.loads(data[last_start:end])
            except ValueError:
                end = last_start
        if end != len(data):
            os.truncate(self.path, end)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The complete records of a journal, in write order, without taking its lock (e.g.
    an earlier sweep's, read for a warm start): a torn last line of a running or killed
    writer is left out."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = [line for line in text.splitlines() if line.strip()]
    records = []
    for n, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except ValueError:
            if n < len(lines) - 1:
                raise
    return records


def _to_json(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ----------------------------------------------------------------------------- records
_ASK_FIELDS = (
    "trial_id",
    "batch",
    "config",
    "budget",
    "budget_value",
    "seed",
    "overrides",
    "resumed_from",
)
_TOLD_FIELDS = (
    "status", "objectives", "metrics", "cost", "duration", "job_dir", "error", "started_at",
)  # fmt: skip


@dataclass(frozen=True)
class SweepHeader:
    """The journal's first record: what a resume must match, and SMAC's trial count."""

    fingerprint: dict[str, Any]
    scenario_n_trials: int

    def check_resumes(self, fingerprint: dict[str, Any], sweep_dir: Any) -> None:
        """RuntimeError unless this session's settings are the journaled sweep's."""
        old = self.fingerprint
        diff = sorted(
            k for k in fingerprint.keys() | old.keys() if old.get(k) != fingerprint.get(k)
        )
        if diff:
            raise RuntimeError(
                f"{sweep_dir} holds a sweep with other settings ({', '.join(diff)}). "
                "Resume it with the same command, or choose a new hydra.sweep.dir."
            )


def sweep_record(header: SweepHeader, t: float) -> dict[str, Any]:
    return {
        "event": "sweep",
        "t": t,
        "fingerprint": header.fingerprint,
        "scenario_n_trials": header.scenario_n_trials,
    }


def read_sweep(record: dict[str, Any]) -> SweepHeader:
    return SweepHeader(record["fingerprint"], int(record["scenario_n_trials"]))


def session_record(n_trials: int, t: float) -> dict[str, Any]:
    return {"event": "session", "t": t, "pid": os.getpid(), "n_trials": n_trials}


def ask_record(trial: Trial, t: float) -> dict[str, Any]:
    return {"event": "ask", "t": t, **{key: getattr(trial, key) for key in _ASK_FIELDS}}


def read_ask(record: dict[str, Any]) -> Trial:
    trial = Trial(**{key: record[key] for key in ("trial_id", "batch", "config", "budget", "seed")})
    trial.budget_value = record.get("budget_value")
    trial.overrides = record.get("overrides", [])
    trial.resumed_from = record.get("resumed_from")
    return trial


def tell_record(trial: Trial) -> dict[str, Any]:
    return {
        "event": "tell",
        "t": trial.told_at,
        "trial_id": trial.trial_id,
        **{key: getattr(trial, key) for key in _TOLD_FIELDS},
    }


def read_tell(record: dict[str, Any], trial: Trial) -> None:
    """Puts a tell record's result on its trial."""
    for key in _TOLD_FIELDS:
        setattr(trial, key, record.get(key))
    trial.metrics = trial.metrics or {}
    trial.objectives = trial.objectives or {}
    trial.told_at = record["t"]


def reference_record(reference: ReferencePoint, t: float) -> dict[str, Any]:
    return {"event": "reference", "t": t, "values": reference.values, "source": reference.source}


def read_reference(record: dict[str, Any]) -> ReferencePoint:
    values = {str(k): float(v) for k, v in record["values"].items()}
    return ReferencePoint(values=values, source=dict(record["source"]))


def warm_start_record(
    configs: list[dict[str, Any]], observations: list[dict[str, Any]], source: str, t: float
) -> dict[str, Any]:
    return {
        "event": "warm_start",
        "t": t,
        "source": source,
        "configs": configs,
        "observations": observations,
    }


def read_warm_start(record: dict[str, Any]) -> dict[str, Any]:
    """{configs, observations} (_warm_start.WarmStart's fields)."""
    return {"configs": list(record["configs"]), "observations": list(record["observations"])}


def state_record(state: Any, t: float) -> dict[str, Any]:
    # "intensifier": the key of journals written when SMAC's was the only state
    return {"event": "state", "t": t, "intensifier": state}


def read_state(record: dict[str, Any]) -> Any:
    return record["intensifier"]


# ------------------------------------------------------------------------------ replay
@dataclass
class Replay:
    """What a journal holds, rebuilt (empty for a new sweep)."""

    header: SweepHeader | None = None
    trials: dict[int, Trial] = field(default_factory=dict)  # by id, in ask order
    told_order: list[int] = field(default_factory=list)  # trial ids, as they were told
    state: Any = None  # the optimiser's last state record (None: none yet)
    reference: ReferencePoint | None = None  # the hypervolume's, once fixed
    walltime_used: float = 0.0  # seconds the sessions ran (session start -> its last record)
    warm_start: dict[str, Any] | None = None  # {configs, observations}; None: no record


def replay(records: list[dict[str, Any]], path: Path) -> Replay:
    result = Replay()
    if not records:
        return result
    if records[0].get("event") != "sweep":
        raise RuntimeError(f"{path} does not start with a sweep record")
    result.header = read_sweep(records[0])
    start = last = None
    for record in records:
        event = record["event"]
        if event == "session":
            if start is not None:
                result.walltime_used += last - start
            start = record["t"]
        elif event == "ask":
            trial = read_ask(record)
            result.trials[trial.trial_id] = trial
        elif event == "tell":
            read_tell(record, result.trials[record["trial_id"]])
            result.told_order.append(record["trial_id"])
        elif event == "state":
            result.state = read_state(record)
        elif event == "reference":
            result.reference = read_reference(record)
        elif event == "warm_start":
            result.warm_start = read_warm_start(record)
        last = record.get("t", last)
    if start is not None and last is not None:
        result.walltime_used += last - start
    return result
