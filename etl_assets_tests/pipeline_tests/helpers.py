"""Build raw tables by hand and type them the way the clean assets do, in an in-memory DuckDB."""

import datetime as dt

import duckdb
import pandas as pd

from etl_assets.pipeline import transform
from etl_assets.pipeline.contract import TableContract, raw_columns

FLIGHT = {  # one real row of the feed (2013-01-01, UA 1545), as delivered text
    "year": "2013", "month": "1", "day": "1", "dep_time": "517", "sched_dep_time": "515",
    "dep_delay": "2", "arr_time": "830", "sched_arr_time": "819", "arr_delay": "11",
    "carrier": "UA", "flight": "1545", "tailnum": "N14228", "origin": "EWR", "dest": "IAH",
    "air_time": "227", "distance": "1400", "hour": "5", "minute": "15",
    "time_hour": "2013-01-01T10:00:00Z",
}
WEATHER = {
    "origin": "EWR", "year": "2013", "month": "1", "day": "1", "hour": "1", "temp": "39.02",
    "dewp": "26.06", "humid": "59.37", "wind_dir": "270", "wind_speed": "10.35702",
    "wind_gust": "NA", "precip": "0", "pressure": "1012", "visib": "10",
    "time_hour": "2013-01-01T06:00:00Z",
}


def raw_frame(contract: TableContract, rows: list[dict], delivery_date: dt.date | None):
    frame = pd.DataFrame(rows, columns=list(contract.source_columns)).astype(object)
    frame["delivery_date"] = pd.Timestamp(delivery_date) if delivery_date else pd.NaT
    frame["delivery_date"] = frame["delivery_date"].astype("datetime64[us]")
    frame["_source_file"] = "test.csv"
    frame["_loaded_at"] = pd.Timestamp("2026-01-01", tz="UTC")
    return frame


def typed(contract: TableContract, rows: list[dict], delivery_date=dt.date(2013, 1, 1)):
    """The rows as the clean asset reads them: raw text typed by the warehouse."""
    raw = raw_frame(contract, rows, delivery_date if contract.delivered_daily else None)
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA raw")
    columns = ", ".join(f"{c.name} {c.dtype}" for c in raw_columns(contract))
    conn.execute(f"CREATE TABLE raw.{contract.name} ({columns})")  # as the raw asset declares it
    conn.execute(f"INSERT INTO raw.{contract.name} BY NAME SELECT * FROM raw")
    sql = transform.typed_select_sql(contract, f"raw.{contract.name}",
                                     by_delivery_date=contract.delivered_daily)
    params = {"start": dt.date(2000, 1, 1), "end": dt.date(2100, 1, 1)}
    return conn.execute(sql, params if contract.delivered_daily else {}).fetchdf()


def flight(**changes) -> dict:
    return {**FLIGHT, **changes}


def weather(**changes) -> dict:
    return {**WEATHER, **changes}
