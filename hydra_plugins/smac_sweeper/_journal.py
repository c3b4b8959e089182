"""Append-only trial journal (JSON lines): the sweep's source of truth for resuming.

Each record is written with one `write` on an O_APPEND descriptor and fsync'ed, so a
sweep killed at any instant (kill -9 included) leaves at most a torn last line, which
`open_journal` cuts off. An exclusive lock refuses a second sweeper on the same folder.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any


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
        text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

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


def _to_json(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
