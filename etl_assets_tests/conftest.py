import datetime as dt
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from etl_assets.definitions import build_definitions
from etl_assets.operations.report import RunSummary
from etl_assets.operations.runner import run_job
from etl_assets.pipeline import backends, quality
from etl_assets.pipeline.contract import ALL_FEEDS
from etl_assets.pipeline.landing import land
from etl_assets.pipeline.marts import MARTS
from etl_assets.runtime.settings import Settings
from etl_assets_tests.alerting import sink_for, webhook_server

FIRST_DAYS = (dt.date(2013, 1, 1), dt.date(2013, 1, 3))  # three real days of the bundled feed

# Every table of the warehouse, and the columns that say where and when a file was loaded (a file
# delivered again, in the same or another form, differs there only).
TABLES = [f"{layer}.{c.name}" for layer in ("raw", "clean", "quarantine") for c in ALL_FEEDS]
TABLES += [f"marts.{name}" for name in MARTS] + ["raw.delivered_files"]
LOAD_COLUMNS = ("_loaded_at", "loaded_at", "_source_identity", "identity")


def checksums(
    warehouse: str | backends.Lake, exclude: tuple[str, ...] = (), digits: int | None = 6
) -> dict[str, tuple[int, str]]:
    """Each table's rows and content digest, without the columns in `exclude`, doubles rounded
    to `digits` places (None: at full precision)."""
    with backends.connect(warehouse, read_only=True) as conn:
        return {t: quality.table_checksum(conn, t, exclude, digits) for t in TABLES}


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


class Deployment:
    """A warehouse, landing zone and Dagster instance of its own, with the project's definitions."""

    def __init__(self, root, landing_source, monkeypatch):
        self.landing = root / "landing"
        shutil.copytree(landing_source, self.landing)
        self.warehouse = str(root / "warehouse.duckdb")
        self.environment = {
            "ETL_WAREHOUSE_PATH": self.warehouse,
            "ETL_LANDING_DIR": str(self.landing),
        }
        self.use(monkeypatch)
        self.settings = Settings.from_env()
        self.definitions = build_definitions(self.settings)
        self.instance = dg.DagsterInstance.ephemeral()

    def use(self, monkeypatch) -> None:
        """Point the settings at this deployment (its definitions read them when they run)."""
        for name, value in self.environment.items():
            monkeypatch.setenv(name, value)

    @property
    def location(self) -> str | backends.Lake:
        """Where the tables are: the DuckDB file, or a DuckLake the environment names."""
        return self.settings.warehouse

    def run(self, start: dt.date, end: dt.date):
        return run_job(
            self.definitions,
            self.settings,
            start,
            end,
            instance=self.instance,
            echo=lambda _line: None,
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, landed_days):
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield Deployment(tmp_path_factory.mktemp("deployment"), landed_days, monkeypatch)


@pytest.fixture(scope="session")
def loaded(tmp_path_factory, landed_days) -> tuple[Deployment, RunSummary]:
    """The three days loaded by one real run, once a session, with the run's summary: to read.
    A test that writes starts from `loaded_copy`."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        deployment = Deployment(tmp_path_factory.mktemp("loaded"), landed_days, monkeypatch)
        summary = deployment.run(*FIRST_DAYS)
    assert summary.success, summary.render()
    return deployment, summary


@pytest.fixture
def loaded_copy(tmp_path, landed_days, loaded, monkeypatch) -> Deployment:
    """A deployment of its own whose warehouse starts as a copy of `loaded`'s (a new instance)."""
    deployment = Deployment(tmp_path, landed_days, monkeypatch)
    shutil.copy(loaded[0].warehouse, deployment.warehouse)
    return deployment


@pytest.fixture
def webhook():
    """A Slack-like webhook on loopback that records every POST (etl_assets_tests/alerting.py)."""
    with webhook_server() as hook:
        yield hook


@pytest.fixture
def sink(tmp_path, webhook):
    """An alert sink logging under tmp_path and posting to `webhook`."""
    return sink_for(tmp_path, webhook)
