"""Which checks each table has: the suites of raw, clean, quarantine and the marts, and the
marts' freshness checks built by Dagster."""

from __future__ import annotations

import datetime as dt
import warnings

import dagster as dg

from etl_assets.assets.checks.framework import WARN, TableCheck
from etl_assets.assets.checks.library import (
    adds_up_to_fct_flights,
    column_schema_change,
    columns_match_contract,
    delivered_as_declared,
    every_airport_reports_every_hour,
    every_clean_flight_present,
    flights_have_known,
    key_is_not_null,
    key_is_unique,
    no_rows_quarantined,
    quarantined_share_within_limit,
    raw_equals_clean_plus_quarantine,
    values_within_contract,
    volume_within_recent_history,
)
from etl_assets.assets.keys import table_key
from etl_assets.pipeline.marts import MARTS
from etl_assets.pipeline.tables import TableContract, quarantine_columns, raw_columns

# --- the suite, per table ------------------------------------------------------------------


def raw_checks(contract: TableContract) -> list[TableCheck]:
    checks = [
        columns_match_contract("raw", contract.name, raw_columns(contract)),
        column_schema_change(raw_columns(contract)),
        delivered_as_declared(contract),
    ]
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
        columns_match_contract(
            "quarantine",
            contract.name,
            contract.columns + quarantine_columns(contract),
            blocking=False,
        ),
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
        assets=MART_KEYS, lower_bound_delta=MARTS_FRESH_WITHIN, severity=WARN
    )

factory_checks = [*freshness_checks]
