"""The Optuna (5.0) adapter of the sweep loop (see _optimizer.py): `optuna_gp` (GPSampler,
a Gaussian process with log expected hypervolume improvement) and `optuna_tpe` (multivariate
TPESampler with the constant liar), in an in-memory study whose directions all minimise.

With a budget (intensifier=pareto_promotion or hv_promotion, _promotion.py): every new
configuration starts at the lowest stage and goes up a stage while it is on its stage's
Pareto front (pareto_promotion), or once it is among the top 1/eta of its stage by
hypervolume contribution (hv_promotion); a promotion is asked before any new
configuration. The record study holds one trial per configuration, told at the lowest
stage; through a proposal study as below, the samplers see each configuration's cost at
the highest stage told so far (budget.model=highest: a configuration stopped low counts
with its low-budget error, which is worse than what it would have reached), or the results
of one stage alone (budget.model=bohb, BOHB's rule: the highest stage with at least as many
results as searched hyperparameters + 1, else the lowest, where every configuration has one).

multi_objective=hypervolume (with two or more objectives): the sampler optimises one
scalar instead of the objectives, a random hypervolume scalarisation in the sweep's
reference box with fresh weights per trial (_scalarization.py). Each ask builds a proposal
study of one objective from the record study's trials (complete ones with their scalar
for this trial's weights, running ones as running) and asks it; the record study, which
keeps the objectives, the journal's view and resume as below, takes the proposal as an
enqueued trial (its own sampler is random and samples nothing then). Weights and the
proposal's sampler are seeded from the seed and the trial id, so a resumed sweep proposes
what the uninterrupted one would have. The reference is the loop's rule (_reference.py:
the configured values, else 2 x the default configuration's, or the first success's when
the default crashed), taken from the told trials; before any trial succeeded, the proposal
sees no results and samples at random. (A resume with a
changed reference_point: the loop's reports keep the journaled value, with a warning; the
proposals use the configured one.)

A static search space. The samplers model the parameters that every finished trial has;
one suggested only on some trials (momentum, only for sgd/rmsprop) is drawn by their random
fallback ("dynamic search space is not supported"). So every trial suggests every
hyperparameter of the space (study.ask with all distributions), and the trial gets only
the active ones: ConfigSpace's conditions decide. An inactive value stays in the study,
where it does not change the objective. Ordinal hyperparameters are the index of their
choice (an IntDistribution keeps their order); constants are not searched.

Initial design: the space's default configuration is the first trial (enqueued, with
use_default_config), then a warm start's configurations (enqueued, _warm_start.py), then
random configurations until n_initial_configs (plus the default) trials are told, as
SMAC's initial design does; n_initial_configs=null keeps Optuna's n_startup_trials (10,
the default among them). initial_design=lhs: those configurations are a Latin hypercube
(`latin_hypercube` below), enqueued in order, seeded from the seed, so a resume asks the
same. interleave_random=p: after the initial design, each new configuration is drawn at
random with probability p instead of proposed (`random_configuration` below), as SMAC's
facades interleave random configurations; the draw and the coin are seeded from the seed
and the trial id, so a resume asks the same. interleave_flip=q: after the initial design
a proposal (`_propose`) gets, with probability q, one of its active categorical
hyperparameters changed to another of its choices (`_flipped`), seeded alike: TPE with a
few good trials proposes their choice of a categorical again and again (in the study,
stochastic rounding in 21 of 26 screens of one seed), and a random draw tries another
choice with random numeric values, which mostly lose; the flip tries it with the values
TPE proposes. Measured (benchmarks/README.md): it did not break that lock-in in 100 s
sweeps and slowed the others (0.53x of random search's energy against 0.37x without), so
the presets leave it 0.

Crashed trials are told as complete, with the crash cost the loop journals (_failures.py:
the configured crash_cost, else the worst value seen plus the observed range), as SMAC is
told them. Told as FAIL, Optuna's samplers would drop them, and keep proposing the region
that crashed, each time at the price of a whole trial.

Pending trials: several asks before their tells (a parallel batch) are running trials of
the study; GPSampler conditions its acquisition on them (q-EHVI), TPE's constant liar
counts them as bad results, so one batch does not ask for one point n times.

Resume: `register` and the replayed `tell` only collect the journal's trials; `restore`
builds the study from them (create_trial + add_trial, in ask order: told trials complete
with their journaled cost, the rest running until the loop re-launches and tells them;
with a budget only the new configurations, while the replayed asks and tells rebuild the
promotion queue and each configuration's cost at its highest stage). The journal keeps a
trial's active hyperparameters only, so a rebuilt trial's inactive ones are their defaults.
The sampler of a rebuilt study is seeded from the seed and the number of journaled trials:
the random initial design goes on instead of repeating its first configurations. Given
the seed (and the journal) the suggestions are deterministic, also across PYTHONHASHSEED
values (unlike SMAC's; seen on the toy app with hash seeds 1 and 2).
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from ConfigSpace import (
    CategoricalHyperparameter,
    Constant,
    OrdinalHyperparameter,
    UniformFloatHyperparameter,
    UniformIntegerHyperparameter,
)
from ConfigSpace.util import deactivate_inactive_hyperparameters
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState, create_trial
from scipy.stats import qmc

from ._optimizer import Optimizer, Problem, Suggestion
from ._promotion import HypervolumePromotion, ParetoPromotion
from ._reference import proposal_reference
from ._scalarization import hypervolume_scalarization, random_weights
from ._space import to_python
from ._trials import Trial, config_key
from ._warm_start import startup_trials
from .config import SMACSweeperConf

ALGORITHMS = ("optuna_gp", "optuna_tpe")


class OptunaOptimizer(Optimizer):
    """An Optuna study with GPSampler or TPESampler behind ask / tell / register / restore."""

    def __init__(self, problem: Problem, settings: SMACSweeperConf) -> None:
        assert settings.algorithm in ALGORITHMS, settings.algorithm
        _route_optuna_logs()
        self.space = problem.space
        self.objectives = list(problem.objectives)
        self.seed = problem.seed
        self.algorithm = settings.algorithm
        self.use_default = settings.use_default_config
        self.n_startup = startup_trials(settings, len(problem.initial_configs), unset=None)
        self.fixed = problem.first_configs(self.use_default)  # asked first, in order
        self.distributions = search_distributions(self.space)
        self.design: list[dict[str, Any]] = []  # initial_design=lhs: asked after `fixed`
        # the initial design's size: Optuna's rule (10) where n_initial_configs is null
        self.n_initial = 10 if self.n_startup is None else self.n_startup
        if settings.initial_design == "lhs":
            n_design = self.n_initial - len(self.fixed)
            design = latin_hypercube(self.distributions, n_design, self.seed)
            self.design = [self._params(self._active(params)) for params in design]
        self.interleave = float(settings.interleave_random)
        self.flip = float(settings.interleave_flip)
        self.gamma = settings.tpe_gamma  # TPE's share of good trials (None: Optuna's)
        self.scalarize = settings.multi_objective == "hypervolume" and len(self.objectives) > 1
        self.stages = [float(b) for b in problem.budgets]  # [] at full fidelity
        self.configured_reference = dict(settings.reference_point)
        self.told: list[Trial] = []  # every told trial (the scalarisation's reference)
        self.promotion: ParetoPromotion | HypervolumePromotion | None = None
        if self.stages and settings.intensifier == "hv_promotion":
            self.promotion = HypervolumePromotion(
                self.stages,
                settings.budget.eta,
                self._reference,
                settings.search_cost,
                settings.budget.promote_by,
            )
        elif self.stages:
            self.promotion = ParetoPromotion(self.stages)
        # a proposal study decides every new configuration (see the module's docstring)
        self.proposes = self.scalarize or self.promotion is not None
        self.model = settings.budget.model  # highest | bohb: what _propose learns from
        # stage -> config -> its cost there (the latest tell)
        self.at_stage: dict[float, dict[str, list[float]]] = {s: {} for s in self.stages}
        self.keys: dict[int, str] = {}  # the record study's trial number -> its config
        self.study: optuna.Study | None = None  # built by the first ask, or by restore
        self.numbers: dict[int, int] = {}  # trial id -> the study's trial number
        self.replayed: dict[int, Trial] = {}  # registered from the journal, in ask order
        self.replayed_told: set[int] = set()

    # ------------------------------------------------------------------ adapter
    def ask(self, trial_id: int) -> Suggestion | None:
        if self.study is None:
            self.study = self._new_study(n_journaled=0)
        if self.promotion is not None and (promotion := self.promotion.next()) is not None:
            config, stage = promotion
            self.promotion.record_ask(config, stage)
            return Suggestion(config=config, budget=stage, seed=self.seed)
        asked = len(self.study.get_trials(deepcopy=False))  # new configurations
        if asked < len(self.fixed):
            self.study.enqueue_trial(self._params(self.fixed[asked]))
        elif asked < len(self.fixed) + len(self.design):
            self.study.enqueue_trial(self.design[asked - len(self.fixed)])
        elif asked >= self.n_initial and (draw := self._interleaved(trial_id)) is not None:
            self.study.enqueue_trial(draw)
        elif self.proposes:
            params = self._propose(trial_id)
            if asked >= self.n_initial:  # the sampler's proposals, not its random start
                params = self._flipped(params, trial_id)
            self.study.enqueue_trial(params)
        trial = self.study.ask(self.distributions)
        self.numbers[trial_id] = trial.number
        config = self._active(trial.params)
        self.keys[trial.number] = config_key(config)
        budget = self.stages[0] if self.stages else None
        if self.promotion is not None:
            self.promotion.record_ask(config, self.stages[0])
        return Suggestion(config=config, budget=budget, seed=self.seed)

    def register(self, trial: Trial) -> None:
        self.replayed[trial.trial_id] = trial
        if self.promotion is not None and trial.budget is not None:
            self.promotion.record_ask(trial.config, trial.budget)

    def tell(self, trials: Sequence[Trial]) -> None:
        self.told.extend(trials)
        for trial in trials:  # the stages' results, live and replayed alike
            assert trial.cost is not None, "tell a told trial"
            if self.promotion is not None and trial.budget is not None:
                self.promotion.record_tell(trial)
                self.at_stage[float(trial.budget)][config_key(trial.config)] = list(trial.cost)
        if self.study is None:  # the journal's results: restore puts them in the study
            self.replayed_told.update(t.trial_id for t in trials)
            return
        for trial in trials:
            if trial.trial_id in self.numbers:  # a promotion is not a trial of the record
                self.study.tell(self.numbers[trial.trial_id], values=list(trial.cost))

    def state(self) -> Any:
        return None  # the study is rebuilt from the journal's trials

    def restore(self, state: Any) -> None:
        self.study = self._new_study(n_journaled=len(self.replayed))
        new = [t for t in self.replayed.values() if not self.stages or t.budget == self.stages[0]]
        for number, trial in enumerate(new):  # promotions are not trials of the record
            told = trial.trial_id in self.replayed_told
            frozen = create_trial(
                state=TrialState.COMPLETE if told else TrialState.RUNNING,
                params=self._params(trial.config),
                distributions=self.distributions,
                values=list(trial.cost) if told and trial.cost is not None else None,
            )
            self.study.add_trial(frozen)
            self.numbers[trial.trial_id] = number
            self.keys[number] = config_key(trial.config)
        assert len(self.study.get_trials(deepcopy=False)) == len(new)

    # ------------------------------------------------------------------ helpers
    def _new_study(self, n_journaled: int) -> optuna.Study:
        seed = self.seed
        if n_journaled:  # a resumed sweep's sampler does not replay the first session's draws
            seed = int(np.random.SeedSequence([self.seed, n_journaled]).generate_state(1)[0])
        sampler = (
            optuna.samplers.RandomSampler(seed=seed)  # a record: _propose samples
            if self.proposes
            else make_sampler(self.algorithm, seed, self.n_startup, self.gamma)
        )
        return optuna.create_study(directions=["minimize"] * len(self.objectives), sampler=sampler)

    def _propose(self, trial_id: int) -> dict[str, Any]:
        """The parameters of new trial `trial_id`, asked of a proposal study that holds the
        record's trials with each configuration's cost at its highest stage told: under
        multi_objective=hypervolume one objective, scalarised with this trial's weights,
        else the objectives (see the module's docstring)."""
        assert self.study is not None
        weights_seed, sampler_seed = np.random.SeedSequence([self.seed, trial_id]).generate_state(2)
        sampler = make_sampler(self.algorithm, int(sampler_seed), self.n_startup, self.gamma)
        weights = random_weights(np.random.default_rng(int(weights_seed)), len(self.objectives))
        reference = self._reference() if self.scalarize else None
        stage = self._model_stage()
        if self.scalarize:
            proposal = optuna.create_study(direction="maximize", sampler=sampler)
        else:
            proposal = optuna.create_study(directions=self.study.directions, sampler=sampler)
        for t in self.study.get_trials(deepcopy=False):
            if t.state == TrialState.COMPLETE and not (self.scalarize and reference is None):
                key = self.keys[t.number]
                told = [s for s in self.stages if key in self.at_stage[s]]  # [] at full fidelity
                if stage is None:  # budget.model=highest: its highest stage told
                    cost = self.at_stage[told[-1]][key] if told else t.values
                elif stage in told:
                    cost = self.at_stage[stage][key]
                else:  # no result at the modelled stage (BOHB fits that stage's alone)
                    continue
                values = (
                    [hypervolume_scalarization(cost, reference, weights)]
                    if reference is not None
                    else list(cost)
                )
                proposal.add_trial(
                    create_trial(params=t.params, distributions=t.distributions, values=values)
                )
            elif t.state == TrialState.RUNNING:
                proposal.add_trial(
                    create_trial(
                        state=TrialState.RUNNING, params=t.params, distributions=t.distributions
                    )
                )
        # inactive values at their defaults, as a rebuilt study holds them: a resume goes on
        # with the same trials as the uninterrupted sweep
        return self._params(self._active(proposal.ask(self.distributions).params))

    def _model_stage(self) -> float | None:
        """budget.model=bohb: the stage whose results _propose learns from, the highest one
        with at least (searched hyperparameters + 1) results, else the lowest (every new
        configuration has a result there); None: each configuration's highest (highest)."""
        if self.model != "bohb" or not self.stages:
            return None
        enough = len(self.distributions) + 1
        full = [s for s in self.stages if len(self.at_stage[s]) >= enough]
        return max(full, default=self.stages[0])

    def _interleaved(self, trial_id: int) -> dict[str, Any] | None:
        """With probability interleave_random, a random configuration's parameters for new
        trial `trial_id` (seeded from the seed and the id); else None: the sampler proposes."""
        rng = self._coin(self.interleave, trial_id, 1)
        if rng is None:
            return None
        return self._params(self._active(random_configuration(self.distributions, rng)))

    def _coin(self, p: float, trial_id: int, stream: int) -> np.random.Generator | None:
        """The generator of new trial `trial_id`'s draws in `stream` (seeded from the seed,
        the id and the stream) when its coin falls below p; else None."""
        if not p:
            return None
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, trial_id, stream]))
        return rng if rng.random() < p else None

    def _flipped(self, params: dict[str, Any], trial_id: int) -> dict[str, Any]:
        """With probability interleave_flip, the proposal `params` of new trial `trial_id`
        with one of its active categorical hyperparameters changed to another of its
        choices, both drawn at random (seeded from the seed and the id); else `params`."""
        rng = self._coin(self.flip, trial_id, 2)
        if rng is None:
            return params
        active = self._active(params)
        names = [  # categoricals (ordinals are IntDistributions, search_distributions)
            name
            for name, dist in sorted(self.distributions.items())
            if isinstance(dist, CategoricalDistribution)
            and len(dist.choices) > 1
            and name in active
        ]
        if not names:
            return params
        name = names[int(rng.integers(len(names)))]
        others = [c for c in self.distributions[name].choices if c != params[name]]
        flipped = {**params, name: others[int(rng.integers(len(others)))]}
        return self._params(self._active(flipped))

    def _reference(self) -> list[float] | None:
        return proposal_reference(
            self.objectives, self.configured_reference, self.told, self.space, self.use_default
        )

    def _params(self, config: dict[str, Any]) -> dict[str, Any]:
        """A configuration (active hyperparameters) as the study's parameters: every
        searched hyperparameter, an inactive one at its default, ordinals as indices."""
        params = {}
        for name in self.distributions:
            hp = self.space[name]
            value = to_python(config.get(name, hp.default_value))
            if isinstance(hp, OrdinalHyperparameter):
                value = [to_python(v) for v in hp.sequence].index(value)
            params[name] = value
        return params

    def _active(self, params: dict[str, Any]) -> dict[str, Any]:
        """The study's parameters as the trial's configuration: active ones only."""
        values: dict[str, Any] = {}
        for hp in self.space.values():
            if isinstance(hp, Constant):
                values[hp.name] = hp.value
            elif isinstance(hp, OrdinalHyperparameter):
                values[hp.name] = hp.sequence[params[hp.name]]
            elif isinstance(hp, UniformFloatHyperparameter):  # float round-off at a bound
                values[hp.name] = min(max(float(params[hp.name]), hp.lower), hp.upper)
            else:
                values[hp.name] = params[hp.name]
        config = deactivate_inactive_hyperparameters(values, self.space)
        return {k: to_python(v) for k, v in config.items()}


