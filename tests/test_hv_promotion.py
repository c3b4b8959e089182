"""intensifier=hv_promotion (_promotion.HypervolumePromotion): ASHA's top 1/eta of a stage,
ranked by each result's exclusive hypervolume contribution in the reference box; the
highest stage first; a function of the results, not of their order."""

from __future__ import annotations

import numpy as np
import pytest

from hydra_plugins.smac_sweeper._promotion import HypervolumePromotion, stage_scores
from hydra_plugins.smac_sweeper._trials import CRASHED
from tests.test_promotion import STAGES, _trial

REFERENCE = [1.0, 2.0]


def exclusive_areas_2d(points, reference):
    """Independent 2-D count: the area each point alone dominates, on a fine grid of the
    box [0, ref0] x [0, ref1] (cell centres), summed per point."""
    points = np.asarray(points, dtype=float)
    xs = (np.arange(800) + 0.5) * reference[0] / 800
    ys = (np.arange(800) + 0.5) * reference[1] / 800
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    covered = np.stack([(gx >= p[0]) & (gy >= p[1]) for p in points])
    alone = covered & (covered.sum(axis=0) == 1)
    cell = reference[0] * reference[1] / 800**2
    return alone.reshape(len(points), -1).sum(axis=1) * cell


def test_scores_are_the_exclusive_hypervolume_contributions():
    rng = np.random.default_rng(0)
    points = rng.uniform([0.05, 0.05], [0.95, 1.9], size=(12, 2))
    scores = stage_scores(points, REFERENCE)
    np.testing.assert_allclose(scores, exclusive_areas_2d(points, REFERENCE), atol=2e-3)
    dominated = [i for i, p in enumerate(points) if np.any(np.all(points < p, axis=1))]
    assert dominated and all(scores[i] == 0.0 for i in dominated)
    # a tiny sliver at the energy end scores less than a point lowering the error widely
    sliver, wide = stage_scores(np.array([[0.9, 0.05], [0.3, 0.5], [0.5, 0.3]]), REFERENCE)[:2]
    assert 0 < sliver < wide
    # without a reference (none known yet) nothing scores; one objective ranks by value
    assert not stage_scores(points, None).any()
    one = stage_scores(np.array([[0.3], [0.1], [0.2]]), None)
    assert list(np.argsort(-one)) == [1, 2, 0] and one.min() > 0


def _promote_all(rungs):
    out = []
    while (step := rungs.next()) is not None:
        config, stage = step
        rungs.record_ask(config, stage)
        out.append((config["x"], stage))
    return out


def test_the_top_third_of_a_stage_by_contribution_goes_up():
    rungs = HypervolumePromotion(STAGES, 3, lambda: REFERENCE)
    costs = {0: [0.5, 0.5], 1: [0.9, 0.05], 2: [0.3, 1.5]}
    for x, cost in costs.items():
        rungs.record_tell(_trial(x, 1.0, cost))
    scores = stage_scores(np.array(list(costs.values())), REFERENCE)
    assert _promote_all(rungs) == [(int(np.argmax(scores)), 3.0)]  # floor(3 / 3) = 1
    for x, cost in {3: [0.2, 0.4], 4: [0.95, 1.9], 5: [0.6, 0.6]}.items():  # 5 dominated
        rungs.record_tell(_trial(x, 1.0, cost))
    # floor(6 / 3) = 2: the best two now, both new (0, promoted before, is third now: a
    # promotion stays, as in ASHA); 5 is dominated
    promoted = _promote_all(rungs)
    everything = np.array([[0.5, 0.5], [0.9, 0.05], [0.3, 1.5], [0.2, 0.4], [0.95, 1.9],
                           [0.6, 0.6]])  # fmt: skip
    ranked = np.argsort(-stage_scores(everything, REFERENCE), kind="stable")
    assert promoted == [(int(ranked[0]), 3.0), (int(ranked[1]), 3.0)]
    assert 0 not in ranked[:2] and 5 not in ranked[:2]


def test_the_highest_stage_first_and_never_a_dominated_or_crashed_result():
    rungs = HypervolumePromotion(STAGES, 2, lambda: REFERENCE)
    for x, cost in enumerate([[0.5, 0.5], [0.4, 0.4]]):  # 0 is dominated by 1
        rungs.record_tell(_trial(x, 1.0, cost))
    rungs.record_tell(_trial(7, 1.0, [0.1, 0.1], status=CRASHED))
    for x, cost in {8: [0.3, 0.3], 9: [0.2, 1.0]}.items():
        rungs.record_tell(_trial(x, 3.0, cost))
    # stage 3: 8 alone dominates 0.7 x 0.7 of the box, 9 only 0.1 x 1.0
    assert _promote_all(rungs) == [(8, 9.0), (1, 3.0)]
    # a quota larger than the front promotes the front only
    rungs = HypervolumePromotion(STAGES, 2, lambda: REFERENCE)
    for x, cost in enumerate([[0.5, 0.5], [0.6, 0.6], [0.7, 0.7], [0.8, 0.8]]):
        rungs.record_tell(_trial(x, 1.0, cost))
    assert _promote_all(rungs) == [(0, 3.0)]


