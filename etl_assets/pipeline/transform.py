"""Transform: raw text → clean rows and quarantined rows, as one SQL statement from the contract.

The statement types each delivered column (`typed_select_sql`), derives the feed's columns,
evaluates every rule (the contract's column rules from `rules.py`, then the feed's own), marks
duplicate keys among the rows that pass, and gives each failing row the reasons it broke. It runs
in the warehouse: `load_clean` stages it once and writes clean and quarantine in one transaction,
so for each delivery date raw rows = clean rows + quarantined rows, and a failed write changes
nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from etl_assets.pipeline import feed_rules as feed_rules_of
from etl_assets.pipeline import rules, warehouse
from etl_assets.pipeline.rules import UNPARSED, Rule
from etl_assets.pipeline.tables import QUARANTINE_REASON, TableContract, quarantine_columns

_NUMERIC = ("BIGINT", "DOUBLE")


def typed_select_sql(contract: TableContract, raw_table: str, *, by_delivery_date: bool) -> str:
    """SQL that reads a raw table and types each delivered column as the contract declares.

    'NA' and empty text become NULL. A value that does not parse comes back NULL with its text in
    `<column>__unparsed`: BIGINT takes whole numbers only (a plain cast would round '12.5' to 13),
    DOUBLE finite numbers only ('nan' is not a measurement), TIMESTAMPTZ only with an offset.
    `_row` keeps the raw row's position, so "the first of two duplicates" means the first
    delivered. With by_delivery_date the query takes $start and $end (dates, end exclusive).
    """
    selects = []
    for col in contract.parsed_columns:
        text = f"NULLIF(NULLIF(TRIM({col.source}), 'NA'), '')"
        if col.dtype == "VARCHAR":
            selects.append(f"{text} AS {col.name}")
            continue
        if col.dtype in _NUMERIC:
            number = f"TRY_CAST({text} AS DOUBLE)"
            value = (
                f"CASE WHEN {number} = TRUNC({number}) THEN TRY_CAST({number} AS BIGINT) END"
                if col.dtype == "BIGINT"
                else f"CASE WHEN isfinite({number}) THEN {number} END"
            )
        elif col.dtype == "TIMESTAMPTZ":
            # Only with an explicit offset: without one DuckDB would read the session's zone.
            value = (
                f"CASE WHEN regexp_matches({text}, '(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$') "
                f"THEN TRY_CAST({text} AS TIMESTAMPTZ) END"
            )
        else:
            value = f"TRY_CAST({text} AS {col.dtype})"
        selects.append(f"{value} AS {col.name}")
        selects.append(
            f"CASE WHEN {text} IS NOT NULL AND ({value}) IS NULL "
            f"THEN {col.source} END AS {col.name}{UNPARSED}"
        )
    selects += ["delivery_date", "_source_file", "rowid AS _row"]
    where = " WHERE delivery_date >= $start AND delivery_date < $end" if by_delivery_date else ""
    return f"SELECT {', '.join(selects)} FROM {raw_table}{where}"


def feed_rules(contract: TableContract) -> tuple[list[list[str]], list[Rule]]:
    """The columns a feed derives (in dependent steps) and every rule its rows must meet."""
    steps: list[list[str]] = []
    checks = rules.column_rules(contract.columns, typed=True)
    if contract.delivered_daily:
        derived, daily_checks = feed_rules_of.daily(contract)
        steps.append(derived)
        checks += daily_checks
    extra = feed_rules_of.OWN_RULES.get(contract.name)
    if extra:
        more_steps, more_checks = extra()
        steps += more_steps
        checks += more_checks
    checks.append(Rule(f"duplicate key ({', '.join(contract.key)})", "_duplicate"))
    return steps, checks


def staged_sql(contract: TableContract, raw_table: str) -> str:
    """Every raw row of the range once: the contract's columns, `_rules` it broke, `_reason`."""
    steps, checks = feed_rules(contract)
    *row_rules, duplicate = checks
    sql = typed_select_sql(contract, raw_table, by_delivery_date=contract.delivered_daily)
    for number, derived in enumerate(steps):
        sql = f"SELECT *, {', '.join(derived)} FROM ({sql}) AS step{number}"
    broken = ", ".join(f"CASE WHEN {r.broken} THEN {i} END" for i, r in enumerate(row_rules))
    return f"""
    WITH checked AS (
        SELECT *, list_filter([{broken}], r -> r IS NOT NULL) AS _broken FROM ({sql}) AS derived
    ), ranked AS (
        SELECT *, {duplicate_sql(contract)} AS _duplicate FROM checked
    )
    SELECT * EXCLUDE (_broken, _duplicate),
           CASE WHEN _duplicate THEN [{len(row_rules)}] ELSE _broken END AS _rules,
           CASE WHEN _duplicate THEN {duplicate.reason_sql}
                WHEN len(_broken) > 0 THEN concat_ws('; ', {
        ", ".join(
            f"CASE WHEN list_contains(_broken, {i}) THEN {r.reason_sql} END"
            for i, r in enumerate(row_rules)
        )
    }) END AS {QUARANTINE_REASON}
    FROM ranked"""


