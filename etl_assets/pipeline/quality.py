"""Data-quality queries over the warehouse: each returns the offending rows, empty when all is well.

Plain functions of a DuckDB connection; the asset checks call them and report what they return.
Every query takes the partition range as parameters, so a check costs what its partitions cost.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from etl_assets.pipeline.contract import TableContract


def _range(column: str | None) -> str:
    return f" WHERE {column} >= $start AND {column} < $end" if column else ""


def _params(column: str | None, start: dt.date | None, end: dt.date | None) -> dict:
    return {"start": start, "end": end} if column else {}


def duplicate_keys(conn, table: str, contract: TableContract,
                   start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
    """Key values held by more than one row, with how many rows hold each."""
    key = ", ".join(contract.key)
    sql = (f"SELECT {key}, count(*) AS rows FROM {table}{_range(contract.partition_column)}"
           f" GROUP BY {key} HAVING count(*) > 1 ORDER BY rows DESC, {key}")
    return conn.execute(sql, _params(contract.partition_column, start, end)).fetchdf()


def reconciliation(conn, contract: TableContract,
                   start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
    """Per delivery date: raw rows, clean rows, quarantined rows, and raw - clean - quarantined."""
    name = contract.name
    clean_date = contract.partition_column
    if clean_date:
        sql = f"""
        WITH raw AS (SELECT delivery_date AS day, count(*) AS n FROM raw.{name}
                     {_range('delivery_date')} GROUP BY 1),
             cln AS (SELECT {clean_date} AS day, count(*) AS n FROM clean.{name}
                     {_range(clean_date)} GROUP BY 1),
             qua AS (SELECT delivery_date AS day, count(*) AS n FROM quarantine.{name}
                     {_range('delivery_date')} GROUP BY 1)
        SELECT day, coalesce(raw.n, 0) AS raw_rows, coalesce(cln.n, 0) AS clean_rows,
               coalesce(qua.n, 0) AS quarantined_rows
        FROM raw FULL JOIN cln USING (day) FULL JOIN qua USING (day) ORDER BY day"""
        params = {"start": start, "end": end}
    else:
        sql = f"""SELECT NULL::DATE AS day,
                  (SELECT count(*) FROM raw.{name}) AS raw_rows,
                  (SELECT count(*) FROM clean.{name}) AS clean_rows,
                  (SELECT count(*) FROM quarantine.{name}) AS quarantined_rows"""
        params = {}
    frame = conn.execute(sql, params).fetchdf()
    frame["difference"] = frame["raw_rows"] - frame["clean_rows"] - frame["quarantined_rows"]
    return frame


def row_count(conn, table: str, partition_column: str | None,
              start: dt.date | None = None, end: dt.date | None = None) -> int:
    sql = f"SELECT count(*) FROM {table}{_range(partition_column)}"
    return int(conn.execute(sql, _params(partition_column, start, end)).fetchone()[0])
