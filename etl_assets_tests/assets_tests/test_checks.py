"""Every check: it passes on the real days, and fails, at its severity and saying where, on a
warehouse corrupted in exactly the way it guards against."""

import datetime as dt
import shutil

import dagster as dg
import duckdb
import pytest

from etl_assets.assets import checks
from etl_assets.pipeline.contract import CONTRACTS
from etl_assets.runtime.resources import QualityPolicy

JAN1, JAN2, JAN4 = dt.date(2013, 1, 1), dt.date(2013, 1, 2), dt.date(2013, 1, 4)
ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


def suite(table: str) -> dict[str, checks.TableCheck]:
    layer, name = table.split(".")
    build = {
        "raw": lambda: checks.raw_checks(CONTRACTS[name]),
        "clean": lambda: checks.clean_checks(CONTRACTS[name]),
        "quarantine": lambda: checks.quarantine_checks(CONTRACTS[name]),
        "marts": lambda: checks.mart_checks(name),
    }[layer]
    return {c.name: c for c in build()}


def evaluate(conn, table: str, check: str, start=JAN1, end=JAN4, **policy):
    layer, name = table.split(".")
    daily = layer == "marts" or CONTRACTS[name].delivered_daily
    scope = checks.Scope(
        conn, start if daily else None, end if daily else None, QualityPolicy(**policy)
    )
    return suite(table)[check].result(dg.AssetKey([layer, name]), scope)


@pytest.fixture(scope="module")
def real_warehouse(loaded):
    """The warehouse after a real run over the bundled feed's first three days."""
    return loaded[0].warehouse


@pytest.fixture
def conn(real_warehouse, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse, copy)
    with duckdb.connect(str(copy)) as conn:
        yield conn


# Known defects of the real source in these three days; every other check passes.
REAL_WARNINGS = {
    ("clean.weather", "every_airport_reports_every_hour"),  # 5 hours missing on Jan 1
    ("marts.fct_flights", "flights_have_known_destination"),  # SJU, BQN, STT, PSE
    ("marts.fct_flights", "flights_have_known_plane"),  # MQ and AA report fleet numbers
}
TABLES = [f"{layer}.{name}" for layer in ("raw", "clean", "quarantine") for name in CONTRACTS] + [
    "marts.fct_flights",
    "marts.carrier_daily_performance",
    "marts.origin_daily_weather_delays",
]


def test_on_the_real_days_only_the_known_defects_warn(conn):
    outcomes = {
        (table, name): evaluate(conn, table, name) for table in TABLES for name in suite(table)
    }
    assert len(outcomes) == 87  # every table check; 3 freshness checks come from a factory
    failing = {key for key, result in outcomes.items() if not result.passed}
    assert failing == REAL_WARNINGS
    assert all(outcomes[key].severity == WARN for key in failing)
    destination = outcomes[("marts.fct_flights", "flights_have_known_destination")]
    assert "SJU" in destination.description and "SJU" in destination.metadata["sample"].value
    unknown = conn.execute(
        "SELECT count(*) FROM clean.flights WHERE dest IN ('SJU', 'BQN', 'STT', 'PSE')"
    ).fetchone()[0]
    assert destination.metadata["failing_rows"].value == unknown > 0
    hours = outcomes[("clean.weather", "every_airport_reports_every_hour")]
    assert hours.metadata["airport_days_incomplete"].value == 3
    assert "2013-01-01" in hours.metadata["sample"].value