def search_distributions(space: Any) -> dict[str, BaseDistribution]:
    """Optuna's distribution of every searched hyperparameter (constants are not)."""
    dists: dict[str, BaseDistribution] = {}
    for hp in space.values():
        if isinstance(hp, Constant):
            continue
        if isinstance(hp, UniformFloatHyperparameter):
            dists[hp.name] = FloatDistribution(float(hp.lower), float(hp.upper), log=hp.log)
        elif isinstance(hp, UniformIntegerHyperparameter):
            dists[hp.name] = IntDistribution(int(hp.lower), int(hp.upper), log=hp.log)
        elif isinstance(hp, CategoricalHyperparameter):
            dists[hp.name] = CategoricalDistribution([to_python(c) for c in hp.choices])
        elif isinstance(hp, OrdinalHyperparameter):
            dists[hp.name] = IntDistribution(0, len(hp.sequence) - 1)
        else:
            raise ValueError(
                f"search_space: {hp.name!r} is a {type(hp).__name__}, which the Optuna "
                "adapter does not translate (int, float, categorical, ordinal, constant)"
            )
    return dists


def latin_hypercube(
    distributions: dict[str, BaseDistribution], n: int, seed: int
) -> list[dict[str, Any]]:
    """n parameter dicts (the study's parameters, every distribution), seeded: a Latin
    hypercube (scipy's), one point per stratum of every dimension, mapped to each
    distribution's scale (log where the space says so); a categorical with k choices by
    the stratum [i/k, (i+1)/k), so with n >= k every choice is tried (n random draws miss a
    given one of k with probability (1 - 1/k)^n: 3 draws, 3 choices, 0.30).

    Why: a TPE that never saw a choice of a categorical rarely proposes it. In the study
    (benchmarks/README.md) three seeds of a 1-epoch screen never tried Adam, the best
    optimizer of the task, because none of the default and 3 random configurations used
    it. SMAC's own initial designs are quasi-random (Sobol, LHS) for the same reason."""
    if n <= 0:
        return []
    cube = qmc.LatinHypercube(d=len(distributions), seed=np.random.default_rng(seed)).random(n)
    return [_from_units(distributions, row) for row in cube]


