"""Writing the warehouse: tables from declared columns, and a day range replaced in one transaction.

Every layer writes through `replace_rows`: delete the range, insert its new rows, commit; a failure
rolls back and leaves the old rows. Table names are built by `table()` alone, the one place that
knows how the warehouse's catalog and schemas are named.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from etl_assets.pipeline.tables import Column


# DuckDB's buffer limit for the pipeline's connections (ETL_DUCKDB_MEMORY_LIMIT): past it DuckDB
# spills to disk, so a ten-year backfill runs in the memory of one year. Much lower fails a year's
# load with DuckDB's "Out of Memory Error" (the README's configuration table says how low).
MEMORY_LIMIT = "400MB"


def connection_config(memory_limit: str | None = None) -> dict[str, object]:
    """The settings every pipeline connection to the warehouse opens with.

    Rows are set-based here (every reader orders or aggregates), so DuckDB need not keep their
    insertion order, which lets it stream inserts in parallel with less memory.
    """
    return {"memory_limit": memory_limit or MEMORY_LIMIT, "preserve_insertion_order": False}


def table(schema: str, name: str) -> str:
    """The qualified name of a warehouse table (schema and name are contract identifiers)."""
    return f"{schema}.{name}"


@contextmanager
def transaction(conn) -> Iterator[None]:
    """BEGIN … COMMIT, or ROLLBACK on any error, so a write is whole or absent."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def ensure_table(conn, schema: str, name: str, columns: Iterable[Column]) -> None:
    """Create the schema and table with the declared column types if they are not there."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    declared = ", ".join(f"{c.name} {c.dtype}" for c in columns)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table(schema, name)} ({declared})")


def range_filter(date_column: str | None) -> str:
    """A WHERE clause for $start <= date_column < $end, or none for an unpartitioned table."""
    return f" WHERE {date_column} >= $start AND {date_column} < $end" if date_column else ""


def range_params(date_column: str | None, start: dt.date | None, end: dt.date | None) -> dict:
    return {"start": start, "end": end} if date_column else {}


def replace_rows(conn, target: str, columns: Iterable[Column], date_column: str | None,
                 start: dt.date | None, end: dt.date | None, select_sql: str,
                 params: dict | None = None) -> int:
    """Delete target's rows in the range (all rows without a date column), insert select_sql's.

    Call inside `transaction`; returns the rows inserted. Rows go in by column name, so a
    select's column order can never shift values between columns.
    """
    names = ", ".join(c.name for c in columns)
    conn.execute(f"DELETE FROM {target}{range_filter(date_column)}",
                 range_params(date_column, start, end))
    inserted = conn.execute(f"INSERT INTO {target} BY NAME SELECT {names} FROM ({select_sql})",
                            params or {}).fetchone()
    return int(inserted[0]) if inserted else 0
