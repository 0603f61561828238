"""The marts' daily series drawn as charts: a column per line, a PNG of the declared size."""

import io

import duckdb
import numpy as np
from PIL import Image

from etl_assets.pipeline import charts


def marts(conn: duckdb.DuckDBPyConnection, days: int) -> None:
    conn.execute("CREATE SCHEMA marts")
    conn.execute(
        "CREATE TABLE marts.fct_flights AS SELECT DATE '2013-01-01' + (i % $days)::INT AS "
        "flight_date, CASE WHEN i % 7 = 0 THEN 'cancelled' ELSE 'arrived' END AS status "
        "FROM range(100) t(i)",
        {"days": days},
    )
    conn.execute(
        "CREATE TABLE marts.carrier_daily_performance AS SELECT DATE '2013-01-01' + d::INT AS "
        "flight_date, c AS carrier, 10 + d AS flights, 0.5 + d / 100 AS on_time_rate "
        "FROM range($days) a(d), (VALUES ('AA'), ('B6'), ('DL'), ('EV'), ('MQ'), ('UA'), "
        "('US'), ('WN')) b(c)",
        {"days": days},
    )
    conn.execute(
        "CREATE TABLE marts.origin_daily_weather_delays AS SELECT DATE '2013-01-01' + d::INT "
        "AS flight_date, o AS origin, d * 1.5 AS mean_dep_delay FROM range($days) a(d), "
        "(VALUES ('EWR'), ('JFK'), ('LGA')) b(o)",
        {"days": days},
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data)).size


def test_each_mart_gives_a_line_per_series_and_a_row_per_day():
    with duckdb.connect() as conn:
        marts(conn, days=10)
        flights = charts.series(conn, "fct_flights")
        carriers = charts.series(conn, "carrier_daily_performance")
        origins = charts.series(conn, "origin_daily_weather_delays")
    assert list(flights.columns) == ["arrived", "cancelled"] and len(flights) == 10
    assert int(flights.sum().sum()) == 100
    # the six carriers with most flights (all equal here: the first six by code)
    assert list(carriers.columns) == ["AA", "B6", "DL", "EV", "MQ", "UA"]
    assert list(origins.columns) == ["EWR", "JFK", "LGA"]
    assert origins.loc[origins.index.max(), "JFK"] == 9.0  # the last 7 days (3..9) x 1.5


def test_a_chart_is_a_png_of_its_declared_size_even_before_any_day():
    with duckdb.connect() as conn:
        marts(conn, days=10)
        drawn = charts.chart(conn, "carrier_daily_performance")
        conn.execute("DELETE FROM marts.fct_flights")
        empty = charts.chart(conn, "fct_flights")
    assert png_size(drawn) == (720, 288)
    assert png_size(empty) == (720, 288)
    assert len(drawn) > len(empty)  # the lines are drawn


def test_a_short_span_is_ticked_by_day_and_a_year_by_month():
    with duckdb.connect() as conn:
        marts(conn, days=2)
        two = charts.series(conn, "carrier_daily_performance")
    year = two.reindex(two.index.min() + np.arange(365) * np.timedelta64(1, "D")).ffill()

    def ticks(frame):
        drawn = charts.figure(frame, "t", "y", 8.0, 3.2, 90)
        drawn.draw_without_rendering()
        return [t.get_text() for t in drawn.axes[0].get_xticklabels()]

    assert ticks(two) == ["2013-01-01", "2013-01-02"]  # not the hours between them
    assert ticks(year)[:2] == ["2013-01", "2013-03"]
