import datetime as dt

import duckdb
import pandas as pd
import pytest

from etl_assets.pipeline import marts
from etl_assets.pipeline.contract import AIRLINES, AIRPORTS, FLIGHTS, PLANES, WEATHER
from etl_assets_tests.support.contract_rows import flight, load, weather

RANGE = {"start": dt.date(2013, 1, 1), "end": dt.date(2013, 1, 2)}


@pytest.fixture
def warehouse():
    """A clean layer of five flights, their weather and references, built by the real transforms."""
    conn = duckdb.connect()
    flights = [
        flight(),  # UA 1545, arrived 11 min late
        flight(carrier="AA", flight="1141", dest="MIA", arr_delay="33", arr_time="842"),
        flight(
            carrier="AA",
            flight="33",
            dep_time="NA",
            dep_delay="NA",
            arr_time="NA",
            arr_delay="NA",
            air_time="NA",
        ),  # cancelled
        flight(carrier="AA", flight="34", arr_time="NA", arr_delay="NA", air_time="NA"),  # diverted
        flight(carrier="AA", flight="35", dest="SJU", tailnum="N999ZZ"),  # unknown airport, plane
    ]
    load(conn, FLIGHTS, flights)
    load(conn, WEATHER, [weather(hour="5", time_hour="2013-01-01T10:00:00Z", temp="30")])
    load(
        conn,
        AIRLINES,
        [
            {"carrier": "UA", "name": "United Air Lines Inc."},
            {"carrier": "AA", "name": "American Airlines Inc."},
        ],
    )
    load(
        conn,
        AIRPORTS,
        [
            {
                "faa": code,
                "name": name,
                "lat": "40",
                "lon": "-74",
                "alt": "10",
                "tz": "-5",
                "dst": "A",
                "tzone": "America/New_York",
            }
            for code, name in [
                ("EWR", "Newark Liberty Intl"),
                ("IAH", "George Bush Intcntl"),
                ("MIA", "Miami Intl"),
            ]
        ],
    )
    load(
        conn,
        PLANES,
        [
            {
                "tailnum": "N14228",
                "year": "1999",
                "type": "Fixed wing multi engine",
                "manufacturer": "BOEING",
                "model": "737-824",
                "engines": "2",
                "seats": "149",
                "speed": "NA",
                "engine": "Turbo-fan",
            }
        ],
    )
    assert conn.execute("SELECT count(*) FROM clean.flights").fetchone()[0] == 5
    return conn


def build(conn, name) -> pd.DataFrame:
    """Load the mart for the day the real way, then read it back in its declared columns."""
    contract, _sql = marts.MARTS[name]
    written = marts.load_mart(conn, name, RANGE["start"], RANGE["end"])
    frame = conn.execute(f"SELECT * FROM marts.{name} ORDER BY rowid").fetchdf()
    assert list(frame.columns) == contract.column_names
    assert sum(written.values()) == len(frame)
    return frame


def test_fct_flights_keeps_every_flight_and_fills_what_it_can(warehouse):
    fct = build(warehouse, "fct_flights").set_index(["carrier", "flight"])
    assert len(fct) == 5
    assert fct["status"].to_dict() == {
        ("UA", 1545): "arrived",
        ("AA", 1141): "arrived",
        ("AA", 33): "cancelled",
        ("AA", 34): "diverted",
        ("AA", 35): "arrived",
    }
    ua = fct.loc[("UA", 1545)]
    assert ua["carrier_name"] == "United Air Lines Inc."
    assert ua["dest_name"] == "George Bush Intcntl" and ua["origin_name"] == "Newark Liberty Intl"
    assert ua["plane_manufacturer"] == "BOEING" and ua["plane_year"] == 1999
    assert ua["origin_temp"] == 30.0  # weather at EWR in the scheduled hour (10:00 UTC)
    assert ua["scheduled_departure"] == pd.Timestamp("2013-01-01 05:15")
    unknown = fct.loc[("AA", 35)]
    assert pd.isna(unknown["dest_name"]) and pd.isna(unknown["plane_model"])


