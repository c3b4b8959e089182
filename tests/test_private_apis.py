"""Canaries: the private APIs of pinned libraries that the sweeper relies on still behave as
it assumes. A failure names the library, its pinned and installed versions, and the API:
check the plugin's use of it before moving the pin (requirements.txt)."""

from __future__ import annotations

import itertools
import re
from importlib.metadata import version

import pytest

from hydra_plugins.smac_sweeper._budget import hyperband_stages
from hydra_plugins.smac_sweeper.config import BudgetConf
from tests.toy_app.harness import ROOT


def pinned(package: str) -> str:
    text = (ROOT / "requirements.txt").read_text()
    match = re.search(rf"^{re.escape(package)}==(\S+)", text, flags=re.MULTILINE | re.I)
    assert match, f"{package} is not pinned with == in requirements.txt"
    return match.group(1)


def changed(package: str, api: str, used_by: str, err: BaseException) -> str:
    return (
        f"PRIVATE API CHANGED: {api} of {package} (pinned {package}=={pinned(package)}, "
        f"installed {version(package)}), used by {used_by}: {type(err).__name__}: {err}"
    )


def test_hydra_job_return_keeps_a_failed_jobs_exception_in__return_value():
    """_trials.read_outcome reads a failed job's exception from JobReturn._return_value
    (the public return_value re-raises it)."""
    from hydra.core.utils import JobReturn, JobStatus

    error = RuntimeError("boom")
    try:
        ret = JobReturn(overrides=["x=1"], status=JobStatus.FAILED)
        ret.return_value = error
        assert ret._return_value is error
        with pytest.raises(RuntimeError, match="boom"):
            ret.return_value  # noqa: B018
        done = JobReturn(status=JobStatus.COMPLETED, _return_value=3)
        assert done.return_value == 3
    except (AssertionError, AttributeError, TypeError, pytest.fail.Exception) as err:
        pytest.fail(changed("hydra-core", "JobReturn._return_value", "_trials.read_outcome", err))


@pytest.mark.parametrize("eta", [2, 3, 4])
def test_smac_successive_halving_computes_the_sweepers_stages(eta):
    """_budget.hyperband_stages repeats SuccessiveHalving's arithmetic (the budgets SMAC
    hands out); the sweeper takes the front at the top stage and announces the stages."""
    from smac.intensifier import SuccessiveHalving

    for low, high in itertools.product([0.0125, 0.25, 1, 3, 5, 10], [0.05, 1, 9, 20, 27, 100]):
        if not low < high:
            continue
        try:
            s_max = SuccessiveHalving._get_max_iterations(eta, float(high), float(low))
            stages, _ = SuccessiveHalving._compute_configs_and_budgets_for_stages(
                eta, float(high), s_max
            )
            budget = BudgetConf(variable="x", min=low, max=high, eta=eta)
            assert [float(b) for b in stages] == hyperband_stages(budget), (low, high)
        except (AssertionError, AttributeError, TypeError, ValueError) as err:
            pytest.fail(
                changed(
                    "smac",
                    "SuccessiveHalving._get_max_iterations / "
                    "_compute_configs_and_budgets_for_stages",
                    "_budget.hyperband_stages (which mirrors them)",
                    err,
                )
            )
