"""Marts: the tables analysts query, built by SQL in the warehouse over the clean layer."""

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from etl_assets import checks
from etl_assets.assets.metadata import column_lineage, column_schema, table_metadata
from etl_assets.partitions import partition_dates, single_run
from etl_assets.pipeline import marts
from etl_assets.pipeline.contract import REFERENCE_FEEDS, TableContract
from etl_assets.resources import STEP_RETRY, WAREHOUSE_POOL, QualityPolicy

OWNERS = ["team:analytics"]


def _clean(name: str) -> dg.AssetKey:
    return dg.AssetKey(["clean", name])


_REFERENCE = dg.AssetSelection.assets(*(_clean(c.name) for c in REFERENCE_FEEDS))

# A mart day follows its clean day: when the landing-zone sensor loads a day (any day, not only
# the latest, as eager() alone would), that day's marts are rebuilt with no job of their own. A
# refreshed reference table does not rebuild every day of history; new days pick it up.
FOLLOW_CLEAN_DAYS = (
    (dg.AutomationCondition.newly_missing()
     | dg.AutomationCondition.any_deps_updated().ignore(_REFERENCE)).since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("eager, every day")


def build_mart_asset(contract: TableContract, sql: str, deps: list[dg.AssetKey],
                     partitions: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    key = dg.AssetKey(["marts", contract.name])
    table_checks = checks.mart_checks(contract.name)
    schema = column_schema(contract)

    @dg.asset(
        key=key,
        group_name="marts",
        description=contract.description,
        kinds={"duckdb", "sql"},
        owners=OWNERS,
        tags={"layer": "marts"},
        deps=deps,
        partitions_def=partitions,
        backfill_policy=single_run,
        check_specs=[c.spec(key) for c in table_checks],
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=checks.MARTS_FRESH_WITHIN),
        automation_condition=FOLLOW_CLEAN_DAYS,
        pool=WAREHOUSE_POOL,
        retry_policy=STEP_RETRY,
        metadata={"partition_expr": contract.partition_column, "dagster/column_schema": schema},
    )
    def _mart(context: dg.AssetExecutionContext, warehouse: DuckDBResource,
              quality: QualityPolicy):
        start, end = partition_dates(context)
        with warehouse.get_connection() as conn:
            frame: pd.DataFrame = conn.execute(sql, {"start": start, "end": end}).fetchdf()
        yield dg.Output(frame, metadata={
            **table_metadata(frame, contract),
            "dagster/column_lineage": column_lineage(contract, "clean"),
        })
        with warehouse.get_connection() as conn:  # the rows are in the warehouse now
            yield from checks.evaluate(key, table_checks, checks.Scope(conn, start, end, quality))

    return _mart


FCT_FLIGHTS_KEY = dg.AssetKey(["marts", "fct_flights"])


def build_mart_assets(partitions: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [
        build_mart_asset(
            marts.FCT_FLIGHTS, marts.FCT_FLIGHTS_SQL, partitions=partitions,
            deps=[_clean(n) for n in ("flights", "weather", "airlines", "airports", "planes")]),
        build_mart_asset(
            marts.CARRIER_DAILY_PERFORMANCE, marts.CARRIER_DAILY_PERFORMANCE_SQL,
            deps=[FCT_FLIGHTS_KEY], partitions=partitions),
        build_mart_asset(
            marts.ORIGIN_DAILY_WEATHER, marts.ORIGIN_DAILY_WEATHER_SQL,
            deps=[FCT_FLIGHTS_KEY, _clean("weather")], partitions=partitions),
    ]