# (table, check, SQL that corrupts the warehouse, severity, metadata key, expected value,
#  text the description or sample must show)
CORRUPTIONS = [
    (
        "raw.flights",
        "columns_match_contract",
        "ALTER TABLE raw.flights DROP COLUMN dest",
        ERROR,
        "differences",
        1,
        "dest missing",
    ),
    (
        "clean.weather",
        "columns_match_contract",
        "ALTER TABLE clean.weather ALTER temp TYPE VARCHAR",
        ERROR,
        "differences",
        1,
        "temp wrong type",
    ),
    (
        "quarantine.flights",
        "columns_match_contract",
        "ALTER TABLE quarantine.flights ADD COLUMN surprise INTEGER",
        ERROR,
        "differences",
        1,
        "surprise not in the contract",
    ),
    (
        "clean.flights",
        "key_is_not_null",
        "UPDATE clean.flights SET carrier = NULL WHERE flight IN (1545, 1714)",
        ERROR,
        "failing_rows",
        None,
        "carrier",
    ),
    (
        "clean.airports",
        "key_is_not_null",
        "UPDATE clean.airports SET faa = NULL WHERE faa = 'JFK'",
        ERROR,
        "failing_rows",
        1,
        "faa 1",
    ),
    (
        "clean.flights",
        "key_is_unique",
        "INSERT INTO clean.flights SELECT * FROM clean.flights WHERE flight = 1545",
        ERROR,
        "duplicate_keys",
        None,
        "1545",
    ),
    (
        "clean.weather",
        "values_within_contract",
        "UPDATE clean.weather SET wind_speed = 1048.36 WHERE origin = 'EWR' AND hour = 3 "
        "AND observation_date = DATE '2013-01-02'",
        ERROR,
        "failing_rows",
        1,
        "1048.36",
    ),
    (
        "clean.flights",
        "values_within_contract",
        "UPDATE clean.flights SET origin = 'XXX' WHERE flight = 1545",
        ERROR,
        "rules_broken",
        1,
        "XXX",
    ),
    (
        "clean.planes",
        "values_within_contract",
        "UPDATE clean.planes SET year = 1850 WHERE tailnum = 'N10156'",
        ERROR,
        "failing_rows",
        1,
        "1850",
    ),
    (
        "clean.flights",
        "raw_equals_clean_plus_quarantine",
        "DELETE FROM clean.flights WHERE flight = 1545",
        ERROR,
        "days_off",
        None,
        "2013-01-0",
    ),
    (
        "clean.flights",
        "quarantined_share_within_limit",
        "INSERT INTO quarantine.flights BY NAME SELECT *, flight_date AS delivery_date, "
        "'f.csv' AS _source_file, 'test' AS _reason FROM clean.flights "
        "WHERE flight_date = DATE '2013-01-02' AND flight % 10 = 0; "
        "DELETE FROM clean.flights WHERE flight_date = DATE '2013-01-02' AND flight % 10 = 0",
        ERROR,
        "days_over_limit",
        1,
        "2013-01-02",
    ),
    (
        "quarantine.weather",
        "no_rows_quarantined",
        "INSERT INTO quarantine.weather BY NAME SELECT *, observation_date AS delivery_date, "
        "'w.csv' AS _source_file, 'wind_speed 1048.36 outside [0, 150]' AS _reason "
        "FROM clean.weather LIMIT 1",
        WARN,
        "quarantined_rows",
        1,
        "wind_speed 1048.36",
    ),
    (
        "clean.weather",
        "every_airport_reports_every_hour",
        "DELETE FROM clean.weather WHERE origin = 'JFK' AND observation_date = DATE '2013-01-02' "
        "AND hour IN (4, 5)",
        WARN,
        "failing_rows",
        5 + 2,
        "2013-01-02",
    ),  # 5 missing on Jan 1
    (
        "marts.fct_flights",
        "every_clean_flight_present",
        "DELETE FROM marts.fct_flights WHERE flight = 1545",
        ERROR,
        "difference",
        None,
        "of",
    ),
    (
        "marts.fct_flights",
        "flights_have_known_carrier",
        "DELETE FROM clean.airlines WHERE carrier = 'UA'",
        WARN,
        "unknown_values",
        1,
        "UA",
    ),
    (
        "marts.fct_flights",
        "flights_have_known_origin",
        "DELETE FROM clean.airports WHERE faa = 'LGA'",
        WARN,
        "unknown_values",
        1,
        "LGA",
    ),
    (
        "marts.carrier_daily_performance",
        "adds_up_to_fct_flights",
        "UPDATE marts.carrier_daily_performance SET flights = flights + 1 "
        "WHERE carrier = 'UA' AND flight_date = DATE '2013-01-03'",
        ERROR,
        "days_off",
        1,
        "2013-01-03",
    ),
    (
        "marts.origin_daily_weather_delays",
        "adds_up_to_fct_flights",
        "UPDATE marts.origin_daily_weather_delays SET cancelled = cancelled + 2 "
        "WHERE origin = 'JFK' AND flight_date = DATE '2013-01-01'",
        ERROR,
        "days_off",
        1,
        "2013-01-01",
    ),
    (
        "marts.carrier_daily_performance",
        "key_is_unique",
        "INSERT INTO marts.carrier_daily_performance SELECT * FROM marts.carrier_daily_performance "
        "WHERE carrier = 'AA'",
        ERROR,
        "duplicate_keys",
        3,
        "AA",
    ),
    (
        "marts.carrier_daily_performance",
        "values_within_contract",
        "UPDATE marts.carrier_daily_performance SET on_time_rate = 1.5 WHERE carrier = 'AA'",
        ERROR,
        "rules_broken",
        1,
        "1.5",
    ),
]


