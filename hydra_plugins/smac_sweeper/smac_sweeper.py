"""The Sweeper Hydra instantiates; the work (and the heavy imports) live in `_impl`.

A refused or stopped sweep (a bad setting, a resume with other settings, too many
crashed trials: a ValueError or RuntimeError of the sweeper) ends with one line on stderr,
`error: <message>`, and exit code 1, as train.py does; HYDRA_FULL_ERROR=1 raises it (with
its traceback) instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from .config import SMACSweeperConf  # noqa: F401  (registers hydra/sweeper=smac)


class SMACSweeper(Sweeper):
    """Hyperparameter optimisation with SMAC3; options: see config.SMACSweeperConf."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.impl: Any = None

    def setup(
        self,
        *,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        from ._impl import SMACSweeperImpl

        with one_line_errors():
            self.impl = SMACSweeperImpl(self.options)
            self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        with one_line_errors():
            return self.impl.sweep(arguments)


@contextmanager
def one_line_errors() -> Iterator[None]:
    try:
        yield
    except (ValueError, RuntimeError) as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":  # as Hydra reads it
            raise
        print("error: " + " ".join(str(err).split()), file=sys.stderr)
        sys.exit(1)
