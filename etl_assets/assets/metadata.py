"""Metadata the UI shows for a table: schema and lineage from the contract, preview, null rates."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from etl_assets.pipeline.contract import Column, TableContract


def column_schema(contract: TableContract, extra: tuple[Column, ...] = ()) -> dg.TableSchema:
    return dg.TableSchema(columns=[
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
    ])


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
            for source in (sources(upstream) if upstream is not None else [name]):
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
    return dg.TableColumnDep(asset_key=dg.AssetKey([schema, table]), column_name=column)


def table_metadata(frame: pd.DataFrame, contract: TableContract | None = None,
                   preview_rows: int = 10) -> dict[str, object]:
    """A markdown preview and, for a contract's nullable columns, each null rate (plotted in the UI)."""
    meta: dict[str, object] = {
        "rows_written": dg.MetadataValue.int(len(frame)),  # by this run, for all its days
        "preview": dg.MetadataValue.md(
            frame.head(preview_rows).to_markdown(index=False) if len(frame) else "_no rows_"
        ),
    }
    if contract is not None and len(frame):
        for col in contract.columns:
            if col.nullable and col.name in frame:
                meta[f"null_rate/{col.name}"] = dg.MetadataValue.float(
                    round(float(frame[col.name].isna().mean()), 6))
    return meta


def markdown(frame: pd.DataFrame, limit: int = 20) -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("_none_")
    shown = frame.head(limit).to_markdown(index=False)
    more = f"\n\n… and {len(frame) - limit} more" if len(frame) > limit else ""
    return dg.MetadataValue.md(shown + more)
