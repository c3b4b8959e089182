"""intensifier=pareto_promotion's queue (_promotion.py): a configuration goes up a stage when
no earlier result of its stage dominates it; the highest stage first, in told order."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hydra_plugins.smac_sweeper._pareto import pareto_mask
from hydra_plugins.smac_sweeper._promotion import ParetoPromotion
from hydra_plugins.smac_sweeper._trials import CRASHED, SUCCESS, Trial, config_key

STAGES = [1.0, 3.0, 9.0]
ids = itertools.count()


def _trial(x, budget, cost, status=SUCCESS):
    trial = Trial(next(ids), 0, {"x": x}, budget, 0, status=status)
    trial.cost = list(cost)
    return trial


def dominates(a, b):
    """a dominates b, by the rule the promotion uses (the front mask of _pareto.py)."""
    return not pareto_mask(np.array([a, b], dtype=float))[1]


def test_dominance():
    assert dominates([1, 1], [1, 2]) and dominates([0, 1], [1, 2])
    assert not dominates([1, 2], [1, 2])  # equal: neither dominates
    assert not dominates([0, 3], [1, 2]) and not dominates([1, 2], [0, 3])
    assert dominates([0.1], [0.2]) and not dominates([0.2], [0.1])


def test_a_result_goes_up_unless_an_earlier_one_of_its_stage_dominates_it():
    rungs = ParetoPromotion(STAGES)
    assert rungs.record_tell(_trial(0, 1.0, [0.5, 0.5]))  # the first of a stage goes on
    assert rungs.record_tell(_trial(1, 1.0, [0.4, 0.6]))  # a trade-off: on the front
    assert not rungs.record_tell(_trial(2, 1.0, [0.6, 0.6]))  # dominated by both
    assert rungs.record_tell(_trial(3, 1.0, [0.5, 0.5]))  # equal to one: not dominated
    assert not rungs.record_tell(_trial(4, 1.0, [0.3, 0.4], status=CRASHED))
    # a later result is compared with every earlier one, promoted or not
    assert not rungs.record_tell(_trial(5, 1.0, [0.65, 0.55]))  # dominated by x=0 only
    assert not rungs.record_tell(_trial(6, 9.0, [0.1, 0.1]))  # the top stage ends there
    assert [t.config["x"] for t in rungs.queue] == [0, 1, 3]


def test_the_queue_takes_the_highest_stage_first_and_drops_what_was_asked():
    rungs = ParetoPromotion(STAGES)
    rungs.record_tell(_trial("a", 1.0, [0.5, 0.5]))
    rungs.record_tell(_trial("b", 1.0, [0.4, 0.6]))
    rungs.record_tell(_trial("c", 3.0, [0.9, 0.9]))  # told after a and b, one stage higher
    assert rungs.next() == ({"x": "c"}, 9.0)
    rungs.record_ask({"x": "c"}, 9.0)
    assert rungs.next() == ({"x": "a"}, 3.0)  # then in told order
    rungs.record_ask({"x": "a"}, 3.0)
    assert rungs.next() == ({"x": "b"}, 3.0)
    rungs.record_ask({"x": "b"}, 3.0)
    assert rungs.next() is None


def test_one_objective_promotes_the_best_so_far_of_its_stage():
    rungs = ParetoPromotion(STAGES)
    told = [0.5, 0.7, 0.4, 0.4, 0.45, 0.1]
    promoted = [rungs.record_tell(_trial(i, 1.0, [v])) for i, v in enumerate(told)]
    assert promoted == [True, False, True, True, False, True]


@pytest.mark.parametrize("seed", range(3))
def test_the_promoted_share_is_the_share_of_records(seed):
    """Random costs in two objectives: a result is promoted exactly when it is on the front
    of its stage's results so far, counted here by brute force; about H_n of n in all."""
    rng = np.random.default_rng(seed)
    costs = rng.random((200, 2))
    rungs = ParetoPromotion(STAGES)
    promoted = [rungs.record_tell(_trial(i, 1.0, c)) for i, c in enumerate(costs)]
    expected = [
        not np.any(np.all(costs[:i] <= c, axis=1) & np.any(costs[:i] < c, axis=1))
        for i, c in enumerate(costs)
    ]
    assert promoted == expected
    share_late = np.mean(promoted[100:])
    assert share_late < 0.15  # ~ sum of H_n/n over n = 100..200, divided by 100: ~0.06
    assert all(promoted[:1]) and np.mean(promoted[:10]) > share_late


def test_config_key_ignores_the_order_of_keys():
    assert config_key({"a": 1, "b": "x"}) == config_key({"b": "x", "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 2})
