"""Asset checks: the pipeline's data tests, declared once per table, evaluated in the warehouse.

Severity is a decision, stated at the start of each check's description:
- ERROR, blocking: bad data must not flow downstream. A failure stops every asset downstream in
  the same run (the marts keep their previous rows). The clean layer never stores a row that
  breaks the contract, because such rows go to quarantine, so these fail only when something
  is broken: the code, the warehouse, or a delivery that is mostly bad.
- WARN: the source is known to be incomplete (planes missing from the registry, airports
  missing from the airport list, hours without a weather report); analysts can live with it,
  and the check says how much is affected.

A check on a partitioned table judges the partitions of the run that just wrote it, through
the $start/$end range of its queries: its cost follows the partitions, not the table's history.
The queries are plain functions in `etl_assets.pipeline.quality`; this module turns what they
return into results a person can act on: counts, the failing share and a sample as markdown.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd

from etl_assets.assets.keys import table_key
from etl_assets.assets.metadata import markdown
from etl_assets.pipeline import quality, rules
from etl_assets.pipeline.contract import (
    NYC_ORIGINS,
    QUARANTINE_REASON,
    Column,
    TableContract,
    quarantine_columns,
    raw_columns,
)
from etl_assets.pipeline.marts import MARTS
from etl_assets.pipeline.transform import LOCAL_TZ
from etl_assets.resources import (
    QUARANTINE_LIMIT_PERCENT,
    VOLUME_TOLERANCE_PERCENT,
    QualityPolicy,
)

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


@dataclass(frozen=True)
class Scope:
    """What a check looks at: a warehouse connection and the run's days (None: whole table)."""

    conn: object
    start: dt.date | None
    end: dt.date | None  # exclusive
    policy: QualityPolicy = field(default_factory=QualityPolicy)
    # (column, type) as the table's previous materialization recorded them; None if none did
    previous_schema: list[tuple[str, str]] | None = None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    summary: str  # one line: what is wrong, or what was checked
    metadata: dict[str, object]


@dataclass(frozen=True)
class TableCheck:
    """One check of one table: its name, severity, why, and how to evaluate it."""

    name: str
    severity: dg.AssetCheckSeverity
    blocking: bool
    description: str
    evaluate: Callable[[Scope], Verdict]
    additional_deps: tuple[dg.AssetKey, ...] = ()

    def spec(self, asset: dg.AssetKey) -> dg.AssetCheckSpec:
        label = "ERROR, blocking" if self.blocking else self.severity.value
        return dg.AssetCheckSpec(self.name, asset=asset, blocking=self.blocking,
                                 additional_deps=list(self.additional_deps),
                                 description=f"{label}: {self.description}")

    def result(self, asset: dg.AssetKey, scope: Scope) -> dg.AssetCheckResult:
        verdict = self.evaluate(scope)
        return dg.AssetCheckResult(
            asset_key=asset, check_name=self.name, passed=verdict.passed,
            severity=self.severity, description=verdict.summary, metadata=verdict.metadata)


def evaluate(asset: dg.AssetKey, checks: list[TableCheck], scope: Scope
             ) -> Iterator[dg.AssetCheckResult]:
    for check in checks:
        yield check.result(asset, scope)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _counted(checked: int, failing: int, sample: pd.DataFrame, **extra) -> dict[str, object]:
    return {
        "checked_rows": dg.MetadataValue.int(checked),
        "failing_rows": dg.MetadataValue.int(failing),
        "failing_share": dg.MetadataValue.float(_share(failing, checked)),
        "sample": markdown(sample),
        **extra,
    }


def _range(scope: Scope, date_column: str | None) -> tuple[dt.date | None, dt.date | None]:
    return (scope.start, scope.end) if date_column else (None, None)


# --- schema --------------------------------------------------------------------------------

