"""A deployment of the project for a test: its own warehouse, landing zone and Dagster instance,
with the definitions built from the settings that point at them."""

import datetime as dt
import shutil

import dagster as dg

from etl_assets.definitions import build_definitions
from etl_assets.operations.report import RunSummary
from etl_assets.operations.runner import run_job
from etl_assets.pipeline import backends
from etl_assets.runtime.settings import Settings


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

    def run(self, start: dt.date, end: dt.date) -> RunSummary:
        return run_job(
            self.definitions,
            self.settings,
            start,
            end,
            instance=self.instance,
            echo=lambda _line: None,
        )
