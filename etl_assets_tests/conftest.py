import datetime as dt
import os
from pathlib import Path

import pytest

from etl_assets.pipeline.landing import land

FIRST_DAYS = (dt.date(2013, 1, 1), dt.date(2013, 1, 3))  # three real days of the bundled feed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ETL_FAIL_ON_SKIP (set by .ci/run) a skipped test counts as failed."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("ETL_FAIL_ON_SKIP") and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped, but ETL_FAIL_ON_SKIP is set: {report.longrepr}"


@pytest.fixture(scope="session")
def landed_days(tmp_path_factory) -> Path:
    """A landing zone holding the bundled feed's first three days (read-only for tests)."""
    landing = tmp_path_factory.mktemp("landing")
    land(landing, *FIRST_DAYS)
    return landing
