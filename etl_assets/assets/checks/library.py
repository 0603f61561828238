"""The checks, one builder each: what it queries (`pipeline/quality.py`), when it fails, and
what it tells a person about the failing rows."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from etl_assets.assets.checks.framework import (
    ERROR,
    WARN,
    Scope,
    TableCheck,
    Verdict,
    counted,
    date_range,
    share,
)
from etl_assets.assets.keys import table_key
from etl_assets.assets.metadata import markdown
from etl_assets.pipeline import extract, quality, rules
from etl_assets.pipeline.contract import FEED_TIMEZONE, NYC_ORIGINS
from etl_assets.pipeline.tables import QUARANTINE_REASON, UNDECLARED, Column, TableContract
from etl_assets.runtime.resources import QUARANTINE_LIMIT_PERCENT, VOLUME_TOLERANCE_PERCENT

# --- schema --------------------------------------------------------------------------------


def columns_match_contract(
    schema: str, name: str, columns: tuple[Column, ...], blocking: bool = True
) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        expected = [(c.name, c.dtype) for c in columns]
        diff = quality.schema_differences(scope.conn, schema, name, expected)
        summary = (
            f"{len(expected)} columns as declared"
            if diff.empty
            else f"{len(diff)} column(s) differ from the contract: "
            + ", ".join(f"{r.column} {r.problem}" for r in diff.itertuples())
        )
        return Verdict(
            diff.empty,
            summary,
            {
                "declared_columns": dg.MetadataValue.int(len(expected)),
                "differences": dg.MetadataValue.int(len(diff)),
                "sample": markdown(diff),
            },
        )

    return TableCheck(
        "columns_match_contract",
        ERROR,
        blocking,
        f"{schema}.{name} in the warehouse has exactly the contract's columns and types; "
        "readers and the IO manager's inserts by name depend on them.",
        run,
    )


def column_schema_change(columns: tuple[Column, ...]) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        declared = [(c.name, c.dtype) for c in columns]
        previous = scope.previous_schema
        if previous is None:
            return Verdict(True, "no earlier materialization recorded a schema", {})
        before, now = dict(previous), dict(declared)
        added = [c for c in now if c not in before]
        removed = [c for c in before if c not in now]
        retyped = [
            f"{c} {before[c]} → {now[c]}" for c in now if c in before and before[c] != now[c]
        ]
        changes = (
            ([f"added {', '.join(added)}"] if added else [])
            + ([f"removed {', '.join(removed)}"] if removed else [])
            + retyped
        )
        return Verdict(
            not changes,
            "; ".join(changes) or f"{len(declared)} columns, as at the previous materialization",
            {
                "added_columns": dg.MetadataValue.int(len(added)),
                "removed_columns": dg.MetadataValue.int(len(removed)),
                "retyped_columns": dg.MetadataValue.int(len(retyped)),
            },
        )

    return TableCheck(
        "column_schema_change",
        WARN,
        False,
        "the table's columns and types are those its previous materialization recorded; a "
        "contract change between deployments shows here for readers of the table.",
        run,
    )


def delivered_as_declared(contract: TableContract) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        start, end = date_range(scope, "delivery_date" if contract.delivered_daily else None)
        drifted = extract.drifted_files(scope.conn, contract, start, end)
        undeclared = sorted({c for _, columns, _ in drifted for c in columns})
        missing = sorted({c for _, _, columns in drifted for c in columns})
        summary = (
            f"{len(drifted)} file(s) differ from the contract: "
            + extract.drift_in_words(undeclared, missing)
            if drifted
            else "every file has the contract's columns"
        )
        sample = pd.DataFrame(
            [(f, ", ".join(u), ", ".join(m)) for f, u, m in drifted[:20]],
            columns=["file", "undeclared", "missing"],
        )
        return Verdict(
            not drifted,
            summary,
            {
                "drifted_files": dg.MetadataValue.int(len(drifted)),
                "undeclared_columns": dg.MetadataValue.text(", ".join(undeclared)),
                "missing_columns": dg.MetadataValue.text(", ".join(missing)),
                "sample": markdown(sample),
            },
        )

    return TableCheck(
        "delivered_as_declared",
        WARN,
        False,
        f"each {contract.name} file has exactly the contract's columns. Under "
        "ETL_SCHEMA_DRIFT=warn a file with more is loaded, the extra columns kept in raw's "
        f"{UNDECLARED}, and one without a nullable column loads it as NULL: this check names "
        "them until the contract declares them (docs/deliveries.md).",
        run,
    )


# --- keys and values -----------------------------------------------------------------------


def key_is_not_null(table: str, contract: TableContract) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        start, end = date_range(scope, contract.partition_column)
        checked, nulls = quality.null_keys(scope.conn, table, contract, start, end)
        failing = int(nulls["null_rows"].max()) if len(nulls) else 0
        summary = (
            "no key column is empty"
            if nulls.empty
            else "rows without a key: "
            + ", ".join(f"{r.column} {r.null_rows:,}" for r in nulls.itertuples())
        )
        return Verdict(nulls.empty, summary, counted(checked, failing, nulls))

    return TableCheck(
        "key_is_not_null",
        ERROR,
        True,
        f"every row of {table} has its whole key ({', '.join(contract.key)}); a row without "
        "one cannot be joined, deduplicated or corrected.",
        run,
    )


def key_is_unique(table: str, contract: TableContract, blocking: bool = True) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        start, end = date_range(scope, contract.partition_column)
        duplicates = quality.duplicate_keys(scope.conn, table, contract, start, end)
        checked = quality.row_count(scope.conn, table, contract.partition_column, start, end)
        extra = int((duplicates["rows"] - 1).sum()) if len(duplicates) else 0
        summary = (
            "every key is unique"
            if duplicates.empty
            else f"{len(duplicates):,} key(s) held by more than one row ({extra:,} extra rows)"
        )
        return Verdict(
            duplicates.empty,
            summary,
            counted(
                checked, extra, duplicates, duplicate_keys=dg.MetadataValue.int(len(duplicates))
            ),
        )

    return TableCheck(
        "key_is_unique",
        ERROR,
        blocking,
        f"no two rows of {table} share the key ({', '.join(contract.key)}); duplicates would "
        "double-count in every mart.",
        run,
    )


def values_within_contract(
    table: str, contract: TableContract, blocking: bool = True
) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        start, end = date_range(scope, contract.partition_column)
        checked, broken = quality.contract_violations(scope.conn, table, contract, start, end)
        summary = (
            "every value meets its declared rule"
            if broken.empty
            else "rules broken: "
            + "; ".join(f"{r.rule} ({r.rows:,} rows)" for r in broken.itertuples())
        )
        failing = int(broken["rows"].max()) if len(broken) else 0
        return Verdict(
            broken.empty,
            summary,
            counted(
                checked,
                failing,
                broken,
                rules_checked=dg.MetadataValue.int(rule_count),
                rules_broken=dg.MetadataValue.int(len(broken)),
            ),
        )

    rule_count = len(rules.column_rules(contract.columns, typed=False))

    return TableCheck(
        "values_within_contract",
        ERROR,
        blocking,
        f"every stored value of {table} meets the contract: required columns present, numbers "
        "within physical ranges, codes among the accepted values and patterns.",
        run,
    )


# --- reconciliation and quarantine ---------------------------------------------------------


def raw_equals_clean_plus_quarantine(contract: TableContract) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        counts = quality.reconciliation(scope.conn, contract, scope.start, scope.end)
        off = counts[counts["difference"] != 0]
        raw, clean, quarantined = (
            int(counts[c].sum()) for c in ("raw_rows", "clean_rows", "quarantined_rows")
        )
        summary = (
            f"{raw:,} raw = {clean:,} clean + {quarantined:,} quarantined"
            if off.empty
            else f"{len(off)} day(s) where raw ≠ clean + quarantined"
        )
        return Verdict(
            off.empty,
            summary,
            {
                "raw_rows": dg.MetadataValue.int(raw),
                "clean_rows": dg.MetadataValue.int(clean),
                "quarantined_rows": dg.MetadataValue.int(quarantined),
                "days_off": dg.MetadataValue.int(len(off)),
                "sample": markdown(off),
            },
        )

    return TableCheck(
        "raw_equals_clean_plus_quarantine",
        ERROR,
        True,
        "for every delivery date, raw rows = clean rows + quarantined rows: no row is lost or "
        "duplicated on the way.",
        run,
        additional_deps=(table_key("raw", contract.name), table_key("quarantine", contract.name)),
    )


def quarantined_share_within_limit(contract: TableContract) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        limit = scope.policy.quarantine_limit
        counts = quality.reconciliation(scope.conn, contract, scope.start, scope.end)
        counts["share"] = (
            (counts["quarantined_rows"] / counts["raw_rows"].where(counts["raw_rows"] > 0))
            .fillna(0)
            .round(4)
        )
        over = counts[counts["share"] > limit]
        raw, quarantined = int(counts["raw_rows"].sum()), int(counts["quarantined_rows"].sum())
        worst = float(counts["share"].max()) if len(counts) else 0.0
        summary = (
            f"worst day {worst:.2%} quarantined, limit {limit:.0%}"
            if over.empty
            else f"{len(over)} day(s) over the {limit:.0%} quarantine limit, worst "
            f"{worst:.2%}: the delivery is mostly bad, so it is kept out of the marts"
        )
        return Verdict(
            over.empty,
            summary,
            {
                **counted(raw, quarantined, over[["day", "raw_rows", "quarantined_rows", "share"]]),
                "limit": dg.MetadataValue.float(limit),
                "worst_share": dg.MetadataValue.float(worst),
                "days_over_limit": dg.MetadataValue.int(len(over)),
            },
        )

    return TableCheck(
        "quarantined_share_within_limit",
        ERROR,
        True,
        f"no delivery date has more than ETL_QUARANTINE_LIMIT_PERCENT (default "
        f"{QUARANTINE_LIMIT_PERCENT}%) of its rows "
        "quarantined; a mostly bad file fails loudly instead of loading a mostly empty day.",
        run,
        additional_deps=(table_key("raw", contract.name), table_key("quarantine", contract.name)),
    )


def no_rows_quarantined(contract: TableContract) -> TableCheck:
    table = f"quarantine.{contract.name}"
    date_column = "delivery_date" if contract.delivered_daily else None

    def run(scope: Scope) -> Verdict:
        start, end = date_range(scope, date_column)
        by_reason, rows = quality.quarantined_rows(
            scope.conn, table, contract.key, QUARANTINE_REASON, bool(date_column), start, end
        )
        total = int(by_reason["rows"].sum()) if len(by_reason) else 0
        summary = (
            "nothing quarantined"
            if not total
            else f"{total:,} row(s) quarantined: "
            + "; ".join(f"{r.reason} ({r.rows:,})" for r in by_reason.head(3).itertuples())
        )
        return Verdict(
            total == 0,
            summary,
            {
                "quarantined_rows": dg.MetadataValue.int(total),
                "by_reason": markdown(by_reason),
                "sample": markdown(rows),
            },
        )

    return TableCheck(
        "no_rows_quarantined",
        WARN,
        False,
        "the delivery had no row that breaks the contract; each quarantined row is listed with "
        "its reasons, so a defect in the source is described where analysts look.",
        run,
    )


# --- volume and completeness ---------------------------------------------------------------


def volume_within_recent_history(contract: TableContract) -> TableCheck:
    table = f"raw.{contract.name}"

    def run(scope: Scope) -> Verdict:
        policy = scope.policy
        start, end = scope.days()
        days = quality.daily_volume(
            scope.conn,
            table,
            "delivery_date",
            start,
            end,
            weeks=policy.volume_history_weeks,
        )
        judged = days[days["baseline"].notna()]
        odd = judged[judged["change"].abs() > policy.volume_tolerance]
        summary = (
            f"{len(judged)} day(s) within {policy.volume_tolerance:.0%} of the same "
            f"weekday's median"
            + (f"; {len(days) - len(judged)} without history" if len(judged) < len(days) else "")
            if odd.empty
            else f"{len(odd)} day(s) far from their usual volume: "
            + ", ".join(
                f"{r.day:%Y-%m-%d} {r.rows:,} rows vs {r.baseline:,.0f} ({r.change:+.0%})"
                for r in odd.head(5).itertuples()
            )
        )
        return Verdict(
            odd.empty,
            summary,
            {
                "days_judged": dg.MetadataValue.int(len(judged)),
                "days_without_history": dg.MetadataValue.int(len(days) - len(judged)),
                "anomalous_days": dg.MetadataValue.int(len(odd)),
                "tolerance": dg.MetadataValue.float(policy.volume_tolerance),
                "sample": markdown(odd),
            },
        )

    return TableCheck(
        "volume_within_recent_history",
        WARN,
        False,
        f"each day's delivered rows are within ETL_VOLUME_TOLERANCE_PERCENT (default "
        f"{VOLUME_TOLERANCE_PERCENT}%) of the median of the same weekday over the previous "
        "weeks; a missing or truncated file, or a holiday, shows here.",
        run,
    )


def every_airport_reports_every_hour() -> TableCheck:
    def run(scope: Scope) -> Verdict:
        start, end = scope.days()
        gaps = quality.missing_hours(
            scope.conn,
            "clean.weather",
            "observation_date",
            NYC_ORIGINS,
            FEED_TIMEZONE,
            start,
            end,
        )
        days = (end - start).days
        missing = int(gaps["missing_hours"].sum()) if len(gaps) else 0
        summary = (
            "every airport has every local hour"
            if gaps.empty
            else f"{missing:,} airport-hour(s) without a report on {len(gaps):,} airport-day(s)"
        )
        return Verdict(
            gaps.empty,
            summary,
            {
                **counted(days * 24 * len(NYC_ORIGINS), missing, gaps),
                "airport_days_incomplete": dg.MetadataValue.int(len(gaps)),
            },
        )

    return TableCheck(
        "every_airport_reports_every_hour",
        WARN,
        False,
        "each of EWR, JFK and LGA has one clean observation for every local hour of the day "
        "(23 or 25 on the days the clocks change); flights in a missing hour get no weather.",
        run,
    )


# --- marts ---------------------------------------------------------------------------------


def every_clean_flight_present() -> TableCheck:
    def run(scope: Scope) -> Verdict:
        clean = quality.row_count(
            scope.conn, "clean.flights", "flight_date", scope.start, scope.end
        )
        mart = quality.row_count(
            scope.conn, "marts.fct_flights", "flight_date", scope.start, scope.end
        )
        return Verdict(
            clean == mart,
            f"{mart:,} of {clean:,} clean flights in the fact table",
            {
                "clean_rows": dg.MetadataValue.int(clean),
                "mart_rows": dg.MetadataValue.int(mart),
                "difference": dg.MetadataValue.int(clean - mart),
            },
        )

    return TableCheck(
        "every_clean_flight_present",
        ERROR,
        True,
        "the fact table holds exactly as many flights per range as clean.flights; a join that "
        "drops or fans out rows fails here.",
        run,
        additional_deps=(table_key("clean", "flights"),),
    )


def flights_have_known(what: str, column: str, reference: str, reference_column: str) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        checked, unknown = quality.unknown_references(
            scope.conn,
            "clean.flights",
            column,
            f"clean.{reference}",
            reference_column,
            "flight_date",
            scope.start,
            scope.end,
        )
        failing = int(unknown["rows"].sum()) if len(unknown) else 0
        summary = (
            f"every {column} is in clean.{reference}"
            if unknown.empty
            else f"{len(unknown):,} {column} value(s) missing from clean.{reference}, on "
            f"{failing:,} of {checked:,} flights ({share(failing, checked):.1%}): "
            + ", ".join(f"{r.value} ({r.rows:,})" for r in unknown.head(5).itertuples())
        )
        return Verdict(
            unknown.empty,
            summary,
            counted(checked, failing, unknown, unknown_values=dg.MetadataValue.int(len(unknown))),
        )

    return TableCheck(
        f"flights_have_known_{what}",
        WARN,
        False,
        f"every flight's {column} is in clean.{reference}.{reference_column}; the source's "
        f"reference tables are known to be incomplete, so an unknown value only warns and the "
        f"fact table shows its name as empty.",
        run,
        additional_deps=(table_key("clean", "flights"), table_key("clean", reference)),
    )


def adds_up_to_fct_flights(mart: str, group_column: str) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        off = quality.aggregate_mismatches(
            scope.conn, f"marts.{mart}", group_column, "marts.fct_flights", *scope.days()
        )
        summary = (
            "flights and cancellations add up to fct_flights on every day"
            if off.empty
            else f"{len(off)} day(s) where the totals differ from fct_flights"
        )
        return Verdict(
            off.empty,
            summary,
            {"days_off": dg.MetadataValue.int(len(off)), "sample": markdown(off)},
        )

    return TableCheck(
        "adds_up_to_fct_flights",
        ERROR,
        False,
        f"per day, the sums of flights and cancellations over {mart} equal the counts in "
        "marts.fct_flights; an aggregate that drops or double-counts rows fails here.",
        run,
        additional_deps=(table_key("marts", "fct_flights"),),
    )
