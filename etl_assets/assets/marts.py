"""Marts: the tables analysts query, built by SQL in the warehouse over the clean layer."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from etl_assets.assets import checks, reports
from etl_assets.assets.keys import table_key
from etl_assets.assets.layer import step_arguments, table_arguments, table_metadata
from etl_assets.assets.metadata import (
    column_schema,
    recorded_schema,
    table_figures,
)
from etl_assets.assets.partitions import partition_dates
from etl_assets.assets.retries import transient_only
from etl_assets.pipeline import charts, marts
from etl_assets.pipeline.contract import REFERENCE_FEEDS
from etl_assets.pipeline.tables import TableContract
from etl_assets.runtime.resources import QualityPolicy


def _clean(name: str) -> dg.AssetKey:
    return table_key("clean", name)


_REFERENCE = dg.AssetSelection.assets(*(_clean(c.name) for c in REFERENCE_FEEDS))

# A mart day follows its clean day: when the landing-zone sensor loads a day (any day, not only
# the latest, as eager() alone would), that day's marts are rebuilt with no job of their own. A
# refreshed reference table does not rebuild every day of history; new days pick it up.
FOLLOW_CLEAN_DAYS = (
    (
        dg.AutomationCondition.newly_missing()
        | dg.AutomationCondition.any_deps_updated().ignore(_REFERENCE)
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("eager, every day")


def build_mart_asset(
    contract: TableContract, deps: list[dg.AssetKey], partitions: dg.DailyPartitionsDefinition
) -> dg.AssetsDefinition:
    key = table_key("marts", contract.name)
    table_checks = checks.mart_checks(contract.name)
    schema = column_schema(contract)

    @dg.asset(
        key=key,
        description=contract.description,
        **table_arguments("marts"),
        deps=deps,
        metadata=table_metadata("marts", contract.name, schema, contract.partition_column),
        check_specs=[c.spec(key) for c in table_checks],
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=checks.MARTS_FRESH_WITHIN),
        automation_condition=FOLLOW_CLEAN_DAYS,
        **step_arguments(partitions),
    )
    @transient_only
    def _mart(context: dg.AssetExecutionContext, warehouse: DuckDBResource, quality: QualityPolicy):
        start, end = partition_dates(context)
        previous_schema = recorded_schema(context, key)
        with warehouse.get_connection() as conn:
            marts.load_mart(conn, contract.name, start, end)
            per_day = marts.daily_figures(conn, contract.name, start, end)
            totals = table_figures(
                conn, "marts", contract.name, contract.partition_column, start, end, contract
            )
            results = list(
                checks.evaluate(
                    key,
                    table_checks,
                    checks.Scope(conn, start, end, quality, previous_schema=previous_schema),
                )
            )
            chart = charts.chart(conn, contract.name)  # every day the mart holds, not the run's
        yield reports.mart(context, key, contract, per_day, totals, schema, chart)
        yield from results

    return _mart


FCT_FLIGHTS_KEY = table_key("marts", "fct_flights")


def build_mart_assets(partitions: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [
        build_mart_asset(
            marts.FCT_FLIGHTS,
            partitions=partitions,
            deps=[_clean(n) for n in ("flights", "weather", "airlines", "airports", "planes")],
        ),
        build_mart_asset(
            marts.CARRIER_DAILY_PERFORMANCE, deps=[FCT_FLIGHTS_KEY], partitions=partitions
        ),
        build_mart_asset(
            marts.ORIGIN_DAILY_WEATHER,
            deps=[FCT_FLIGHTS_KEY, _clean("weather")],
            partitions=partitions,
        ),
    ]