def random_configuration(
    distributions: dict[str, BaseDistribution], rng: np.random.Generator
) -> dict[str, Any]:
    """One parameter dict drawn uniformly on each distribution's scale (log where the space
    says so)."""
    return _from_units(distributions, rng.random(len(distributions)))


def _from_units(distributions: dict[str, BaseDistribution], units: Any) -> dict[str, Any]:
    """The parameter dict at a point of the unit cube, one coordinate per distribution in
    name order (an order that does not depend on the space's)."""
    names = sorted(distributions)
    return {
        name: _from_unit(distributions[name], float(u))
        for name, u in zip(names, units, strict=True)
    }


def _from_unit(dist: BaseDistribution, u: float) -> Any:
    """The point u in [0, 1) of a distribution's scale."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[min(int(u * len(dist.choices)), len(dist.choices) - 1)]
    if isinstance(dist, FloatDistribution):
        if dist.log:
            value = math.exp(math.log(dist.low) + u * (math.log(dist.high) - math.log(dist.low)))
        else:
            value = dist.low + u * (dist.high - dist.low)
        return min(max(value, dist.low), dist.high)
    if isinstance(dist, IntDistribution):  # step 1: each integer an equal stratum
        if dist.log:
            span = math.log(dist.high + 1) - math.log(dist.low)
            value = math.floor(math.exp(math.log(dist.low) + u * span))
        else:
            value = math.floor(dist.low + u * (dist.high - dist.low + 1))
        return int(min(max(value, dist.low), dist.high))
    raise TypeError(f"no mapping from [0, 1) for {type(dist).__name__}")


def make_sampler(
    algorithm: str, seed: int, n_startup: int | None, gamma: float | None = None
) -> optuna.samplers.BaseSampler:
    """GPSampler or multivariate TPE with the constant liar, seeded; `gamma` the share of
    TPE's good trials (None: Optuna's rule, 0.1)."""
    startup = {} if n_startup is None else {"n_startup_trials": n_startup}
    if gamma is not None:
        startup["gamma"] = functools.partial(good_trials, share=gamma)
    with warnings.catch_warnings():  # multivariate and constant_liar are "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # gamma is deprecated since Optuna 4.9 (removal planned for 6.0; requirements.txt
        # pins 5.0.0): a test fails when it is gone
        warnings.filterwarnings("ignore", "`gamma` has been deprecated", FutureWarning)
        if algorithm == "optuna_gp":
            return optuna.samplers.GPSampler(seed=seed, **startup)
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, constant_liar=True, **startup
        )


def good_trials(n: int, share: float) -> int:
    """How many of n trials TPE models as the good ones: ceil(share x n), at most 25 (the
    cap of Optuna's default_gamma, whose share is 0.1)."""
    return min(math.ceil(share * n), 25)


def _route_optuna_logs() -> None:
    """Optuna's warnings into the sweep's log (Hydra's handlers), not its own stderr
    handler; its per-trial INFO lines stay out."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    logging.getLogger("optuna").setLevel(logging.WARNING)
