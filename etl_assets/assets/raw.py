"""Raw layer: every delivered row and column as delivered, plus where and when it came from."""

import datetime as dt

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
from etl_assets.pipeline import extract
from etl_assets.pipeline.contract import DAILY_FEEDS, REFERENCE_FEEDS
from etl_assets.pipeline.landing import days as days_from_to
from etl_assets.pipeline.landing import manifest_file
from etl_assets.pipeline.tables import TableContract, raw_columns
from etl_assets.runtime.resources import LandingZone, QualityPolicy


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
        description=f"{contract.name.capitalize()} as delivered to the landing zone ({what}).",
        **table_arguments(
            "raw", kinds={"duckdb", "sql", "csv"}, tags={"feed": "daily" if daily else "reference"}
        ),
        metadata=table_metadata("raw", contract.name, schema, "delivery_date" if daily else None),
        check_specs=[c.spec(key) for c in table_checks],
        **step_arguments(partitions if daily else None),
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
                    drift=landing.schema_drift,
                )
                drifted = extract.drifted_files(conn, contract, start, end)
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
        for file, undeclared, missing in drifted[:5]:
            context.log.warning(
                f"{file} differs from the {contract.name} contract: "
                + extract.drift_in_words(undeclared, missing)
            )
        if len(drifted) > 5:
            context.log.warning(
                f"{len(drifted) - 5} more {contract.name} file(s) differ from the contract "
                "(raw.delivered_files names each)"
            )
        with warehouse.get_connection() as conn:
            totals = table_figures(
                conn, "raw", contract.name, "delivery_date" if daily else None, start, end
            )
            scope = checks.Scope(conn, start, end, quality, previous_schema=previous_schema)
            results = list(checks.evaluate(key, table_checks, scope))
        yield reports.raw(context, key, by_day, totals, schema, len(files), len(unverified))
        yield from results

    return _raw


def build_raw_assets(partitions: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_raw_asset(c, partitions) for c in (*DAILY_FEEDS, *REFERENCE_FEEDS)]
