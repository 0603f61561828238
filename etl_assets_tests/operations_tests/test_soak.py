"""The soak's accounting: it must see a lost row, a duplicate and an alert taken twice or never,
and say so (the soak itself runs with `make soak`)."""

import shutil
from pathlib import Path

import duckdb
import pytest

from etl_assets.operations.soak import Faults, Webhook, account
from etl_assets.pipeline.landing import read_source
from etl_assets.runtime.alerts import Alert, AlertSink


@pytest.fixture
def deployment(loaded):
    """The three real days, loaded (read only)."""
    return loaded[0]


def account_of(warehouse: Path, landing: Path, sink: AlertSink, taken: list[str]):
    webhook = Webhook(port=1)
    webhook.received = [(key, 200) for key in taken]
    return account(warehouse, landing, [], sink, webhook, Faults(days=3), seconds=1.0)


def alerted(tmp_path) -> AlertSink:
    sink = AlertSink(log_path=str(tmp_path / "alerts.jsonl"), webhook_url="http://127.0.0.1:1/x")
    sink.send(
        Alert(
            dedup_key="run:1",
            kind="run_failure",
            title="t",
            job="j",
            asset=None,
            partition=None,
            error="e",
            run_id=None,
        )
    )  # not taken: nothing listens
    return sink


def test_a_whole_load_counts_nothing_lost_and_nothing_duplicated(deployment, tmp_path):
    result = account_of(
        Path(deployment.warehouse),
        deployment.landing,
        AlertSink(log_path=str(tmp_path / "none.jsonl")),
        [],
    )
    assert (result.files, result.files_loaded, result.rows_lost, result.duplicates) == (9, 9, 0, 0)
    weather = read_source("weather")
    weather_rows = int(((weather.month == "1") & weather.day.isin(["1", "2", "3"])).sum())
    assert result.rows_expected == 842 + 943 + 914 + weather_rows  # the source's three days
    assert result.ok and "rows lost           0" in result.render()


def test_lost_and_duplicated_rows_and_alerts_not_taken_once_fail_the_soak(deployment, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(deployment.warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(
            "DELETE FROM raw.flights WHERE rowid IN (SELECT rowid FROM raw.flights "
            "WHERE delivery_date = DATE '2013-01-02' LIMIT 5)"
        )
        conn.execute(
            "INSERT INTO raw.weather SELECT * FROM raw.weather "
            "WHERE delivery_date = DATE '2013-01-03' LIMIT 2"
        )

    result = account_of(warehouse, deployment.landing, alerted(tmp_path), ["run:1", "run:1"])

    # 5 rows the manifest has and raw lacks; 2 rows raw has twice
    assert (result.rows_lost, result.duplicates) == (5, 2)
    assert (result.alerts, result.alerts_delivered, result.duplicate_deliveries) == (1, 0, 1)
    assert not result.ok and result.render().startswith("soak FAILED")
