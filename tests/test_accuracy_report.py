"""The summary of benchmarks/accuracy.py on hand-made run folders (no training): gaps to
float, the targets, the test accuracy's standard error and the learning curve."""

import json
import math

import pytest

from benchmarks.accuracy import summarise


def _run(runs, variant, test_acc, epochs=2):
    folder = runs / variant
    (folder / "csv" / "version_0").mkdir(parents=True)
    objectives = {"train/epochs": epochs, "test/acc": test_acc, "val/acc": test_acc,
                  "time/train_s": 60.0, "energy/train_kwh": 1e-3,
                  "energy/model_uj_per_image": 1.0}  # fmt: skip
    (folder / "result.json").write_text(
        json.dumps({"variant": variant, "overrides": ["seed=0"], "objectives": objectives})
    )
    rows = ["epoch,step,val/acc", "0,10,0.5", "1,20,0.7", "2,30,0.71"]  # the last: after fit
    (folder / "csv" / "version_0" / "metrics.csv").write_text("\n".join(rows) + "\n")


def test_gaps_targets_and_curves(tmp_path):
    _run(tmp_path, "float", 0.9300)
    _run(tmp_path, "Q", 0.9248)
    _run(tmp_path, "PS_new", 0.9250)
    report = summarise(tmp_path, ["float", "Q", "PS_deepshift", "PS_new"], 2, 1.0)
    assert [r["variant"] for r in report["runs"]] == ["float", "Q", "PS_new"]  # not run: absent
    assert report["points_below_float"] == {"float": 0.0, "Q": 0.52, "PS_new": 0.5}
    assert report["target_reached"] == {"Q": False, "PS_new": True}
    q = report["runs"][1]
    assert q["test_acc_se"] == pytest.approx(math.sqrt(0.9248 * 0.0752 / 10_000))
    assert q["val_curve"] == [(1, 0.5), (2, 0.7)] and q["train_images"] == 55_000
