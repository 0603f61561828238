"""The landing-zone sensor over a temporary landing zone, tick by tick."""

import datetime as dt
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from etl_assets.assets.clean import build_clean_assets
from etl_assets.assets.partitions import build_daily_partitions
from etl_assets.assets.raw import build_raw_assets
from etl_assets.automation.jobs import daily_ingest_job, feed_assets, reference_job
from etl_assets.automation.sensors import build_landing_zone_sensor
from etl_assets.pipeline import deliveries, extract
from etl_assets.pipeline.contract import ALL_FEEDS
from etl_assets.pipeline.landing import land
from etl_assets.runtime import dagster_adapter
from etl_assets.runtime.alerts import AlertSink
from etl_assets.runtime.resources import LandingZone, WarehouseResource, build_resources
from etl_assets.runtime.settings import Settings

landing_zone_sensor = build_landing_zone_sensor()

_clock = [1_700_000_000]
FEEDS = {c.name: c for c in ALL_FEEDS}


def deliver(landing, path, rows=1):
    """Write a file with a modified time later than any before it (its run key changes)."""
    file = landing / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("a,b\n" + "1,2\n" * rows)
    _clock[0] += 1
    os.utime(file, ns=(_clock[0] * 10**9, _clock[0] * 10**9))
    return file


def definitions(last_day: str) -> dg.Definitions:
    """The ingest assets and jobs with partitions up to last_day, as definitions.py builds them."""
    partitions = build_daily_partitions(last_day)
    return dg.Definitions(
        assets=[*build_raw_assets(partitions), *build_clean_assets(partitions)],
        jobs=[daily_ingest_job, reference_job],
        sensors=[landing_zone_sensor],
        resources=build_resources(Settings.from_env()),
    )


def tick(landing, cursor=None, defs=None, instance=None):
    """One evaluation on a fresh instance, as a new or throwaway one would run it."""
    with dg.build_sensor_context(
        cursor=cursor,
        definitions=defs,
        instance=instance or dg.DagsterInstance.ephemeral(),
        resources={
            "landing": LandingZone(path=str(landing)),
            "alerts": AlertSink(log_path=str(landing.parent / "alerts.jsonl")),
            "warehouse": WarehouseResource(database=str(warehouse_of(landing))),
        },
    ) as context:
        return landing_zone_sensor(context)


def warehouse_of(landing) -> Path:
    return landing.parent / "warehouse.duckdb"


def load_into_warehouse(landing, days, feeds=("flights", "weather")):
    """Load real files into raw, as any earlier run (of any instance) would have."""
    conn = duckdb.connect(str(warehouse_of(landing)))
    for feed in feeds:
        contract = FEEDS[feed]
        files = extract.daily_deliveries(landing, contract, days)
        extract.load_raw(
            conn,
            contract,
            files,
            dt.datetime.now(dt.timezone.utc),
            days[0],
            days[-1] + dt.timedelta(days=1),
        )
    conn.close()


@pytest.fixture(autouse=True)
def no_settling(monkeypatch):
    monkeypatch.setattr(deliveries, "SETTLE_NS", 0)


@pytest.fixture
def landing(tmp_path):
    return tmp_path / "landing"


def test_a_new_day_file_requests_that_partition_once(landing):
    deliver(landing, "flights/2013-01-05.csv")
    first = tick(landing)
    [request] = first.run_requests
    assert (request.job_name, request.partition_key) == ("daily_ingest_job", "2013-01-05")
    assert request.asset_selection == feed_assets(["flights"])  # weather may not be there yet
    assert request.run_key.startswith("flights/2013-01-05.csv:8:")

    again = tick(landing, first.cursor)
    assert again.run_requests == [] and again.cursor == first.cursor


def test_both_files_of_a_day_in_one_tick_make_one_run(landing):
    deliver(landing, "weather/2013-01-05.csv")
    deliver(landing, "flights/2013-01-05.csv")
    [request] = tick(landing).run_requests
    assert request.partition_key == "2013-01-05"
    assert set(request.asset_selection) == set(feed_assets(["flights", "weather"]))
    assert (
        "flights/2013-01-05.csv:" in request.run_key
        and "weather/2013-01-05.csv:" in request.run_key
    )


def test_a_rewritten_file_requests_its_day_again_with_a_new_run_key(landing):
    deliver(landing, "flights/2013-01-05.csv")
    first = tick(landing)
    deliver(landing, "flights/2013-01-05.csv", rows=3)
    [again] = tick(landing, first.cursor).run_requests
    assert again.partition_key == "2013-01-05"
    assert again.run_key != first.run_requests[0].run_key


