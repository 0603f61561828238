"""Clean layer: typed, validated, deduplicated tables; rows breaking the contract go to quarantine.

Each clean table is written with its quarantine table in one step and one transaction (SQL
generated from the contract, `pipeline/transform.py`), then checked in the warehouse
(`etl_assets.assets.checks`): the clean checks block, so a failure stops the marts downstream in the
same run, while the rows that broke the contract wait in quarantine with their reasons.
"""

from collections.abc import Iterator

import dagster as dg
from dagster_duckdb import DuckDBResource

from etl_assets.assets import checks, reports
from etl_assets.assets.keys import step_key, table_key
from etl_assets.assets.layer import step_arguments, table_arguments, table_metadata
from etl_assets.assets.metadata import (
    column_schema,
    recorded_schema,
    table_figures,
)
from etl_assets.assets.partitions import partition_dates
from etl_assets.assets.retries import transient_only
from etl_assets.pipeline import transform
from etl_assets.pipeline.contract import ALL_FEEDS
from etl_assets.pipeline.tables import TableContract, quarantine_columns
from etl_assets.runtime.resources import QualityPolicy


def build_clean_asset(
    contract: TableContract, partitions: dg.DailyPartitionsDefinition
) -> dg.AssetsDefinition:
    daily = contract.delivered_daily
    clean_key = table_key("clean", contract.name)
    quarantine_key = table_key("quarantine", contract.name)
    raw_key = table_key("raw", contract.name)
    clean_checks = checks.clean_checks(contract)
    quarantine_checks = checks.quarantine_checks(contract)
    clean_schema = column_schema(contract)
    quarantine_schema = column_schema(contract, quarantine_columns(contract))

    partition_column = contract.partition_column if daily else None

    @dg.multi_asset(
        name=step_key("clean", contract.name),
        specs=[
            dg.AssetSpec(
                clean_key,
                description=contract.description,
                **table_arguments("clean"),
                deps=[raw_key],
                metadata=table_metadata("clean", contract.name, clean_schema, partition_column),
            ),
            dg.AssetSpec(
                quarantine_key,
                description=f"{contract.name.capitalize()} rows that break the data contract, "
                "each with its reasons.",
                **table_arguments("quarantine"),
                deps=[raw_key],
                metadata=table_metadata(
                    "quarantine",
                    contract.name,
                    quarantine_schema,
                    "delivery_date" if daily else None,
                ),
            ),
        ],
        check_specs=[
            *(c.spec(clean_key) for c in clean_checks),
            *(c.spec(quarantine_key) for c in quarantine_checks),
        ],
        can_subset=False,
        **step_arguments(partitions if daily else None),
    )
    @transient_only
    def _clean(
        context: dg.AssetExecutionContext, warehouse: DuckDBResource, quality: QualityPolicy
    ) -> Iterator:
        start, end = partition_dates(context) if daily else (None, None)
        previous = {k: recorded_schema(context, k) for k in (clean_key, quarantine_key)}
        with warehouse.get_connection() as conn:
            counts = transform.load_clean(conn, contract, start, end)
        raw_rows = counts.clean_rows + counts.quarantined_rows
        if counts.quarantined_rows:
            context.log.warning(
                f"{counts.quarantined_rows:,} of {raw_rows:,} {contract.name} "
                f"rows quarantined: {counts.rule_counts}"
            )
        date_column = contract.partition_column
        with warehouse.get_connection() as conn:  # the rows are in the warehouse now
            clean_totals = table_figures(
                conn, "clean", contract.name, date_column, start, end, contract
            )
            quarantine_totals = table_figures(
                conn, "quarantine", contract.name, "delivery_date" if daily else None, start, end
            )
            results = [
                *checks.evaluate(
                    clean_key,
                    clean_checks,
                    checks.Scope(conn, start, end, quality, previous_schema=previous[clean_key]),
                ),
                *checks.evaluate(
                    quarantine_key,
                    quarantine_checks,
                    checks.Scope(
                        conn, start, end, quality, previous_schema=previous[quarantine_key]
                    ),
                ),
            ]
        yield reports.clean(context, clean_key, contract, counts, clean_totals, clean_schema)
        yield reports.quarantine(
            context, quarantine_key, counts, quarantine_totals, quarantine_schema
        )
        yield from results

    return _clean


def build_clean_assets(partitions: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_clean_asset(c, partitions) for c in ALL_FEEDS]
