"""Build raw tables by hand and clean them the way the clean assets do, in an in-memory DuckDB."""

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from etl_assets.pipeline import transform, warehouse
from etl_assets.pipeline.tables import TableContract, raw_columns

FLIGHT = {  # one real row of the feed (2013-01-01, UA 1545), as delivered text
    "year": "2013",
    "month": "1",
    "day": "1",
    "dep_time": "517",
    "sched_dep_time": "515",
    "dep_delay": "2",
    "arr_time": "830",
    "sched_arr_time": "819",
    "arr_delay": "11",
    "carrier": "UA",
    "flight": "1545",
    "tailnum": "N14228",
    "origin": "EWR",
    "dest": "IAH",
    "air_time": "227",
    "distance": "1400",
    "hour": "5",
    "minute": "15",
    "time_hour": "2013-01-01T10:00:00Z",
}
WEATHER = {
    "origin": "EWR",
    "year": "2013",
    "month": "1",
    "day": "1",
    "hour": "1",
    "temp": "39.02",
    "dewp": "26.06",
    "humid": "59.37",
    "wind_dir": "270",
    "wind_speed": "10.35702",
    "wind_gust": "NA",
    "precip": "0",
    "pressure": "1012",
    "visib": "10",
    "time_hour": "2013-01-01T06:00:00Z",
}


def raw_frame(contract: TableContract, rows: list[dict], delivery_date: dt.date | None):
    frame = pd.DataFrame(rows, columns=list(contract.source_columns)).astype(object)
    frame["delivery_date"] = pd.Timestamp(delivery_date) if delivery_date else pd.NaT
    frame["delivery_date"] = frame["delivery_date"].astype("datetime64[us]")
    frame["_source_file"] = "test.csv"
    frame["_source_identity"] = "test.csv:1:1"
    frame["_loaded_at"] = pd.Timestamp("2026-01-01", tz="UTC")
    return frame


@dataclass
class Split:
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    rule_counts: dict[str, int]


def load(
    conn, contract: TableContract, rows: list[dict], delivery_date=dt.date(2013, 1, 1)
) -> transform.CleanCounts:
    """Put rows in the contract's raw table as delivered text, then clean them the real way."""
    day = delivery_date if contract.delivered_daily else None
    conn.register("delivered", raw_frame(contract, rows, day))
    warehouse.ensure_table(conn, "raw", contract.name, raw_columns(contract))
    conn.execute(f"INSERT INTO raw.{contract.name} BY NAME SELECT * FROM delivered")
    conn.unregister("delivered")
    if not contract.delivered_daily:
        return transform.load_clean(conn, contract)
    return transform.load_clean(conn, contract, day, day + dt.timedelta(days=1))


def clean(contract: TableContract, rows: list[dict], delivery_date=dt.date(2013, 1, 1)) -> Split:
    """The clean and quarantined rows of one delivery, as the warehouse stores them."""
    conn = duckdb.connect()
    counts = load(conn, contract, rows, delivery_date)
    fetch = lambda schema: conn.execute(  # noqa: E731
        f"SELECT * FROM {schema}.{contract.name} ORDER BY rowid"
    ).fetchdf()
    return Split(fetch("clean"), fetch("quarantine"), counts.rule_counts)


def flight(**changes) -> dict:
    return {**FLIGHT, **changes}


def weather(**changes) -> dict:
    return {**WEATHER, **changes}
