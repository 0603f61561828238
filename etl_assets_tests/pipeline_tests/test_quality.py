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
    assert counts.loc[
        pd.Timestamp(JAN1), ["raw_rows", "clean_rows", "quarantined_rows", "difference"]
    ].tolist() == [3, 2, 1, 0]
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


def hourly(conn, day: str, hours: int) -> None:
    """One observation an hour at EWR from local midnight of day, for the given number of hours."""
    conn.execute(f"""INSERT INTO clean.weather
        SELECT DATE '{day}', 'EWR',
               timezone('America/New_York', TIMESTAMP '{day} 00:00') + INTERVAL (h) HOUR
        FROM range({hours}) AS t(h)""")


@pytest.mark.parametrize(
    ("day", "hours", "missing"),
    [
        ("2013-03-10", 23, 0),  # clocks go forward: a 23-hour day is complete
        ("2013-11-03", 24, 1),  # clocks go back: the day has 25 hours
        ("2013-06-01", 24, 0),
        ("2013-06-01", 20, 4),
    ],
)
def test_missing_hours_follow_the_local_length_of_the_day(day, hours, missing):
    conn = duckdb.connect()
    conn.execute(
        "CREATE SCHEMA clean; CREATE TABLE clean.weather "
        "(observation_date DATE, origin VARCHAR, time_hour TIMESTAMPTZ)"
    )
    hourly(conn, day, hours)
    start = dt.date.fromisoformat(day)
    gaps = quality.missing_hours(
        conn,
        "clean.weather",
        "observation_date",
        ("EWR",),
        "America/New_York",
        start,
        start + dt.timedelta(days=1),
    )
    assert int(gaps["missing_hours"].sum()) == missing


def test_missing_hours_count_a_day_without_any_report():
    conn = duckdb.connect()
    conn.execute(
        "CREATE SCHEMA clean; CREATE TABLE clean.weather "
        "(observation_date DATE, origin VARCHAR, time_hour TIMESTAMPTZ)"
    )
    gaps = quality.missing_hours(
        conn, "clean.weather", "observation_date", ("EWR", "JFK"), "America/New_York", JAN1, JAN2
    )
    assert gaps[["place", "missing_hours"]].values.tolist() == [["EWR", 24], ["JFK", 24]]


def test_contract_violations_name_the_rule_and_the_values(conn):
    conn.execute(
        "CREATE TABLE clean.airlines AS SELECT * FROM (VALUES ('UA', 'United'), "
        "('u1', 'Lower'), (NULL, 'Nameless')) t(carrier, name)"
    )
    checked, broken = quality.contract_violations(conn, "clean.airlines", AIRLINES)
    assert checked == 3
    assert broken[["column", "rule", "rows", "sample_values"]].values.tolist() == [
        ["carrier", "carrier is missing", 1, "NULL"],
        ["carrier", "carrier does not match [A-Z0-9]{2}", 1, "u1"],
    ]


def test_table_checksum_ignores_row_order_and_float_noise_but_not_a_changed_value():
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA m")
    values = "(1, 0.1 + 0.2, TIMESTAMPTZ '2013-01-01 06:00:00+00', 'a'), (2, NULL, NULL, 'b')"
    conn.execute(f"CREATE TABLE m.a AS SELECT * FROM (VALUES {values}) t(k, x, ts, s)")
    conn.execute("SET TimeZone = 'America/New_York'")  # the zone must not change the digest
    conn.execute("""CREATE TABLE m.b AS SELECT * FROM (VALUES
        (2, NULL, NULL, 'b'),
        (1, 0.3, TIMESTAMPTZ '2013-01-01 01:00:00-05', 'a')) t(k, x, ts, s)""")
    conn.execute(
        "CREATE TABLE m.c AS SELECT k, x, ts, CASE WHEN k = 2 THEN 'B' ELSE s END AS s FROM m.a"
    )
    conn.execute("CREATE TABLE m.d AS SELECT * FROM m.a UNION ALL SELECT * FROM m.a WHERE k = 2")
    a, b, c, d = (quality.table_checksum(conn, f"m.{t}") for t in "abcd")
    assert a == b and a[0] == 2
    assert c[1] != a[1]
    assert d[0] == 3 and d[1] != a[1]
    assert quality.table_checksum(conn, "m.c", exclude=("s",)) == quality.table_checksum(
        conn, "m.a", exclude=("s",)
    )