def columns_match_contract(schema: str, name: str, columns: tuple[Column, ...],
                           blocking: bool = True) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        expected = [(c.name, c.dtype) for c in columns]
        diff = quality.schema_differences(scope.conn, schema, name, expected)
        summary = (f"{len(expected)} columns as declared" if diff.empty else
                   f"{len(diff)} column(s) differ from the contract: "
                   + ", ".join(f"{r.column} {r.problem}" for r in diff.itertuples()))
        return Verdict(diff.empty, summary, {
            "declared_columns": dg.MetadataValue.int(len(expected)),
            "differences": dg.MetadataValue.int(len(diff)),
            "sample": markdown(diff),
        })

    return TableCheck(
        "columns_match_contract", ERROR, blocking,
        f"{schema}.{name} in the warehouse has exactly the contract's columns and types; "
        "readers and the IO manager's inserts by name depend on them.", run)


def column_schema_change(columns: tuple[Column, ...]) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        declared = [(c.name, c.dtype) for c in columns]
        previous = scope.previous_schema
        if previous is None:
            return Verdict(True, "no earlier materialization recorded a schema", {})
        before, now = dict(previous), dict(declared)
        added = [c for c in now if c not in before]
        removed = [c for c in before if c not in now]
        retyped = [f"{c} {before[c]} → {now[c]}" for c in now if c in before and before[c] != now[c]]
        changes = ([f"added {', '.join(added)}"] if added else []) + (
            [f"removed {', '.join(removed)}"] if removed else []) + retyped
        return Verdict(not changes, "; ".join(changes) or
                       f"{len(declared)} columns, as at the previous materialization", {
            "added_columns": dg.MetadataValue.int(len(added)),
            "removed_columns": dg.MetadataValue.int(len(removed)),
            "retyped_columns": dg.MetadataValue.int(len(retyped)),
        })

    return TableCheck(
        "column_schema_change", WARN, False,
        "the table's columns and types are those its previous materialization recorded; a "
        "contract change between deployments shows here for readers of the table.", run)


# --- keys and values -----------------------------------------------------------------------

def key_is_not_null(table: str, contract: TableContract) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        start, end = _range(scope, contract.partition_column)
        checked, nulls = quality.null_keys(scope.conn, table, contract, start, end)
        failing = int(nulls["null_rows"].max()) if len(nulls) else 0
        summary = ("no key column is empty" if nulls.empty else
                   "rows without a key: " + ", ".join(f"{r.column} {r.null_rows:,}"
                                                      for r in nulls.itertuples()))
        return Verdict(nulls.empty, summary, _counted(checked, failing, nulls))

    return TableCheck(
        "key_is_not_null", ERROR, True,
        f"every row of {table} has its whole key ({', '.join(contract.key)}); a row without "
        "one cannot be joined, deduplicated or corrected.", run)


def key_is_unique(table: str, contract: TableContract, blocking: bool = True) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        start, end = _range(scope, contract.partition_column)
        duplicates = quality.duplicate_keys(scope.conn, table, contract, start, end)
        checked = quality.row_count(scope.conn, table, contract.partition_column, start, end)
        extra = int((duplicates["rows"] - 1).sum()) if len(duplicates) else 0
        summary = ("every key is unique" if duplicates.empty else
                   f"{len(duplicates):,} key(s) held by more than one row ({extra:,} extra rows)")
        return Verdict(duplicates.empty, summary, _counted(
            checked, extra, duplicates, duplicate_keys=dg.MetadataValue.int(len(duplicates))))

    return TableCheck(
        "key_is_unique", ERROR, blocking,
        f"no two rows of {table} share the key ({', '.join(contract.key)}); duplicates would "
        "double-count in every mart.", run)


def values_within_contract(table: str, contract: TableContract, blocking: bool = True
                           ) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        start, end = _range(scope, contract.partition_column)
        checked, broken = quality.contract_violations(scope.conn, table, contract, start, end)
        summary = ("every value meets its declared rule" if broken.empty else
                   "rules broken: " + "; ".join(f"{r.rule} ({r.rows:,} rows)"
                                                for r in broken.itertuples()))
        failing = int(broken["rows"].max()) if len(broken) else 0
        return Verdict(broken.empty, summary, _counted(
            checked, failing, broken, rules_checked=dg.MetadataValue.int(rule_count),
            rules_broken=dg.MetadataValue.int(len(broken))))

    rule_count = len(rules.column_rules(contract.columns, typed=False))

    return TableCheck(
        "values_within_contract", ERROR, blocking,
        f"every stored value of {table} meets the contract: required columns present, numbers "
        "within physical ranges, codes among the accepted values and patterns.", run)


