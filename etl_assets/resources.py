"""Resources: the warehouse (DuckDB), the landing zone and the quality policy, from the environment.

`WarehouseIOManager` is `DuckDBPandasIOManager` with three faults of the stock one mended:
- delete-then-insert of a partition is one transaction, so a failed write leaves the old rows;
- a table is created from the columns and types the asset declares (`dagster/column_schema`),
  so an empty first output (nothing quarantined) still creates its table for readers downstream;
- rows are inserted BY NAME, so column order in a frame can never shift values between columns.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler

from etl_assets.alerts import DEFAULT_ALERT_LOG, DEFAULT_UI_BASE_URL, AlertSink

# DbIOManager has no public import path; DuckDBIOManager.create_io_manager builds the same object,
# and this is the one place that needs it, to pass the transactional client below.
from dagster._core.storage.db_io_manager import DbIOManager

DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
DEFAULT_LANDING = "data/landing"

# DuckDB takes one writer process at a time: every asset that writes the warehouse is in this
# pool, limited to 1 in .dagster_home/dagster.yaml, so overlapping runs queue for it.
WAREHOUSE_POOL = "warehouse"

# Every step reads files or opens the warehouse file, which another process (a notebook, the
# duckdb CLI) may hold for a moment: retry with growing, jittered waits (about 2, 4, 8 s). A
# fault that retrying cannot mend (a missing or unreadable delivery) fails at once.
STEP_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL,
                            jitter=dg.Jitter.PLUS_MINUS)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _TransactionalDuckDbClient(DuckDbClient):
    @staticmethod
    @contextmanager
    def connect(context, table_slice):
        with DuckDbClient.connect(context, table_slice) as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                conn.close()  # the stock client leaves it open on error, locking the file
                raise
            conn.execute("COMMIT")

    @staticmethod
    def delete_table_slice(context, table_slice, connection) -> None:
        # The stock client swallows the error of a missing table, which would abort the
        # transaction; ask first instead.
        exists = connection.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = ? AND table_name = ?",
            [table_slice.schema, table_slice.table],
        ).fetchone()[0]
        if exists:
            DuckDbClient.delete_table_slice(context, table_slice, connection)


class _ContractTypeHandler(DuckDBPandasTypeHandler):
    def handle_output(self, context: dg.OutputContext, table_slice, obj: pd.DataFrame, connection):
        table = f"{_quote(table_slice.schema)}.{_quote(table_slice.table)}"
        schema = (context.definition_metadata or {}).get("dagster/column_schema")
        if isinstance(schema, dg.TableSchemaMetadataValue):
            schema = schema.schema
        if isinstance(schema, dg.TableSchema):
            columns = ", ".join(f"{_quote(c.name)} {c.type}" for c in schema.columns)
            connection.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        else:
            connection.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM obj LIMIT 0")
        if not obj.empty:
            connection.execute(f"INSERT INTO {table} BY NAME SELECT * FROM obj")
        # The whole table's rows: one run may write a range of days, so the frame's length is not
        # the table's size (the stock handler reports it as if it were).
        total = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        metadata = {"dagster/row_count": dg.MetadataValue.int(int(total))}
        if isinstance(schema, dg.TableSchema):
            # On each materialization too, so Dagster's schema-change checks can compare them.
            metadata["dagster/column_schema"] = dg.MetadataValue.table_schema(schema)
        if context.has_partition_key:
            metadata["dagster/partition_row_count"] = dg.MetadataValue.int(int(obj.shape[0]))
        return metadata


class WarehouseIOManager(DuckDBPandasIOManager):
    """Reads and writes pandas DataFrames in the DuckDB warehouse, one transaction per write."""

    @staticmethod
    def type_handlers():
        return [_ContractTypeHandler()]

    def create_io_manager(self, context) -> DbIOManager:
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        return DbIOManager(
            db_client=_TransactionalDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=pd.DataFrame,
            io_manager_name="WarehouseIOManager",
        )


class LandingZone(dg.ConfigurableResource):
    """The directory the upstream system delivers files into."""

    path: str = DEFAULT_LANDING

    @property
    def root(self) -> Path:
        return Path(self.path)


class QualityPolicy(dg.ConfigurableResource):
    """How much bad or unusual data a partition may hold before its checks fail or warn."""

    quarantine_limit_percent: int = 5  # a day with more quarantined rows fails its check
    volume_tolerance_percent: int = 25  # a day this far from its weekday's median warns
    volume_history_weeks: int = 4

    @property
    def quarantine_limit(self) -> float:
        return self.quarantine_limit_percent / 100

    @property
    def volume_tolerance(self) -> float:
        return self.volume_tolerance_percent / 100


def setting(name: str, default: str | None) -> str | dg.EnvVar | None:
    """The environment variable when it is set (shown as such in the UI), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def int_setting(name: str, default: int) -> int | dg.EnvVar:
    return dg.EnvVar.int(name) if os.environ.get(name) else default


def build_alert_sink() -> AlertSink:
    """The sink from ETL_ALERT_LOG, ETL_ALERT_WEBHOOK_URL and ETL_UI_BASE_URL; called at load."""
    return AlertSink(
        log_path=setting("ETL_ALERT_LOG", DEFAULT_ALERT_LOG),
        webhook_url=setting("ETL_ALERT_WEBHOOK_URL", None),
        ui_base_url=setting("ETL_UI_BASE_URL", DEFAULT_UI_BASE_URL),
    )


def build_resources() -> dict[str, object]:
    """Resources from the environment; called when definitions load, never at import."""
    warehouse = setting("ETL_WAREHOUSE_PATH", DEFAULT_WAREHOUSE)
    return {
        "io_manager": WarehouseIOManager(database=warehouse),
        "warehouse": DuckDBResource(database=warehouse),
        "landing": LandingZone(path=setting("ETL_LANDING_DIR", DEFAULT_LANDING)),
        "alerts": build_alert_sink(),
        "quality": QualityPolicy(
            quarantine_limit_percent=int_setting("ETL_QUARANTINE_LIMIT_PERCENT", 5),
            volume_tolerance_percent=int_setting("ETL_VOLUME_TOLERANCE_PERCENT", 25),
        ),
    }
