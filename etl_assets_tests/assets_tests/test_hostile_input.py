"""Hostile deliveries, generated here: each ends in a clear error or in quarantine, the sensor
never crashes, and the rest of the warehouse is unchanged, table by table (checksums)."""

import csv
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from etl_assets.automation.sensors import build_landing_zone_sensor
from etl_assets.definitions import build_definitions
from etl_assets.operations.instance import instance_at
from etl_assets.pipeline import deliveries
from etl_assets.pipeline.landing import daily_file, days, deliver, manifest_file
from etl_assets.pipeline.marts import MARTS
from etl_assets.runtime.alerts import AlertSink
from etl_assets.runtime.resources import LandingZone, WarehouseResource
from etl_assets.runtime.settings import Settings
from etl_assets_tests.support.warehouse import FIRST_DAYS, LOAD_COLUMNS, checksums

JAN2 = dt.date(2013, 1, 2)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def deployment(loaded_copy):
    """Each test starts from a copy of the three real days, loaded."""
    return loaded_copy


def flights_file(deployment) -> Path:
    return daily_file(deployment.landing, "flights", JAN2)


def flights_frame(deployment) -> pd.DataFrame:
    return pd.read_csv(flights_file(deployment), dtype=str, keep_default_na=False)


def redeliver(path: Path, data: bytes, rows: int) -> None:
    """Bytes delivered with a manifest that describes them."""
    path.write_bytes(data)
    manifest_file(path).write_text(
        json.dumps({"file": path.name, "rows": rows, "sha256": hashlib.sha256(data).hexdigest()})
    )


# --- files that cannot be loaded: the day is held back, nothing changes ---------------------


def empty(d):
    flights_file(d).write_bytes(b"")


def latin1(d):
    flights_file(d).write_bytes(flights_file(d).read_bytes().replace(b"UA", "Ü".encode("latin-1")))


def weather_header(d):
    shutil.copy(daily_file(d.landing, "weather", JAN2), flights_file(d))


def random_bytes(d):
    flights_file(d).write_bytes(random.Random(7).randbytes(50_000))