# --- reconciliation and quarantine ---------------------------------------------------------

def raw_equals_clean_plus_quarantine(contract: TableContract) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        counts = quality.reconciliation(scope.conn, contract, scope.start, scope.end)
        off = counts[counts["difference"] != 0]
        raw, clean, quarantined = (int(counts[c].sum()) for c in
                                   ("raw_rows", "clean_rows", "quarantined_rows"))
        summary = (f"{raw:,} raw = {clean:,} clean + {quarantined:,} quarantined" if off.empty
                   else f"{len(off)} day(s) where raw ≠ clean + quarantined")
        return Verdict(off.empty, summary, {
            "raw_rows": dg.MetadataValue.int(raw),
            "clean_rows": dg.MetadataValue.int(clean),
            "quarantined_rows": dg.MetadataValue.int(quarantined),
            "days_off": dg.MetadataValue.int(len(off)),
            "sample": markdown(off),
        })

    return TableCheck(
        "raw_equals_clean_plus_quarantine", ERROR, True,
        "for every delivery date, raw rows = clean rows + quarantined rows: no row is lost or "
        "duplicated on the way.", run,
        additional_deps=(table_key("raw", contract.name), table_key("quarantine", contract.name)))


def quarantined_share_within_limit(contract: TableContract) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        limit = scope.policy.quarantine_limit
        counts = quality.reconciliation(scope.conn, contract, scope.start, scope.end)
        counts["share"] = (counts["quarantined_rows"] / counts["raw_rows"].where(
            counts["raw_rows"] > 0)).fillna(0).round(4)
        over = counts[counts["share"] > limit]
        raw, quarantined = int(counts["raw_rows"].sum()), int(counts["quarantined_rows"].sum())
        worst = float(counts["share"].max()) if len(counts) else 0.0
        summary = (f"worst day {worst:.2%} quarantined, limit {limit:.0%}" if over.empty else
                   f"{len(over)} day(s) over the {limit:.0%} quarantine limit, worst "
                   f"{worst:.2%}: the delivery is mostly bad, so it is kept out of the marts")
        return Verdict(over.empty, summary, {
            **_counted(raw, quarantined, over[["day", "raw_rows", "quarantined_rows", "share"]]),
            "limit": dg.MetadataValue.float(limit),
            "worst_share": dg.MetadataValue.float(worst),
            "days_over_limit": dg.MetadataValue.int(len(over)),
        })

    return TableCheck(
        "quarantined_share_within_limit", ERROR, True,
        f"no delivery date has more than ETL_QUARANTINE_LIMIT_PERCENT (default "
        f"{QUARANTINE_LIMIT_PERCENT}%) of its rows "
        "quarantined; a mostly bad file fails loudly instead of loading a mostly empty day.", run,
        additional_deps=(table_key("raw", contract.name), table_key("quarantine", contract.name)))


def no_rows_quarantined(contract: TableContract) -> TableCheck:
    table = f"quarantine.{contract.name}"
    date_column = "delivery_date" if contract.delivered_daily else None

    def run(scope: Scope) -> Verdict:
        start, end = _range(scope, date_column)
        by_reason, rows = quality.quarantined_rows(scope.conn, table, contract.key,
                                                   QUARANTINE_REASON, bool(date_column),
                                                   start, end)
        total = int(by_reason["rows"].sum()) if len(by_reason) else 0
        summary = ("nothing quarantined" if not total else
                   f"{total:,} row(s) quarantined: " + "; ".join(
                       f"{r.reason} ({r.rows:,})" for r in by_reason.head(3).itertuples()))
        return Verdict(total == 0, summary, {
            "quarantined_rows": dg.MetadataValue.int(total),
            "by_reason": markdown(by_reason),
            "sample": markdown(rows),
        })

    return TableCheck(
        "no_rows_quarantined", WARN, False,
        "the delivery had no row that breaks the contract; each quarantined row is listed with "
        "its reasons, so a defect in the source is described where analysts look.", run)


# --- volume and completeness ---------------------------------------------------------------

