"""Clean layer: typed, validated, deduplicated tables; rows that break the contract go to quarantine.

Each clean table is written together with its quarantine table in one step, then checked in the
warehouse: its key is unique and, for every delivery date, raw rows = clean + quarantined rows.
Both checks block: a failure stops the marts downstream in the same run.
"""

from collections.abc import Iterator

import dagster as dg
from dagster_duckdb import DuckDBResource

from etl_assets.assets.metadata import column_lineage, column_schema, markdown, table_metadata
from etl_assets.partitions import daily_partitions, partition_dates, single_run
from etl_assets.pipeline import quality, transform
from etl_assets.pipeline.contract import ALL_FEEDS, TableContract, quarantine_columns

OWNERS = ["team:data-platform"]
KEY_IS_UNIQUE = "key_is_unique"
RECONCILES = "raw_equals_clean_plus_quarantine"


def check_specs(contract: TableContract) -> list[dg.AssetCheckSpec]:
    clean_key = dg.AssetKey(["clean", contract.name])
    return [
        dg.AssetCheckSpec(
            KEY_IS_UNIQUE, asset=clean_key, blocking=True,
            description=f"ERROR, blocking: no two rows share the key ({', '.join(contract.key)}); "
                        "duplicates would double-count in every mart.",
        ),
        dg.AssetCheckSpec(
            RECONCILES, asset=clean_key, blocking=True,
            additional_deps=[dg.AssetKey(["raw", contract.name]),
                             dg.AssetKey(["quarantine", contract.name])],
            description="ERROR, blocking: for every delivery date, raw rows = clean rows + "
                        "quarantined rows, so no row is lost or duplicated.",
        ),
    ]


def build_clean_asset(contract: TableContract) -> dg.AssetsDefinition:
    daily = contract.delivered_daily
    clean_key = dg.AssetKey(["clean", contract.name])

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
                          "dagster/column_schema": column_schema(contract)},
            ),
            "quarantine": dg.AssetOut(
                key=["quarantine", contract.name],
                description=f"{contract.name.capitalize()} rows that break the data contract, "
                            "each with its reasons.",
                group_name="clean", kinds={"duckdb", "pandas"}, owners=OWNERS,
                tags={"layer": "quarantine"},
                metadata={**partition_meta("delivery_date"),
                          "dagster/column_schema": column_schema(
                              contract, quarantine_columns(contract))},
            ),
        },
        deps=[dg.AssetKey(["raw", contract.name])],
        partitions_def=daily_partitions if daily else None,
        backfill_policy=single_run if daily else None,
        check_specs=check_specs(contract),
        can_subset=False,
    )
    def _clean(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> Iterator:
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
            yield key_is_unique_result(conn, contract, clean_key, start, end)
            yield reconciliation_result(conn, contract, clean_key, start, end)

    return _clean


def key_is_unique_result(conn, contract, asset_key, start, end) -> dg.AssetCheckResult:
    duplicates = quality.duplicate_keys(conn, f"clean.{contract.name}", contract, start, end)
    return dg.AssetCheckResult(
        asset_key=asset_key, check_name=KEY_IS_UNIQUE, passed=duplicates.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "duplicate_keys": dg.MetadataValue.int(len(duplicates)),
            "extra_rows": dg.MetadataValue.int(int((duplicates["rows"] - 1).sum())),
            "sample": markdown(duplicates),
        },
    )


def reconciliation_result(conn, contract, asset_key, start, end) -> dg.AssetCheckResult:
    counts = quality.reconciliation(conn, contract, start, end)
    off = counts[counts["difference"] != 0]
    return dg.AssetCheckResult(
        asset_key=asset_key, check_name=RECONCILES, passed=off.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "raw_rows": dg.MetadataValue.int(int(counts["raw_rows"].sum())),
            "clean_rows": dg.MetadataValue.int(int(counts["clean_rows"].sum())),
            "quarantined_rows": dg.MetadataValue.int(int(counts["quarantined_rows"].sum())),
            "days_off": dg.MetadataValue.int(len(off)),
            "days_off_sample": markdown(off),
        },
    )


clean_assets = [build_clean_asset(c) for c in ALL_FEEDS]
