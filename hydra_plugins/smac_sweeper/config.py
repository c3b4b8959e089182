"""The sweeper's config schema, registered as `hydra/sweeper=smac` (presets extend it)."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class BudgetConf:
    # Override key of the fidelity (shift_depth, trainer.max_epochs, data.fraction ...);
    # null = every trial at full fidelity (no Hyperband); the budget keys below are then
    # unread, and setting one on the command line is refused. Removed from the search space.
    variable: str | None = None
    min: float = 5
    max: float = 20
    # Hyperband's reduction factor; stages are max * eta^-k down to >= min
    # (min 5, max 20, eta 2 -> 5, 10, 20).
    eta: int = 2
    # The stages themselves, smallest first, from budget.min to budget.max (optuna_* only,
    # whose promotion rules climb any ladder; SMAC's Hyperband makes its own). null =
    # Hyperband's above. E.g. [1, 9] with eta 3: the top third of the 1-epoch results go
    # straight to 9 epochs.
    stages: list[float] | None = None
    # Pass integer budgets (rounded). null = integer if the app's own value is an int.
    integer: bool | None = None
    # A promoted configuration continues the checkpoint of its lower-budget trial
    # (++resume_from=<that job dir>) instead of training again from scratch, and every
    # trial's LR schedule spans the top budget (++schedule_epochs=<max>). Only for
    # variable trainer.max_epochs: a data fraction or shift depth changes what is trained.
    continuation: bool = False
    # Which results the sampler learns from (optuna_* with a budget). highest: each
    # configuration's cost at the highest stage it reached, so a 9-epoch error stands next to
    # 1-epoch ones and whatever was promoted first looks best. bohb: one stage's results only,
    # the highest stage with at least (searched hyperparameters + 1) of them, else the lowest
    # (BOHB's rule, Falkner et al. 2018): a 1-epoch result is compared with 1-epoch results.
    model: str = "highest"
    # intensifier=hv_promotion: what ranks a stage's results for promotion. contribution:
    # each one's exclusive contribution to its stage's hypervolume. improvement: the
    # hypervolume it would add to the top stage's front, its cost scaled per objective by
    # the median ratio top/stage of the configurations told at both (1 before any): the
    # promotion that would improve the final front most goes first (_promotion.py).
    promote_by: str = "contribution"
    # More knobs of the low fidelity: app settings for the trials below the top stage, on
    # top of the budget variable, e.g. {data.val_fraction: 0.1}: a 1-epoch screen validates
    # on a tenth of the validation images (its ranking of configurations is as good on
    # search_bench, benchmarks/README.md). The top stage runs the app's own config, so the
    # front's results are unchanged. Keys must be app keys, neither searched nor set on the
    # command line. On the command line `++hydra.sweeper.budget.low_fidelity={key:value}`
    # merges with a preset's (a key set to the app's own value undoes it).
    low_fidelity: dict[str, Any] = field(default_factory=dict)


@dataclass
class OverrideKeysConf:
    # Keys (set with ++key=value) that carry the trial's seed and its W&B grouping
    # (group = sweep name, name = trial id and budget). null = not passed.
    seed: str | None = "seed"
    run_group: str | None = "run_group"
    run_name: str | None = "run_name"
    # with budget.continuation: the run to continue, and the epochs the schedule spans
    resume_from: str = "resume_from"
    schedule_epochs: str = "schedule_epochs"
    job_type: str | None = "job_type"  # "trial"
    # {trial_id, config_id, budget, budget_variable, sweep}: the W&B run's config entries
    trial_info: str | None = "trial_info"
    tags: str | None = "tags"  # [sweep=<name>, sweeper=<preset>, <budget variable>=<value>]


@dataclass
class WandbConf:
    mode: str = "offline"  # online | offline | disabled
    # The summary run's project and entity; null = the trials' (the app's
    # logger.wandb.project / .entity), so one sweep is one group in one project.
    project: str | None = None
    entity: str | None = None
    init_timeout: float = 30.0  # seconds before an online start gives up (never stalls)


@dataclass
class WarmStartConf:
    # The folder of an earlier sweep of this sweeper (its journal.jsonl), e.g. of the same
    # space on another data sample or with fewer epochs; null = no warm start. Its Pareto
    # front's configurations (of this sweep's objectives) are asked after the default, in
    # order of greedy hypervolume contribution; they count towards n_initial_configs.
    sweep_dir: str | None = None
    n_configs: int = 4  # at most this many of them
    # gp_ehvi: fit its GP on the earlier sweep's results too, the task as one more input
    # (false: the configurations alone, as for the other algorithms)
    observations: bool = True


@dataclass
class SMACSweeperConf:
    _target_: str = "hydra_plugins.smac_sweeper.smac_sweeper.SMACSweeper"
    # The search space (see _space.py); the presets fill it from config group search_space.
    search_space: dict[str, Any] = field(default_factory=dict)
    # Keys of the task's returned dict to minimise; a task returning a float needs one.
    objectives: list[str] = field(default_factory=lambda: ["val/error"])
    # smac (random forest BO) | random | optuna_gp (Optuna's GPSampler) | optuna_tpe
    # (Optuna's multivariate TPE) | gp_ehvi (a GP per modelled objective, expected
    # hypervolume improvement with the known objectives exact, per unit of search_cost)
    algorithm: str = "smac"
    # smac: parego | mean (SMAC's mean aggregation). optuna_*: their own multi-objective
    # samplers (EHVI / MOTPE) with either, or hypervolume: random hypervolume
    # scalarisations in the reference box, one objective for the sampler (_scalarization.py)
    multi_objective: str = "parego"
    # With a budget: smac, random: hyperband | successive_halving (SMAC's); optuna_*:
    # pareto_promotion (a configuration goes up a stage while on its stage's front) |
    # hv_promotion (once among the top 1/eta of its stage by hypervolume contribution)
    intensifier: str = "hyperband"
    budget: BudgetConf = field(default_factory=BudgetConf)
    n_trials: int = 20  # trials in the whole sweep, across resumes
    n_workers: int = 1  # trials asked and launched per batch (joblib/submitit parallelism)
    walltime_limit: float | None = None  # seconds (across resumes); no new batch after it
    # Seconds one trial may run (null = no limit); past it the trial is stopped and recorded
    # as crashed ("timed out after N s"). A SIGALRM timer in the process that runs the job
    # (POSIX; see _guard.py); with submitit_slurm keep hydra.launcher.timeout_min above it.
    trial_timeout: float | None = None
    seed: int = 0
    use_default_config: bool = True  # the space's defaults are in the initial design
    # Configurations in SMAC's initial design before its model proposes any; the space's
    # default comes on top with use_default_config. null = SMAC's rule (10 per
    # hyperparameter, 5 with a budget, at most 25 % of n_trials), which makes a sweep with
    # a large n_trials and a walltime_limit mostly random: set it then. optuna_*: the
    # samplers' n_startup_trials (+ the default); null = Optuna's 10, the default among them.
    # gp_ehvi: random configurations before its model (+ the default); null = 3.
    n_initial_configs: int | None = None
    # optuna_*: how those initial configurations are drawn: random (the samplers' own) |
    # lhs (a Latin hypercube: every choice of a categorical tried, _optuna.latin_hypercube)
    initial_design: str = "random"
    # optuna_*: the probability that a new configuration after the initial design is drawn
    # at random instead of proposed by the sampler (SMAC's facades interleave 0.2), decided
    # per trial from the seed and the trial id. 0 = the sampler proposes every one.
    interleave_random: float = 0.0
    # optuna_* proposing through the sweeper (multi_objective=hypervolume or a budget): the
    # probability that a proposal gets one of its categorical hyperparameters changed to
    # another of its choices (both drawn at random, seeded from the seed and the trial id).
    # TPE with a few good trials keeps their choice (a rounding mode, an optimizer); this
    # tries the others with the proposal's numeric values. 0 = proposals as they are.
    interleave_flip: float = 0.0
    # optuna_tpe: the share of the trials TPE takes as the good ones, l(x) (ceil(share x n),
    # at most 25). null = Optuna's 0.1; hyperopt's is 0.25. With few trials, 0.1 is the best
    # one or two: whatever they share (an optimizer, a rounding mode) is proposed again.
    tpe_gamma: float | None = None
    max_failure_rate: float = 0.5  # stop when more trials than this share crashed ...
    failure_check_after: int = 5  # ... once this many trials were told
    # Cost told to SMAC for a crashed trial, per objective (finite: inf breaks the model).
    # An objective not listed gets the worst value seen so far plus the observed range
    # (1.0 before any success).
    crash_cost: dict[str, float] = field(default_factory=dict)
    # Hypervolume reference point per objective (a bound the task states, e.g. val/error
    # 1.0); a missing one is fixed at 2 x the default configuration's value when that trial
    # is told. Journaled once fixed: a resume keeps it (see _reference.py).
    reference_point: dict[str, float] = field(default_factory=dict)
    # gp_ehvi: objectives computed before a trial from its composed config, a list of
    # {objective, function}: function the dotted path of a function cfg -> float (e.g.
    # dsnn.energy.analytic.config_energy_uj); see _known.py. The trial's own value is told.
    # A list, so that one override replaces it (hydra.sweeper.known_objectives=[]: none).
    known_objectives: list[Any] = field(default_factory=list)
    # gp_ehvi: a metric of the trials' results that measures what a trial cost (e.g.
    # energy/total_kwh); the acquisition is EHVI per unit of its prediction. null = EHVI.
    # intensifier=hv_promotion: a stage's results are ranked by hypervolume contribution
    # per unit of it. null = by contribution.
    search_cost: str | None = None
    warm_start: WarmStartConf = field(default_factory=WarmStartConf)  # see _warm_start.py
    override_keys: OverrideKeysConf = field(default_factory=OverrideKeysConf)
    sweep_name: str | None = None  # W&B group; null = derived from hydra.sweep.dir
    wandb: WandbConf = field(default_factory=WandbConf)
    smac_log_level: str = "WARNING"  # SMAC's own logger


ConfigStore.instance().store(
    group="hydra/sweeper", name="smac", node=SMACSweeperConf, provider="smac_sweeper"
)
