"""Metadata the UI shows for a table: schema and lineage from the contract, preview, null rates."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg
import pandas as pd

from etl_assets.assets.keys import table_key
from etl_assets.pipeline import warehouse
from etl_assets.pipeline.tables import Column, TableContract


def column_schema(contract: TableContract, extra: tuple[Column, ...] = ()) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.dtype,
                description=c.description,
                constraints=dg.TableColumnConstraints(
                    nullable=c.nullable,
                    unique=contract.key == (c.name,),
                    other=[c.rule()],
                ),
            )
            for c in (*contract.columns, *extra)
        ]
    )


def column_lineage(contract: TableContract, upstream_schema: str) -> dg.TableColumnLineage:
    """Each column's upstream columns: 'schema.table.column', or a column of upstream_schema.table.

    A bare name may be another column of the same table (actual_departure derives from
    scheduled_departure); it is followed through the contract to the columns it came from.
    """
    by_name = {c.name: c for c in contract.columns}

    def sources(col) -> list[str]:
        if not col.lineage:
            return [col.source] if col.source else []
        found: list[str] = []
        for name in col.lineage:
            upstream = by_name.get(name) if "." not in name else None
            for source in sources(upstream) if upstream is not None else [name]:
                if source not in found:
                    found.append(source)
        return found

    deps = {
        col.name: [_column_dep(s, upstream_schema, contract.name) for s in sources(col)]
        for col in contract.columns
    }
    return dg.TableColumnLineage(deps_by_column={k: v for k, v in deps.items() if v})


def _column_dep(source: str, schema: str, table: str) -> dg.TableColumnDep:
    parts = source.split(".")
    if len(parts) == 3:
        schema, table, column = parts
    else:
        (column,) = parts
    return dg.TableColumnDep(asset_key=table_key(schema, table), column_name=column)


def recorded_schema(
    context: dg.AssetExecutionContext, key: dg.AssetKey
) -> list[tuple[str, str]] | None:
    """The (column, type) pairs the asset's latest materialization recorded, if it recorded any.

    Every run records the schema on its newest partition, the last event it writes, so the
    latest materialization carries it.
    """
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    value = records[0].asset_materialization.metadata.get("dagster/column_schema")
    schema = getattr(value, "schema", None)
    return None if schema is None else [(c.name, c.type) for c in schema.columns]


def table_figures(
    conn,
    schema: str,
    name: str,
    date_column: str | None,
    start: dt.date | None,
    end: dt.date | None,
    contract: TableContract | None = None,
    preview_rows: int = 10,
) -> dict[str, Any]:
    """What the run did to the table as a whole: its total, the run's range, a preview.

    These go on the newest partition only, labelled run_* where they cover the run's range, so no
    day presents the run's totals as its own.
    """
    target = warehouse.table(schema, name)
    where = warehouse.range_filter(date_column)
    params = warehouse.range_params(date_column, start, end)
    total = conn.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    preview = conn.execute(
        f"SELECT * FROM {target}{where} LIMIT {int(preview_rows)}", params
    ).fetchdf()
    meta: dict[str, Any] = {
        "dagster/row_count": dg.MetadataValue.int(int(total)),
        "preview": dg.MetadataValue.md(
            preview.to_markdown(index=False) if len(preview) else "_no rows_"
        ),
    }
    if date_column and start is not None and end is not None:
        meta["run_range"] = dg.MetadataValue.text(f"{start}..{end - dt.timedelta(days=1)}")
        meta["run_rows"] = dg.MetadataValue.int(
            int(conn.execute(f"SELECT count(*) FROM {target}{where}", params).fetchone()[0])
        )
    nullable = [c.name for c in (contract.columns if contract else ()) if c.nullable]
    if nullable:
        counts = conn.execute(
            "SELECT count(*), "
            + ", ".join(f"count(*) FILTER (WHERE {c} IS NULL)" for c in nullable)
            + f" FROM {target}{where}",
            params,
        ).fetchone()
        if counts[0]:
            label = "run_null_rate" if date_column else "null_rate"
            meta.update(
                {
                    f"{label}/{c}": dg.MetadataValue.float(round(n / counts[0], 6))
                    for c, n in zip(nullable, counts[1:], strict=True)
                }
            )
    return meta


def report(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    per_day: dict[dt.date | None, dict[str, Any]],
    newest: dict[str, Any],
    empty_day: dict[str, Any] | None = None,
) -> dg.MaterializeResult:
    """The materialization of one asset: each day's own figures on its own partition.

    Dagster copies a result's metadata onto every partition of a range run, so the day figures
    are added per partition key instead, and the run-wide metadata (schema, lineage, totals,
    preview) only to the newest partition. A day without rows gets `empty_day`.
    """
    if not context.assets_def.partitions_def:
        return dg.MaterializeResult(asset_key=key, metadata={**per_day.get(None, {}), **newest})
    empty_day = empty_day or {"dagster/partition_row_count": dg.MetadataValue.int(0)}
    partition_keys = context.partition_keys
    for partition_key in partition_keys:
        figures = per_day.get(dt.date.fromisoformat(partition_key), empty_day)
        if partition_key == partition_keys[-1]:
            figures = {**figures, **newest}
        context.add_asset_metadata(figures, asset_key=key, partition_key=partition_key)
    return dg.MaterializeResult(asset_key=key)


def markdown(frame: pd.DataFrame, limit: int = 20) -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("_none_")
    shown = frame.head(limit).to_markdown(index=False)
    more = f"\n\n… and {len(frame) - limit} more" if len(frame) > limit else ""
    return dg.MetadataValue.md(shown + more)