@pytest.mark.parametrize(
    ("table", "check", "sql", "severity", "key", "value", "shown"),
    CORRUPTIONS,
    ids=[f"{c[0]}:{c[1]}:{i}" for i, c in enumerate(CORRUPTIONS)],
)
def test_check_fails_on_the_corruption_it_guards_against(
    conn, table, check, sql, severity, key, value, shown
):
    before = evaluate(conn, table, check)
    if (table, check) not in REAL_WARNINGS:
        assert before.passed, before.description

    conn.execute(sql)
    result = evaluate(conn, table, check)

    assert not result.passed
    assert result.severity == severity
    # what the UI says of the check before it runs is what a failure turns out to be
    spec = suite(table)[check].spec(dg.AssetKey(table.split(".")))
    assert spec.description.split(":")[0].split(",")[0] == severity.value
    if value is None:
        assert result.metadata[key].value > 0
    else:
        assert result.metadata[key].value == value
    shown_in = (
        result.description + " " + result.metadata.get("sample", dg.MetadataValue.md("")).value
    )
    assert shown in shown_in


def test_schema_check_passes_again_once_the_table_is_fixed(conn):
    conn.execute("ALTER TABLE clean.weather ALTER temp TYPE VARCHAR")
    assert not evaluate(conn, "clean.weather", "columns_match_contract").passed
    conn.execute("ALTER TABLE clean.weather ALTER temp TYPE DOUBLE")
    assert evaluate(conn, "clean.weather", "columns_match_contract").passed


def test_warnings_clear_when_the_offending_rows_are_gone(conn):
    conn.execute("DELETE FROM clean.flights WHERE dest IN ('SJU', 'BQN', 'STT', 'PSE')")
    assert evaluate(conn, "marts.fct_flights", "flights_have_known_destination").passed
    assert evaluate(conn, "clean.weather", "every_airport_reports_every_hour", start=JAN2).passed


def test_quarantine_limit_comes_from_the_policy(conn):
    conn.execute(CORRUPTIONS[10][2])  # ~10% of Jan 2 quarantined
    assert not evaluate(conn, "clean.flights", "quarantined_share_within_limit").passed
    assert evaluate(
        conn, "clean.flights", "quarantined_share_within_limit", quarantine_limit_percent=15
    ).passed


def test_checks_judge_only_the_range_they_are_given(conn):
    conn.execute("UPDATE clean.flights SET origin = 'XXX' WHERE flight_date = DATE '2013-01-03'")
    assert (
        evaluate(conn, "clean.flights", "values_within_contract", end=JAN4)
        .metadata["failing_rows"]
        .value
        > 0
    )
    assert evaluate(conn, "clean.flights", "values_within_contract", end=dt.date(2013, 1, 3)).passed


@pytest.fixture
def volume_conn():
    """Five weeks of 100 rows a day, then the day under test."""
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA raw")
    conn.execute("""CREATE TABLE raw.flights AS
        SELECT (DATE '2013-03-01' + d::INTEGER)::DATE AS delivery_date FROM range(35) AS a(d),
        range(100) AS b(r)""")
    return conn


@pytest.mark.parametrize(
    ("rows", "passed"), [(100, True), (80, True), (60, False), (0, False), (200, False)]
)
def test_volume_check_warns_on_a_day_far_from_its_weekday(volume_conn, rows, passed):
    day = dt.date(2013, 4, 5)
    volume_conn.execute(f"INSERT INTO raw.flights SELECT DATE '{day}' FROM range({rows})")
    result = evaluate(
        volume_conn,
        "raw.flights",
        "volume_within_recent_history",
        start=day,
        end=day + dt.timedelta(days=1),
    )
    assert result.passed is passed
    assert result.severity == WARN
    assert result.metadata["days_judged"].value == 1
    if not passed:
        assert result.metadata["anomalous_days"].value == 1
        assert "2013-04-05" in result.description and "vs 100" in result.description


def test_volume_check_does_not_judge_a_day_without_history(volume_conn):
    day = dt.date(2013, 3, 1)
    result = evaluate(
        volume_conn,
        "raw.flights",
        "volume_within_recent_history",
        start=day,
        end=day + dt.timedelta(days=1),
    )
    assert result.passed
    assert result.metadata["days_without_history"].value == 1


def test_a_schema_change_since_the_previous_materialization_warns(conn):
    check = suite("clean.airlines")["column_schema_change"]
    key = dg.AssetKey(["clean", "airlines"])
    declared = [(c.name, c.dtype) for c in CONTRACTS["airlines"].columns]
    same = check.result(key, checks.Scope(conn, None, None, previous_schema=declared))
    first = check.result(key, checks.Scope(conn, None, None, previous_schema=None))
    changed = check.result(
        key,
        checks.Scope(
            conn, None, None, previous_schema=[("carrier", "BIGINT"), ("alias", "VARCHAR")]
        ),
    )
    assert same.passed and first.passed
    assert not changed.passed and changed.severity == WARN
    assert changed.description == "added name; removed alias; carrier BIGINT → VARCHAR"
    assert changed.metadata["retyped_columns"].value == 1
