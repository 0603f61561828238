"""Marts: the tables analysts query, built by SQL in the warehouse over the clean layer."""

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from etl_assets.assets.metadata import column_lineage, column_schema, table_metadata
from etl_assets.partitions import daily_partitions, partition_dates, single_run
from etl_assets.pipeline import marts, quality
from etl_assets.pipeline.contract import FLIGHTS, TableContract

OWNERS = ["team:analytics"]
EVERY_CLEAN_FLIGHT = "every_clean_flight_present"


def _clean(name: str) -> dg.AssetKey:
    return dg.AssetKey(["clean", name])


def build_mart_asset(contract: TableContract, sql: str, deps: list[dg.AssetKey],
                     check_specs: list[dg.AssetCheckSpec] = ()) -> dg.AssetsDefinition:
    @dg.asset(
        key=["marts", contract.name],
        group_name="marts",
        description=contract.description,
        kinds={"duckdb", "sql"},
        owners=OWNERS,
        tags={"layer": "marts"},
        deps=deps,
        partitions_def=daily_partitions,
        backfill_policy=single_run,
        check_specs=check_specs,
        metadata={"partition_expr": contract.partition_column,
                  "dagster/column_schema": column_schema(contract)},
    )
    def _mart(context: dg.AssetExecutionContext, warehouse: DuckDBResource):
        start, end = partition_dates(context)
        with warehouse.get_connection() as conn:
            frame: pd.DataFrame = conn.execute(sql, {"start": start, "end": end}).fetchdf()
        yield dg.Output(frame, metadata={
            **table_metadata(frame, contract),
            "dagster/column_lineage": column_lineage(contract, "clean"),
        })
        if check_specs:
            with warehouse.get_connection() as conn:
                yield every_clean_flight_result(conn, start, end)

    return _mart


def every_clean_flight_result(conn, start, end) -> dg.AssetCheckResult:
    clean_rows = quality.row_count(conn, "clean.flights", FLIGHTS.partition_column, start, end)
    mart_rows = quality.row_count(conn, "marts.fct_flights", "flight_date", start, end)
    return dg.AssetCheckResult(
        check_name=EVERY_CLEAN_FLIGHT, passed=clean_rows == mart_rows,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"clean_rows": dg.MetadataValue.int(clean_rows),
                  "mart_rows": dg.MetadataValue.int(mart_rows),
                  "difference": dg.MetadataValue.int(clean_rows - mart_rows)},
    )


FCT_FLIGHTS_KEY = dg.AssetKey(["marts", "fct_flights"])

fct_flights = build_mart_asset(
    marts.FCT_FLIGHTS, marts.FCT_FLIGHTS_SQL,
    deps=[_clean(n) for n in ("flights", "weather", "airlines", "airports", "planes")],
    check_specs=[dg.AssetCheckSpec(
        EVERY_CLEAN_FLIGHT, asset=FCT_FLIGHTS_KEY, blocking=True,
        additional_deps=[_clean("flights")],
        description="ERROR, blocking: the fact table holds exactly as many flights per range as "
                    "clean.flights; a join that drops or fans out rows fails here.",
    )],
)
carrier_daily_performance = build_mart_asset(
    marts.CARRIER_DAILY_PERFORMANCE, marts.CARRIER_DAILY_PERFORMANCE_SQL, deps=[FCT_FLIGHTS_KEY])
origin_daily_weather_delays = build_mart_asset(
    marts.ORIGIN_DAILY_WEATHER, marts.ORIGIN_DAILY_WEATHER_SQL,
    deps=[FCT_FLIGHTS_KEY, _clean("weather")])

mart_assets = [fct_flights, carrier_daily_performance, origin_daily_weather_delays]
