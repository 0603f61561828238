"""The test suite's warning filters hide only the notices the project accepts: a Dagster
deprecation, or any other beta notice, shows in the test output."""

from pathlib import Path

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[1]

EMITS = """
import warnings
import dagster as dg

def test_accepted_notice():
    warnings.warn("Parameter `backfill_policy` of function `asset` is currently in beta, and "
                  "may have breaking changes", dg.BetaWarning)

def test_other_beta_notice():
    warnings.warn("Parameter `pool` of function `asset` is currently in beta", dg.BetaWarning)

def test_deprecation():
    warnings.warn("Function `JobDefinition.run_request_for_partition` is deprecated",
                  DeprecationWarning)
"""


def test_only_the_accepted_notice_is_filtered(pytester):
    pytester.makefile(".toml", pyproject=(REPO / "pyproject.toml").read_text())
    pytester.makepyfile(test_emits=EMITS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "test_emits.py")
    result.assert_outcomes(passed=3, warnings=2)
    output = result.stdout.str()
    assert "run_request_for_partition` is deprecated" in output
    assert "`pool` of function `asset`" in output
    assert "backfill_policy" not in output