def test_a_thousand_files_are_worked_through_oldest_first_a_bounded_number_per_tick(
    landing, monkeypatch
):
    monkeypatch.setattr(deliveries, "MAX_FILES_PER_TICK", 100)  # ten looks, not one
    days = [dt.date(2013, 1, 1) + dt.timedelta(days=i) for i in range(1000)]
    files = {str(day): deliver(landing, f"flights/{day}.csv") for day in days}
    order = {key: (f.stat().st_ctime_ns, str(f)) for key, f in files.items()}
    defs = definitions("2015-12-31")  # the configured partitions, not the bundled 2013
    ticks, cursor = [], None
    while (result := tick(landing, cursor, defs)).run_requests:
        assert len(result.run_requests) <= deliveries.MAX_FILES_PER_TICK
        ticks.append([r.partition_key for r in result.run_requests])
        cursor = result.cursor
    requested = [key for keys in ticks for key in keys]
    assert sorted(requested) == sorted(files)  # every partition, exactly once
    assert len(ticks) == 1000 // deliveries.MAX_FILES_PER_TICK
    assert all(
        max(order[k] for k in earlier) < min(order[k] for k in later)
        for earlier, later in itertools.pairwise(ticks)
    )
    assert len(cursor) < 1000  # the cursor does not hold the files it has seen


def test_files_that_map_to_no_partition_are_reported_and_passed_over(landing, capfd):
    deliver(landing, "flights/2013-13-45.csv")
    deliver(landing, "trains/2013-01-06.csv")
    deliver(landing, "flights/2014-06-01.csv")  # after the bundled range
    deliver(landing, "flights/2013-01-07.csv")
    first = tick(landing)
    assert [r.partition_key for r in first.run_requests] == ["2013-01-07"]
    log = capfd.readouterr().err
    for path in ("flights/2013-13-45.csv", "trains/2013-01-06.csv", "flights/2014-06-01.csv"):
        assert f"not loaded: {path}" in log
    later = tick(landing, first.cursor)
    assert later.run_requests == [] and "not loaded" not in capfd.readouterr().err
    alerts = [
        json.loads(line) for line in (landing.parent / "alerts.jsonl").read_text().splitlines()
    ]
    assert [a["kind"] for a in alerts] == ["bad_delivery"] * 3  # each alerted once
    assert any(
        "flights/2013-13-45.csv" in a["error"] and "is not a date" in a["error"] for a in alerts
    )


def test_files_the_warehouse_already_holds_are_not_run_again_on_any_instance(landing, landed_days):
    shutil.copytree(landed_days, landing)
    days = [dt.date(2013, 1, 1), dt.date(2013, 1, 2), dt.date(2013, 1, 3)]
    load_into_warehouse(landing, days)  # flights and weather; the reference files are new

    first = tick(landing)  # a new instance and cursor: every file looks new to Dagster
    [reference] = first.run_requests
    assert reference.job_name == "reference_job"

    deliver_again = landing / "weather" / "2013-01-02.csv"
    os.utime(deliver_again, ns=(_clock[0] * 10**9 + 5, _clock[0] * 10**9 + 5))  # a new identity
    [again] = tick(landing, first.cursor).run_requests  # the next tick, on another new instance
    assert (again.partition_key, again.asset_selection) == ("2013-01-02", feed_assets(["weather"]))

    everything = tick(landing)  # yet another instance, after the reload was never run
    assert [r.partition_key for r in everything.run_requests] == ["2013-01-02", None]


