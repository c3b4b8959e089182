"""Warm start (hydra.sweeper.warm_start, _warm_start.py): an earlier sweep's Pareto front
is asked after the default, in greedy hypervolume order, by every algorithm; resumes ask
the journaled configurations; unusable sources are refused in one line before anything
is written. The expected front and order are recomputed here from the earlier sweep's
trials.csv with an independent hypervolume (inclusion-exclusion over the boxes)."""

from __future__ import annotations

import itertools
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from hydra_plugins.smac_sweeper._failures import SweepFailedError
from hydra_plugins.smac_sweeper._space import build_space
from hydra_plugins.smac_sweeper._warm_start import in_space
from tests.toy_app.harness import (
    ROOT,
    calls,
    command,
    env,
    kill_inside_a_trial,
    overrides,
    read_csv,
    read_journal,
    run_inprocess,
)

OBJECTIVES = "hydra.sweeper.objectives=[val/error,emissions/total_g]"
HPS = ("x", "y", "opt", "momentum", "n", "shift_depth")
# what each algorithm needs on the toy app (gp_ehvi: the toy's emissions known)
PRESETS = {
    "random": [],
    "smac_mo": [],
    "optuna_tpe_hv": [],
    "gp_ehvi": [
        "hydra.sweeper.known_objectives=[{objective:emissions/total_g,"
        "function:tests.toy_app.toy.known_emissions}]",
        "hydra.sweeper.search_cost=train/cost",
    ],
}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """An earlier sweep: 14 random trials of the toy app."""
    folder = tmp_path_factory.mktemp("earlier") / "sweep"
    run_inprocess(overrides(folder, "random", OBJECTIVES, "hydra.sweeper.n_trials=14"))
    return folder


def _box_union(points, reference):
    """Hypervolume by inclusion-exclusion: the union of the boxes [p, reference]."""
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(points, k):
            corner = np.max(subset, axis=0)
            total += (-1) ** (k + 1) * float(np.prod(np.clip(reference - corner, 0, None)))
    return total


def _expected(source, n):
    """The earlier sweep's front (brute force), in greedy order of hypervolume gain, less
    the default configuration (the new sweep's first trial) -> (the first n, front size)."""
    rows = [r for r in read_csv(source / "trials.csv") if r["status"] == "success"]
    cost = {i: np.array([float(r["val/error"]), float(r["emissions/total_g"])]) for i, r in
            enumerate(rows)}  # fmt: skip
    front = [i for i in cost if not any(
        np.all(cost[j] <= cost[i]) and np.any(cost[j] < cost[i]) for j in cost)]  # fmt: skip
    ref = next(r for r in read_journal(source) if r["event"] == "reference")["values"]
    reference = np.array([ref["val/error"], ref["emissions/total_g"]])
    order: list[int] = []
    while len(order) < len(front):
        gains = {i: _box_union([cost[j] for j in [*order, i]], reference)
                 for i in front if i not in order}  # fmt: skip
        order.append(max(gains, key=lambda i: (gains[i], -front.index(i))))
    default = tuple(rows[0][k] for k in HPS)  # the earlier sweep's trial 0: asked anyway
    ordered = [tuple(rows[i][k] for k in HPS) for i in order]
    return [c for c in ordered if c != default][:n], len(front)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_earlier_front_is_asked_after_the_default_in_greedy_order(tmp_path, source, preset):
    sweep = tmp_path / "warm"
    run_inprocess(
        overrides(
            sweep, preset, OBJECTIVES, *PRESETS[preset],
            "hydra.sweeper.n_trials=7",
            "hydra.sweeper.n_initial_configs=2",  # fewer than the 3 warm: the model asks next
            f"hydra.sweeper.warm_start.sweep_dir={source}",
            "hydra.sweeper.warm_start.n_configs=3",
        )
    )  # fmt: skip
    expected, front_size = _expected(source, 3)
    assert front_size >= 4  # a real choice among the front's points
    rows = read_csv(sweep / "trials.csv")
    assert len(rows) == 7 and all(r["status"] == "success" for r in rows)
    configs = [tuple(r[k] for k in HPS) for r in rows]
    assert rows[0]["x"] == "0.5" and rows[0]["n"] == "5"  # the default first
    assert configs[1:4] == expected
    assert len(set(configs)) == 7  # nothing asked twice
    # each warm configuration was trained and measured by this sweep, not copied
    assert len(calls(sweep)) == 7
    records = read_journal(sweep)
    warm = [r for r in records if r["event"] == "warm_start"]
    assert len(warm) == 1 and warm[0]["source"] == str(source)
    assert [r["config"] for r in records if r["event"] == "ask"][1:4] == warm[0]["configs"]


