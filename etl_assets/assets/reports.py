"""What each layer's asset reports after a run: every day's own figures on its partition, and the
run-wide ones (totals, schema, lineage, preview) on the newest (`metadata.report`)."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import dagster as dg

from etl_assets.assets.metadata import column_lineage, report
from etl_assets.pipeline import transform
from etl_assets.pipeline.tables import TableContract


def raw(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    rows_by_day: dict[dt.date | None, int],
    totals: dict[str, Any],
    schema: dg.TableSchema,
    files: int,
    without_manifest: int,
) -> dg.MaterializeResult:
    """Each day's rows and file; the run's files, and those loaded without a manifest."""
    per_day = {
        day: {
            "dagster/partition_row_count": dg.MetadataValue.int(n),
            "files": dg.MetadataValue.int(1),
        }
        for day, n in rows_by_day.items()
    }
    return report(
        context,
        key,
        per_day,
        {
            **totals,
            "dagster/column_schema": schema,
            "run_files": dg.MetadataValue.int(files),
            "run_files_without_manifest": dg.MetadataValue.int(without_manifest),
        },
    )


def clean(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    contract: TableContract,
    counts: transform.CleanCounts,
    totals: dict[str, Any],
    schema: dg.TableSchema,
) -> dg.MaterializeResult:
    """Each day's kept rows, quarantined rows and quarantined share; the columns' lineage."""
    per_day = {day: _kept_and_quarantined(kept, bad) for day, (kept, bad) in counts.by_day.items()}
    return report(
        context,
        key,
        per_day,
        {
            **totals,
            "dagster/column_schema": schema,
            "dagster/column_lineage": column_lineage(contract, "raw"),
            "run_quarantined_rows": dg.MetadataValue.int(counts.quarantined_rows),
        },
        empty_day=_kept_and_quarantined(0, 0),
    )


def quarantine(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    counts: transform.CleanCounts,
    totals: dict[str, Any],
    schema: dg.TableSchema,
) -> dg.MaterializeResult:
    """Each day's quarantined rows; the run's rows by the rule they broke."""
    per_day = {
        day: {"dagster/partition_row_count": dg.MetadataValue.int(bad)}
        for day, (_kept, bad) in counts.by_day.items()
    }
    return report(
        context,
        key,
        per_day,
        {
            **totals,
            "dagster/column_schema": schema,
            "run_rows_by_rule": dg.MetadataValue.json(counts.rule_counts),
        },
    )


def mart(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    contract: TableContract,
    figures_by_day: dict[dt.date, dict[str, Any]],
    totals: dict[str, Any],
    schema: dg.TableSchema,
    chart: bytes,
) -> dg.MaterializeResult:
    """Each day's figures (flights, carriers, on-time rate, delays), as the mart computes them;
    on the newest day, the mart's whole daily series as a chart (a PNG the UI shows)."""
    per_day: dict[dt.date | None, dict[str, Any]] = {
        day: {
            name: dg.MetadataValue.int(v)
            if isinstance(v, int)
            else dg.MetadataValue.float(round(float(v), 6))
            for name, v in figures.items()
            if v is not None
        }
        for day, figures in figures_by_day.items()
    }
    return report(
        context,
        key,
        per_day,
        {
            **totals,
            "dagster/column_schema": schema,
            "dagster/column_lineage": column_lineage(contract, "clean"),
            "daily_series": dg.MetadataValue.md(
                f"![{contract.name}, every day](data:image/png;base64,"
                f"{base64.b64encode(chart).decode()})"
            ),
        },
    )


def _kept_and_quarantined(kept: int, bad: int) -> dict[str, Any]:
    return {
        "dagster/partition_row_count": dg.MetadataValue.int(kept),
        "quarantined_rows": dg.MetadataValue.int(bad),
        "quarantined_share": dg.MetadataValue.float(
            round(bad / (kept + bad), 6) if kept + bad else 0.0
        ),
    }
