"""evaluate.py's modes end to end on tiny Fashion-MNIST runs (a SmallCNN, 1 % of the data)."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict

from dsnn.evaluation import evaluate
from dsnn.evaluation.retest import full_fidelity
from dsnn.objectives import MODEL_ENERGY_UJ
from dsnn.shift.export import read_exported
from dsnn.training import train
from hydra_plugins.smac_sweeper._budget import Budget
from hydra_plugins.smac_sweeper._outputs import write_all
from hydra_plugins.smac_sweeper._pareto import summarise
from hydra_plugins.smac_sweeper._trials import SUCCESS, Trial, read_objectives
from tests.conftest import CONF

# A training run in seconds: 4-layer CNN (all shifted), 550 training images, one epoch,
# 200 validation images, one test batch (128 images); no logger, no CodeCarbon.
TINY = [
    "data=fashion_mnist",
    "model=small_cnn",
    "model.width=4",
    "shift_depth=4",
    "data.fraction=0.01",
    "data.val_size=200",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "++trainer.limit_test_batches=1",
    "callbacks=none",
    "logger=none",
    "energy.enabled=false",
]
QUIET = ["wandb.mode=disabled", "energy.enabled=false", "device=cpu"]


def overrides_arg(overrides) -> str:
    """`overrides=[...]` as on the command line: items with "=" are quoted for Hydra."""
    return "overrides=[" + ",".join(f'"{o}"' for o in overrides) + "]"


@pytest.fixture
def compose_eval(tmp_path):
    """compose_eval(*overrides) -> the config of `python evaluate.py overrides...`."""

    def _compose(*overrides: str):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(
                "evaluate", overrides=[f"output_dir={tmp_path / 'eval'}", *QUIET, *overrides]
            )

    yield _compose
    GlobalHydra.instance().clear()


def train_run(compose_cfg, run_dir, *overrides):
    """train(cfg) into run_dir, with the .hydra/config.yaml that @hydra.main would save."""
    cfg = compose_cfg(*overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
    objectives = train(cfg)
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return objectives


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_checkpoint_mode_reports_and_exports(compose_cfg, compose_eval, tmp_path):
    run = tmp_path / "run"
    objectives = train_run(compose_cfg, run, "experiment=demo", *TINY, "test=true")
    # the analytic energy is a training objective the sweeper can read
    values, _ = read_objectives(objectives, ["val/error", MODEL_ENERGY_UJ])
    assert values[MODEL_ENERGY_UJ] > 0

    results = evaluate(compose_eval("mode=checkpoint", f"checkpoint={run}", "test_images=128"))

    # the same model on the same 128 test images as train's one test batch
    assert results["test/images"] == 128
    assert results["test/acc"] == pytest.approx(objectives["test/acc"])
    assert results[MODEL_ENERGY_UJ] == pytest.approx(objectives[MODEL_ENERGY_UJ])
    assert results["export/identical_logits"] and results["export/identical_predictions"]
    assert results["size/export_bytes"] < results["size/float32_checkpoint_bytes"]
    assert results["integer/identical_logits_float64"] == 1.0
    assert results["integer/prediction_agreement_float32"] == 1.0
    out = tmp_path / "eval"
    saved = json.loads((out / "checkpoint.json").read_text())
    assert saved["test/acc"] == results["test/acc"]
    assert read_rows(out / "checkpoint.csv")[0]["test/acc"] == str(results["test/acc"])

    # the export evaluates on its own (its run config travels inside the file)
    again = evaluate(
        compose_eval("mode=checkpoint", f"checkpoint={out / 'model.dsnn'}", "test_images=128",
                     "export=false", "verify_images=0", f"output_dir={tmp_path / 'eval2'}")
    )  # fmt: skip
    assert again["test/acc"] == results["test/acc"]

    # ... wherever it lies: copied to a fresh folder next to evaluate.py's own .hydra config
    # (which has no `data`), with only the file's spec (the data it names) to go on
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / ".hydra").mkdir(parents=True)
    (elsewhere / ".hydra" / "config.yaml").write_text("mode: checkpoint\nexport: true\n")
    shutil.copy(out / "model.dsnn", elsewhere / "model.dsnn")
    spec = read_exported(elsewhere / "model.dsnn")["spec"]
    assert spec["model"] == {"name": "small_cnn", "args": {"width": 4}}
    assert spec["data"]["name"] == "fashion_mnist" and spec["data"]["args"]["val_size"] == 200
    third = evaluate(
        compose_eval("mode=checkpoint", f"checkpoint={elsewhere / 'model.dsnn'}",
                     "test_images=128", f"output_dir={tmp_path / 'eval3'}")
    )  # fmt: skip
    assert third["test/acc"] == results["test/acc"]
    assert third["export/identical_logits"]
    assert read_exported(tmp_path / "eval3" / "model.dsnn")["spec"] == spec


def test_checkpoint_mode_reads_a_lightning_checkpoint(compose_cfg, compose_eval, tmp_path):
    run = tmp_path / "run"
    tiny = [o for o in TINY if o != "callbacks=none"]
    objectives = train_run(compose_cfg, run, "experiment=demo", *tiny, "test=true")
    results = evaluate(
        compose_eval("mode=checkpoint", f"checkpoint={run / 'checkpoints' / 'last.ckpt'}",
                     "test_images=128", "export=false", "verify_images=0")
    )  # fmt: skip
    assert results["test/acc"] == pytest.approx(objectives["test/acc"])


def make_sweep_dir(compose_cfg, sweep_dir, trials):
    """A sweep folder as hydra_plugins/smac_sweeper writes it: trials.csv, pareto.csv,
    optimization_results.yaml, and per trial .hydra/config.yaml, overrides.yaml.

    trials: (weight_bits, budget, val/error, emissions/total_g) per trial.
    """
    objectives = ["val/error", "emissions/total_g"]
    budget = Budget(variable="shift_depth", stages=[2.0, 4.0], integer=True)
    told = []
    for trial_id, (bits, depth, error, grams) in enumerate(trials):
        overrides = ["experiment=demo", *TINY, f"quantization.weight_bits={bits}",
                     f"++shift_depth={depth}", f"++seed={100 + trial_id}",
                     "++run_group=tiny", f"++run_name=t{trial_id}-b{depth}"]  # fmt: skip
        job = sweep_dir / str(trial_id)
        cfg = compose_cfg(*overrides)
        (job / ".hydra").mkdir(parents=True)
        OmegaConf.save(cfg, job / ".hydra" / "config.yaml")
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        trial = Trial(
            trial_id=trial_id, batch=trial_id, config={"quantization.weight_bits": bits},
            budget=float(depth), seed=100 + trial_id, budget_value=depth, status=SUCCESS,
            objectives={"val/error": error, "emissions/total_g": grams}, duration=1.0,
            job_dir=str(job), overrides=overrides,
        )  # fmt: skip
        trial.metrics = dict(trial.objectives)
        told.append(trial)
    summary = summarise(told, objectives, budget.top, None)
    write_all(sweep_dir, told, summary, plot=False, fidelity=budget.describe())


@pytest.mark.parametrize(
    "fidelity, expected",
    [
        ({"variable": "shift_depth", "max": 20, "integer": True}, {"shift_depth": 20}),
        ({"variable": "data.fraction", "max": 0.05, "integer": False}, {"data.fraction": 0.05}),
        (None, {}),  # no budget: every trial ran at full fidelity
    ],
)
def test_full_fidelity_reads_the_sweeps_results(tmp_path, fidelity, expected):
    trials = [Trial(trial_id=0, batch=0, config={}, budget=None, seed=0, status=SUCCESS,
                    objectives={"val/error": 0.5})]  # fmt: skip
    write_all(tmp_path, trials, summarise(trials, ["val/error"], None, None), plot=False,
              fidelity=fidelity)  # fmt: skip
    found = full_fidelity(tmp_path)
    assert found == expected and [type(v) for v in found.values()] == [
        type(v) for v in expected.values()
    ]


def test_full_fidelity_of_a_sweep_written_before_it_was_recorded(tmp_path, caplog):
    (tmp_path / "optimization_results.yaml").write_text("name: smac\nbudget: 20.0\n")
    assert full_fidelity(tmp_path) == {}
    assert "does not name the sweep's budget" in caplog.text


def test_sweep_mode_retests_the_pareto_front_over_seeds(compose_cfg, compose_eval, tmp_path):
    sweep = tmp_path / "sweep"
    # at budget 4 trial 1 dominates trial 0; trial 2 ran at budget 2 only: the front is [1]
    make_sweep_dir(compose_cfg, sweep, [(3, 4, 0.30, 0.03), (5, 4, 0.25, 0.02), (4, 2, 0.2, 0.01)])
    assert [r["trial_id"] for r in read_rows(sweep / "pareto.csv")] == ["1"]
    # as under budget.continuation: trial 1 continued trial 2's run; a re-test must not
    saved = sweep / "1" / ".hydra" / "config.yaml"
    OmegaConf.save(OmegaConf.merge(OmegaConf.load(saved), {"resume_from": str(sweep / "2")}), saved)

    evaluate(compose_eval("mode=sweep", f"sweep_dir={sweep}", "seeds=2"))

    out = tmp_path / "eval"
    runs = read_rows(out / "retest_runs.csv")
    assert [(r["trial_id"], r["seed"], r["status"]) for r in runs] == [
        ("1", "0", "success"), ("1", "1", "success"),
    ]  # fmt: skip
    run_cfg = OmegaConf.load(out / "runs" / "t1" / "seed1" / "config.yaml")
    assert run_cfg.seed == 1 and run_cfg.test and run_cfg.shift_depth == 4
    assert run_cfg.quantization.weight_bits == 5  # the trial's configuration
    assert run_cfg.run_name == "t1-s1" and run_cfg.run_group == "retest-sweep"
    assert run_cfg.resume_from is None  # each seed trains from scratch
    (row,) = read_rows(out / "retest_summary.csv")
    assert row["trial_id"] == "1" and row["runs_ok"] == "2"
    accs = [float(r["test/acc"]) for r in runs]
    assert float(row["test/acc_mean"]) == pytest.approx(sum(accs) / 2)
    assert float(row["test/acc_std"]) == pytest.approx(abs(accs[0] - accs[1]) / 2**0.5)
    assert float(row["sweep/val/error"]) == 0.25 and float(row["sweep/emissions/total_g"]) == 0.02
    assert (out / "retest_front.png").stat().st_size > 0
    assert json.loads((out / "retest.json").read_text())["fidelity"] == {"shift_depth": 4}


@pytest.mark.slow
def test_sweep_mode_retests_every_configuration_of_the_front(compose_cfg, compose_eval, tmp_path):
    sweep = tmp_path / "sweep"
    make_sweep_dir(compose_cfg, sweep, [(3, 4, 0.30, 0.02), (5, 4, 0.25, 0.03)])
    evaluate(compose_eval("mode=sweep", f"sweep_dir={sweep}", "seeds=2"))
    summary = read_rows(tmp_path / "eval" / "retest_summary.csv")
    assert [(s["trial_id"], s["runs_ok"]) for s in summary] == [("1", "2"), ("0", "2")]


def test_sweep_mode_rejects_a_group_override_on_saved_configs(compose_cfg, compose_eval, tmp_path):
    sweep = tmp_path / "sweep"
    make_sweep_dir(compose_cfg, sweep, [(3, 4, 0.3, 0.02)])
    with pytest.raises(ValueError, match="trainer.<name>"):
        evaluate(compose_eval("mode=sweep", f"sweep_dir={sweep}", overrides_arg(["trainer=gpu"])))


def test_table1_prints_the_row_of_a_preset_and_logs_offline(compose_eval, tmp_path, capsys):
    overrides = overrides_arg(TINY)
    result = evaluate(
        compose_eval("mode=table1", "configs=[pos2]", overrides, "wandb.mode=offline")
    )
    (row,) = result["rows"]
    assert row["experiment"] == "pos2" and row["runs"] == "1/1"
    assert row["paper accuracy (%)"] == 84.67 and row["paper emissions (g)"] == 0.1673
    assert 0.0 <= row["test_acc_mean"] <= 1.0
    run_cfg = OmegaConf.load(tmp_path / "eval" / "runs" / "pos2-s0" / "config.yaml")
    assert run_cfg.optimizer.momentum == 0.6738 and run_cfg.quantization.weight_bits == 7
    assert "pos2" in capsys.readouterr().out
    assert read_rows(tmp_path / "eval" / "table1.csv")[0]["experiment"] == "pos2"
    assert list((tmp_path / "eval" / "wandb").glob("offline-run-*"))


@pytest.mark.slow
def test_figure1_has_one_curve_per_config(compose_eval, tmp_path):
    overrides = overrides_arg(t for t in TINY if not t.startswith("shift_depth"))
    evaluate(
        compose_eval("mode=figure1", "configs=[paper_default,pos2]", "depths=[0,4]", overrides)
    )
    points = read_rows(tmp_path / "eval" / "figure1.csv")
    assert [(p["config"], p["shift_depth"]) for p in points] == [
        ("paper_default", "0"), ("paper_default", "4"), ("pos2", "0"), ("pos2", "4"),
    ]  # fmt: skip
    assert all(0.0 <= float(p["test_acc_pct_mean"]) <= 100.0 for p in points)
    float_net, shift_net = (float(p["energy_model_uj_per_image"]) for p in points[:2])
    assert shift_net < float_net
    assert (tmp_path / "eval" / "figure1.png").stat().st_size > 0


def test_unknown_mode_is_refused(compose_eval):
    with pytest.raises(ValueError, match="allowed: checkpoint, sweep"):
        evaluate(compose_eval("mode=nope"))
