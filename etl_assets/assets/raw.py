"""Raw layer: every delivered row and column as delivered, plus where and when it came from."""

import datetime as dt

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from etl_assets import checks
from etl_assets.assets.metadata import column_schema, table_metadata
from etl_assets.partitions import partition_dates, single_run
from etl_assets.pipeline import extract
from etl_assets.pipeline.landing import days as days_from_to
from etl_assets.pipeline.contract import DAILY_FEEDS, REFERENCE_FEEDS, TableContract, raw_columns
from etl_assets.resources import STEP_RETRY, WAREHOUSE_POOL, LandingZone, QualityPolicy

OWNERS = ["team:data-platform"]


def _raw_schema(contract: TableContract) -> dg.TableSchema:
    return column_schema(
        TableContract(name=contract.name, description=contract.description, source_columns=(),
                      columns=raw_columns(contract), key=()))


def build_raw_asset(contract: TableContract, partitions: dg.DailyPartitionsDefinition
                    ) -> dg.AssetsDefinition:
    daily = contract.delivered_daily
    what = "daily files" if daily else "reference file"
    key = dg.AssetKey(["raw", contract.name])
    table_checks = checks.raw_checks(contract)

    @dg.asset(
        name=contract.name,
        key_prefix="raw",
        group_name="raw",
        description=f"{contract.name.capitalize()} as delivered to the landing zone ({what}).",
        kinds={"duckdb", "pandas", "csv"},
        owners=OWNERS,
        tags={"layer": "raw", "feed": "daily" if daily else "reference"},
        partitions_def=partitions if daily else None,
        backfill_policy=single_run if daily else None,
        metadata={
            **({"partition_expr": "delivery_date"} if daily else {}),
            "dagster/column_schema": _raw_schema(contract),
        },
        check_specs=[c.spec(key) for c in table_checks],
        pool=WAREHOUSE_POOL,
        retry_policy=STEP_RETRY,
    )
    def _raw(context: dg.AssetExecutionContext, landing: LandingZone, warehouse: DuckDBResource,
             quality: QualityPolicy):
        start = end = None
        loaded_at = pd.Timestamp.now(tz="UTC")
        try:
            if daily:
                start, end = partition_dates(context)
                days = days_from_to(start, end - dt.timedelta(days=1))
                frame = extract.extract_daily(landing.root, contract, days, loaded_at)
                files = len(days)
            else:
                frame = extract.extract_reference(landing.root, contract, loaded_at)
                files = 1
        except extract.DeliveryError as error:
            raise dg.Failure(description=str(error), allow_retries=False,
                             metadata={"landing_dir": str(landing.root)}) from None
        context.log.info(f"read {len(frame):,} {contract.name} rows from {files} file(s)")
        yield dg.Output(frame, metadata={**table_metadata(frame),
                                         "files": dg.MetadataValue.int(files)})
        with warehouse.get_connection() as conn:  # the rows are in the warehouse now
            yield from checks.evaluate(key, table_checks, checks.Scope(conn, start, end, quality))

    return _raw


def build_raw_assets(partitions: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_raw_asset(c, partitions) for c in (*DAILY_FEEDS, *REFERENCE_FEEDS)]
