import datetime as dt
import shutil

import dagster as dg
import pytest

from etl_assets.definitions import defs
from etl_assets.runner import run_job


class Deployment:
    """A warehouse, landing zone and Dagster instance of its own, with the project's definitions."""

    def __init__(self, root, landing_source, monkeypatch):
        self.landing = root / "landing"
        shutil.copytree(landing_source, self.landing)
        self.warehouse = str(root / "warehouse.duckdb")
        monkeypatch.setenv("ETL_WAREHOUSE_PATH", self.warehouse)
        monkeypatch.setenv("ETL_LANDING_DIR", str(self.landing))
        self.definitions = defs()
        self.instance = dg.DagsterInstance.ephemeral()

    def run(self, start: dt.date, end: dt.date):
        return run_job(self.definitions, start, end, warehouse_path=self.warehouse,
                       instance=self.instance, echo=lambda _line: None)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, landed_days):
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield Deployment(tmp_path_factory.mktemp("deployment"), landed_days, monkeypatch)
