"""Clean layer: typed, validated, deduplicated tables; rows that break the contract go to quarantine.

Each clean table is written together with its quarantine table in one step, then checked in the
warehouse (`etl_assets.checks`): the clean checks block, so a failure stops the marts downstream
in the same run, while the rows that broke the contract wait in quarantine with their reasons.
"""

from collections.abc import Iterator

import dagster as dg
from dagster_duckdb import DuckDBResource

from etl_assets import checks
from etl_assets.assets.metadata import column_lineage, column_schema, table_metadata
from etl_assets.partitions import partition_dates, single_run
from etl_assets.pipeline import transform
from etl_assets.pipeline.contract import ALL_FEEDS, TableContract, quarantine_columns
from etl_assets.resources import STEP_RETRY, WAREHOUSE_POOL, QualityPolicy

OWNERS = ["team:data-platform"]


def build_clean_asset(contract: TableContract, partitions: dg.DailyPartitionsDefinition
                      ) -> dg.AssetsDefinition:
    daily = contract.delivered_daily
    clean_key = dg.AssetKey(["clean", contract.name])
    quarantine_key = dg.AssetKey(["quarantine", contract.name])
    clean_checks = checks.clean_checks(contract)
    quarantine_checks = checks.quarantine_checks(contract)
    clean_schema = column_schema(contract)
    quarantine_schema = column_schema(contract, quarantine_columns(contract))

    def partition_meta(column: str | None) -> dict[str, str]:
        return {"partition_expr": column} if daily else {}

    @dg.multi_asset(
        name=f"clean_{contract.name}",
        outs={
            "clean": dg.AssetOut(
                key=clean_key,
                description=contract.description,
                group_name="clean", kinds={"duckdb", "pandas"}, owners=OWNERS,
                tags={"layer": "clean"},
                metadata={**partition_meta(contract.partition_column),
                          "dagster/column_schema": clean_schema},
            ),
            "quarantine": dg.AssetOut(
                key=quarantine_key,
                description=f"{contract.name.capitalize()} rows that break the data contract, "
                            "each with its reasons.",
                group_name="clean", kinds={"duckdb", "pandas"}, owners=OWNERS,
                tags={"layer": "quarantine"},
                metadata={**partition_meta("delivery_date"),
                          "dagster/column_schema": quarantine_schema},
            ),
        },
        deps=[dg.AssetKey(["raw", contract.name])],
        partitions_def=partitions if daily else None,
        backfill_policy=single_run if daily else None,
        check_specs=[*(c.spec(clean_key) for c in clean_checks),
                     *(c.spec(quarantine_key) for c in quarantine_checks)],
        can_subset=False,
        pool=WAREHOUSE_POOL,
        retry_policy=STEP_RETRY,
    )
    def _clean(context: dg.AssetExecutionContext, warehouse: DuckDBResource,
               quality: QualityPolicy) -> Iterator:
        start, end = partition_dates(context) if daily else (None, None)
        sql = transform.typed_select_sql(contract, f"raw.{contract.name}", by_delivery_date=daily)
        with warehouse.get_connection() as conn:
            typed = conn.execute(sql, {"start": start, "end": end} if daily else {}).fetchdf()
        result = transform.clean(typed, contract)
        quarantined = len(result.quarantine)
        share = quarantined / len(typed) if len(typed) else 0.0
        if quarantined:
            context.log.warning(f"{quarantined:,} of {len(typed):,} {contract.name} rows "
                                f"quarantined: {result.rule_counts}")
        yield dg.Output(result.clean, output_name="clean", metadata={
            **table_metadata(result.clean, contract),
            "quarantined_rows": dg.MetadataValue.int(quarantined),
            "quarantined_share": dg.MetadataValue.float(round(share, 6)),
            "dagster/column_lineage": column_lineage(contract, "raw"),
        })
        yield dg.Output(result.quarantine, output_name="quarantine", metadata={
            **table_metadata(result.quarantine),
            "rows_by_rule": dg.MetadataValue.json(result.rule_counts),
        })
        # The outputs above are in the warehouse now: check what was written, not the frames.
        with warehouse.get_connection() as conn:
            scope = checks.Scope(conn, start, end, quality)
            yield from checks.evaluate(clean_key, clean_checks, scope)
            yield from checks.evaluate(quarantine_key, quarantine_checks, scope)

    return _clean


def build_clean_assets(partitions: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_clean_asset(c, partitions) for c in ALL_FEEDS]