def test_no_promotion_at_the_top_stage_or_before_eta_results_or_a_reference():
    rungs = HypervolumePromotion(STAGES, 3, lambda: None)
    for x in range(3):
        rungs.record_tell(_trial(x, 9.0, [0.1 * x, 0.5]))
        rungs.record_tell(_trial(x, 1.0, [0.1 * x + 0.1, 1.0 - 0.1 * x]))
    assert rungs.next() is None  # no reference yet: nothing scores
    rungs.reference = lambda: REFERENCE
    assert rungs.next() is not None
    fresh = HypervolumePromotion(STAGES, 3, lambda: REFERENCE)
    for x in range(2):
        fresh.record_tell(_trial(x, 1.0, [0.2 + 0.1 * x, 0.5 - 0.1 * x]))
    assert fresh.next() is None  # floor(2 / 3) = 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_promotions_depend_on_the_results_not_on_their_order(seed):
    rng = np.random.default_rng(seed)
    results = [(x, float(rng.choice(STAGES[:2])), rng.uniform(0, 1, 2) * [1, 2]) for x in range(20)]
    promoted = []
    for order in (results, results[::-1]):
        rungs = HypervolumePromotion(STAGES, 3, lambda: REFERENCE)
        for x, stage, cost in order:
            rungs.record_ask({"x": x}, stage)
            rungs.record_tell(_trial(x, stage, cost))
        promoted.append(sorted(_promote_all(rungs)))
    assert promoted[0] == promoted[1] and promoted[0]
    stage_of = {x: stage for x, stage, _ in results}
    assert all(stage == STAGES[STAGES.index(stage_of[x]) + 1] for x, stage in promoted[0])


def _costly(x, budget, cost, spent):
    trial = _trial(x, budget, cost)
    if spent is not None:
        trial.metrics["energy/total_kwh"] = spent
    return trial


def test_with_search_cost_the_contribution_per_unit_of_cost_ranks():
    """A wide network (low error, large contribution) that cost 4x to measure loses its
    place to a small one whose contribution per kWh is larger; without search_cost the
    contribution alone decides."""
    costs = {0: [0.1, 1.0], 1: [0.6, 0.1], 2: [0.9, 1.9]}  # 2 is dominated by 1
    spent = {0: 4.0, 1: 1.0, 2: 1.0}
    areas = stage_scores(np.array(list(costs.values())), REFERENCE)
    assert areas[0] > areas[1] and areas[0] / 4.0 < areas[1]  # the case is what it says
    plain = HypervolumePromotion(STAGES, 3, lambda: REFERENCE)
    priced = HypervolumePromotion(STAGES, 3, lambda: REFERENCE, "energy/total_kwh")
    for x, cost in costs.items():
        plain.record_tell(_costly(x, 1.0, cost, spent[x]))
        priced.record_tell(_costly(x, 1.0, cost, spent[x]))
    assert _promote_all(plain) == [(0, 3.0)]
    assert _promote_all(priced) == [(1, 3.0)]


def test_a_missing_or_zero_cost_counts_as_the_stage_median():
    from hydra_plugins.smac_sweeper._promotion import measuring_costs

    np.testing.assert_allclose(measuring_costs([2.0, None, 4.0, 0.0, 6.0]), [2, 4, 4, 4, 6])
    np.testing.assert_allclose(measuring_costs([None, 0.0]), [1.0, 1.0])
    # a dominated result stays at 0 whatever its cost; ranks follow area / cost
    priced = HypervolumePromotion(STAGES, 2, lambda: REFERENCE, "energy/total_kwh")
    for x, (cost, kwh) in enumerate(
        [([0.5, 0.5], 1e-9), ([0.4, 0.4], 2.0), ([0.2, 1.5], None), ([0.9, 0.1], 0.5)]
    ):
        priced.record_tell(_costly(x, 1.0, cost, kwh))
    points = np.array([[0.5, 0.5], [0.4, 0.4], [0.2, 1.5], [0.9, 0.1]])
    per_kwh = stage_scores(points, REFERENCE) / np.array([1e-9, 2.0, 0.5, 0.5])
    expected = [int(i) for i in np.argsort(-per_kwh, kind="stable")[:2]]
    assert 0 not in expected and [x for x, _ in _promote_all(priced)] == expected
