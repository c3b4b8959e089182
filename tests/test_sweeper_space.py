"""Search-space YAML -> ConfigSpace, override strings, and reading trial results back."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from ConfigSpace import Configuration

from hydra_plugins.smac_sweeper._overrides import format_value
from hydra_plugins.smac_sweeper._space import SearchSpaceError, build_space
from hydra_plugins.smac_sweeper._trials import read_objectives
from tests.toy_app.harness import ROOT

TABLE1 = yaml.safe_load((ROOT / "conf/search_space/table1.yaml").read_text())


def test_table1_matches_the_paper():
    space = build_space(TABLE1)
    assert len(list(space.keys())) == 12
    default = dict(space.get_default_configuration())
    assert default == {
        "data.batch_size": 128,
        "optimizer": "sgd",
        "optimizer.lr": pytest.approx(0.1),
        "optimizer.momentum": pytest.approx(0.9),
        "optimizer.weight_decay": pytest.approx(1e-4),
        "trainer.max_epochs": 100,
        "quantization.weight_bits": 5,
        "quantization.activation_integer_bits": 16,
        "quantization.activation_fraction_bits": 16,
        "shift_depth": 20,
        "quantization.shift_type": "PS",
        "quantization.rounding": "deterministic",
    }
    assert space["optimizer.lr"].log and space["optimizer.weight_decay"].log
    assert (space["data.batch_size"].lower, space["data.batch_size"].upper) == (32, 128)
    assert set(space["optimizer"].choices) == {
        "sgd",
        "adam",
        "adagrad",
        "adadelta",
        "rmsprop",
        "radam",
        "ranger",
    }


def test_momentum_only_for_sgd_and_rmsprop():
    space = build_space(TABLE1, seed=3)
    for config in space.sample_configuration(200):
        has_momentum = "optimizer.momentum" in dict(config)
        assert has_momentum == (config["optimizer"] in ("sgd", "rmsprop"))
    adam = Configuration(space, values={**_defaults(space), "optimizer": "adam"})
    assert "optimizer.momentum" not in dict(adam)


def _defaults(space):
    values = dict(space.get_default_configuration())
    values.pop("optimizer.momentum")
    return values


def test_types_log_and_sampling_bounds():
    spec = {
        "hyperparameters": {
            "i": {"type": "int", "lower": 2, "upper": 8},
            "li": {"type": "int", "lower": 1, "upper": 1024, "log": True, "default": 32},
            "f": {"type": "float", "lower": -1.0, "upper": 1.0, "default": 0.25},
            "lf": {"type": "float", "lower": 1e-6, "upper": 1e-2, "log": True},
            "c": {"type": "categorical", "choices": ["x", "y", 3, True]},
            "o": {"type": "ordinal", "choices": [1, 2, 4], "default": 2},
            "k": {"type": "constant", "value": "fixed"},
        }
    }
    space = build_space(spec, seed=1)
    default = space.get_default_configuration()
    assert default["li"] == 32 and default["f"] == 0.25 and default["o"] == 2
    assert default["lf"] == pytest.approx(1e-4)  # geometric middle of a log range
    for config in space.sample_configuration(100):
        assert 2 <= config["i"] <= 8 and isinstance(config["i"], int)
        assert 1e-6 <= config["lf"] <= 1e-2
        assert config["k"] == "fixed"


def test_removed_budget_and_fixed_parents():
    space = build_space(TABLE1, remove={"shift_depth": None})
    assert "shift_depth" not in list(space.keys())
    # optimizer fixed on the command line: momentum kept (unconditionally) for rmsprop ...
    space = build_space(TABLE1, remove={"optimizer": "rmsprop"})
    assert "optimizer" not in list(space.keys()) and not space.conditions
    assert "optimizer.momentum" in list(space.keys())
    # ... and dropped for adam
    space = build_space(TABLE1, remove={"optimizer": "adam"})
    assert "optimizer.momentum" not in list(space.keys())


def test_several_conditions_on_one_child_must_all_hold():
    spec = {
        "hyperparameters": {
            "a": {"type": "categorical", "choices": ["p", "q"]},
            "b": {"type": "categorical", "choices": ["r", "s"]},
            "c": {"type": "float", "lower": 0, "upper": 1},
        },
        "conditions": [
            {"child": "c", "parent": "a", "value": "p"},
            {"child": "c", "parent": "b", "values": ["s"]},
        ],
    }
    space = build_space(spec, seed=0)
    for config in space.sample_configuration(100):
        assert ("c" in dict(config)) == (config["a"] == "p" and config["b"] == "s")


def _one(hp):
    return {"hyperparameters": {"h": hp}}


BAD = [
    ("not a mapping", [], "must be a mapping"),
    ("unknown top key", {"hyperparameters": {"h": {"type": "int"}}, "forbidden": []}, "unknown"),
    ("empty", {"hyperparameters": {}}, "non-empty"),
    ("unknown type", _one({"type": "normal", "lower": 0, "upper": 1}), "type must be one of"),
    ("missing bounds", _one({"type": "float", "lower": 0}), "missing ['upper']"),
    ("lower >= upper", _one({"type": "int", "lower": 5, "upper": 5}), "must be < upper"),
    ("log needs > 0", _one({"type": "float", "lower": 0, "upper": 1, "log": True}), "lower > 0"),
    ("default outside", _one({"type": "int", "lower": 0, "upper": 3, "default": 9}), "outside"),
    ("int not integral", _one({"type": "int", "lower": 0.5, "upper": 3}), "must be an integer"),
    ("string bound", _one({"type": "float", "lower": "a", "upper": 1}), "must be a number"),
    ("unknown field", _one({"type": "int", "lower": 0, "upper": 3, "step": 1}), "unknown fields"),
    ("no choices", _one({"type": "categorical", "choices": []}), "non-empty list"),
    ("bad default", _one({"type": "categorical", "choices": ["a"], "default": "b"}), "not one of"),
    ("duplicate", _one({"type": "categorical", "choices": ["a", "a"]}), "duplicate"),
    ("constant", _one({"type": "constant"}), "scalar 'value'"),
    ("spec not a map", _one(3), "expected a mapping"),
]


@pytest.mark.parametrize("spec, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_hyperparameters(spec, message):
    with pytest.raises(SearchSpaceError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_space(spec)


@pytest.mark.parametrize(
    "condition, message",
    [
        ({"child": "nope", "parent": "optimizer", "values": ["sgd"]}, "child 'nope'"),
        ({"child": "optimizer.lr", "parent": "x", "values": ["sgd"]}, "parent 'x'"),
        ({"child": "optimizer", "parent": "optimizer", "value": "sgd"}, "both"),
        ({"child": "optimizer.lr", "parent": "optimizer"}, "exactly one"),
        ({"child": "optimizer.lr", "parent": "optimizer", "values": ["sgdd"]}, "not choices"),
        ({"child": "optimizer.lr", "parent": "optimizer", "value": 1, "if": 2}, "unknown"),
    ],
)
def test_bad_conditions(condition, message):
    with pytest.raises(SearchSpaceError, match=message):
        build_space({**TABLE1, "conditions": [condition]})


def test_budget_cannot_be_a_parent():
    with pytest.raises(SearchSpaceError, match="budget"):
        build_space(TABLE1, remove={"optimizer": None})


def test_every_search_space_file_parses():
    for path in sorted(Path(ROOT / "conf/search_space").glob("*.yaml")):
        build_space(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize(
    "value, text",
    [
        (3, "3"),
        (0.001, "0.001"),
        (1e-05, "1e-05"),
        (True, "true"),
        ("sgd", "sgd"),
        ("PS", "PS"),
        ("t3-b10", "t3-b10"),
        ("true", "'true'"),
        ("a b", "'a b'"),
        ("2024-01-01_12:00", "'2024-01-01_12:00'"),
        ("it's", "'it\\'s'"),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_format_value_round_trips_through_hydra():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for value in (3, 0.1, 1e-6, "sgd", "a b", "it's", "true", "12:00", "deterministic"):
        parsed = parser.parse_override(f"k={format_value(value)}").value()
        assert parsed == value and type(parsed) is type(value)


def test_read_objectives():
    objectives = ["val/error", "emissions/total_g"]
    ret = {"val/error": 0.2, "emissions/total_g": 0.01, "val/acc": 0.8, "note": "x"}
    found, metrics = read_objectives(ret, objectives)
    assert found == {"val/error": 0.2, "emissions/total_g": 0.01}
    assert metrics == {"val/error": 0.2, "emissions/total_g": 0.01, "val/acc": 0.8}
    assert read_objectives(0.3, ["val/error"])[0] == {"val/error": 0.3}
    assert read_objectives([0.3, 2], objectives)[0] == {"val/error": 0.3, "emissions/total_g": 2.0}
    for bad, message in [
        ({"val/error": 0.2}, "lacks objective"),
        ({"val/error": math.nan, "emissions/total_g": 1}, "not a finite"),
        ({"val/error": math.inf, "emissions/total_g": 1}, "not a finite"),
        ({"val/error": "0.2", "emissions/total_g": 1}, "not a finite"),
        (0.3, "one number"),
        ([0.1], "1 values"),
        (None, "NoneType"),
        ("0.5", "str"),
    ]:
        with pytest.raises(ValueError, match=message):
            read_objectives(bad, objectives)
