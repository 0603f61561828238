"""A bad file holds back only its own day: the other days of the range load, build and check."""

import datetime as dt
import json

import dagster as dg
import duckdb
import pytest

from etl_assets.assets.keys import table_key
from etl_assets.assets.partitions import daily_partitions
from etl_assets.automation.alert_sensors import build_alert_sensors
from etl_assets.operations.runner import run_job
from etl_assets.pipeline.landing import daily_file, land
from etl_assets.runtime.alerts import AlertSink
from etl_assets_tests.support.deployment import Deployment

JAN1, JAN2, JAN3 = dt.date(2013, 1, 1), dt.date(2013, 1, 2), dt.date(2013, 1, 3)


@pytest.fixture
def deployment(tmp_path, landed_days, monkeypatch):
    return Deployment(tmp_path, landed_days, monkeypatch)


def per_day(deployment, table, column) -> dict[dt.date, int]:
    with duckdb.connect(deployment.warehouse, read_only=True) as conn:
        return dict(conn.execute(f"SELECT {column}, count(*) FROM {table} GROUP BY 1").fetchall())


def test_a_truncated_file_holds_back_its_day_only_and_loads_once_fixed(deployment, tmp_path):
    path = daily_file(deployment.landing, "flights", JAN2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # cut in the middle of a line

    summary = deployment.run(JAN1, JAN3)

    assert not summary.success
    assert [(str(p.block), p.block.held, p.success) for p in summary.runs] == [
        ("2013-01-01", False, True),
        ("2013-01-02", True, False),
        ("2013-01-03", False, True),
    ]
    assert summary.failures == [
        f"raw__flights: {path}: 476 rows, but its manifest says 943: "
        "the file is incomplete or not the one the manifest describes"
    ]
    # the other days are loaded through the marts and checked; nothing of the held day is
    assert per_day(deployment, "raw.flights", "delivery_date") == {JAN1: 842, JAN3: 914}
    assert set(per_day(deployment, "raw.weather", "delivery_date")) == {JAN1, JAN3}
    assert set(per_day(deployment, "marts.fct_flights", "flight_date")) == {JAN1, JAN3}
    outcomes = {(c.table, c.check): c.outcome for c in summary.checks}
    assert outcomes[("marts.fct_flights", "key_is_unique")] == "passed"
    assert "not loaded: 2013-01-02" in summary.render()
    assert "etl-assets run --start 2013-01-02 --end 2013-01-02" in summary.render()

    # in the instance the held day's raw partition is failed, the others materialized
    status = deployment.instance.get_status_by_partition(
        table_key("raw", "flights"), ["2013-01-01", "2013-01-02", "2013-01-03"], daily_partitions
    )
    assert status == {
        "2013-01-01": dg.AssetPartitionStatus.MATERIALIZED,
        "2013-01-02": dg.AssetPartitionStatus.FAILED,
        "2013-01-03": dg.AssetPartitionStatus.MATERIALIZED,
    }

    # the failed run alerts once, naming the day and the file
    sink = AlertSink(log_path=str(tmp_path / "alerts.jsonl"))
    held = deployment.instance.get_run_by_id(summary.runs[1].run_id)
    failure = [
        r.event_log_entry.dagster_event
        for r in deployment.instance.fetch_run_status_changes(
            dg.DagsterEventType.RUN_FAILURE, limit=10
        ).records
        if r.event_log_entry.run_id == held.run_id
    ]
    for _ in range(2):
        build_alert_sensors()[0](
            dg.build_run_status_sensor_context(
                sensor_name="run_failure_alert_sensor",
                dagster_event=failure[0],
                dagster_instance=deployment.instance,
                dagster_run=held,
                resources={"alerts": sink},
            )
        )
    [alert] = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert alert["partition"] == "2013-01-02" and "476 rows" in alert["error"]

    land(deployment.landing, JAN2, JAN2, force=True)  # the upstream delivers the day again
    fixed = deployment.run(JAN2, JAN2)
    assert fixed.success, fixed.render()
    assert per_day(deployment, "raw.flights", "delivery_date") == {JAN1: 842, JAN2: 943, JAN3: 914}
    assert set(per_day(deployment, "marts.fct_flights", "flight_date")) == {JAN1, JAN2, JAN3}


def test_a_held_day_whose_file_is_fixed_before_its_turn_runs_whole(deployment):
    path = daily_file(deployment.landing, "flights", JAN2)
    path.write_bytes(path.read_bytes()[:1000])

    def echo(line):  # the upstream delivers the day again while the first day runs
        if line.startswith("holding back 2013-01-02"):
            land(deployment.landing, JAN2, JAN2, force=True)

    summary = run_job(
        deployment.definitions,
        deployment.settings,
        JAN1,
        JAN2,
        instance=deployment.instance,
        echo=echo,
    )

    assert summary.success, summary.render()
    assert [(str(p.block), p.block.held) for p in summary.runs] == [
        ("2013-01-01", False),
        ("2013-01-02", False),
    ]
    assert per_day(deployment, "marts.fct_flights", "flight_date") == {JAN1: 842, JAN2: 943}
