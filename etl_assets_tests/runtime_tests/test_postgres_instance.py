"""The production instance (deploy/postgres/dagster.yaml) against a real PostgreSQL server."""

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import pytest

from etl_assets.operations.report import latest_check_outcomes
from etl_assets.operations.runner import run_job
from etl_assets.runtime import dagster_adapter
from etl_assets_tests.support.deployment import Deployment
from etl_assets_tests.support.servers import postgres_bin, postgres_server

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "dagster.yaml"
START, END = dt.date(2013, 1, 1), dt.date(2013, 1, 3)
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        postgres_bin() is None,
        reason="needs Debian's postgresql package "
        "(apt-get install -y postgresql); .ci/run installs it",
    ),
]


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


def test_a_run_on_the_postgres_instance_keeps_every_partition_and_check(
    postgres, tmp_path, landed_days, monkeypatch
):
    for name, value in postgres.env.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(CONFIG, home / "dagster.yaml")
    deployment = Deployment(tmp_path, landed_days, monkeypatch)
    instance = dg.DagsterInstance.from_config(str(home))
    assert type(instance.event_log_storage).__module__.startswith("dagster_postgres")

    summary = run_job(
        deployment.definitions,
        deployment.settings,
        START,
        END,
        instance=instance,
        echo=lambda _line: None,
    )

    assert summary.success, summary.render()
    rows = {}
    for day in ("2013-01-01", "2013-01-02", "2013-01-03"):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(["marts", "fct_flights"]), asset_partitions=[day]
            ),
            limit=5,
        ).records
        assert len(records) == 1  # one materialization per day, none lost in the batches
        rows[day] = records[0].asset_materialization.metadata["flights"].value
    assert len(set(rows.values())) == 3 and sum(rows.values()) == 842 + 943 + 914
    # A second instance on the same database (a restarted daemon or webserver) sees it all.
    again = dg.DagsterInstance.from_config(str(home))
    outcomes = latest_check_outcomes(deployment.definitions, again)
    assert len(outcomes) == 90
    assert {o.outcome for o in outcomes} == {"passed", "WARN"}
    assert again.get_run_record_by_id(summary.run_id).dagster_run.is_success


def test_reuse_connections_keeps_the_event_logs_connections_open(postgres, tmp_path, monkeypatch):
    """Pins dagster_adapter.reuse_connections: without it, every event write connects anew."""
    for name, value in postgres.env.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(CONFIG, home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    pool = lambda: type(instance.event_log_storage._engine.pool).__name__  # noqa: E731
    assert pool() == "NullPool"
    dagster_adapter.reuse_connections(instance)
    assert pool() == "QueuePool"
    with instance.event_log_storage._engine.connect() as conn:  # no statement timeout is set
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
