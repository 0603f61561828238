"""Resources: the warehouse (DuckDB), the landing zone and the quality policy, from the environment.

The assets write the warehouse through `DuckDBResource` with explicit SQL transactions
(`etl_assets/pipeline/warehouse.py`). The stock `DuckDBPandasIOManager` is the `io_manager`
only for reading a table into pandas (`defs.load_asset_value`), where a DataFrame is the unit;
on DuckLake its connections attach the lake (`WarehouseIOManager`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasIOManager

from etl_assets.runtime import dagster_adapter
from etl_assets.runtime.alerts import (
    DEFAULT_ALERT_LOG,
    DEFAULT_UI_BASE_URL,
    AlertSink,
    check_webhook_url,
)
from etl_assets.pipeline import backends
from etl_assets.pipeline.warehouse import connection_config
from etl_assets.pipeline.extract import MANIFEST_POLICIES
from etl_assets.runtime.paths import env_path, path_setting

# Relative to the project (etl_assets/runtime/paths.py), like any relative path in these settings.
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
DEFAULT_LANDING = "data/landing"
DEFAULT_DUCKLAKE_DATA = "data/lake"  # where a DuckLake's Parquet files go, unless told

# DuckDB takes one writer process at a time: every asset that writes the warehouse is in this
# pool, limited to 1 in .dagster_home/dagster.yaml, so overlapping runs queue for it.
WAREHOUSE_POOL = "warehouse"

def lake_of(catalog: str | None, data_path: str | None) -> backends.Lake | None:
    """The DuckLake a warehouse setting names, or None for the DuckDB file."""
    return backends.Lake(catalog, data_path or DEFAULT_DUCKLAKE_DATA) if catalog else None


class WarehouseResource(DuckDBResource):
    """The warehouse: the DuckDB file (`database`, its folder created on first use), or a
    DuckLake when `ducklake_catalog` is set (`pipeline/backends.py`)."""

    ducklake_catalog: str | None = None  # a DuckDB file, or postgres:<libpq string>
    ducklake_data_path: str | None = None

    @property
    def location(self) -> str | backends.Lake:
        """Where the tables are: the file's path, or the lake."""
        return lake_of(self.ducklake_catalog, self.ducklake_data_path) or self.database

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        for folder in backends.local_folders(self.location):
            folder.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """DuckDBResource's connection (settings, retries while the file is locked), closed
        whatever happens: its own closes only when the block ends without an error, and a
        connection left open keeps the file locked for the rest of the process. On DuckLake,
        a connection with the lake attached as the default catalog."""
        if isinstance(self.location, backends.Lake):
            with backends.connect(self.location, config=self.connection_config) as conn:
                yield conn
            return
        connecting = super().get_connection()
        conn = connecting.__enter__()
        try:
            yield conn
        finally:
            conn.close()


class _LakeOrFileClient(DuckDbClient):
    """dagster-duckdb's client, connecting to the lake when the IO manager names one."""

    @staticmethod
    @contextmanager
    def connect(context, table_slice):
        config = context.resource_config
        lake = lake_of(config.get("ducklake_catalog"), config.get("ducklake_data_path"))
        if lake is None:
            with DuckDbClient.connect(context, table_slice) as conn:
                yield conn
            return
        with backends.connect(lake, config=config["connection_config"]) as conn:
            yield conn


class WarehouseIOManager(DuckDBPandasIOManager):
    """`DuckDBPandasIOManager` (a table, or its days, into pandas: `defs.load_asset_value`) on
    the warehouse's backend: the DuckDB file, or the lake when `ducklake_catalog` is set."""

    ducklake_catalog: str | None = None  # as WarehouseResource's
    ducklake_data_path: str | None = None

    def create_io_manager(self, context):
        return dagster_adapter.duckdb_io_manager(self, _LakeOrFileClient())


class LandingZone(dg.ConfigurableResource):
    """The directory the upstream system delivers files into, and what a delivery must carry."""

    path: str = DEFAULT_LANDING
    # A file without its manifest (`<file>.manifest.json`): "warn" loads it with a warning,
    # "require" waits for the manifest. A file that differs from its manifest is always refused.
    manifest_policy: str = "warn"

    @property
    def root(self) -> Path:
        return Path(self.path)

    @property
    def manifests_required(self) -> bool:
        if self.manifest_policy not in MANIFEST_POLICIES:
            raise ValueError(f"ETL_MANIFEST_POLICY must be one of {MANIFEST_POLICIES}, "
                             f"not {self.manifest_policy!r}")
        return self.manifest_policy == "require"


