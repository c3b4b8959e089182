"""How train.py and evaluate.py report a config or data error: one line, exit code 1.

A single run prints `error: <message>` to stderr and exits 1, no traceback (set
HYDRA_FULL_ERROR=1 for one). In a multirun (`-m`) the error is raised on, so that the
sweeper records a crashed trial and goes on: SystemExit never leaves a trial.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode

from dsnn.config_checks import ConfigError


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Around a task function's body: a user error in a single run ends it with one line."""
    try:
        yield
    except Exception as err:
        # Hydra's instantiate wraps a constructor's error (e.g. a DataModule's check)
        cause = err.__cause__ if isinstance(err, InstantiationException) else err
        if not user_error(cause) or _full_error() or _multirun():
            raise
        print(f"error: {cause}", file=sys.stderr)
        sys.exit(1)


def user_error(err: BaseException | None) -> bool:
    """A ConfigError or DatasetError: the message says what to fix, a traceback adds nothing."""
    if isinstance(err, ConfigError):
        return True
    # a DatasetError exists only once its module is imported: no need to import it (torch) here
    data = sys.modules.get("dsnn.data.base")
    return data is not None and isinstance(err, data.DatasetError)


def _full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"  # as Hydra reads it


def _multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