def test_a_resume_after_kill_asks_the_journaled_configurations_without_the_source(tmp_path, source):
    earlier = tmp_path / "earlier"
    shutil.copytree(source, earlier)
    sweep = tmp_path / "warm"
    args = overrides(
        sweep, "gp_ehvi", OBJECTIVES, *PRESETS["gp_ehvi"],
        "hydra.sweeper.n_trials=8", "hydra.sweeper.n_initial_configs=2", "sleep=0.4",
        f"hydra.sweeper.warm_start.sweep_dir={earlier}",
    )  # fmt: skip
    kill_inside_a_trial(args, tmp_path, told=2)  # the second warm configuration trains
    shutil.rmtree(earlier)  # the resume needs only the journal
    again = subprocess.run(
        command(args), cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    records = read_journal(sweep)
    expected, _ = _expected(source, 4)  # n_configs' default
    warm = [r["configs"] for r in records if r["event"] == "warm_start"]
    assert len(warm) == 1 and len(warm[0]) == len(expected) >= 3
    asks = [r["config"] for r in records if r["event"] == "ask"]
    assert len(asks) == 8 and asks[1 : 1 + len(expected)] == warm[0]
    assert sorted(_told(sweep)) == list(range(8))
    rows = read_csv(sweep / "trials.csv")
    assert [tuple(r[k] for k in HPS) for r in rows][1 : 1 + len(expected)] == expected


def _told(sweep):
    if not (sweep / "journal.jsonl").exists():
        return []
    return [r["trial_id"] for r in read_journal(sweep) if r["event"] == "tell"]


def test_with_a_budget_the_warm_configurations_start_at_the_lowest_stage(tmp_path, source):
    # the earlier sweep searched shift_depth; here it is the budget, so it is dropped
    sweep = tmp_path / "warm"
    run_inprocess(
        overrides(
            sweep, "smac_mfmo", OBJECTIVES, "hydra.sweeper.n_trials=6",
            f"hydra.sweeper.warm_start.sweep_dir={source}", "hydra.sweeper.warm_start.n_configs=3",
        )
    )  # fmt: skip
    rows = read_csv(sweep / "trials.csv")
    expected, _ = _expected(source, 3)
    assert [tuple(r[k] for k in HPS[:5]) for r in rows][1:4] == [c[:5] for c in expected]
    assert {r["budget"] for r in rows[:4]} == {"5"}  # Hyperband's first bracket


def _refused(tmp_path, *extra):
    """The ValueError's message (one line) of a sweep refused before anything is written."""
    sweep = tmp_path / "refused"
    with pytest.raises(ValueError) as refused:
        run_inprocess(overrides(sweep, "random", OBJECTIVES, "hydra.sweeper.n_trials=3", *extra))
    assert calls(sweep) == [] and not (sweep / "journal.jsonl").exists()
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_unusable_sources_are_refused_in_one_line(tmp_path, source):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _refused(tmp_path, f"hydra.sweeper.warm_start.sweep_dir={empty}") == (
        f"hydra.sweeper.warm_start.sweep_dir='{empty}' is invalid: no journal.jsonl there "
        "(the folder of an earlier sweep)"
    )
    one = tmp_path / "one_objective"
    run_inprocess(
        overrides(one, "random", "hydra.sweeper.objectives=[val/error]", "hydra.sweeper.n_trials=2")
    )
    message = _refused(tmp_path, f"hydra.sweeper.warm_start.sweep_dir={one}")
    assert message.endswith("is invalid: that sweep did not measure emissions/total_g")
    failed = tmp_path / "failed"
    with pytest.raises(SweepFailedError, match="crashed"):
        run_inprocess(overrides(failed, "random", OBJECTIVES, "fail=always"))
    message = _refused(tmp_path, f"hydra.sweeper.warm_start.sweep_dir={failed}")
    assert message.endswith("is invalid: that sweep has no successful trial")
    message = _refused(
        tmp_path, f"hydra.sweeper.warm_start.sweep_dir={source}",
        "hydra.sweeper.warm_start.n_configs=0",
    )  # fmt: skip
    assert message == "hydra.sweeper.warm_start.n_configs=0 is invalid: must be an integer >= 1"


def test_a_source_configuration_is_mapped_onto_this_space():
    spec = yaml.safe_load((ROOT / "tests/toy_app/conf/search_space/toy.yaml").read_text())
    space = build_space(spec, remove={"shift_depth": None}, seed=0)
    given = {"x": 0.2, "y": 0.5, "opt": "c", "momentum": 0.3, "n": 3, "shift_depth": 7, "z": 1}
    # shift_depth (not in this space) and z dropped; momentum inactive for opt c
    assert in_space(given, space) == {"x": 0.2, "y": 0.5, "opt": "c", "n": 3}
    # a key this space has and the earlier one lacked: its default
    assert in_space({"x": 0.2, "y": 0.5, "opt": "a", "n": 3}, space)["momentum"] == 0.9
    assert in_space({**given, "x": 1.5}, space) is None  # outside this space
    assert in_space({**given, "opt": "d"}, space) is None


def test_gp_ehvi_fits_its_gp_on_the_earlier_results_with_the_task_as_an_input(
    tmp_path, source, monkeypatch
):
    from hydra_plugins.smac_sweeper import _gp_ehvi

    fits = []
    real = _gp_ehvi.fit_gp

    def spy(x, y, rng):
        fits.append((x.copy(), y.copy()))
        return real(x, y, rng)

    monkeypatch.setattr(_gp_ehvi, "fit_gp", spy)
    sweep = tmp_path / "warm"
    run_inprocess(
        overrides(
            sweep, "gp_ehvi", OBJECTIVES, *PRESETS["gp_ehvi"],
            "hydra.sweeper.n_trials=6", "hydra.sweeper.n_initial_configs=2",
            f"hydra.sweeper.warm_start.sweep_dir={source}", "hydra.sweeper.warm_start.n_configs=3",
        )
    )  # fmt: skip
    earlier = [r for r in read_csv(source / "trials.csv") if r["status"] == "success"]
    told = read_csv(sweep / "trials.csv")
    # trials 4 and 5 from the model: one error GP (told rows, then the earlier ones, the task
    # column 1 then 0) and one cost GP (this sweep's rows only, no task column) per ask
    error_fits = [(x, y) for x, y in fits if len(x) > 5]
    assert len(error_fits) == 2 and len(fits) == 4
    for n_told, (x, y) in zip((4, 5), error_fits, strict=True):
        assert len(x) == n_told + len(earlier)
        assert list(x[:, -1]) == [1.0] * n_told + [0.0] * len(earlier)
        mine = [float(r["val/error"]) for r in told[:n_told]]
        theirs = [float(r["val/error"]) for r in earlier]
        assert np.exp(y) == pytest.approx(mine + theirs)  # the error on the log scale
    record = next(r for r in read_journal(sweep) if r["event"] == "warm_start")
    assert [o["cost"][0] for o in record["observations"]] == pytest.approx(theirs)


def test_observations_false_hands_over_the_configurations_alone(source):
    from hydra_plugins.smac_sweeper._warm_start import load_warm_start
    from hydra_plugins.smac_sweeper.config import SMACSweeperConf, WarmStartConf

    spec = yaml.safe_load((ROOT / "tests/toy_app/conf/search_space/toy.yaml").read_text())
    space = build_space(spec, remove={}, seed=0)
    objectives = ["val/error", "emissions/total_g"]
    both, alone = (
        load_warm_start(
            SMACSweeperConf(
                objectives=objectives,
                warm_start=WarmStartConf(sweep_dir=str(source), observations=observations),
            ),
            space,
            None,
        )
        for observations in (True, False)
    )
    expected, _ = _expected(source, 4)
    assert alone.configs == both.configs and len(both.configs) >= len(expected)
    assert alone.observations == [] and len(both.observations) == 14
