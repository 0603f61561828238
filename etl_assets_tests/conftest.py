"""Fixtures every test folder shares. This module imports no Dagster, so the pure pipeline tests
(`make test-unit`) never load it: the fixtures that need a deployment import it when used."""

import os
import shutil
from pathlib import Path

import pytest

from etl_assets.pipeline.landing import land
from etl_assets_tests.support.warehouse import FIRST_DAYS


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


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, landed_days):
    """A deployment of the project (support/deployment.py), shared by a module's tests."""
    from etl_assets_tests.support.deployment import Deployment

    with pytest.MonkeyPatch.context() as monkeypatch:
        yield Deployment(tmp_path_factory.mktemp("deployment"), landed_days, monkeypatch)


@pytest.fixture(scope="session")
def loaded(tmp_path_factory, landed_days):
    """The three days loaded by one real run, once a session, with the run's summary: to read.
    A test that writes starts from `loaded_copy`."""
    from etl_assets_tests.support.deployment import Deployment

    with pytest.MonkeyPatch.context() as monkeypatch:
        deployment = Deployment(tmp_path_factory.mktemp("loaded"), landed_days, monkeypatch)
        summary = deployment.run(*FIRST_DAYS)
    assert summary.success, summary.render()
    return deployment, summary


@pytest.fixture
def loaded_copy(tmp_path, landed_days, loaded, monkeypatch):
    """A deployment of its own whose warehouse starts as a copy of `loaded`'s (a new instance)."""
    from etl_assets_tests.support.deployment import Deployment

    deployment = Deployment(tmp_path, landed_days, monkeypatch)
    shutil.copy(loaded[0].warehouse, deployment.warehouse)
    return deployment


@pytest.fixture
def webhook():
    """A Slack-like webhook on loopback that records every POST (support/alerting.py)."""
    from etl_assets_tests.support.alerting import webhook_server

    with webhook_server() as hook:
        yield hook


@pytest.fixture
def sink(tmp_path, webhook):
    """An alert sink logging under tmp_path and posting to `webhook`."""
    from etl_assets_tests.support.alerting import sink_for

    return sink_for(tmp_path, webhook)
