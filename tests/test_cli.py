"""dsnn/cli.py: a config or data error ends a single run with one line; a trial raises."""

from __future__ import annotations

import pytest
from hydra.errors import InstantiationException

from dsnn.cli import one_line_errors
from dsnn.config_checks import ConfigError
from dsnn.data import DatasetNotFoundError


def fail(err: Exception) -> None:
    with one_line_errors():
        raise err


@pytest.mark.parametrize(
    "err",
    [
        ConfigError("model.width=0 is out of range"),
        DatasetNotFoundError("CIFAR-10 not found: missing data/x"),
        InstantiationException("Error in call to target"),  # with a ConfigError cause, below
    ],
)
def test_single_run_prints_one_line_and_exits_1(compose_cfg, capsys, monkeypatch, err):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    compose_cfg()  # a single run's Hydra config
    if isinstance(err, InstantiationException):
        err.__cause__ = ConfigError("data.val_size=0 is out of range")
    with pytest.raises(SystemExit) as info:
        fail(err)
    assert info.value.code == 1
    expected = err.__cause__ if isinstance(err, InstantiationException) else err
    assert capsys.readouterr().err == f"error: {expected}\n"


def test_other_errors_full_error_and_multirun_raise(compose_cfg, capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    compose_cfg()
    with pytest.raises(RuntimeError, match="a bug"):  # not a user error: Hydra reports it
        fail(RuntimeError("a bug"))
    with pytest.raises(InstantiationException):  # wrapping something else
        fail(InstantiationException("Error in call to target"))
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConfigError):
        fail(ConfigError("model.width=0"))
    monkeypatch.delenv("HYDRA_FULL_ERROR")
    compose_cfg("hydra.mode=MULTIRUN")  # a trial: the sweeper records the crash and goes on
    with pytest.raises(ConfigError):
        fail(ConfigError("model.width=0"))
    compose_cfg()  # leave a single run's Hydra config behind
    assert capsys.readouterr().err == ""