QUARANTINE_LIMIT_PERCENT = 5  # a day with more quarantined rows fails its check
VOLUME_TOLERANCE_PERCENT = 25  # a day this far from its weekday's median warns


class QualityPolicy(dg.ConfigurableResource):
    """How much bad or unusual data a partition may hold before its checks fail or warn."""

    quarantine_limit_percent: int = QUARANTINE_LIMIT_PERCENT
    volume_tolerance_percent: int = VOLUME_TOLERANCE_PERCENT
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


def setting_value(value: str | dg.EnvVar) -> str:
    """A setting's value, read from its environment variable when it is one."""
    return value.get_value() if isinstance(value, dg.EnvVar) else value


def int_setting(name: str, default: int) -> int | dg.EnvVar:
    return dg.EnvVar.int(name) if os.environ.get(name) else default


def warehouse_location() -> str | backends.Lake:
    """Where the warehouse is, from the environment as build_resources reads it: the DuckDB file
    (ETL_WAREHOUSE_PATH), or the DuckLake of ETL_DUCKLAKE_CATALOG and ETL_DUCKLAKE_DATA_PATH."""
    catalog = os.environ.get("ETL_DUCKLAKE_CATALOG")
    if catalog:
        if not backends.on_postgres(catalog):
            catalog = str(env_path("ETL_DUCKLAKE_CATALOG", catalog))
        return backends.Lake(catalog, str(env_path("ETL_DUCKLAKE_DATA_PATH",
                                                   DEFAULT_DUCKLAKE_DATA)))
    return str(env_path("ETL_WAREHOUSE_PATH", DEFAULT_WAREHOUSE))


def build_alert_sink() -> AlertSink:
    """The sink from ETL_ALERT_LOG, ETL_ALERT_WEBHOOK_URL and ETL_UI_BASE_URL; called at load."""
    webhook = os.environ.get("ETL_ALERT_WEBHOOK_URL")
    if webhook:
        check_webhook_url(webhook)  # at load, with a message that does not repeat the URL
    return AlertSink(
        log_path=path_setting("ETL_ALERT_LOG", DEFAULT_ALERT_LOG),
        webhook_url=setting("ETL_ALERT_WEBHOOK_URL", None),
        ui_base_url=setting("ETL_UI_BASE_URL", DEFAULT_UI_BASE_URL),
    )


def build_resources() -> dict[str, object]:
    """Resources from the environment; called when definitions load, never at import."""
    policy = os.environ.get("ETL_MANIFEST_POLICY")
    if policy and policy not in MANIFEST_POLICIES:  # at load, not on every sensor tick
        raise ValueError(f"ETL_MANIFEST_POLICY must be one of {MANIFEST_POLICIES}, not {policy!r}")
    catalog = os.environ.get("ETL_DUCKLAKE_CATALOG")
    where = {  # the same for the assets' writes and for reading a table into pandas
        "database": path_setting("ETL_WAREHOUSE_PATH", DEFAULT_WAREHOUSE),
        "ducklake_catalog": (None if not catalog else setting("ETL_DUCKLAKE_CATALOG", None)
                             if backends.on_postgres(catalog)
                             else path_setting("ETL_DUCKLAKE_CATALOG", catalog)),
        "ducklake_data_path": path_setting("ETL_DUCKLAKE_DATA_PATH", DEFAULT_DUCKLAKE_DATA)}
    return {
        "io_manager": WarehouseIOManager(**where),
        "warehouse": WarehouseResource(
            **where,
            connection_config=connection_config(os.environ.get("ETL_DUCKDB_MEMORY_LIMIT"))),
        "landing": LandingZone(path=path_setting("ETL_LANDING_DIR", DEFAULT_LANDING),
                               manifest_policy=setting("ETL_MANIFEST_POLICY", "warn")),
        "alerts": build_alert_sink(),
        "quality": QualityPolicy(
            quarantine_limit_percent=int_setting("ETL_QUARANTINE_LIMIT_PERCENT",
                                                 QUARANTINE_LIMIT_PERCENT),
            volume_tolerance_percent=int_setting("ETL_VOLUME_TOLERANCE_PERCENT",
                                                 VOLUME_TOLERANCE_PERCENT),
        ),
    }
