import datetime as dt

import duckdb
import pandas as pd
import pytest

from etl_assets.pipeline import quality
from etl_assets.pipeline.contract import AIRLINES, WEATHER

JAN1, JAN2, JAN3 = dt.date(2013, 1, 1), dt.date(2013, 1, 2), dt.date(2013, 1, 3)


@pytest.fixture
def conn():
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA raw; CREATE SCHEMA clean; CREATE SCHEMA quarantine")
    # Jan 1: 3 raw = 2 clean + 1 quarantined. Jan 2: 2 raw but 3 clean (a row written twice).
    conn.execute("""CREATE TABLE raw.weather AS SELECT * FROM (VALUES
        (DATE '2013-01-01'), (DATE '2013-01-01'), (DATE '2013-01-01'),
        (DATE '2013-01-02'), (DATE '2013-01-02')) t(delivery_date)""")
    conn.execute("""CREATE TABLE clean.weather AS SELECT * FROM (VALUES
        (DATE '2013-01-01', 'EWR', TIMESTAMPTZ '2013-01-01 06:00:00+00'),
        (DATE '2013-01-01', 'JFK', TIMESTAMPTZ '2013-01-01 06:00:00+00'),
        (DATE '2013-01-02', 'EWR', TIMESTAMPTZ '2013-01-02 06:00:00+00'),
        (DATE '2013-01-02', 'EWR', TIMESTAMPTZ '2013-01-02 06:00:00+00'),
        (DATE '2013-01-02', 'LGA', TIMESTAMPTZ '2013-01-02 06:00:00+00'))
        t(observation_date, origin, time_hour)""")
    conn.execute("""CREATE TABLE quarantine.weather AS
        SELECT DATE '2013-01-01' AS delivery_date, 'wind' AS _reason""")
    return conn


def test_duplicate_keys_names_each_key_and_its_rows(conn):
    found = quality.duplicate_keys(conn, "clean.weather", WEATHER, JAN1, JAN3)
    assert found[["origin", "rows"]].values.tolist() == [["EWR", 2]]
    assert quality.duplicate_keys(conn, "clean.weather", WEATHER, JAN1, JAN2).empty


def test_reconciliation_finds_the_day_that_does_not_add_up(conn):
    counts = quality.reconciliation(conn, WEATHER, JAN1, JAN3).set_index("day")
    assert counts.loc[pd.Timestamp(JAN1), ["raw_rows", "clean_rows", "quarantined_rows",
                                           "difference"]].tolist() == [3, 2, 1, 0]
    assert counts.loc[pd.Timestamp(JAN2), "difference"] == -1


def test_reconciliation_of_an_unpartitioned_table(conn):
    conn.execute("CREATE TABLE raw.airlines AS SELECT 1 AS x UNION ALL SELECT 2")
    conn.execute("CREATE TABLE clean.airlines AS SELECT 1 AS x")
    conn.execute("CREATE TABLE quarantine.airlines AS SELECT 1 AS x WHERE false")
    counts = quality.reconciliation(conn, AIRLINES)
    assert counts[["raw_rows", "clean_rows", "difference"]].values.tolist() == [[2, 1, 1]]


def test_row_count_of_a_range(conn):
    assert quality.row_count(conn, "clean.weather", "observation_date", JAN2, JAN3) == 3
    assert quality.row_count(conn, "clean.weather", None) == 5