def duplicate_sql(contract: TableContract) -> str:
    """True for the second and later delivered rows of a key among rows that pass every rule."""
    key = ", ".join(contract.key)
    return (
        f"len(_broken) = 0 AND row_number() OVER (PARTITION BY len(_broken) = 0, {key} "
        f"ORDER BY _row) > 1"
    )


@dataclass(frozen=True)
class CleanCounts:
    """What one load of a clean table wrote: rows kept, rows quarantined, each per day and rule."""

    clean_rows: int
    quarantined_rows: int
    rule_counts: dict[str, int]  # rows failing each rule (a row may fail several)
    by_day: dict[dt.date | None, tuple[int, int]]  # delivery date: (clean, quarantined)


def load_clean(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> CleanCounts:
    """Replace the range's clean and quarantined rows with the split of its raw rows, atomically.

    A daily table's range is its days ($start <= day < $end); a reference table is replaced whole.
    """
    daily = contract.delivered_daily
    params = warehouse.range_params("delivery_date" if daily else None, start, end)
    clean_table = warehouse.table("clean", contract.name)
    quarantine_table = warehouse.table("quarantine", contract.name)
    held = contract.columns + quarantine_columns(contract)
    names = rules_by_number(contract)
    # The clean table's days stand for the quarantine's too: the two are only written together.
    days = warehouse.day_range(start, end) if daily else None
    with warehouse.transaction(conn, clean_table, days):
        warehouse.ensure_table(
            conn, "clean", contract.name, contract.columns, contract.partition_column
        )
        warehouse.ensure_table(
            conn, "quarantine", contract.name, held, "delivery_date" if daily else None
        )
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE staged_rows AS "
            + staged_sql(contract, warehouse.table("raw", contract.name)),
            params,
        )
        warehouse.replace_rows(
            conn,
            clean_table,
            contract.columns,
            contract.partition_column,
            start,
            end,
            f"SELECT * FROM staged_rows WHERE {QUARANTINE_REASON} IS NULL",
        )
        warehouse.replace_rows(
            conn,
            quarantine_table,
            held,
            "delivery_date" if daily else None,
            start,
            end,
            f"SELECT * FROM staged_rows WHERE {QUARANTINE_REASON} IS NOT NULL",
        )
        by_day = {
            day: (int(kept), int(bad))
            for day, kept, bad in conn.execute(
                f"SELECT delivery_date, count(*) FILTER (WHERE {QUARANTINE_REASON} IS NULL), "
                f"count(*) FILTER (WHERE {QUARANTINE_REASON} IS NOT NULL) FROM staged_rows "
                f"GROUP BY 1 ORDER BY 1"
            ).fetchall()
        }
        rule_counts = {
            names[number]: int(rows)
            for number, rows in conn.execute(
                "SELECT r, count(*) FROM staged_rows, unnest(_rules) AS t(r) GROUP BY r ORDER BY r"
            ).fetchall()
        }
        conn.execute("DROP TABLE staged_rows")
    return CleanCounts(
        clean_rows=sum(k for k, _ in by_day.values()),
        quarantined_rows=sum(q for _, q in by_day.values()),
        rule_counts=rule_counts,
        by_day=by_day,
    )


def rules_by_number(contract: TableContract) -> list[str]:
    """The names of a feed's rules, in the order `_rules` numbers them."""
    return [r.name for r in feed_rules(contract)[1]]
