"""benchmarks/screen_validation.py: which configurations it screens again, and a real run
of a few 1-epoch screens with a tenth of the validation images (slow)."""

import csv
import json
from pathlib import Path

import pytest

from benchmarks.screen_validation import METHOD, run, screened_and_promoted
from dsnn.data import FashionMNISTDataModule
from tests.test_data import needs_fmnist

FIELDS = ("method", "seed", "status", "epochs_trained", "val_error", "config")
CONFIG = {"data.batch_size": 128, "model.width": 4, "optimizer": "adam", "optimizer.lr": 0.01,
          "optimizer.weight_decay": 0.0001, "quantization.activation_fraction_bits": 8,
          "quantization.activation_integer_bits": 8, "quantization.rounding": "deterministic",
          "quantization.weight_bits": 5}  # fmt: skip


def write_trials(path: Path, rows: list[tuple]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        writer.writerows(rows)
    return path


def test_screened_and_promoted_pairs_a_configurations_1_and_9_epoch_results(tmp_path):
    a, b, c = (json.dumps({**CONFIG, "model.width": w}) for w in (4, 5, 6))
    trials = write_trials(tmp_path / "t.csv", [
        (METHOD, 0, "success", 1.0, 0.6, a), (METHOD, 0, "success", 9.0, 0.3, a),
        (METHOD, 0, "success", 1.0, 0.7, b),  # never promoted
        (METHOD, 0, "success", 1.0, 0.5, c), (METHOD, 0, "crashed", 9.0, 1.0, c),
        (METHOD, 1, "success", 1.0, 0.8, b), (METHOD, 1, "success", 9.0, 0.2, b),
        ("random", 0, "success", 9.0, 0.1, c), ("random", 0, "success", 1.0, 0.4, c),
    ])  # fmt: skip
    pairs = screened_and_promoted(trials, METHOD)
    assert pairs == [({**CONFIG, "model.width": 4}, 0.3), ({**CONFIG, "model.width": 5}, 0.2)]


@pytest.mark.slow
@needs_fmnist
def test_screens_validate_on_the_fraction_they_are_given(tmp_path):
    rows = []
    for i, (width, lr) in enumerate(((4, 0.01), (5, 0.003), (6, 0.03), (4, 0.1), (5, 0.02))):
        config = json.dumps({**CONFIG, "model.width": width, "optimizer.lr": lr})
        rows += [(METHOD, i, "success", 1.0, 0.5, config),
                 (METHOD, i, "success", 9.0, 0.1 + 0.05 * i, config)]  # fmt: skip
    report = run(configs=3, fractions=[1.0, 0.1], trials=write_trials(tmp_path / "t.csv", rows))
    assert report["configurations"] == 3 and len(report["rows"]) == 3
    # errors in steps of 1 / the validation images: 2000 in search_bench, ~200 on a tenth
    sizes = {}
    for fraction in (1.0, 0.1):
        data = FashionMNISTDataModule(val_size=2000, fraction=0.05, val_fraction=fraction)
        data.setup("fit")
        sizes[str(fraction)] = len(data.data_val)
    assert sizes["1.0"] == 2000 and abs(sizes["0.1"] - 200) <= 5
    for row in report["rows"]:
        for fraction, images in sizes.items():
            wrong = row[fraction]["val_error"] * images
            assert wrong == pytest.approx(round(wrong), abs=1e-3)
            assert row[fraction]["energy_kwh"] > 0
    full, tenth = report["summary"]["1.0"], report["summary"]["0.1"]
    assert full["spearman_vs_full_validation"] == pytest.approx(1.0)
    assert full["energy_ratio_vs_full_validation"] == pytest.approx(1.0)
    assert 0 < tenth["energy_wh"] and 0 < full["inference_share"] < 1
