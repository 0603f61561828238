"""The landing-zone sensor over a temporary landing directory, tick by tick."""

import datetime as dt
import json
import os
import time

import dagster as dg
import pytest

from etl_assets.alerts import AlertSink
from etl_assets.jobs import daily_ingest_job, reference_job
from etl_assets.resources import LandingZone
from etl_assets.sensors import MAX_FILES_PER_TICK, build_landing_zone_sensor

sensor = build_landing_zone_sensor(daily_ingest_job, reference_job, "2013-12-31")
_clock = [1_700_000_000]


def deliver(landing, path, rows=1, at: float | None = None):
    """Write a file with a modification time later than any before it (or at the given time)."""
    file = landing / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("a,b\n" + "1,2\n" * rows)
    _clock[0] += 1
    seconds = _clock[0] if at is None else at
    os.utime(file, ns=(int(seconds * 10**9), int(seconds * 10**9)))


@pytest.fixture
def landing(tmp_path):
    return tmp_path / "landing"


@pytest.fixture
def alert_log(tmp_path):
    return tmp_path / "alerts.jsonl"


def tick(landing, alert_log, cursor=None, evaluate=sensor, instance=None) -> dg.SensorResult:
    with dg.build_sensor_context(cursor=cursor, instance=instance or dg.DagsterInstance.ephemeral(),
                                 resources={
            "landing": LandingZone(path=str(landing)),
            "alerts": AlertSink(log_path=str(alert_log))}) as context:
        return evaluate(context)


def test_a_new_day_requests_exactly_that_partition_once(landing, alert_log):
    deliver(landing, "flights/2013-01-05.csv")
    deliver(landing, "weather/2013-01-05.csv")
    first = tick(landing, alert_log)
    [request] = first.run_requests
    assert (request.job_name, request.partition_key) == ("daily_ingest_job", "2013-01-05")
    assert "flights/2013-01-05.csv" in request.run_key and "weather/" in request.run_key

    assert tick(landing, alert_log, first.cursor).run_requests == []  # same files: nothing


def test_a_changed_file_requests_its_day_again_with_a_new_run_key(landing, alert_log):
    deliver(landing, "flights/2013-01-05.csv")
    first = tick(landing, alert_log)
    deliver(landing, "flights/2013-01-05.csv", rows=3)
    [again] = tick(landing, alert_log, first.cursor).run_requests
    assert again.partition_key == "2013-01-05"
    assert again.run_key != first.run_requests[0].run_key


def test_a_thousand_files_are_worked_through_a_bounded_number_per_tick(landing, alert_log):
    days = [str(dt.date(2013, 1, 1) + dt.timedelta(days=i)) for i in range(500)]
    open_range = build_landing_zone_sensor(daily_ingest_job, reference_job, "open")
    for day in days:
        deliver(landing, f"flights/{day}.csv")
        deliver(landing, f"weather/{day}.csv")
    requested, cursor, ticks = [], None, 0
    while True:
        result = tick(landing, alert_log, cursor, evaluate=open_range)
        ticks += 1
        if not result.run_requests:
            break
        assert len(result.run_requests) <= MAX_FILES_PER_TICK
        requested += [r.partition_key for r in result.run_requests]
        cursor = result.cursor
    assert ticks == 1000 // MAX_FILES_PER_TICK + 1
    assert sorted(set(requested)) == sorted(days)
    # A day's two files may fall in two ticks (then that day runs twice, never zero times).
    assert len(requested) <= len(days) + ticks


def test_a_file_that_maps_to_no_partition_alerts_once_and_the_sensor_goes_on(landing, alert_log):
    deliver(landing, "flights/2013-13-45.csv")
    deliver(landing, "flights/2013-01-07.csv")
    first = tick(landing, alert_log)
    assert [r.partition_key for r in first.run_requests] == ["2013-01-07"]
    [alert] = [json.loads(line) for line in alert_log.read_text().splitlines()]
    assert alert["kind"] == "bad_delivery" and "flights/2013-13-45.csv" in alert["error"]
    assert "is not a date" in alert["error"]

    tick(landing, alert_log, first.cursor)
    assert len(alert_log.read_text().splitlines()) == 1


def test_partial_files_are_ignored_until_renamed(landing, alert_log):
    deliver(landing, "flights/.2013-01-08.csv.abc123.tmp")
    first = tick(landing, alert_log)
    assert first.run_requests == []
    os.rename(landing / "flights/.2013-01-08.csv.abc123.tmp", landing / "flights/2013-01-08.csv")
    [request] = tick(landing, alert_log, first.cursor).run_requests
    assert request.partition_key == "2013-01-08"


def test_a_changed_reference_file_refreshes_the_reference_tables(landing, alert_log):
    deliver(landing, "reference/planes.csv")
    deliver(landing, "reference/airlines.csv")
    [request] = tick(landing, alert_log).run_requests
    assert request.job_name == "reference_job" and request.partition_key is None
    assert "reference/planes.csv" in request.run_key


def test_files_already_loaded_after_they_were_written_are_not_run_again(landing, alert_log):
    deliver(landing, "flights/2013-01-09.csv")
    deliver(landing, "weather/2013-01-09.csv")
    deliver(landing, "reference/planes.csv")
    instance = dg.DagsterInstance.ephemeral()
    for key, partition in ((["raw", "flights"], "2013-01-09"), (["raw", "weather"], "2013-01-09"),
                           (["raw", "planes"], None)):  # as `etl-assets run` would have
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))

    first = tick(landing, alert_log, instance=instance)  # a new cursor: everything looks new
    assert first.run_requests == []

    deliver(landing, "weather/2013-01-09.csv", rows=2, at=time.time() + 5)  # after that load
    [again] = tick(landing, alert_log, first.cursor, instance=instance).run_requests
    assert again.partition_key == "2013-01-09"
