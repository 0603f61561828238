"""Resources: the warehouse (DuckDB), the landing zone and the quality policy, from the settings.

The assets write the warehouse through `DuckDBResource` with explicit SQL transactions
(`etl_assets/pipeline/warehouse.py`). The stock `DuckDBPandasIOManager` is the `io_manager`
only for reading a table into pandas (`defs.load_asset_value`), where a DataFrame is the unit;
on DuckLake its connections attach the lake (`WarehouseIOManager`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from dagster_duckdb_pandas import DuckDBPandasIOManager

from etl_assets.pipeline import backends
from etl_assets.pipeline.extract import MANIFEST_POLICIES
from etl_assets.pipeline.warehouse import connection_config
from etl_assets.runtime import dagster_adapter
from etl_assets.runtime.alerts import AlertSink
from etl_assets.runtime.settings import (
    QUARANTINE_LIMIT_PERCENT,
    VOLUME_TOLERANCE_PERCENT,
    Settings,
    default,
)

# DuckDB takes one writer process at a time: every asset that writes the warehouse is in this
# pool, limited to 1 in .dagster_home/dagster.yaml, so overlapping runs queue for it.
WAREHOUSE_POOL = "warehouse"


def lake_of(catalog: str | None, data_path: str | None) -> backends.Lake | None:
    """The DuckLake a warehouse setting names, or None for the DuckDB file."""
    return (
        backends.Lake(catalog, data_path or str(default("ducklake_data_path"))) if catalog else None
    )


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


def _lake_connection(
    config: Mapping[str, Any],
) -> AbstractContextManager[duckdb.DuckDBPyConnection] | None:
    """A connection to the lake the IO manager's config names; None for the DuckDB file."""
    lake = lake_of(config.get("ducklake_catalog"), config.get("ducklake_data_path"))
    return None if lake is None else backends.connect(lake, config=config["connection_config"])


class WarehouseIOManager(DuckDBPandasIOManager):
    """`DuckDBPandasIOManager` (a table, or its days, into pandas: `defs.load_asset_value`) on
    the warehouse's backend: the DuckDB file, or the lake when `ducklake_catalog` is set."""

    ducklake_catalog: str | None = None  # as WarehouseResource's
    ducklake_data_path: str | None = None

    def create_io_manager(self, context):
        return dagster_adapter.duckdb_io_manager(
            self, dagster_adapter.duckdb_client(_lake_connection)
        )


class LandingZone(dg.ConfigurableResource):
    """The directory the upstream system delivers files into, and what a delivery must carry."""

    path: str = str(default("landing_dir"))
    # A file without its manifest (`<file>.manifest.json`): "warn" loads it with a warning,
    # "require" waits for the manifest. A file that differs from its manifest is always refused.
    manifest_policy: str = "warn"
    # A file whose columns differ from the contract: "warn" loads it (an undeclared column kept
    # in raw, a missing nullable one as NULL, each named by a WARN check), "refuse" refuses it.
    schema_drift: str = "warn"

    @property
    def root(self) -> Path:
        return Path(self.path)

    @property
    def manifests_required(self) -> bool:
        if self.manifest_policy not in MANIFEST_POLICIES:
            raise ValueError(
                f"ETL_MANIFEST_POLICY must be one of {MANIFEST_POLICIES}, "
                f"not {self.manifest_policy!r}"
            )
        return self.manifest_policy == "require"


class PublishedMarts(dg.ConfigurableResource):
    """Where analysts read the marts: a file the marts are copied into, whole, after each run
    (`pipeline/readers.py`); None publishes nothing (a warehouse in memory or on MotherDuck)."""

    path: str | None = None


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


def configured(settings: Settings, name: str) -> str | dg.EnvVar:
    """A setting as a resource takes it: the environment variable when the environment gave it
    as it is used (the UI then shows the variable, never a secret's value), else the value."""
    variable = settings.given(name)
    return dg.EnvVar(variable) if variable else str(getattr(settings, name))


def build_alert_sink(settings: Settings) -> AlertSink:
    """The sink of the alert log, the webhook, the apprise channels and the UI's address."""
    return AlertSink(
        log_path=configured(settings, "alert_log"),
        webhook_url=configured(settings, "alert_webhook_url")
        if settings.alert_webhook_url
        else None,
        channels=configured(settings, "alert_channels") if settings.alert_channels else None,
        ui_base_url=configured(settings, "ui_base_url"),
    )


def build_resources(settings: Settings) -> dict[str, object]:
    """The resources of the definitions, from the settings."""
    lake = settings.ducklake_catalog is not None
    where = {  # the same for the assets' writes and for reading a table into pandas
        "database": configured(settings, "warehouse_path"),
        "ducklake_catalog": configured(settings, "ducklake_catalog") if lake else None,
        "ducklake_data_path": configured(settings, "ducklake_data_path"),
    }
    quality = {
        name: (
            dg.EnvVar.int(variable)
            if (variable := settings.given(name))
            else getattr(settings, name)
        )
        for name in ("quarantine_limit_percent", "volume_tolerance_percent")
    }
    return {
        "io_manager": WarehouseIOManager(**where),  # type: ignore[arg-type]  # str | EnvVar | None
        "warehouse": WarehouseResource(
            **where,  # type: ignore[arg-type]  # str | EnvVar | None, as each field takes
            connection_config=connection_config(settings.duckdb_memory_limit),
        ),
        "landing": LandingZone(
            path=configured(settings, "landing_dir"),
            manifest_policy=configured(settings, "manifest_policy"),
            schema_drift=configured(settings, "schema_drift"),
        ),
        "alerts": build_alert_sink(settings),
        "published": PublishedMarts(
            path=configured(settings, "published_marts") if settings.published_marts else None
        ),
        "quality": QualityPolicy(**quality),
    }