def test_carrier_daily_performance_counts_and_rates(warehouse):
    build(warehouse, "fct_flights")
    perf = build(warehouse, "carrier_daily_performance").set_index("carrier")
    aa = perf.loc["AA"]
    assert (aa["flights"], aa["cancelled"], aa["diverted"]) == (4, 1, 1)
    # AA arrived: 1141 (33 late) and 35 (11 late): one of two on time.
    assert aa["on_time_rate"] == 0.5
    assert aa["mean_arr_delay"] == 22.0
    assert perf.loc["UA", "on_time_rate"] == 1.0
    assert perf.loc["UA", "carrier_name"] == "United Air Lines Inc."


def test_origin_daily_weather_delays_sits_beside_the_days_weather(warehouse):
    build(warehouse, "fct_flights")
    daily = build(warehouse, "origin_daily_weather_delays")
    row = daily.iloc[0]
    assert len(daily) == 1 and row["origin"] == "EWR"
    assert (row["flights"], row["cancelled"], row["weather_hours"]) == (5, 1, 1)
    assert row["mean_temp"] == 30.0
    assert row["delayed_share"] == 0.0  # every departure left 2 minutes late


def test_marts_read_only_the_requested_days(warehouse):
    frame = warehouse.execute(
        marts.FCT_FLIGHTS_SQL, {"start": dt.date(2013, 1, 2), "end": dt.date(2013, 1, 3)}
    ).fetchdf()
    assert frame.empty


def test_each_day_gets_its_own_headline_figures(warehouse):
    build(warehouse, "fct_flights")
    build(warehouse, "carrier_daily_performance")
    fct = marts.daily_figures(warehouse, "fct_flights", RANGE["start"], RANGE["end"])
    day = fct[dt.date(2013, 1, 1)]
    assert (day["dagster/partition_row_count"], day["flights"], day["cancelled"]) == (5, 5, 1)
    assert day["on_time_rate"] == pytest.approx(2 / 3)  # UA 1545 and AA 35 of three arrived
    carriers = marts.daily_figures(
        warehouse, "carrier_daily_performance", RANGE["start"], RANGE["end"]
    )[dt.date(2013, 1, 1)]
    assert (carriers["carriers"], carriers["flights"]) == (2, 5)
    assert carriers["on_time_rate"] == pytest.approx(2 / 3)  # weighted by arrived flights


def weather_day(temps: list[str]) -> duckdb.DuckDBPyConnection:
    """A day of one flight and one EWR observation an hour, temperature and precipitation
    `temps` in that order of insertion, with its marts built."""
    conn = duckdb.connect()
    for reference in (AIRLINES, AIRPORTS, PLANES):
        load(conn, reference, [])
    load(conn, FLIGHTS, [flight()])
    load(
        conn,
        WEATHER,
        [
            weather(
                hour=str(hour),
                time_hour=f"2013-01-01T{hour + 5:02d}:00:00Z",
                temp=temp,
                precip=temp,
            )
            for hour, temp in enumerate(temps, start=1)
        ],
    )
    for name in marts.MARTS:
        marts.load_mart(conn, name, RANGE["start"], RANGE["end"])
    return conn


def test_averages_and_sums_are_the_same_bits_whatever_order_the_rows_come_in():
    # As DOUBLEs, 0.1 + 0.2 + 0.3 is 0.6000000000000001 and 0.3 + 0.2 + 0.1 is 0.6: a load
    # that reads the same rows in another order would store other bits.
    one, other = weather_day(["0.1", "0.2", "0.3"]), weather_day(["0.3", "0.2", "0.1"])
    query = "SELECT mean_temp, total_precip FROM marts.origin_daily_weather_delays"
    found = one.execute(query).fetchall()
    assert found == other.execute(query).fetchall()
    assert found == [(0.2, 0.6)]  # the exact decimal result, rounded once to a DOUBLE
