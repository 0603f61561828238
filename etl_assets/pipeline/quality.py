"""Data-quality queries over the warehouse: each returns the offending rows, empty when all is well.

Plain functions of a DuckDB connection; the asset checks call them and report what they return.
Every query takes the partition range as parameters, so a check costs what its partitions cost.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from etl_assets.pipeline import backends, rules
from etl_assets.pipeline.tables import TableContract


def _range(column: str | None) -> str:
    return f" WHERE {column} >= $start AND {column} < $end" if column else ""


def _params(
    column: str | None, start: dt.date | None, end: dt.date | None
) -> dict[str, dt.date | None]:
    return {"start": start, "end": end} if column else {}


def duplicate_keys(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    contract: TableContract,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """Key values held by more than one row, with how many rows hold each."""
    key = ", ".join(contract.key)
    sql = (
        f"SELECT {key}, count(*) AS rows FROM {table}{_range(contract.partition_column)}"
        f" GROUP BY {key} HAVING count(*) > 1 ORDER BY rows DESC, {key}"
    )
    return conn.execute(sql, _params(contract.partition_column, start, end)).fetchdf()


def reconciliation(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """Per delivery date: raw rows, clean rows, quarantined rows, and raw - clean - quarantined."""
    name = contract.name
    clean_date = contract.partition_column
    if clean_date:
        sql = f"""
        WITH raw AS (SELECT delivery_date AS day, count(*) AS n FROM raw.{name}
                     {_range("delivery_date")} GROUP BY 1),
             cln AS (SELECT {clean_date} AS day, count(*) AS n FROM clean.{name}
                     {_range(clean_date)} GROUP BY 1),
             qua AS (SELECT delivery_date AS day, count(*) AS n FROM quarantine.{name}
                     {_range("delivery_date")} GROUP BY 1)
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


def row_count(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    partition_column: str | None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> int:
    sql = f"SELECT count(*) FROM {table}{_range(partition_column)}"
    return int(backends.one_row(conn.execute(sql, _params(partition_column, start, end)))[0])


# Types as DuckDB's information_schema spells them.
_CATALOG_TYPES = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}


def schema_differences(
    conn: duckdb.DuckDBPyConnection, schema: str, table: str, expected: list[tuple[str, str]]
) -> pd.DataFrame:
    """Columns that are missing, unexpected or of another type than declared, in the warehouse."""
    actual = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = $schema AND table_name = $table ORDER BY ordinal_position",
        {"schema": schema, "table": table},
    ).fetchall()
    found = dict(actual)
    rows: list[tuple[str, str | None, str | None, str]] = []
    for name, dtype in expected:
        wanted = _CATALOG_TYPES.get(dtype, dtype)
        if name not in found:
            rows.append((name, wanted, None, "missing"))
        elif found[name] != wanted:
            rows.append((name, wanted, found[name], "wrong type"))
    declared = {name for name, _ in expected}
    rows += [
        (name, None, dtype, "not in the contract") for name, dtype in actual if name not in declared
    ]
    return pd.DataFrame(rows, columns=["column", "declared", "actual", "problem"])


