"""Writing the warehouse: tables from declared columns, and a day range replaced in one transaction.

Every layer writes through `replace_rows`: delete the range, insert its new rows, commit; a failure
rolls back and leaves the old rows. Table names are built by `table()` alone, the one place that
knows how the warehouse's catalog and schemas are named.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import duckdb

from etl_assets.pipeline import backends
from etl_assets.pipeline.tables import Column

# DuckDB's buffer limit for the pipeline's connections (ETL_DUCKDB_MEMORY_LIMIT): past it DuckDB
# spills to disk, so a ten-year backfill runs in the memory of one year. Much lower fails a year's
# load with DuckDB's "Out of Memory Error" (docs/configuration.md says how low).
MEMORY_LIMIT = "400MB"
PARTITION_FLUSH_ROWS = 10_000  # rows a partition buffers before they are written (see below)


def connection_config(memory_limit: str | None = None) -> backends.ConnectionConfig:
    """The settings every pipeline connection to the warehouse opens with.

    Rows are set-based here (every reader orders or aggregates), so DuckDB need not keep their
    insertion order, which lets it stream inserts in parallel with less memory.

    A write to a partitioned table (DuckLake, `ensure_table`) buffers rows per partition and
    thread up to partitioned_write_flush_threshold before it writes them. At DuckDB's default
    (524,288 rows) a year of flights (365 partitions of about 1,000 rows) on two threads runs
    out of the 400MB limit (figures: docs/performance.md). Unpartitioned tables, the embedded
    file's, are not affected.
    """
    return {
        "memory_limit": memory_limit or MEMORY_LIMIT,
        "preserve_insertion_order": False,
        "partitioned_write_flush_threshold": PARTITION_FLUSH_ROWS,
    }


def table(schema: str, name: str) -> str:
    """The qualified name of a warehouse table (schema and name are contract identifiers)."""
    return f"{schema}.{name}"


def day_range(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date] | None:
    """The days (start, end exclusive) as `transaction` takes them: None unless both are given."""
    return (start, end) if start is not None and end is not None else None


@contextmanager
def transaction(
    conn: duckdb.DuckDBPyConnection,
    writes: str | None = None,
    days: tuple[dt.date, dt.date] | None = None,
) -> Iterator[None]:
    """BEGIN … COMMIT, or ROLLBACK on any error, so a write is whole or absent.

    writes: the table the transaction replaces rows of; days: the (start, end exclusive) it
    replaces, or None for the whole table. Another writer of any of those days waits until this
    one has committed (`backends.write_lock`), so a day is never written by two at once.
    """
    with backends.write_lock(conn, writes, *(days or (None, None))):
        with _begun(conn):
            yield


@contextmanager
def _begun(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def ensure_table(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    name: str,
    columns: Iterable[Column],
    partition_column: str | None = None,
) -> None:
    """Create the schema and table with the declared column types if they are not there, and
    add the declared columns an existing table lacks (a column the contract adopted: NULL in the
    rows loaded before).

    partition_column: the column the table's rows are replaced by (a daily table's date). On
    DuckLake a new table is partitioned by it, so replacing a day touches only that day's Parquet
    files. It must never be NULL: DuckLake (1.4.4) fails with an internal error that ends the
    process on a NULL partition value. The callers' columns are never NULL: a daily file's
    delivery date, a partition column the contract declares NOT NULL, the ledger's feed.
    """
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    if partition_column and backends.lake_catalog(conn) is not None:
        exists = backends.one_row(
            conn.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                "AND schema_name = $schema AND table_name = $name",
                {"schema": schema, "name": name},
            )
        )[0]
        if not exists:  # altering a table again would conflict with its concurrent writers
            _create(conn, schema, name, columns)
            conn.execute(
                f"ALTER TABLE {table(schema, name)} SET PARTITIONED BY ({partition_column})"
            )
            return
    else:
        _create(conn, schema, name, columns)
    _add_missing_columns(conn, schema, name, columns)


def _add_missing_columns(
    conn: duckdb.DuckDBPyConnection, schema: str, name: str, columns: Iterable[Column]
) -> None:
    """ALTER TABLE … ADD COLUMN for each declared column the table lacks; nothing when none is."""
    held = {
        column
        for (column,) in conn.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = $schema AND table_name = $name",
            {"schema": schema, "name": name},
        ).fetchall()
    }
    for column in columns:
        if column.name not in held:
            conn.execute(
                f"ALTER TABLE {table(schema, name)} ADD COLUMN {column.name} {column.dtype}"
            )


def _create(
    conn: duckdb.DuckDBPyConnection, schema: str, name: str, columns: Iterable[Column]
) -> None:
    declared = ", ".join(f"{c.name} {c.dtype}" for c in columns)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table(schema, name)} ({declared})")


def range_filter(date_column: str | None) -> str:
    """A WHERE clause for $start <= date_column < $end, or none for an unpartitioned table."""
    return f" WHERE {date_column} >= $start AND {date_column} < $end" if date_column else ""


def range_params(
    date_column: str | None, start: dt.date | None, end: dt.date | None
) -> dict[str, dt.date | None]:
    return {"start": start, "end": end} if date_column else {}


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    target: str,
    columns: Iterable[Column],
    date_column: str | None,
    start: dt.date | None,
    end: dt.date | None,
    select_sql: str,
    params: dict[str, object] | None = None,
) -> int:
    """Delete target's rows in the range (all rows without a date column), insert select_sql's.

    Call inside `transaction`; returns the rows inserted. Rows go in by column name, so a
    select's column order can never shift values between columns.
    """
    names = ", ".join(c.name for c in columns)
    conn.execute(
        f"DELETE FROM {target}{range_filter(date_column)}", range_params(date_column, start, end)
    )
    # On DuckLake (a table partitioned by date_column) the rows go in day by day: unsorted, every
    # flush of every thread writes a file for each day it holds, dozens of small files a day
    # where one does (docs/performance.md).
    order = f" ORDER BY {date_column}" if date_column and backends.lake_catalog(conn) else ""
    inserted = conn.execute(
        f"INSERT INTO {target} BY NAME SELECT {names} FROM ({select_sql}){order}", params or {}
    ).fetchone()
    return int(inserted[0]) if inserted else 0
