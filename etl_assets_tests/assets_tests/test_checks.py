"""Each check, fed a warehouse that breaks what it guards: it fails, at ERROR, saying where."""

import datetime as dt

import dagster as dg
import duckdb
import pytest

from etl_assets.assets.clean import key_is_unique_result, reconciliation_result
from etl_assets.assets.marts import every_clean_flight_result
from etl_assets.pipeline.contract import WEATHER

JAN1, JAN3 = dt.date(2013, 1, 1), dt.date(2013, 1, 3)
KEY = dg.AssetKey(["clean", "weather"])


@pytest.fixture
def conn():
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA raw; CREATE SCHEMA clean; CREATE SCHEMA quarantine; "
                 "CREATE SCHEMA marts")
    conn.execute("CREATE TABLE raw.weather AS SELECT DATE '2013-01-01' AS delivery_date "
                 "FROM range(3)")
    conn.execute("CREATE TABLE quarantine.weather AS SELECT DATE '2013-01-01' AS delivery_date "
                 "FROM range(1)")
    conn.execute("CREATE TABLE clean.weather AS SELECT DATE '2013-01-01' AS observation_date, "
                 "'EWR' AS origin, TIMESTAMPTZ '2013-01-01 06:00:00+00' AS time_hour FROM range(2)")
    return conn


def test_key_check_fails_on_a_duplicate_and_shows_it(conn):
    result = key_is_unique_result(conn, WEATHER, KEY, JAN1, JAN3)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["duplicate_keys"].value == 1
    assert result.metadata["extra_rows"].value == 1
    assert "EWR" in result.metadata["sample"].value


def test_key_check_passes_once_the_key_is_unique(conn):
    conn.execute("DELETE FROM clean.weather WHERE rowid = (SELECT min(rowid) FROM clean.weather)")
    assert key_is_unique_result(conn, WEATHER, KEY, JAN1, JAN3).passed


def test_reconciliation_check_fails_when_a_row_is_lost(conn):
    conn.execute("DELETE FROM quarantine.weather")
    result = reconciliation_result(conn, WEATHER, KEY, JAN1, JAN3)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert (result.metadata["raw_rows"].value, result.metadata["clean_rows"].value,
            result.metadata["quarantined_rows"].value) == (3, 2, 0)
    assert result.metadata["days_off"].value == 1
    assert "2013-01-01" in result.metadata["days_off_sample"].value


def test_reconciliation_check_passes_when_rows_add_up(conn):
    assert reconciliation_result(conn, WEATHER, KEY, JAN1, JAN3).passed


def test_fact_check_fails_when_the_mart_drops_a_flight(conn):
    conn.execute("CREATE TABLE clean.flights AS SELECT DATE '2013-01-02' AS flight_date "
                 "FROM range(4)")
    conn.execute("CREATE TABLE marts.fct_flights AS SELECT DATE '2013-01-02' AS flight_date "
                 "FROM range(3)")
    result = every_clean_flight_result(conn, JAN1, JAN3)
    assert not result.passed and result.metadata["difference"].value == 1