def truncated(d):
    data = flights_file(d).read_bytes()
    flights_file(d).write_bytes(data[: len(data) * 2 // 3])


def link_out_of_the_zone(d):
    outside = d.landing.parent / "outside.csv"
    shutil.copy(flights_file(d), outside)
    flights_file(d).unlink()
    flights_file(d).symlink_to(outside)


def folder_named_like_the_file(d):
    flights_file(d).unlink()
    flights_file(d).mkdir()


def unreadable(d, monkeypatch):
    real = Path.read_bytes

    def read_bytes(path):  # what chmod 000 does to any user but root, who runs CI
        if path == flights_file(d):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)


def missing(d):
    flights_file(d).unlink()


def without_a_required_column(d):
    deliver(flights_file(d), flights_frame(d).drop(columns=["carrier"]))


def flight_numbers_as_text(d):  # an upstream change of type: B6707 for 707
    frame = flights_frame(d)
    deliver(flights_file(d), frame.assign(flight=frame["carrier"] + frame["flight"]))


@pytest.mark.parametrize(
    ("defect", "message"),
    [
        (empty, "file is empty (not even a header)"),
        (latin1, "not a readable UTF-8 CSV file"),
        (weather_header, "header does not match the flights feed; missing required columns"),
        (random_bytes, "not a readable UTF-8 CSV file"),
        (truncated, "rows, but its manifest says 943"),
        (link_out_of_the_zone, "a symbolic link; a delivery must be a regular file"),
        (folder_named_like_the_file, "not a regular file"),
        (unreadable, "cannot be read (permission denied)"),
        (missing, "1 flights file(s) missing from the landing zone"),
        (without_a_required_column, "missing required columns ['carrier']"),
        (flight_numbers_as_text, "column flight is no longer BIGINT: none of its 943 values"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_a_file_that_cannot_be_loaded_is_refused_by_name_and_nothing_changes(
    deployment, defect, message, monkeypatch
):
    before = checksums(deployment.warehouse)
    if defect is unreadable:
        defect(deployment, monkeypatch)
    else:
        defect(deployment)

    summary = deployment.run(JAN2, JAN2)

    assert not summary.success and [p.block.held for p in summary.runs] == [True]
    [failure] = summary.failures
    assert failure.startswith("raw__flights: ") and message in failure, failure
    assert str(flights_file(deployment)) in failure
    assert checksums(deployment.warehouse) == before  # every table, to the load times


# --- the same rows in another form: loaded as the original was ------------------------------


def rows_of(path: Path) -> int:
    return json.loads(manifest_file(path).read_text())["rows"]


def crlf(path: Path) -> None:
    redeliver(path, path.read_bytes().replace(b"\n", b"\r\n"), rows_of(path))


def byte_order_mark(path: Path) -> None:
    redeliver(path, b"\xef\xbb\xbf" + path.read_bytes(), rows_of(path))


def reordered_and_quoted(path: Path) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = frame[list(reversed(frame.columns))]
    redeliver(path, frame.to_csv(index=False, quoting=csv.QUOTE_ALL).encode(), rows_of(path))


# One form a day, so one run of the three days loads all of them.
FORMS = dict(zip(days(*FIRST_DAYS), [crlf, byte_order_mark, reordered_and_quoted], strict=True))


def test_the_same_rows_in_another_form_load_as_the_original(deployment):
    before = checksums(deployment.warehouse, LOAD_COLUMNS)
    for day, form in FORMS.items():
        path = daily_file(deployment.landing, "flights", day)
        original = path.read_bytes()
        form(path)
        assert path.read_bytes() != original, form.__name__

    summary = deployment.run(*FIRST_DAYS)

    assert summary.success, summary.render()
    assert checksums(deployment.warehouse, LOAD_COLUMNS) == before


# --- a feed that changed shape: ETL_SCHEMA_DRIFT decides, nothing else moves ----------------

# What a new column changes: raw's map of it, and the ledger's record of it (with the load times).
DRIFT_COLUMNS = (*LOAD_COLUMNS, "_undeclared", "undeclared_columns")


def with_gate(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(gate=[f"B{n % 40}" for n in range(len(frame))])


def test_a_new_column_loads_the_day_kept_in_raw_and_a_warn_check_names_it(deployment):
    before = checksums(deployment.warehouse, DRIFT_COLUMNS)
    deliver(flights_file(deployment), with_gate(flights_frame(deployment)))

    summary = deployment.run(JAN2, JAN2)

    assert summary.success, summary.render()
    checks = {(c.table, c.check): c for c in summary.checks}
    named = checks[("raw.flights", "delivered_as_declared")]
    assert named.outcome == "WARN" and "undeclared gate" in named.detail, named
    assert checks[("raw.weather", "delivered_as_declared")].outcome == "passed"
    logged = [e.user_message for e in deployment.instance.all_logs(summary.runs[0].run_id)]
    said = "flights/2013-01-02.csv differs from the flights contract: undeclared gate"
    assert any(said in message for message in logged)  # and the run's log says it
    assert checksums(deployment.warehouse, DRIFT_COLUMNS) == before  # every table
    with duckdb.connect(deployment.warehouse, read_only=True) as conn:
        gates = conn.execute(
            "SELECT count(_undeclared['gate']) FROM raw.flights WHERE delivery_date = $d",
            {"d": JAN2},
        ).fetchone()
    assert gates == (943,)


def test_under_refuse_a_new_column_holds_the_day_back_and_nothing_changes(deployment, monkeypatch):
    monkeypatch.setenv("ETL_SCHEMA_DRIFT", "refuse")
    deployment.settings = Settings.from_env()
    deployment.definitions = build_definitions(deployment.settings)
    before = checksums(deployment.warehouse)
    deliver(flights_file(deployment), with_gate(flights_frame(deployment)))

    summary = deployment.run(JAN2, JAN2)

    assert not summary.success and [p.block.held for p in summary.runs] == [True]
    [failure] = summary.failures
    assert "unexpected columns ['gate'] (ETL_SCHEMA_DRIFT=refuse)" in failure, failure
    assert checksums(deployment.warehouse) == before


# --- a very large file: loaded, its excess quarantined with reasons, the marts kept ----------


def test_a_very_large_file_ends_in_quarantine_and_the_marts_are_kept(deployment):
    before = checksums(deployment.warehouse, LOAD_COLUMNS)
    frame = flights_frame(deployment)
    deliver(flights_file(deployment), pd.concat([frame] * 60, ignore_index=True))  # 56,580 rows

    summary = deployment.run(JAN2, JAN2)

    assert not summary.success
    assert any("quarantined_share_within_limit failed" in f for f in summary.failures)
    after = checksums(deployment.warehouse, LOAD_COLUMNS)
    with duckdb.connect(deployment.warehouse, read_only=True) as conn:
        reasons = conn.execute(
            "SELECT _reason, count(*) FROM quarantine.flights WHERE delivery_date = $d GROUP BY 1",
            {"d": JAN2},
        ).fetchall()
    assert reasons == [
        ("duplicate key (carrier, flight, scheduled_departure, time_hour)", 943 * 59)
    ]
    # the one copy of each flight is clean, as before; the blocked marts were not written
    for table in ["clean.flights", *(f"marts.{name}" for name in MARTS)]:
        assert after[table] == before[table], table


# --- the landing sensor over all of it at once ----------------------------------------------


def test_the_sensor_survives_a_landing_zone_of_hostile_files(deployment, tmp_path, monkeypatch):
    monkeypatch.setattr(deliveries, "SETTLE_NS", 0)  # files count the moment they are written
    landing = deployment.landing
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("a,b\n1,2\n")
    random_bytes(deployment)
    (landing / "flights/2013-01-04.csv").symlink_to(outside / "secret.csv")
    (landing / "flights/loop").symlink_to(landing)
    (landing / "weather/2013-01-05.csv").mkdir()
    (landing / "flights/2013-01-07.csv.manifest.json").write_text("{}")  # a manifest alone

    with dg.build_sensor_context(
        instance=deployment.instance,
        resources={
            "landing": LandingZone(path=str(landing)),
            "alerts": AlertSink(log_path=str(tmp_path / "alerts.jsonl")),
            "warehouse": WarehouseResource(database=deployment.warehouse),
        },
    ) as context:
        result = build_landing_zone_sensor()(context)

    assert [r.partition_key for r in result.run_requests] == ["2013-01-02"]  # the changed file
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert sorted(a["error"] for a in alerts) == [
        "flights/2013-01-04.csv: a symbolic link: a delivery must be a regular file",
        "flights/loop: a symbolic link: the landing zone's scan does not follow links",
        "weather/2013-01-05.csv: a folder: a delivery must be a regular file",
    ]


# --- the same day delivered twice at once ----------------------------------------------------


@pytest.mark.e2e
def test_the_same_day_delivered_twice_at_once_is_loaded_once(deployment, tmp_path):
    """Two runs of one day at the same moment (a file written twice in one sensor tick, or a
    sensor run beside a manual one) queue for the warehouse; the day holds its rows once."""
    before = checksums(deployment.warehouse, LOAD_COLUMNS)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    with instance_at(home) as instance:
        instance.get_runs()  # the instance's storage, created once as a first `make run` would
    deliver(flights_file(deployment), flights_frame(deployment))  # delivered again: new identity
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ETL_PROJECT_DIR": str(tmp_path),
        "ETL_LANDING_DIR": str(deployment.landing),
        "ETL_WAREHOUSE_PATH": deployment.warehouse,
    }
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "etl_assets.operations.cli",
                "run",
                "--start",
                str(JAN2),
                "--end",
                str(JAN2),
            ],
            cwd=tmp_path,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    assert checksums(deployment.warehouse, LOAD_COLUMNS) == before
    with duckdb.connect(deployment.warehouse, read_only=True) as conn:
        assert conn.execute(
            "SELECT count(*) FROM raw.delivered_files WHERE feed = 'flights' "
            "AND delivery_date = $d",
            {"d": JAN2},
        ).fetchone() == (1,)
