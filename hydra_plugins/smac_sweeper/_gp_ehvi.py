"""`gp_ehvi`: a Gaussian process per modelled objective and the expected hypervolume
improvement in the sweep's reference box, with the objectives known before a trial
(`known_objectives`, _known.py) exact, per unit of predicted search cost (`search_cost`).

Why: with tens of trials a model cannot learn much, so what it need not learn should not
cost trials. An analytic energy is known for every candidate before training; the GP then
models the error alone, and the acquisition (_ehvi.py) knows where each candidate sits on
the energy axis. And the study's target is hypervolume per unit of search energy: a
configuration that trains in a third of the energy may be worth running at a third of the
improvement (EI per unit cost, Snoek et al. 2012, "Practical Bayesian Optimization of
Machine Learning Algorithms", with the measured CodeCarbon energy of the told trials as the
cost, modelled by a GP on its log).

Each ask, after the initial design (the default, a warm start's configurations
(_warm_start.py), then random configurations until n_initial_configs + the default were
asked):
1. a GP (scikit-learn: constant x Matern-5/2 with one length scale per input + white
   noise, normalised targets, seeded restarts) per modelled objective on the told trials
   (crashed ones at their crash cost; on the log scale when every value is positive, as an
   error is: the EHVI is then that of a log-normal, in closed form), and one on
   log(search_cost) of the successes; with a warm start, the objectives' GPs are fitted on
   the earlier sweep's successful trials too, with the task as one more input (0 there,
   1 here; predictions at 1), so its length scale says how far the earlier task's results
   hold here (a related task as a GP input: the two tasks' values share one kernel);
2. candidates: N_CANDIDATES random configurations of the space (conditions respected) and
   the one-exchange neighbours of the best told ones (the front, and the N_BEST lowest of
   each modelled objective; SMAC's local search around its incumbents), minus those run;
3. the front: the told successes plus the trials still running at the model's mean
   (kriging believer: a parallel batch does not ask for one point twice);
4. the candidate with the highest EHVI / predicted cost (EHVI alone without a cost).

Inputs: every searched hyperparameter in [0, 1] (log-scaled where the space says so; a
categorical one-hot; an inactive one at its default, as the Optuna adapter keeps it).
Everything is a function of the journal's trials and the seed (GP restarts and candidates
are seeded from the seed and the trial id), so a resume proposes what the uninterrupted
sweep would have; there is no state to journal.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from ConfigSpace import (
    CategoricalHyperparameter,
    Configuration,
    Constant,
    OrdinalHyperparameter,
    UniformFloatHyperparameter,
    UniformIntegerHyperparameter,
)
from ConfigSpace.util import get_one_exchange_neighbourhood

from ._ehvi import expected_hvi
from ._optimizer import Optimizer, Problem, Suggestion
from ._pareto import pareto_mask
from ._reference import proposal_reference
from ._settings import known_functions
from ._space import to_python
from ._trials import SUCCESS, Trial, config_key
from ._warm_start import startup_trials
from .config import SMACSweeperConf

log = logging.getLogger(__name__)

N_CANDIDATES = 64  # random candidates per ask (plus the neighbours of the best)
NEIGHBOURS = 48  # one-exchange neighbours per configuration on the front or best in one
N_BEST = 3  # configurations of the lowest value of each modelled objective, with the front
GP_RESTARTS = 2


class GPEHVIOptimizer(Optimizer):
    def __init__(self, problem: Problem, settings: SMACSweeperConf) -> None:
        # (1 or 2 objectives, at least one modelled: _settings.check)
        self.space = problem.space
        self.objectives = list(problem.objectives)
        self.seed = problem.seed
        self.known: Callable[[Sequence[dict[str, Any]]], np.ndarray] | None = problem.known
        self.known_names = list(known_functions(settings))
        assert self.known is not None or not self.known_names, "known_objectives: no function"
        self.search_cost = settings.search_cost
        self.use_default = settings.use_default_config
        self.fixed = problem.first_configs(self.use_default)  # asked first, in order
        self.n_startup = startup_trials(settings, len(problem.initial_configs), unset=3)
        self.configured_reference = dict(settings.reference_point)
        self.encoder = Encoder(self.space)
        # a warm start's results (_warm_start.py): the related task's rows of each GP
        related = problem.related
        self.x_related = self.encoder(r["config"] for r in related)
        self.y_related = np.array([r["cost"] for r in related], dtype=float).reshape(
            len(related), len(self.objectives)
        )
        self.asked: dict[int, Trial | Suggestion] = {}  # trial id -> what was asked, in order
        self.told: dict[int, Trial] = {}

    # ------------------------------------------------------------------ adapter
    def ask(self, trial_id: int) -> Suggestion | None:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, trial_id]))
        if len(self.asked) < len(self.fixed):
            config = self.fixed[len(self.asked)]
        elif len(self.asked) < self.n_startup or not self._successes():
            config = self._random(rng, taken=self._taken())
        else:
            config = self._propose(rng)
        suggestion = Suggestion(config=config, budget=None, seed=self.seed)
        self.asked[trial_id] = suggestion
        return suggestion

    def register(self, trial: Trial) -> None:
        self.asked[trial.trial_id] = trial

    def tell(self, trials: Sequence[Trial]) -> None:
        for trial in trials:
            assert trial.cost is not None, "tell a told trial"
            self.told[trial.trial_id] = trial

    def state(self) -> Any:
        return None  # a function of the journal's trials

    def restore(self, state: Any) -> None:
        pass

    # ------------------------------------------------------------------ proposal
    def _propose(self, rng: np.random.Generator) -> dict[str, Any]:
        told = list(self.told.values())
        running = [a.config for i, a in self.asked.items() if i not in self.told]
        x_told = self.encoder(t.config for t in told)
        costs = np.array([t.cost for t in told], dtype=float)
        modelled = [i for i, name in enumerate(self.objectives) if name not in self.known_names]
        # a positive objective (an error) on the log scale: the GP resolves the good region
        log_scale = tuple(
            i in modelled and bool(np.all(costs[:, i] > 0) and np.all(self.y_related[:, i] > 0))
            for i in range(costs.shape[1])
        )
        models = {i: self._fit(x_told, costs[:, i], i, log_scale[i], rng) for i in modelled}
        cost_model = self._cost_model(rng)

        taken = self._taken()
        candidates = self._candidates(rng, taken, modelled)
        mean, std = self._predict(candidates, models)
        points = costs[[t.status == SUCCESS for t in told]]
        if running:  # kriging believer (the median where on the log scale)
            believed = self._predict(running, models)[0]
            believed[:, list(log_scale)] = np.exp(believed[:, list(log_scale)])
            points = np.vstack([points, believed])
        reference = self._reference()
        if reference is None:  # no success yet: nothing to improve on
            return candidates[0]
        acquisition = expected_hvi(points, np.array(reference), mean, std, log_scale)
        if cost_model is not None:
            acquisition = acquisition / np.exp(cost_model(self.encoder(candidates))[0])
        best = int(np.argmax(acquisition))
        log.debug(f"gp_ehvi: {len(candidates)} candidates, best EHVI/cost {acquisition[best]:.3g}")
        return candidates[best]

    def _fit(
        self, x: np.ndarray, y: np.ndarray, i: int, log_scale: bool, rng: np.random.Generator
    ) -> Any:
        """The GP of objective i on this sweep's told trials (x, y); with a warm start's
        results, on those too, the task as one more input (1: this sweep, 0: the related
        one; its length scale, fitted like the others, is how far the two agree), and the
        predictions are this task's."""
        if not len(self.x_related):
            return fit_gp(x, np.log(y) if log_scale else y, rng)
        y = np.concatenate([y, self.y_related[:, i]])
        gp = fit_gp(np.vstack([task(x, 1.0), task(self.x_related, 0.0)]),
                    np.log(y) if log_scale else y, rng)  # fmt: skip
        return lambda z: gp(task(z, 1.0))

    def _predict(
        self, configs: Sequence[dict[str, Any]], models: dict[int, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std), shape (n, objectives): the GPs' where modelled, known ones exact."""
        n = len(configs)
        mean, std = np.zeros((n, len(self.objectives))), np.zeros((n, len(self.objectives)))
        x = self.encoder(configs) if models else None
        for i, model in models.items():
            mean[:, i], std[:, i] = model(x)
        if self.known is not None and self.known_names:
            values = self.known(configs)
            for j, name in enumerate(self.known_names):
                mean[:, self.objectives.index(name)] = values[:, j]
        return mean, std

    def _cost_model(self, rng: np.random.Generator) -> Any:
        if not self.search_cost:
            return None
        ok = [
            t
            for t in self.told.values()
            if t.status == SUCCESS and (t.metrics.get(self.search_cost) or 0) > 0
        ]
        if len(ok) < 2:
            return None
        x = self.encoder(t.config for t in ok)
        return fit_gp(x, np.log([t.metrics[self.search_cost] for t in ok]), rng)

    def _candidates(
        self, rng: np.random.Generator, taken: set[str], modelled: list[int]
    ) -> list[dict[str, Any]]:
        """Random configurations and the one-exchange neighbours of the best told ones (the
        front's, and the N_BEST lowest in each modelled objective), not yet run: SMAC's
        local search around its incumbents, with random ones interleaved."""
        self.space.seed(int(rng.integers(2**31)))
        pool = [self._plain(c) for c in self.space.sample_configuration(N_CANDIDATES)]
        ok = [t for t in self.told.values() if t.status == SUCCESS]
        if ok:
            costs = np.array([t.cost for t in ok], dtype=float)
            best = set(np.flatnonzero(pareto_mask(costs)))
            for i in modelled:
                best |= set(np.argsort(costs[:, i], kind="stable")[:N_BEST])
            for trial in (ok[j] for j in sorted(best)):
                config = Configuration(self.space, values=trial.config)
                seed = int(rng.integers(2**31))
                for i, neighbour in enumerate(get_one_exchange_neighbourhood(config, seed)):
                    if i >= NEIGHBOURS:
                        break
                    pool.append(self._plain(neighbour))
        fresh, seen = [], set(taken)
        for config in pool:
            if (key := config_key(config)) not in seen:
                seen.add(key)
                fresh.append(config)
        return fresh or pool[:1]

    def _random(self, rng: np.random.Generator, taken: set[str]) -> dict[str, Any]:
        self.space.seed(int(rng.integers(2**31)))
        for _ in range(100):
            config = self._plain(self.space.sample_configuration())
            if config_key(config) not in taken:
                return config
        return config

    def _reference(self) -> list[float] | None:
        told = list(self.told.values())  # in told order, as the loop's
        return proposal_reference(
            self.objectives, self.configured_reference, told, self.space, self.use_default
        )

    def _successes(self) -> bool:
        return any(t.status == SUCCESS for t in self.told.values())

    def _taken(self) -> set[str]:
        return {config_key(a.config) for a in self.asked.values()}

    @staticmethod
    def _plain(config: Any) -> dict[str, Any]:
        return {k: to_python(v) for k, v in dict(config).items()}


class Encoder:
    """Configurations (active hyperparameters) as rows in [0, 1]^d: see the module."""

    def __init__(self, space: Any) -> None:
        self.hps = [hp for hp in space.values() if not isinstance(hp, Constant)]

    def __call__(self, configs: Any) -> np.ndarray:
        rows = [self._row(c) for c in configs]
        width = sum(self._width(hp) for hp in self.hps)
        return np.array(rows, dtype=float).reshape(-1, width)

    @staticmethod
    def _width(hp: Any) -> int:
        return len(hp.choices) if isinstance(hp, CategoricalHyperparameter) else 1

    def _row(self, config: dict[str, Any]) -> list[float]:
        row: list[float] = []
        for hp in self.hps:
            value = config.get(hp.name, hp.default_value)
            if isinstance(hp, CategoricalHyperparameter):
                choices = [to_python(c) for c in hp.choices]
                row += [float(to_python(value) == c) for c in choices]
            elif isinstance(hp, OrdinalHyperparameter):
                sequence = [to_python(v) for v in hp.sequence]
                row.append(sequence.index(to_python(value)) / max(len(sequence) - 1, 1))
            elif isinstance(hp, (UniformFloatHyperparameter, UniformIntegerHyperparameter)):
                lo, hi, v = float(hp.lower), float(hp.upper), float(value)
                if hp.log:
                    lo, hi, v = np.log(lo), np.log(hi), np.log(v)
                row.append((v - lo) / (hi - lo) if hi > lo else 0.5)
            else:
                raise ValueError(
                    f"search_space: {hp.name!r} is a {type(hp).__name__}, which gp_ehvi does "
                    "not encode (int, float, categorical, ordinal, constant)"
                )
        return row


def task(x: np.ndarray, value: float) -> np.ndarray:
    """x with a last column `value` (the task input of a GP fitted on two tasks)."""
    return np.hstack([x, np.full((len(x), 1), value)])


def fit_gp(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Any:
    """A fitted GP on (x, y) as a function x -> (mean, std)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
        length_scale=np.full(x.shape[1], 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5
    ) + WhiteKernel(1e-2, (1e-6, 1.0))
    gp = GaussianProcessRegressor(
        kernel=kernel,
        normalize_y=True,
        n_restarts_optimizer=GP_RESTARTS,
        random_state=int(rng.integers(2**31)),
    )
    with warnings.catch_warnings():  # a bound reached with a handful of points
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(x, y)

    def predict(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = gp.predict(z, return_std=True)
        return mean, np.maximum(std, 1e-9)

    return predict
