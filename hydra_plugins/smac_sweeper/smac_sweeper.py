"""The Sweeper Hydra instantiates; the work (and the heavy imports) live in `_impl`."""

from __future__ import annotations

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

        self.impl = SMACSweeperImpl(self.options)
        self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.impl.sweep(arguments)
