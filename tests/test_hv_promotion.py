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


# budget.promote_by=improvement: the hypervolume a result would add to the top stage's front

TWO = [1.0, 9.0]
BOX = [1.0, 2.70262]  # the search-efficiency study's: error 1.0, the float network's µJ


def added_area_2d(front, point, reference):
    """Independent 2-D count: the area of the box that `point` dominates and no point of
    `front` does, on a fine grid (cell centres)."""
    xs = (np.arange(1000) + 0.5) * reference[0] / 1000
    ys = (np.arange(1000) + 0.5) * reference[1] / 1000
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    covered = np.zeros_like(gx, dtype=bool)
    for p in front:
        covered |= (gx >= p[0]) & (gy >= p[1])
    mine = (gx >= point[0]) & (gy >= point[1]) & ~covered
    return mine.sum() * reference[0] * reference[1] / 1000**2


def test_improvements_are_the_areas_a_point_adds_to_the_front():
    from hydra_plugins.smac_sweeper._promotion import improvements

    rng = np.random.default_rng(3)
    front = rng.uniform([0.1, 0.1], [0.9, 1.8], size=(5, 2))
    points = rng.uniform([0.05, 0.05], [0.95, 1.95], size=(10, 2))
    gains = improvements(points, front, REFERENCE)
    expected = [added_area_2d(front, p, REFERENCE) for p in points]
    np.testing.assert_allclose(gains, expected, atol=3e-3)
    assert (gains == 0).any() and (gains > 0.05).any()  # dominated ones and real gains
    # an empty front: the box the point alone dominates; outside the box: nothing
    alone = improvements(np.array([[0.4, 0.5], [1.2, 0.1]]), [], REFERENCE)
    np.testing.assert_allclose(alone, [0.6 * 1.5, 0.0])


def test_scale_is_the_median_ratio_of_the_configurations_told_at_both():
    rungs = HypervolumePromotion(TWO, 2, lambda: REFERENCE, promote_by="improvement")
    rungs.record_tell(_trial("a", 1.0, [0.6, 0.1]))
    np.testing.assert_allclose(rungs.scale(1.0), [1.0, 1.0])  # no pair yet
    for x, low, top in [("a", None, [0.3, 0.1]), ("b", [0.5, 0.2], [0.4, 0.2]),
                        ("c", [0.4, 0.0], [0.1, 0.0])]:  # fmt: skip
        if low is not None:
            rungs.record_tell(_trial(x, 1.0, low))
        rungs.record_tell(_trial(x, 9.0, top))
    rungs.record_tell(_trial("d", 9.0, [0.05, 0.3]))  # told at 9 only: no pair
    # error: ratios 0.5, 0.8, 0.25 -> 0.5; energy: 1, 1 (c's 0 at 1 epoch is left out)
    np.testing.assert_allclose(rungs.scale(1.0), [0.5, 1.0])


def test_improvement_does_not_send_the_wide_network_up_first():
    """Seed 4 of the study (tpe_hv_screen_ri_eta4), its first 4 results at 1 epoch: by
    contribution the width-19 network (lowest error) went to 9 epochs first, for 0.061 Wh;
    by improvement the width-4 one does, whose box alone is the larger."""
    screens = {"w8": [0.662, 0.206], "w19": [0.474, 1.057], "w4": [0.665, 0.048],
               "w17": [0.911, 0.472]}  # fmt: skip
    firsts = {}
    for rank in ("contribution", "improvement"):
        rungs = HypervolumePromotion(TWO, 4, lambda: BOX, promote_by=rank)
        for x, cost in screens.items():
            rungs.record_tell(_trial(x, 1.0, cost))
        firsts[rank] = _promote_all(rungs)
    assert firsts == {"contribution": [("w19", 9.0)], "improvement": [("w4", 9.0)]}
    boxes = {x: (BOX[0] - e) * (BOX[1] - u) for x, (e, u) in screens.items()}
    assert max(boxes, key=boxes.get) == "w4"


def test_improvement_ranks_by_the_predicted_gain_on_the_top_front_then_contribution():
    """With a 9-epoch result the 1-epoch errors are scaled by its ratio and ranked by the
    area they would add to the 9-epoch front (counted on a grid); results that would add
    nothing come after, by their stage contribution, and a dominated one never goes up."""
    screens = [[0.662, 0.206], [0.474, 1.057], [0.665, 0.048], [0.911, 0.472],
               [0.738, 0.202], [0.593, 0.053], [0.401, 0.062], [0.344, 0.126],
               [0.30, 2.0], [0.95, 0.5], [0.99, 2.6], [0.70, 0.30]]  # fmt: skip
    rungs = HypervolumePromotion(TWO, 2, lambda: BOX, promote_by="improvement")
    for x, cost in enumerate(screens):
        rungs.record_tell(_trial(x, 1.0, cost))
    rungs.record_ask({"x": 2}, 9.0)
    rungs.record_tell(_trial(2, 9.0, [0.442, 0.048]))
    scale = 0.442 / 0.665
    gains = np.array([added_area_2d([[0.442, 0.048]], [e * scale, u], BOX) for e, u in screens])
    areas = stage_scores(np.array(screens), BOX)
    order = sorted(range(len(screens)), key=lambda i: (-round(gains[i], 3), -areas[i]))
    # floor(12 / 2) = 6 promotions from the stage, 1 already made (2): 5 more, best first
    expected = [i for i in order if i != 2 and (gains[i] > 0 or areas[i] > 0)][:5]
    promoted = _promote_all(rungs)
    assert [x for x, _ in promoted] == expected == [7, 6, 1, 8, 5]
    assert all(stage == 9.0 for _, stage in promoted)
    # the wide network 1 goes third, after the small 7 and 6; 0 would add a sliver and
    # comes before 2, which adds nothing (its own 9-epoch result is there) though its
    # contribution is larger; 3 is dominated at its stage and adds nothing
    assert 0 < gains[0] and gains[2] == 0 and areas[2] > areas[0]
    assert order.index(0) < order.index(2) and gains[3] == areas[3] == 0
    rungs.record_tell(_trial(12, 1.0, [0.2, 0.3]))
    rungs.record_tell(_trial(13, 1.0, [0.97, 2.0]))
    assert _promote_all(rungs) == [(12, 9.0)]  # 14 results: a seventh promotion
    assert _promote_all(rungs) == []  # and no more: 3 never goes up
