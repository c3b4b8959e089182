"""What guards one call of the task: the per-trial time limit and a real Ctrl-C.

`guarded(timeout)` runs around the task in the process that executes the job: the sweep's
own process with the basic launcher, a loky worker with joblib, the job process with
submitit (local or slurm). Both need that process's main thread (POSIX signals):

- the time limit is a SIGALRM timer (`setitimer`) whose handler raises `TrialTimeout`
  inside the task, wherever it is in Python code (a sleep, a data loader wait, a training
  step); a task stuck in a single C call that never returns to Python is stopped only
  when it does;
- SIGINT: while the task runs, a Ctrl-C delivered to the process is noted before the
  KeyboardInterrupt is raised, so that a KeyboardInterrupt the task raises itself (a
  crashed trial) can be told apart from the user stopping the sweep (which stops it).

Off the main thread (e.g. joblib's threading backend) neither can be installed: the task
runs unguarded, with a warning when a time limit was asked for.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class TrialTimeout(Exception):
    """The task ran past hydra.sweeper.trial_timeout."""


@dataclass
class Guard:
    interrupted: bool = False  # a real SIGINT arrived while the task ran
    active: bool = True  # the task is running (a late alarm after it ends is ignored)


@contextmanager
def guarded(timeout: float | None) -> Iterator[Guard]:
    guard = Guard()
    if threading.current_thread() is not threading.main_thread():
        if timeout:
            log.warning(f"trial_timeout={timeout:g} needs the main thread: not enforced here")
        yield guard
        return

    def on_alarm(signum, frame):
        if guard.active:
            raise TrialTimeout(f"timed out after {timeout:g} s (hydra.sweeper.trial_timeout)")

    def on_sigint(signum, frame):
        guard.interrupted = True
        raise KeyboardInterrupt

    # only where Ctrl-C raises KeyboardInterrupt anyway (a worker may ignore SIGINT)
    own_sigint = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if own_sigint:
        signal.signal(signal.SIGINT, on_sigint)
    previous_alarm = signal.signal(signal.SIGALRM, on_alarm) if timeout else None
    if timeout:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield guard
    finally:
        guard.active = False
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_alarm or signal.SIG_DFL)
        if own_sigint:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def warn_if_launcher_ends_jobs_first(config: Any, trial_timeout: float | None) -> None:
    """submitit's `hydra.launcher.timeout_min` below the trial time limit kills the whole
    batch before a trial times out: say so before the sweep starts."""
    from omegaconf import OmegaConf

    limit = OmegaConf.select(config, "hydra.launcher.timeout_min", default=None)
    if trial_timeout and limit and 60 * limit < trial_timeout:
        log.warning(
            f"hydra.launcher.timeout_min={limit} ends a job before "
            f"hydra.sweeper.trial_timeout={trial_timeout:g} s: the whole batch is then lost; "
            "set timeout_min above trial_timeout / 60"
        )
