"""The sweep loop: ask SMAC for a batch -> launch it through Hydra's launcher -> tell.

Every ask and every tell is journaled (sweep_dir/journal.jsonl) before SMAC hears of it.
Re-running the same command on the same sweep directory rebuilds SMAC from the journal
(asked trials registered in order, told results replayed, Hyperband's bracket state
restored from the last snapshot), re-launches the trials that were launched but never
told, and goes on. SMAC's own output folder is rewritten from that, so SMAC never finds an
old run to ask about (its interactive prompt).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from ._journal import Journal
from ._outputs import summarise, write_all
from ._overrides import fixed_overrides, is_hydra_override, trial_overrides
from ._settings import load_settings
from ._smac import budget_stages, make_smac
from ._space import SearchSpaceError, build_space, to_python
from ._trials import CRASHED, PENDING, SUCCESS, TaskOutcome, TimedTask, Trial
from ._trials import read_objectives as _read_objectives

log = logging.getLogger(__name__)

_PLOT_INTERVAL_S = 10.0
_TOLD_FIELDS = ("status", "objectives", "metrics", "cost", "duration", "job_dir", "error")


class SweepFailedError(RuntimeError):
    """Too many trials crashed (max_failure_rate)."""


class SMACSweeperImpl:
    def __init__(self, options: dict[str, Any]) -> None:
        self.settings, self.options = load_settings(options)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=TimedTask(task_function)
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self._last_plot = -math.inf
        # seconds spent per phase, for the closing log line (sweeper overhead per trial)
        self.timing = dict.fromkeys(("ask", "launch", "task", "tell", "outputs"), 0.0)
        self.told_this_session = 0

    # ------------------------------------------------------------------ sweep
    def sweep(self, arguments: list[str]) -> None:
        s = self.settings
        fingerprint = self._prepare(arguments)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        with Journal(self.sweep_dir / "journal.jsonl") as journal:
            self.journal = journal
            records = journal.read()
            scenario_n_trials = self._start(records, fingerprint)
            self.smac = make_smac(
                self.space,
                s,
                n_trials=scenario_n_trials,
                output_directory=self.sweep_dir / "smac3_output",
                min_budget=self.stages[0] if self.stages else None,
                max_budget=self.stages[-1] if self.stages else None,
            )
            self.trials = self._restore(records)
            self._loop()

    def _prepare(self, arguments: list[str]) -> dict[str, Any]:
        """Search space, budgets and fixed overrides; -> the settings a resume must match."""
        s = self.settings
        parsed = OverridesParser.create().parse_overrides(list(arguments))
        # overrides of the sweeper's own config (e.g. its search space) stay out of trials
        self.arguments = [o.input_line for o in parsed if not is_hydra_override(o)]
        self.fixed = fixed_overrides(self.arguments)
        budget_var = s.budget.variable
        if budget_var is not None and budget_var in self.fixed:
            raise ValueError(f"the budget variable {budget_var!r} is also set on the command line")
        spec = OmegaConf.to_container(OmegaConf.create(s.search_space), resolve=True) or {}
        hp_names = set(spec.get("hyperparameters") or {})
        remove = {k: v for k, v in self.fixed.items() if k in hp_names}
        if budget_var is not None:
            remove[budget_var] = None
        for name, value in remove.items():
            why = "budget variable" if value is None else f"fixed to {value!r} on the command line"
            if name in hp_names:
                log.info(f"Search space: {name} removed ({why})")
        self.space = build_space(spec, remove=remove, seed=s.seed)
        self.stages = budget_stages(s.budget) if budget_var else []
        self.integer_budget = self._integer_budget()
        self.sweep_name = s.sweep_name or _sweep_name(self.sweep_dir)
        self._preflight()
        if os.environ.get("PYTHONHASHSEED") in (None, "random"):
            log.warning(
                "PYTHONHASHSEED is not set: SMAC's suggestions after its initial design depend "
                "on Python's string hashing, so this sweep is not bit-reproducible from its seed. "
                "Run as `PYTHONHASHSEED=0 python ... -m` for that."
            )
        return {
            "search_space": spec,
            "removed": sorted(remove),
            "arguments": self.arguments,
            "objectives": list(s.objectives),
            "algorithm": s.algorithm,
            "multi_objective": s.multi_objective,
            "intensifier": s.intensifier,
            "budget": OmegaConf.to_container(OmegaConf.structured(s.budget)),
            "seed": s.seed,
            "use_default_config": s.use_default_config,
            "n_initial_configs": s.n_initial_configs,
        }

    def _preflight(self) -> None:
        """Compose the default configuration's trial once: a search-space key the app does
        not have (a typo) stops the sweep here instead of crashing every trial."""
        default = self.space.get_default_configuration()
        budget = self.stages[-1] if self.stages else None
        probe = Trial(
            trial_id=0,
            batch=0,
            config={k: to_python(v) for k, v in default.items()},
            budget=budget,
            seed=0,
            budget_value=self._budget_value(budget),
        )
        overrides = self._overrides(probe)
        try:
            self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        except Exception as err:
            raise ValueError(
                f"The trials' overrides do not compose with the app's config "
                f"({' '.join(overrides)}): {err}"
            ) from err

    def _start(self, records: list[dict[str, Any]], fingerprint: dict[str, Any]) -> int:
        """Check a previous session's settings; journal this session. -> SMAC's n_trials."""
        s = self.settings
        now = time.time()
        self.session_start = now
        self.previous_walltime = _walltime_used(records)
        if records:
            first = records[0]
            if first.get("event") != "sweep":
                raise RuntimeError(f"{self.journal.path} does not start with a sweep record")
            old = first["fingerprint"]
            diff = sorted(
                k for k in fingerprint.keys() | old.keys() if old.get(k) != fingerprint.get(k)
            )
            if diff:
                raise RuntimeError(
                    f"{self.sweep_dir} holds a sweep with other settings ({', '.join(diff)}). "
                    "Resume it with the same command, or choose a new hydra.sweep.dir."
                )
            told = sum(r["event"] == "tell" for r in records)
            log.info(f"Resuming the sweep in {self.sweep_dir}: {told} trials told so far")
            n_trials = int(first["scenario_n_trials"])
        else:
            self.journal.append(
                {
                    "event": "sweep",
                    "t": now,
                    "fingerprint": fingerprint,
                    "scenario_n_trials": s.n_trials,
                }
            )
            n_trials = s.n_trials
        self.journal.append(
            {"event": "session", "t": now, "pid": os.getpid(), "n_trials": s.n_trials}
        )
        stages = f", budgets {self.stages} of {s.budget.variable}" if self.stages else ""
        log.info(
            f"SMAC sweep '{self.sweep_name}': {s.algorithm}, objectives {list(s.objectives)}"
            f"{stages}, {s.n_trials} trials, {s.n_workers} per batch, dir {self.sweep_dir}"
        )
        return n_trials

    def _restore(self, records: list[dict[str, Any]]) -> dict[int, Trial]:
        """Rebuild SMAC's state from the journal; returns the trials by id."""
        from ConfigSpace import Configuration
        from smac.runhistory.dataclasses import TrialInfo

        trials: dict[int, Trial] = {}
        state = None
        self.told_order: list[int] = []
        self.infos: dict[int, Any] = {}  # trial id -> SMAC's TrialInfo
        for record in records:
            event = record["event"]
            if event == "ask":
                trial = Trial(
                    trial_id=record["trial_id"],
                    batch=record["batch"],
                    config=record["config"],
                    budget=record["budget"],
                    seed=record["seed"],
                    budget_value=record.get("budget_value"),
                    overrides=record.get("overrides", []),
                )
                trials[trial.trial_id] = trial
                # configs rebuilt from the journal: SMAC keys configs by repr, so the same
                # objects must serve for the running entry and the tell
                config = Configuration(self.space, values=trial.config)
                info = TrialInfo(config=config, seed=trial.seed, budget=trial.budget)
                self.infos[trial.trial_id] = info
                self.smac.runhistory.add_running_trial(info)
            elif event == "tell":
                trial = trials[record["trial_id"]]
                for key in _TOLD_FIELDS:
                    setattr(trial, key, record.get(key))
                trial.metrics = trial.metrics or {}
                trial.objectives = trial.objectives or {}
                trial.told_at = record["t"]
                self._tell_smac(trial)
                self.told_order.append(trial.trial_id)
            elif event == "state":
                state = record["intensifier"]
        if state is not None:
            self.smac.intensifier.set_state(state)
        if trials:
            self.smac.optimizer.save()
        return trials

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
                self._check_failures()
        except SweepFailedError as err:
            failed = err
        if not self.trials:
            return
        summary = self._write_outputs()
        self._wandb(summary)
        if failed is not None:
            raise failed
        told = [t for t in self.trials.values() if t.status != PENDING]
        ms = self._ms_per_trial()
        log.info(
            "Sweeper time per trial (ms, this session): ask {ask:.0f}, launch {launch:.0f} "
            "(the task itself {task:.0f}), tell {tell:.0f}, output files {outputs:.0f}".format(**ms)
        )
        log.info(
            f"Sweep done: {len(told)} trials told ({sum(t.status == CRASHED for t in told)} "
            f"crashed), {len(summary.front)} on the front, hypervolume {summary.hypervolume}; "
            f"results in {self.sweep_dir}"
        )

    def _ask(self, n: int) -> list[Trial]:
        batch_index = 1 + max((t.batch for t in self.trials.values()), default=-1)
        batch = []
        for _ in range(n):
            try:
                info = self.smac.ask()
            except StopIteration:
                log.warning("SMAC has no further configurations to suggest; stopping")
                break
            trial_id = len(self.trials)
            budget = None if info.budget is None else float(info.budget)
            trial = Trial(
                trial_id=trial_id,
                batch=batch_index,
                config={k: to_python(v) for k, v in info.config.items()},
                budget=budget,
                seed=int(info.seed),
                budget_value=self._budget_value(budget),
            )
            trial.overrides = self._overrides(trial)
            self.journal.append(
                {
                    "event": "ask",
                    "t": time.time(),
                    "trial_id": trial_id,
                    "batch": batch_index,
                    "config": trial.config,
                    "budget": budget,
                    "budget_value": trial.budget_value,
                    "seed": trial.seed,
                    "overrides": trial.overrides,
                }
            )
            self.trials[trial_id] = trial
            self.infos[trial_id] = info
            batch.append(trial)
        if batch:  # Hyperband's brackets live in the intensifier; snapshot them for resume
            self.journal.append(
                {
                    "event": "state",
                    "t": time.time(),
                    "intensifier": self.smac.intensifier.get_state(),
                }
            )
        return batch

    def _run(self, batch: Sequence[Trial]) -> None:
        """Launch trials (consecutive ids share one launch: job folders follow the ids)."""
        for group in _consecutive(sorted(batch, key=lambda t: t.trial_id)):
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
                self._read(trial, ret)
                self._tell(trial)
                self.timing["task"] += trial.duration or 0.0
            self.timing["tell"] += time.perf_counter() - start
        start = time.perf_counter()
        self.smac.optimizer.save()
        self.timing["tell"] += time.perf_counter() - start

    def _read(self, trial: Trial, ret: JobReturn | Exception) -> None:
        outcome: Any = ret
        if isinstance(ret, JobReturn):
            trial.job_dir = _job_dir(ret)
            outcome = ret._return_value if ret.status == JobStatus.FAILED else ret.return_value
        if isinstance(outcome, TaskOutcome):
            trial.duration = outcome.seconds
            error, value = outcome.error, outcome.value
        elif isinstance(outcome, BaseException):
            error, value = f"{type(outcome).__name__}: {outcome}", None
        else:
            error, value = None, outcome
        if error is None:
            try:
                trial.objectives, trial.metrics = _read_objectives(value, self.settings.objectives)
                trial.status = SUCCESS
                return
            except ValueError as err:
                error = f"trial {err}"
        trial.status, trial.error = CRASHED, error
        last = error.strip().splitlines()[-1] if error.strip() else error
        log.warning(f"Trial {trial.trial_id} crashed: {last}")

    def _ms_per_trial(self) -> dict[str, float]:
        """Sweeper time per trial told in this session, by phase (the launch includes the
        task, which is also given apart)."""
        n = max(self.told_this_session, 1)
        return {k: round(1000 * v / n, 1) for k, v in self.timing.items()}

    def _tell(self, trial: Trial) -> None:
        trial.told_at = time.time()
        self.told_this_session += 1
        trial.cost = (
            [trial.objectives[k] for k in self.settings.objectives]
            if trial.status == SUCCESS
            else self._crash_cost()
        )
        self.journal.append(
            {
                "event": "tell",
                "t": trial.told_at,
                "trial_id": trial.trial_id,
                "status": trial.status,
                "objectives": trial.objectives,
                "metrics": trial.metrics,
                "cost": trial.cost,
                "duration": trial.duration,
                "job_dir": trial.job_dir,
                "error": trial.error,
            }
        )
        self._tell_smac(trial)
        self.told_order.append(trial.trial_id)

    def _tell_smac(self, trial: Trial) -> None:
        from smac.runhistory import StatusType
        from smac.runhistory.dataclasses import TrialValue

        status = StatusType.SUCCESS if trial.status == SUCCESS else StatusType.CRASHED
        cost = trial.cost if len(trial.cost) > 1 else trial.cost[0]
        seconds = trial.duration or 0.0
        error = (trial.error or "").strip().splitlines()
        value = TrialValue(
            cost=cost,
            time=seconds,
            status=status,
            starttime=trial.told_at - seconds,
            endtime=trial.told_at,
            additional_info={
                "trial_id": trial.trial_id,
                "job_dir": trial.job_dir,
                "error": error[-1] if error else None,
            },
        )
        self.smac.tell(self.infos[trial.trial_id], value, save=False)

    # --------------------------------------------------------------- helpers
    def _overrides(self, trial: Trial) -> list[str]:
        s, keys = self.settings, self.settings.override_keys
        extra: dict[str, Any] = {}
        if s.budget.variable is not None:
            extra[s.budget.variable] = trial.budget_value
        if keys.seed:
            extra[keys.seed] = trial.seed
        if keys.run_group:
            extra[keys.run_group] = self.sweep_name
        if keys.run_name:
            budget = "" if trial.budget_value is None else f"-b{trial.budget_value}"
            extra[keys.run_name] = f"t{trial.trial_id}{budget}"
        # a key fixed on the command line (e.g. seed=3) stays as given
        return trial_overrides(self.arguments, trial.config, extra, fixed=self.fixed)

    def _budget_value(self, budget: float | None) -> Any:
        if budget is None:
            return None
        return int(round(budget)) if self.integer_budget else budget

    def _integer_budget(self) -> bool:
        b = self.settings.budget
        if b.variable is None:
            return False
        if b.integer is not None:
            integer = b.integer
        else:
            current = OmegaConf.select(self.config, b.variable, throw_on_resolution_failure=False)
            if isinstance(current, bool) or not isinstance(current, (int, float)):
                integer = all(float(x).is_integer() for x in self.stages)
            else:
                integer = isinstance(current, int)
        if integer and not all(abs(x - round(x)) < 1e-9 for x in self.stages):
            log.warning(
                f"Hyperband budgets {self.stages} are not integers; trials get them rounded to "
                f"{[int(round(x)) for x in self.stages]}. Pick min/max/eta with integer stages."
            )
        return integer

    def _crash_cost(self) -> list[float]:
        """Configured per objective; else the worst value seen plus the observed range."""
        costs = []
        ok = [t for t in self.trials.values() if t.status == SUCCESS]
        for key in self.settings.objectives:
            if key in self.settings.crash_cost:
                costs.append(float(self.settings.crash_cost[key]))
                continue
            values = [t.objectives[key] for t in ok]
            if not values:
                costs.append(1.0)
                continue
            worst, best = max(values), min(values)
            costs.append(worst + (worst - best if worst > best else max(abs(worst), 1.0)))
        return costs

    def _out_of_time(self) -> bool:
        limit = self.settings.walltime_limit
        used = self.previous_walltime + time.time() - self.session_start
        return limit is not None and used >= limit

    def _check_failures(self) -> None:
        s = self.settings
        told = [t for t in self.trials.values() if t.status != PENDING]
        crashed = [t for t in told if t.status == CRASHED]
        if len(told) < min(s.failure_check_after, s.n_trials) or not crashed:
            return
        if len(crashed) / len(told) > s.max_failure_rate:
            last = (crashed[-1].error or "").strip().splitlines()
            raise SweepFailedError(
                f"SMAC sweep stopped: {len(crashed)} of {len(told)} trials crashed, more than "
                f"max_failure_rate={s.max_failure_rate}. Last error (trial {crashed[-1].trial_id}, "
                f"job dir {crashed[-1].job_dir}): {last[-1] if last else '?'}"
            )

    def _write_outputs(self, final: bool = True) -> Any:
        told = [self.trials[i] for i in self.told_order]
        max_budget = self.stages[-1] if self.stages else None
        summary = summarise(
            told, self.settings.objectives, max_budget, self.settings.reference_point
        )
        # Drawing pareto.png takes ~0.2 s: after a batch only if the last one is 10 s old
        # (every batch when trials take longer), always at the end.
        plot = final or time.monotonic() - self._last_plot >= _PLOT_INTERVAL_S
        write_all(
            self.sweep_dir, list(self.trials.values()), summary, plot=plot,
            timing=self._ms_per_trial(),
        )  # fmt: skip
        if plot:
            self._last_plot = time.monotonic()
        return summary

    def _wandb(self, summary: Any) -> None:
        from ._wandb import log_summary

        log_summary(
            OmegaConf.to_container(OmegaConf.structured(self.settings.wandb)),
            self.sweep_dir,
            self.sweep_name,
            list(self.trials.values()),
            summary,
            {k: v for k, v in self.options.items() if k != "search_space"},
        )


def _consecutive(trials: Sequence[Trial]) -> list[list[Trial]]:
    groups: list[list[Trial]] = []
    for trial in trials:
        if groups and groups[-1][-1].trial_id + 1 == trial.trial_id:
            groups[-1].append(trial)
        else:
            groups.append([trial])
    return groups


def _job_dir(ret: JobReturn) -> str | None:
    try:
        return str(ret.hydra_cfg.hydra.runtime.output_dir)
    except Exception:
        return ret.working_dir


def _sweep_name(sweep_dir: Path) -> str:
    """The folder name; with its parent's when it has no letters (a time stamp)."""
    name = sweep_dir.name
    if not any(c.isalpha() for c in name) and sweep_dir.parent.name:
        name = f"{sweep_dir.parent.name}_{name}"
    return name


def _walltime_used(records: Sequence[dict[str, Any]]) -> float:
    """Seconds the previous sessions ran (session start -> its last record)."""
    used, start, last = 0.0, None, None
    for record in records:
        if record["event"] == "session":
            if start is not None:
                used += last - start
            start = record["t"]
        last = record.get("t", last)
    if start is not None and last is not None:
        used += last - start
    return used


__all__ = ["SMACSweeperImpl", "SweepFailedError", "SearchSpaceError"]
