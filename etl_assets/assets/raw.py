"""Raw layer: every delivered row and column as delivered, plus where and when it came from."""

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from etl_assets.assets import checks
from etl_assets.assets.keys import table_key
from etl_assets.assets.metadata import (
    column_schema,
    recorded_schema,
    report,
    table_figures,
)
from etl_assets.assets.partitions import partition_dates, single_run
from etl_assets.assets.retries import STEP_RETRY, transient_only
from etl_assets.pipeline import extract
from etl_assets.pipeline.contract import DAILY_FEEDS, REFERENCE_FEEDS
from etl_assets.pipeline.landing import days as days_from_to
from etl_assets.pipeline.landing import manifest_file
from etl_assets.pipeline.tables import TableContract, raw_columns
from etl_assets.pipeline.warehouse import table
from etl_assets.runtime.resources import WAREHOUSE_POOL, LandingZone, QualityPolicy

OWNERS = ["team:data-platform"]


def raw_schema(contract: TableContract) -> dg.TableSchema:
    return column_schema(
        TableContract(
            name=contract.name,
            description=contract.description,
            source_columns=(),
            columns=raw_columns(contract),
            key=(),
        )
    )


def build_raw_asset(
    contract: TableContract, partitions: dg.DailyPartitionsDefinition
) -> dg.AssetsDefinition:
    daily = contract.delivered_daily
    what = "daily files" if daily else "reference file"
    key = table_key("raw", contract.name)
    table_checks = checks.raw_checks(contract)
    schema = raw_schema(contract)

    @dg.asset(
        key=key,
        group_name="raw",
        description=f"{contract.name.capitalize()} as delivered to the landing zone ({what}).",
        kinds={"duckdb", "sql", "csv"},
        owners=OWNERS,
        tags={"layer": "raw", "feed": "daily" if daily else "reference"},
        partitions_def=partitions if daily else None,
        backfill_policy=single_run if daily else None,
        metadata={
            **({"partition_expr": "delivery_date"} if daily else {}),
            "dagster/column_schema": schema,
            "dagster/table_name": table("raw", contract.name),
        },
        check_specs=[c.spec(key) for c in table_checks],
        pool=WAREHOUSE_POOL,
        retry_policy=STEP_RETRY,
    )
    @transient_only
    def _raw(
        context: dg.AssetExecutionContext,
        landing: LandingZone,
        warehouse: DuckDBResource,
        quality: QualityPolicy,
    ):
        start = end = None
        loaded_at = dt.datetime.now(dt.timezone.utc)
        previous_schema = recorded_schema(context, key)
        try:
            if daily:
                start, end = partition_dates(context)
                files = extract.daily_deliveries(
                    landing.root, contract, days_from_to(start, end - dt.timedelta(days=1))
                )
            else:
                files = [extract.reference_delivery(landing.root, contract)]
            with warehouse.get_connection() as conn:
                by_day = extract.load_raw(
                    conn,
                    contract,
                    files,
                    loaded_at,
                    start,
                    end,
                    manifest_policy=landing.manifest_policy,
                )
        except extract.DeliveryError as error:
            raise dg.Failure(
                description=str(error),
                allow_retries=False,
                metadata={"landing_dir": str(landing.root)},
            ) from None
        rows = sum(by_day.values())
        context.log.info(f"read {rows:,} {contract.name} rows from {len(files)} file(s)")
        unverified = [f.relative for f in files if not manifest_file(f.path).exists()]
        if unverified:
            context.log.warning(
                f"{len(unverified)} file(s) loaded without a manifest, so nothing could tell a "
                f"truncated file from a whole one: {', '.join(unverified[:5])}"
                f"{' …' if len(unverified) > 5 else ''}"
            )
        with warehouse.get_connection() as conn:
            totals = table_figures(
                conn, "raw", contract.name, "delivery_date" if daily else None, start, end
            )
            scope = checks.Scope(conn, start, end, quality, previous_schema=previous_schema)
            results = list(checks.evaluate(key, table_checks, scope))
        yield report(
            context,
            key,
            {
                day: {
                    "dagster/partition_row_count": dg.MetadataValue.int(n),
                    "files": dg.MetadataValue.int(1),
                }
                for day, n in by_day.items()
            },
            {
                **totals,
                "dagster/column_schema": schema,
                "run_files": dg.MetadataValue.int(len(files)),
                "run_files_without_manifest": dg.MetadataValue.int(len(unverified)),
            },
        )
        yield from results

    return _raw


def build_raw_assets(partitions: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_raw_asset(c, partitions) for c in (*DAILY_FEEDS, *REFERENCE_FEEDS)]
