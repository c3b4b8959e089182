"""The sweep loop: ask the optimiser for a batch -> launch it through Hydra's launcher -> tell.

Every ask and every tell is journaled (sweep_dir/journal.jsonl, see _journal.py) before the
optimiser hears of it. Re-running the same command on the same sweep directory rebuilds
the optimiser from the journal (asked trials registered, told results replayed, its last
state restored), re-launches the trials that were launched but never told, and goes on.

The optimiser sits behind the adapter of _optimizer.py (SMAC's in _smac.py, which also
rewrites SMAC's own output folder, so SMAC never finds an old run to ask about). Budgets
are _budget.py's, crash costs and the failure rate _failures.py's, the files _outputs.py's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from ._adapters import optimizer_class
from ._failures import ObjectivesMissingError, SweepFailedError, check_failure_rate, trial_cost
from ._guard import warn_if_launcher_ends_jobs_first
from ._journal import (
    Journal,
    Replay,
    SweepHeader,
    ask_record,
    reference_record,
    replay,
    session_record,
    state_record,
    sweep_record,
    tell_record,
    warm_start_record,
)
from ._known import KnownObjectives
from ._optimizer import Problem
from ._outputs import SweepOutputs, config_ids, log_done
from ._plan import make_plan, preflight
from ._reference import ReferencePoint, changed_on_resume, resolve_reference
from ._settings import check_against_app, known_functions, load_settings
from ._trials import PENDING, SUCCESS, TimedTask, Trial, consecutive, read_outcome
from ._warm_start import WarmStart, load_warm_start

log = logging.getLogger(__name__)


class SMACSweeperImpl:
    def __init__(self, options: dict[str, Any]) -> None:
        self.settings, self.options = load_settings(options)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config,
            hydra_context=hydra_context,
            task_function=TimedTask(task_function, self.settings.trial_timeout),
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        warn_if_launcher_ends_jobs_first(config, self.settings.trial_timeout)
        # seconds spent per phase, for the closing log line (sweeper overhead per trial)
        self.timing = dict.fromkeys(("ask", "launch", "task", "tell", "outputs"), 0.0)
        self.told_this_session = 0

    # ------------------------------------------------------------------ sweep
    def sweep(self, arguments: list[str]) -> None:
        s = self.settings
        check_against_app(s, self.config)
        self.plan = make_plan(s, arguments, self.config, self.sweep_dir)
        self.budget = self.plan.budget
        self.outputs = SweepOutputs(
            self.sweep_dir, s.objectives, self.budget, self.plan.rerun_overrides
        )
        preflight(self.plan, self.hydra_context, self.config)
        known = self._known_objectives()  # before anything is written
        journal_path = self.sweep_dir / "journal.jsonl"
        warm = None if journal_path.is_file() else self._load_warm_start()  # (as known)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        # what Hydra's own sweepers write: the composed config (hydra.overrides included)
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        with Journal(journal_path) as journal:
            self.journal = journal
            journaled = replay(journal.read(), journal.path)
            n_trials = self._start(journaled)
            problem = Problem(
                space=self.plan.space,
                objectives=list(s.objectives),
                seed=s.seed,
                budgets=self.budget.stages,
                n_trials=n_trials,
                sweep_dir=self.sweep_dir,
                name=self.plan.sweep_name,
                known=known,
                warm_start=self._warm_start(journaled, warm),
            )
            self.optimizer = optimizer_class(s.algorithm)(problem, s)
            self._restore(journaled)
            self._loop()

    def _known_objectives(self) -> KnownObjectives | None:
        """hydra.sweeper.known_objectives, checked on the default configuration before
        any trial (a function that cannot compute it stops the sweep here)."""
        functions = known_functions(self.settings)
        if not functions:
            return None
        loader = self.hydra_context.config_loader
        top = self.budget.top
        known = KnownObjectives(
            functions,
            overrides=self.plan.overrides,
            compose=lambda overrides: loader.load_sweep_config(self.config, overrides),
            is_group=lambda name: bool(loader.get_group_options(name.replace(".", "/"))),
            budget=(top, self.budget.value(top)),
        )
        try:
            values = known.values(self.plan.default_config())
        except Exception as err:
            raise ValueError(
                f"hydra.sweeper.known_objectives: computing them for the default "
                f"configuration failed: {type(err).__name__}: {err}"
            ) from err
        log.info(f"Known objectives of the default configuration: {values}")
        return known

    def _load_warm_start(self) -> WarmStart:
        default = self.plan.default_config() if self.settings.use_default_config else None
        warm = load_warm_start(self.settings, self.plan.space, default)
        if warm.configs:
            log.info(
                f"Warm start from {self.settings.warm_start.sweep_dir}: {len(warm.configs)} "
                f"configurations of its front, {len(warm.observations)} of its results"
            )
        return warm

    def _warm_start(self, journaled: Replay, chosen: WarmStart | None) -> WarmStart:
        """The warm start: the journal's when it holds one (a resume asks what the first
        session chose), else `chosen` (or chosen now), journaled."""
        if journaled.warm_start is not None:
            return WarmStart(**journaled.warm_start)
        source = self.settings.warm_start.sweep_dir
        if source is None:
            return WarmStart([], [])
        warm = self._load_warm_start() if chosen is None else chosen
        record = warm_start_record(warm.configs, warm.observations, str(source), time.time())
        self.journal.append(record)
        return warm

    def _start(self, journaled: Replay) -> int:
        """Check a previous session's settings; journal this session. -> the sweep's
        n_trials as the optimiser knows it (the first session's)."""
        s, fingerprint = self.settings, self.plan.fingerprint
        now = time.time()
        self.session_start = now
        self.previous_walltime = journaled.walltime_used
        if journaled.header is not None:
            journaled.header.check_resumes(fingerprint, self.sweep_dir)
            told = len(journaled.told_order)
            log.info(f"Resuming the sweep in {self.sweep_dir}: {told} trials told so far")
            n_trials = journaled.header.scenario_n_trials
        else:
            self.journal.append(sweep_record(SweepHeader(fingerprint, s.n_trials), now))
            n_trials = s.n_trials
        self.journal.append(session_record(s.n_trials, now))
        stages = self.budget.stages
        budgets = f", budgets {stages} of {self.budget.variable}" if stages else ""
        log.info(
            f"SMAC sweep '{self.plan.sweep_name}': {s.algorithm}, objectives {list(s.objectives)}"
            f"{budgets}, {s.n_trials} trials, {s.n_workers} per batch, dir {self.sweep_dir}"
        )
        return n_trials

    def _restore(self, journaled: Replay) -> None:
        """The journal's trials into the optimiser (see _optimizer.py for the order)."""
        self.trials = journaled.trials
        self.told_order = journaled.told_order
        self.reference: ReferencePoint | None = journaled.reference
        configured = self.settings.reference_point
        if self.reference and (changed := changed_on_resume(self.reference, configured)):
            log.warning(f"reference_point of {changed} differs from the journal's; keeping it")
        if not self.trials:
            return
        for trial in self.trials.values():
            self.optimizer.register(trial)
        self.optimizer.tell([self.trials[i] for i in self.told_order])
        self.optimizer.restore(journaled.state)

    # ------------------------------------------------------------------- loop
    def _loop(self) -> None:
        s = self.settings
        failed: SweepFailedError | None = None
        try:
            while True:
                pending = [t for t in self.trials.values() if t.status == PENDING]
                if pending:
                    log.info(f"Re-launching {len(pending)} trial(s) launched but never told")
                    self._run(pending)
                else:
                    left = s.n_trials - len(self.trials)
                    if left <= 0:
                        break
                    if self._out_of_time():
                        log.info(f"Wall-time limit of {s.walltime_limit} s reached; stopping")
                        break
                    start = time.perf_counter()
                    batch = self._ask(min(s.n_workers, left))
                    self.timing["ask"] += time.perf_counter() - start
                    if not batch:
                        break
                    self._run(batch)
                start = time.perf_counter()
                self._write_outputs(final=False)
                self.timing["outputs"] += time.perf_counter() - start
                check_failure_rate(
                    self.trials.values(), s.max_failure_rate, s.failure_check_after, s.n_trials
                )
        except SweepFailedError as err:
            failed = err
        if not self.trials:
            return
        summary = self._write_outputs(final=True)
        self._wandb(summary)
        if failed is not None:
            raise failed
        log_done(self.sweep_dir, self.trials.values(), summary, self._ms_per_trial())

    def _ask(self, n: int) -> list[Trial]:
        batch_index = 1 + max((t.batch for t in self.trials.values()), default=-1)
        batch = []
        for _ in range(n):
            trial_id = len(self.trials)
            suggestion = self.optimizer.ask(trial_id)
            if suggestion is None:
                log.warning("The optimiser has no further configurations to suggest; stopping")
                break
            trial = Trial(
                trial_id=trial_id,
                batch=batch_index,
                config=suggestion.config,
                budget=suggestion.budget,
                seed=suggestion.seed,
                budget_value=self.budget.value(suggestion.budget),
            )
            source = self.budget.continues(trial, self.trials.values())
            trial.resumed_from = None if source is None else source.trial_id
            config_id = config_ids([*self.trials.values(), trial])[trial_id]
            trial.overrides = self.plan.overrides(trial, config_id, source and source.job_dir)
            self.journal.append(ask_record(trial, time.time()))
            self.trials[trial_id] = trial
            batch.append(trial)
        if batch:  # e.g. Hyperband's brackets, which a resume restores
            self.journal.append(state_record(self.optimizer.state(), time.time()))
        return batch

    def _run(self, batch: Sequence[Trial]) -> None:
        """Launch trials (consecutive ids share one launch: job folders follow the ids).
        Stops the sweep (once all are told) when a trial returns without an objective
        before any trial returned them all: the objectives do not name the task's keys."""
        told = []
        wrong_objectives = None
        for group in consecutive(sorted(batch, key=lambda t: t.trial_id)):
            start = time.perf_counter()
            try:
                returns = self.launcher.launch(
                    [t.overrides for t in group], initial_job_idx=group[0].trial_id
                )
            except Exception as err:  # composition errors, launcher failures
                log.error(f"Launching trials {[t.trial_id for t in group]} failed: {err}")
                returns = [err] * len(group)
            self.timing["launch"] += time.perf_counter() - start
            start = time.perf_counter()
            for trial, ret in zip(group, returns, strict=True):
                missing = read_outcome(trial, ret, self.settings.objectives)
                self._journal_tell(trial)
                if missing is not None and not any(
                    t.status == SUCCESS for t in self.trials.values()
                ):
                    wrong_objectives = wrong_objectives or (trial, missing)
                self.timing["task"] += trial.duration or 0.0
                told.append(trial)
            self.timing["tell"] += time.perf_counter() - start
        start = time.perf_counter()
        self.optimizer.tell(told)
        self.timing["tell"] += time.perf_counter() - start
        if wrong_objectives is not None:
            raise ObjectivesMissingError(self.settings.objectives, *wrong_objectives)

    def _journal_tell(self, trial: Trial) -> None:
        s = self.settings
        trial.told_at = time.time()
        self.told_this_session += 1
        trial.cost = trial_cost(trial, self.trials.values(), s.objectives, s.crash_cost)
        self.journal.append(tell_record(trial))
        self.told_order.append(trial.trial_id)

    # --------------------------------------------------------------- helpers
    def _ms_per_trial(self) -> dict[str, float]:
        """Sweeper time per trial told in this session, by phase (the launch includes the
        task, which is also given apart)."""
        n = max(self.told_this_session, 1)
        return {k: round(1000 * v / n, 1) for k, v in self.timing.items()}

    def _out_of_time(self) -> bool:
        limit = self.settings.walltime_limit
        used = self.previous_walltime + time.time() - self.session_start
        return limit is not None and used >= limit

    def _write_outputs(self, *, final: bool) -> Any:
        told = [self.trials[i] for i in self.told_order]
        trials = list(self.trials.values())
        self._fix_reference(told, final=final)
        return self.outputs.write(
            trials, told, self.reference, final=final, timing=self._ms_per_trial()
        )

    def _fix_reference(self, told: list[Trial], *, final: bool) -> None:
        """The hypervolume's reference point, journaled once complete (_reference.py)."""
        if self.reference is not None:
            return
        s = self.settings
        default = self.plan.default_config() if s.use_default_config else None
        reference = resolve_reference(
            s.objectives, s.reference_point, told, default, sweep_over=final
        )
        if reference is not None:
            self.reference = reference
            self.journal.append(reference_record(reference, time.time()))
            log.info(f"Hypervolume reference point fixed: {reference.values} ({reference.source})")

    def _wandb(self, summary: Any) -> None:
        from ._wandb import log_summary

        log_summary(
            OmegaConf.to_container(OmegaConf.structured(self.settings.wandb)),
            self.config,
            self.sweep_dir,
            self.plan,
            list(self.trials.values()),
            summary,
            {k: v for k, v in self.options.items() if k != "search_space"},
        )


__all__ = ["ObjectivesMissingError", "SMACSweeperImpl", "SweepFailedError"]