def test_while_the_warehouse_is_written_the_files_wait_for_the_next_tick(landing, landed_days):
    shutil.copytree(landed_days, landing)
    load_into_warehouse(landing, [dt.date(2013, 1, 1)], feeds=("flights",))
    writer = subprocess.Popen(  # another process holds DuckDB's write lock on the file
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "print('locked', flush=True); sys.stdin.read()",
            str(warehouse_of(landing)),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        busy = tick(landing)
        assert isinstance(busy, dg.SkipReason) and "the warehouse is being written" in (
            busy.skip_message
        )
    finally:
        writer.communicate("", timeout=30)
    jan1 = [r for r in tick(landing).run_requests if r.partition_key == "2013-01-01"]
    assert [r.asset_selection for r in jan1] == [feed_assets(["weather"])]  # flights is held


def test_the_partitions_come_from_the_definitions_the_sensor_runs_in(landing):
    deliver(landing, "flights/2014-06-01.csv")
    assert tick(landing).run_requests == []  # alone, the bundled 2013 range
    [request] = tick(landing, defs=definitions("2015-12-31")).run_requests
    assert request.partition_key == "2014-06-01"


def test_with_an_open_range_todays_file_waits_instead_of_failing_the_tick(landing):
    defs = definitions("open")
    yesterday = dt.date.fromisoformat(
        defs.resolve_job_def("daily_ingest_job").partitions_def.get_last_partition_key()
    )
    deliver(landing, f"flights/{yesterday}.csv")
    deliver(landing, f"flights/{yesterday + dt.timedelta(days=1)}.csv")
    result = tick(landing, defs=defs)
    assert [r.partition_key for r in result.run_requests] == [str(yesterday)]
    assert f"flights/{yesterday + dt.timedelta(days=1)}.csv" in result.cursor


def test_partial_files_are_ignored_until_renamed_into_place(landing):
    partial = deliver(landing, "flights/.2013-01-08.csv.abc123.tmp")
    deliver(landing, "flights/2013-01-09.csv.part")
    first = tick(landing)
    assert (
        first.run_requests == []
        and "no new or changed deliveries" in first.skip_reason.skip_message
    )
    os.replace(partial, landing / "flights/2013-01-08.csv")
    [request] = tick(landing, first.cursor).run_requests
    assert request.partition_key == "2013-01-08"


def test_changed_reference_files_request_one_reference_run(landing):
    deliver(landing, "reference/planes.csv")
    deliver(landing, "reference/airlines.csv")
    [request] = tick(landing).run_requests
    assert (request.job_name, request.partition_key) == ("reference_job", None)
    assert set(request.asset_selection) == set(feed_assets(["airlines", "planes"]))
    assert (
        "reference/planes.csv:" in request.run_key and "reference/airlines.csv:" in request.run_key
    )


def test_a_file_rewritten_after_it_was_loaded_is_loaded_again(landing, landed_days):
    shutil.copytree(landed_days, landing)
    load_into_warehouse(landing, [dt.date(2013, 1, 3)])
    rewritten = landing / "flights" / "2013-01-03.csv"
    rewritten.write_text(rewritten.read_text())  # upstream writes it again: a new modified time
    jan3 = [r for r in tick(landing).run_requests if r.partition_key == "2013-01-03"]
    assert [r.asset_selection for r in jan3] == [feed_assets(["flights"])]  # weather is held


def days_of(request) -> tuple[str, str]:
    """The first and last day a run request loads: its partition, or its range's ends."""
    if request.partition_key:
        return request.partition_key, request.partition_key
    return (
        request.tags[dagster_adapter.RANGE_START_TAG],
        request.tags[dagster_adapter.RANGE_END_TAG],
    )


def test_a_backlog_of_ready_days_is_one_run_of_their_range(landing, landed_days):
    shutil.copytree(landed_days, landing)
    daily, reference = tick(landing).run_requests
    assert (daily.job_name, daily.partition_key) == ("daily_ingest_job", None)
    assert days_of(daily) == ("2013-01-01", "2013-01-03")
    assert set(daily.asset_selection) == set(feed_assets(["flights", "weather"]))
    assert len(daily.run_key.split("|")) == 6  # every file of the three days
    assert reference.job_name == "reference_job"


def test_a_day_with_a_bad_file_runs_alone_and_the_ready_days_around_it_together(tmp_path, landing):
    land(landing, dt.date(2013, 1, 1), dt.date(2013, 1, 5))
    cut = landing / "flights" / "2013-01-03.csv"
    cut.write_text("".join(cut.read_text().splitlines(keepends=True)[:50]))  # not as manifested
    only_weather = landing / "flights" / "2013-01-05.csv"
    only_weather.unlink()  # its flights have not landed yet
    requests = [r for r in tick(landing).run_requests if r.job_name == "daily_ingest_job"]
    assert [days_of(r) for r in requests] == [
        ("2013-01-01", "2013-01-02"),
        ("2013-01-03", "2013-01-03"),
        ("2013-01-04", "2013-01-04"),
        ("2013-01-05", "2013-01-05"),
    ]
    assert [r.partition_key for r in requests] == [None, "2013-01-03", "2013-01-04", "2013-01-05"]
    assert requests[-1].asset_selection == feed_assets(["weather"])