def volume_within_recent_history(contract: TableContract) -> TableCheck:
    table = f"raw.{contract.name}"

    def run(scope: Scope) -> Verdict:
        policy = scope.policy
        days = quality.daily_volume(scope.conn, table, "delivery_date", scope.start, scope.end,
                                    weeks=policy.volume_history_weeks)
        judged = days[days["baseline"].notna()]
        odd = judged[judged["change"].abs() > policy.volume_tolerance]
        summary = (f"{len(judged)} day(s) within {policy.volume_tolerance:.0%} of the same "
                   f"weekday's median" + (f"; {len(days) - len(judged)} without history"
                                         if len(judged) < len(days) else "")
                   if odd.empty else
                   f"{len(odd)} day(s) far from their usual volume: " + ", ".join(
                       f"{r.day:%Y-%m-%d} {r.rows:,} rows vs {r.baseline:,.0f} ({r.change:+.0%})"
                       for r in odd.head(5).itertuples()))
        return Verdict(odd.empty, summary, {
            "days_judged": dg.MetadataValue.int(len(judged)),
            "days_without_history": dg.MetadataValue.int(len(days) - len(judged)),
            "anomalous_days": dg.MetadataValue.int(len(odd)),
            "tolerance": dg.MetadataValue.float(policy.volume_tolerance),
            "sample": markdown(odd),
        })

    return TableCheck(
        "volume_within_recent_history", WARN, False,
        f"each day's delivered rows are within ETL_VOLUME_TOLERANCE_PERCENT (default "
        f"{VOLUME_TOLERANCE_PERCENT}%) of the median of the same weekday over the previous "
        "weeks; a missing or truncated file, or a holiday, shows here.", run)


def every_airport_reports_every_hour() -> TableCheck:
    def run(scope: Scope) -> Verdict:
        gaps = quality.missing_hours(scope.conn, "clean.weather", "observation_date",
                                     NYC_ORIGINS, LOCAL_TZ, scope.start, scope.end)
        days = (scope.end - scope.start).days
        missing = int(gaps["missing_hours"].sum()) if len(gaps) else 0
        summary = ("every airport has every local hour" if gaps.empty else
                   f"{missing:,} airport-hour(s) without a report on {len(gaps):,} "
                   f"airport-day(s)")
        return Verdict(gaps.empty, summary, {
            **_counted(days * 24 * len(NYC_ORIGINS), missing, gaps),
            "airport_days_incomplete": dg.MetadataValue.int(len(gaps)),
        })

    return TableCheck(
        "every_airport_reports_every_hour", WARN, False,
        "each of EWR, JFK and LGA has one clean observation for every local hour of the day "
        "(23 or 25 on the days the clocks change); flights in a missing hour get no weather.",
        run)


# --- marts ---------------------------------------------------------------------------------

def every_clean_flight_present() -> TableCheck:
    def run(scope: Scope) -> Verdict:
        clean = quality.row_count(scope.conn, "clean.flights", "flight_date", scope.start,
                                  scope.end)
        mart = quality.row_count(scope.conn, "marts.fct_flights", "flight_date", scope.start,
                                 scope.end)
        return Verdict(clean == mart, f"{mart:,} of {clean:,} clean flights in the fact table", {
            "clean_rows": dg.MetadataValue.int(clean),
            "mart_rows": dg.MetadataValue.int(mart),
            "difference": dg.MetadataValue.int(clean - mart),
        })

    return TableCheck(
        "every_clean_flight_present", ERROR, True,
        "the fact table holds exactly as many flights per range as clean.flights; a join that "
        "drops or fans out rows fails here.", run, additional_deps=(table_key("clean", "flights"),))


def flights_have_known(what: str, column: str, reference: str, reference_column: str
                       ) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        checked, unknown = quality.unknown_references(
            scope.conn, "clean.flights", column, f"clean.{reference}", reference_column,
            "flight_date", scope.start, scope.end)
        failing = int(unknown["rows"].sum()) if len(unknown) else 0
        summary = (f"every {column} is in clean.{reference}" if unknown.empty else
                   f"{len(unknown):,} {column} value(s) missing from clean.{reference}, on "
                   f"{failing:,} of {checked:,} flights ({_share(failing, checked):.1%}): "
                   + ", ".join(f"{r.value} ({r.rows:,})" for r in unknown.head(5).itertuples()))
        return Verdict(unknown.empty, summary, _counted(
            checked, failing, unknown, unknown_values=dg.MetadataValue.int(len(unknown))))

    return TableCheck(
        f"flights_have_known_{what}", WARN, False,
        f"every flight's {column} is in clean.{reference}.{reference_column}; the source's "
        f"reference tables are known to be incomplete, so an unknown value only warns and the "
        f"fact table shows its name as empty.", run,
        additional_deps=(table_key("clean", "flights"), table_key("clean", reference)))


