"""What every table asset of a layer shares, declared once: its group, owners, kinds and tags,
its table's metadata, and how its step runs (partitions, one run per range, the warehouse pool,
retries of transient errors)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from etl_assets.assets.partitions import single_run
from etl_assets.assets.retries import STEP_RETRY
from etl_assets.pipeline.warehouse import table
from etl_assets.runtime.resources import WAREHOUSE_POOL

# Who answers for each layer's tables: the platform team loads them, analysts own the marts.
OWNERS = {
    "raw": ["team:data-platform"],
    "clean": ["team:data-platform"],
    "quarantine": ["team:data-platform"],
    "marts": ["team:analytics"],
}
GROUPS = {"raw": "raw", "clean": "clean", "quarantine": "clean", "marts": "marts"}


def table_arguments(
    layer: str, kinds: set[str] | None = None, tags: dict[str, str] | None = None
) -> dict[str, Any]:
    """A table's group, owners, kinds and tags: an asset's decorator arguments, or a spec's."""
    return {
        "group_name": GROUPS[layer],
        "owners": OWNERS[layer],
        "kinds": kinds or {"duckdb", "sql"},
        "tags": {"layer": layer, **(tags or {})},
    }


def table_metadata(
    layer: str, name: str, schema: dg.TableSchema, partition_column: str | None
) -> dict[str, Any]:
    """What the UI shows of the table before any run: its name, its columns, and the column
    that partitions it (for reading a day into pandas)."""
    return {
        **({"partition_expr": partition_column} if partition_column else {}),
        "dagster/column_schema": schema,
        "dagster/table_name": table(layer, name),
    }


def step_arguments(partitions: dg.DailyPartitionsDefinition | None) -> dict[str, Any]:
    """How a table's step runs: daily partitions with one run per range (or none), in the
    warehouse pool, retried on transient errors."""
    return {
        "partitions_def": partitions,
        "backfill_policy": single_run if partitions is not None else None,
        "pool": WAREHOUSE_POOL,
        "retry_policy": STEP_RETRY,
    }