def null_keys(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    contract: TableContract,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> tuple[int, pd.DataFrame]:
    """Rows checked, and per key column how many rows have no value in it."""
    counts = ", ".join(f"count(*) FILTER (WHERE {k} IS NULL)" for k in contract.key)
    sql = f"SELECT count(*), {counts} FROM {table}{_range(contract.partition_column)}"
    total, *nulls = backends.one_row(
        conn.execute(sql, _params(contract.partition_column, start, end))
    )
    frame = pd.DataFrame({"column": list(contract.key), "null_rows": nulls})
    return int(total), frame[frame["null_rows"] > 0].reset_index(drop=True)


def contract_violations(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    contract: TableContract,
    start: dt.date | None = None,
    end: dt.date | None = None,
    sample_size: int = 5,
) -> tuple[int, pd.DataFrame]:
    """Rows checked, and each declared rule the stored rows break: how many rows, which values.

    The rules are the ones cleaning applies (`rules.column_rules`), as the same SQL. One scan
    counts every rule; only a broken rule costs a second query, for its sample values.
    """
    checked = rules.column_rules(contract.columns, typed=False)
    where, params = (
        _range(contract.partition_column),
        _params(contract.partition_column, start, end),
    )
    counts = ", ".join(f"count(*) FILTER (WHERE {r.broken})" for r in checked)
    total, *broken = backends.one_row(
        conn.execute(f"SELECT count(*), {counts} FROM {table}{where}", params)
    )
    rows = []
    for rule, failing in zip(checked, broken, strict=True):
        if failing:
            clause = f"{where} AND {rule.broken}" if where else f" WHERE {rule.broken}"
            values = conn.execute(
                f"SELECT DISTINCT {rule.column} FROM {table}{clause} "
                f"ORDER BY 1 NULLS FIRST LIMIT {int(sample_size)}",
                params,
            )
            shown = ", ".join("NULL" if v is None else str(v) for (v,) in values.fetchall())
            rows.append((rule.column, rule.name, int(failing), shown))
    return int(total), pd.DataFrame(rows, columns=["column", "rule", "rows", "sample_values"])


def daily_volume(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    date_column: str,
    start: dt.date,
    end: dt.date,
    weeks: int = 4,
) -> pd.DataFrame:
    """Rows per day in start..end, each against the median of the same weekday in the weeks before.

    A day in the range with no rows counts 0; an earlier day with no rows is no baseline (the
    feed may not have started). Only the range and the weeks before it are read, so the cost
    follows the range, not the table's history. baseline is NULL with fewer than two earlier days.
    """
    sql = f"""
    WITH days AS (
        SELECT d::DATE AS day FROM generate_series($history::TIMESTAMP, $last::TIMESTAMP,
                                                   INTERVAL 1 DAY) AS t(d)),
    counts AS (
        SELECT {date_column} AS day, count(*) AS n FROM {table}
        WHERE {date_column} >= $history AND {date_column} < $end GROUP BY 1),
    daily AS (SELECT day, coalesce(n, 0) AS n FROM days LEFT JOIN counts USING (day))
    SELECT a.day, a.n AS rows, CASE WHEN count(b.n) >= 2 THEN median(b.n) END AS baseline,
           count(b.n) AS history_days
    FROM daily AS a LEFT JOIN daily AS b
      ON b.day < a.day AND b.day >= a.day - {7 * int(weeks)} AND dayofweek(b.day) = dayofweek(a.day)
         AND b.n > 0
    WHERE a.day >= $start
    GROUP BY a.day, a.n ORDER BY a.day"""
    params = {
        "start": start,
        "end": end,
        "last": end - dt.timedelta(days=1),
        "history": start - dt.timedelta(weeks=weeks),
    }
    frame = conn.execute(sql, params).fetchdf()
    frame["change"] = (frame["rows"] / frame["baseline"] - 1).round(3)
    return frame


def missing_hours(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    date_column: str,
    places: tuple[str, ...],
    timezone: str,
    start: dt.date,
    end: dt.date,
) -> pd.DataFrame:
    """Per place and local day, the hours with no observation, where the day has any (23 to 25
    hours)."""
    sql = f"""
    WITH days AS (
        SELECT d::DATE AS day FROM generate_series($start::TIMESTAMP, $last::TIMESTAMP,
                                                   INTERVAL 1 DAY) AS t(d)),
    expected AS (
        SELECT place, day, CAST(epoch(timezone($tz, (day + 1)::TIMESTAMP)
                                      - timezone($tz, day::TIMESTAMP)) / 3600 AS BIGINT) AS hours
        FROM days CROSS JOIN unnest($places::VARCHAR[]) AS p(place)),
    seen AS (
        SELECT origin AS place, {date_column} AS day, count(DISTINCT time_hour) AS hours
        FROM {table} WHERE {date_column} >= $start AND {date_column} < $end GROUP BY 1, 2)
    SELECT e.place, e.day, e.hours AS expected_hours, coalesce(s.hours, 0) AS observed_hours,
           e.hours - coalesce(s.hours, 0) AS missing_hours
    FROM expected AS e LEFT JOIN seen AS s USING (place, day)
    WHERE e.hours > coalesce(s.hours, 0) ORDER BY e.day, e.place"""
    return conn.execute(
        sql,
        {
            "start": start,
            "end": end,
            "last": end - dt.timedelta(days=1),
            "tz": timezone,
            "places": list(places),
        },
    ).fetchdf()


def unknown_references(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    column: str,
    reference: str,
    reference_column: str,
    date_column: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> tuple[int, pd.DataFrame]:
    """Rows checked, and each value of column absent from the reference table, with its row
    count."""
    where, params = _range(date_column), _params(date_column, start, end)
    total = backends.one_row(conn.execute(f"SELECT count(*) FROM {table}{where}", params))[0]
    clause = f"{where} AND" if where else " WHERE"
    sql = (
        f"SELECT {column} AS value, count(*) AS rows FROM {table}{clause} {column} IS NOT NULL "
        f"AND {column} NOT IN (SELECT {reference_column} FROM {reference} "
        f"WHERE {reference_column} IS NOT NULL) GROUP BY 1 ORDER BY rows DESC, value"
    )
    return int(total), conn.execute(sql, params).fetchdf()


def aggregate_mismatches(
    conn: duckdb.DuckDBPyConnection,
    mart: str,
    group_column: str,
    fact: str,
    start: dt.date,
    end: dt.date,
) -> pd.DataFrame:
    """Days on which a daily mart's flights and cancellations do not add up to the fact table."""
    sql = f"""
    WITH mart AS (
        SELECT flight_date AS day, sum(flights) AS flights, sum(cancelled) AS cancelled
        FROM {mart} WHERE flight_date >= $start AND flight_date < $end GROUP BY 1),
    fact AS (
        SELECT flight_date AS day, count(*) AS flights,
               count(*) FILTER (WHERE status = 'cancelled') AS cancelled
        FROM {fact} WHERE flight_date >= $start AND flight_date < $end
          AND {group_column} IS NOT NULL GROUP BY 1)
    SELECT day, coalesce(mart.flights, 0) AS mart_flights,
           coalesce(fact.flights, 0) AS fact_flights,
           coalesce(mart.cancelled, 0) AS mart_cancelled,
           coalesce(fact.cancelled, 0) AS fact_cancelled
    FROM mart FULL JOIN fact USING (day)
    WHERE mart_flights <> fact_flights OR mart_cancelled <> fact_cancelled ORDER BY day"""
    return conn.execute(sql, {"start": start, "end": end}).fetchdf()


def quarantined_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    key: tuple[str, ...],
    reason_column: str,
    daily: bool,
    start: dt.date | None = None,
    end: dt.date | None = None,
    sample_size: int = 20,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A quarantine table's rows in the range: the count per reason, and a sample of rows."""
    where = _range("delivery_date" if daily else None)
    params = _params("delivery_date" if daily else None, start, end)
    columns = ", ".join(["delivery_date", *key, reason_column])
    sample = conn.execute(
        f"SELECT {columns} FROM {table}{where} ORDER BY delivery_date LIMIT {int(sample_size)}",
        params,
    ).fetchdf()
    by_reason = conn.execute(
        f"SELECT {reason_column} AS reason, count(*) AS rows FROM {table}"
        f"{where} GROUP BY 1 ORDER BY 2 DESC, 1",
        params,
    ).fetchdf()
    return by_reason, sample


def table_checksum(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    exclude: tuple[str, ...] = (),
    digits: int | None = 6,
) -> tuple[int, str]:
    """Rows and an order-independent digest of a table's content: equal tables, equal digests.

    Doubles are rounded to `digits` places, for tables built by other code (the benchmarks'
    pandas script); with `digits=None` they are compared at full precision (the shortest text
    that reads back as the same bits). Timestamps with a zone are taken as epoch microseconds
    (their text follows the session's zone).
    Columns in `exclude` (load times, say) are left out.
    """
    schema, name = table.split(".")
    columns = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = $schema AND table_name = $table ORDER BY column_name",
        {"schema": schema, "table": name},
    ).fetchall()
    parts = []
    for column, dtype in columns:
        if column in exclude:
            continue
        if dtype == "DOUBLE" and digits is not None:
            parts.append(f"round({column}, {int(digits)})::VARCHAR")
        elif dtype == "TIMESTAMP WITH TIME ZONE":
            parts.append(f"epoch_us({column})::VARCHAR")
        else:
            parts.append(f"{column}::VARCHAR")
    row = "concat_ws('|', " + ", ".join(f"coalesce({p}, '∅')" for p in parts) + ")"
    rows, digest = backends.one_row(
        conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(r, chr(10) ORDER BY r), '')) "
            f"FROM (SELECT {row} AS r FROM {table})"
        )
    )
    return int(rows), digest