def adds_up_to_fct_flights(mart: str, group_column: str) -> TableCheck:
    def run(scope: Scope) -> Verdict:
        off = quality.aggregate_mismatches(scope.conn, f"marts.{mart}", group_column,
                                           "marts.fct_flights", scope.start, scope.end)
        summary = ("flights and cancellations add up to fct_flights on every day" if off.empty
                   else f"{len(off)} day(s) where the totals differ from fct_flights")
        return Verdict(off.empty, summary, {"days_off": dg.MetadataValue.int(len(off)),
                                            "sample": markdown(off)})

    return TableCheck(
        "adds_up_to_fct_flights", ERROR, False,
        f"per day, the sums of flights and cancellations over {mart} equal the counts in "
        "marts.fct_flights; an aggregate that drops or double-counts rows fails here.", run,
        additional_deps=(table_key("marts", "fct_flights"),))


# --- the suite, per table ------------------------------------------------------------------

def raw_checks(contract: TableContract) -> list[TableCheck]:
    checks = [columns_match_contract("raw", contract.name, raw_columns(contract)),
              column_schema_change(raw_columns(contract))]
    if contract.delivered_daily:
        checks.append(volume_within_recent_history(contract))
    return checks


def clean_checks(contract: TableContract) -> list[TableCheck]:
    table = f"clean.{contract.name}"
    checks = [
        columns_match_contract("clean", contract.name, contract.columns),
        column_schema_change(contract.columns),
        key_is_not_null(table, contract),
        key_is_unique(table, contract),
        values_within_contract(table, contract),
        raw_equals_clean_plus_quarantine(contract),
        quarantined_share_within_limit(contract),
    ]
    if contract.name == "weather":
        checks.append(every_airport_reports_every_hour())
    return checks


def quarantine_checks(contract: TableContract) -> list[TableCheck]:
    return [
        columns_match_contract("quarantine", contract.name,
                               contract.columns + quarantine_columns(contract), blocking=False),
        column_schema_change(contract.columns + quarantine_columns(contract)),
        no_rows_quarantined(contract),
    ]


def mart_checks(name: str) -> list[TableCheck]:
    contract, _sql = MARTS[name]
    table = f"marts.{name}"
    checks = [
        columns_match_contract("marts", name, contract.columns),
        column_schema_change(contract.columns),
        key_is_unique(table, contract),
        values_within_contract(table, contract),
    ]
    if name == "fct_flights":
        checks += [
            every_clean_flight_present(),
            flights_have_known("carrier", "carrier", "airlines", "carrier"),
            flights_have_known("origin", "origin", "airports", "faa"),
            flights_have_known("destination", "dest", "airports", "faa"),
            flights_have_known("plane", "tailnum", "planes", "tailnum"),
        ]
    else:
        checks.append(adds_up_to_fct_flights(name, contract.key[0]))
    return checks


# --- checks built by Dagster from materialization history ----------------------------------

MART_KEYS = [table_key("marts", name) for name in MARTS]

# WARN: the marts were last updated more than 26 hours ago (a day plus slack for a late feed).
# The marts also carry a FreshnessPolicy with the same window, which the UI shows as their
# freshness state; Dagster marks this factory superseded by it, but only a check has an outcome
# that `etl-assets status` can list and the alert sensor can see, so both are kept.
MARTS_FRESH_WITHIN = dt.timedelta(hours=26)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    freshness_checks = dg.build_last_update_freshness_checks(
        assets=MART_KEYS, lower_bound_delta=MARTS_FRESH_WITHIN, severity=WARN)

factory_checks = [*freshness_checks]
