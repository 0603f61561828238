"""The project's settings: every variable it reads, read and checked once, into one typed object.

`Settings.from_env()` is called where a program starts: when the definitions load (a code
server, `dagster dev`, `dg`, a run's process) and when the CLI starts. Nothing reads the
environment at import, and nothing else reads these variables. A bad value fails there, with a
message naming the variable and what it expects (never the value of a secret).

Relative paths, given or default, are inside the project: the source checkout this package was
loaded from (an editable install, as `make setup` makes), or the absolute ETL_PROJECT_DIR. Run
from any folder, `etl-assets`, `dagster dev`, `dg` and the tests use the same files.

Plain Python, as pipeline/ is: no Dagster import.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl_assets.pipeline import backends
from etl_assets.pipeline.extract import DRIFT_POLICIES, MANIFEST_POLICIES
from etl_assets.pipeline.warehouse import MEMORY_LIMIT
from etl_assets.runtime.channels import check_alert_channels

PROJECT_DIR_VAR = "ETL_PROJECT_DIR"
_MARKERS = ("pyproject.toml", "workspace.yaml")  # what makes a folder the project's checkout
FIRST_DAY = "2013-01-01"  # the first daily partition: the bundled feed starts here
OPEN = "open"  # ETL_LAST_DAY=open: a live feed, one more partition every day
CELERY_SETTINGS = Path(__file__).with_name("celery.yaml")
QUARANTINE_LIMIT_PERCENT = 5  # a day with more quarantined rows fails its check
VOLUME_TOLERANCE_PERCENT = 25  # a day this far from its weekday's median warns


def _setting(variable: str, default: object, what: str, secret: bool = False) -> Any:
    """A field read from `variable`, with no default of its own (from_env gives every value);
    `default` as the docs' configuration table shows it. Typed Any, as dataclasses.field is."""
    metadata = {"variable": variable, "default": default, "what": what}
    return field(repr=not secret, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Every setting, typed; paths absolute. Build it with `Settings.from_env()`."""

    project_dir: Path = _setting(
        PROJECT_DIR_VAR, "the source checkout", "the folder relative paths are in"
    )
    warehouse_path: str = _setting(
        "ETL_WAREHOUSE_PATH", "data/warehouse.duckdb", "the DuckDB warehouse file"
    )
    landing_dir: Path = _setting("ETL_LANDING_DIR", "data/landing", "where the feed delivers files")
    ducklake_catalog: str | None = _setting(  # a PostgreSQL catalog's string holds a password
        "ETL_DUCKLAKE_CATALOG",
        None,
        "the DuckLake catalog, instead of the DuckDB file",
        secret=True,
    )
    published_marts: Path | None = _setting(
        "ETL_PUBLISHED_MARTS",
        None,
        "the file analysts read the marts from (default: beside the warehouse)",
    )
    ducklake_data_path: Path = _setting(
        "ETL_DUCKLAKE_DATA_PATH", "data/lake", "where DuckLake writes its Parquet files"
    )
    celery_broker: str | None = _setting(
        "ETL_CELERY_BROKER", None, "a Redis URL: steps go to Celery workers", secret=True
    )
    celery_settings: Path = _setting(
        "ETL_CELERY_SETTINGS",
        "etl_assets/runtime/celery.yaml",
        "the Celery settings the runs and workers read",
    )
    manifest_policy: str = _setting(
        "ETL_MANIFEST_POLICY", "warn", "a file without its manifest: warn, or require"
    )
    schema_drift: str = _setting(
        "ETL_SCHEMA_DRIFT",
        "warn",
        "a file whose columns differ from the contract: warn (load it), or refuse",
    )
    duckdb_memory_limit: str = _setting(
        "ETL_DUCKDB_MEMORY_LIMIT", MEMORY_LIMIT, "DuckDB's buffer limit"
    )
    dagster_home: Path = _setting("DAGSTER_HOME", ".dagster_home", "Dagster's instance")
    last_day: str = _setting("ETL_LAST_DAY", "2013-12-31", "the last daily partition, or open")
    sensor_interval_seconds: int | None = _setting(
        "ETL_SENSOR_INTERVAL_SECONDS", None, "how often the sensors tick, all at once"
    )
    ingest_cron: str = _setting("ETL_INGEST_CRON", "0 6 * * *", "when the daily ingest ticks")
    alert_log: Path = _setting("ETL_ALERT_LOG", "data/alerts.jsonl", "every alert, as JSON lines")
    alert_webhook_url: str | None = _setting(
        "ETL_ALERT_WEBHOOK_URL", None, "where each alert is also posted", secret=True
    )
    alert_channels: str | None = _setting(
        "ETL_ALERT_CHANNELS",
        None,
        "apprise URLs, separated by spaces: each alert also goes to each",
        secret=True,
    )
    ui_base_url: str = _setting(
        "ETL_UI_BASE_URL", "http://127.0.0.1:3000", "where people open the UI"
    )
    quarantine_limit_percent: int = _setting(
        "ETL_QUARANTINE_LIMIT_PERCENT",
        QUARANTINE_LIMIT_PERCENT,
        "the quarantined share that fails a day",
    )
    volume_tolerance_percent: int = _setting(
        "ETL_VOLUME_TOLERANCE_PERCENT",
        VOLUME_TOLERANCE_PERCENT,
        "how far off its weekday's median a day warns",
    )
    # The settings the environment gave verbatim (variable names): the resources show them in
    # the UI as environment variables, never as values (a URL or a password stays out of it).
    from_environment: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of this environment (this process's unless given), checked."""
        env = os.environ if environ is None else environ

        def raw(name: str) -> str | None:
            value = env.get(variable(name), "").strip()
            return value or None

        def text(name: str) -> str:
            return raw(name) or str(default(name))

        project = project_folder(raw("project_dir"))

        def path(name: str) -> Path:
            return inside(project, text(name))

        webhook = raw("alert_webhook_url")
        if webhook:
            check_webhook_url(webhook)
        channels = raw("alert_channels")
        if channels:
            check_alert_channels(channels)
        catalog = raw("ducklake_catalog")
        if catalog and not backends.on_postgres(catalog):
            catalog = str(inside(project, catalog))
        warehouse = text("warehouse_path")
        if warehouse != ":memory:" and not warehouse.startswith("md:"):
            warehouse = str(inside(project, warehouse))  # else in memory, or on MotherDuck
        settings = cls(
            project_dir=project,
            warehouse_path=warehouse,
            landing_dir=path("landing_dir"),
            ducklake_catalog=catalog,
            ducklake_data_path=path("ducklake_data_path"),
            published_marts=(
                path("published_marts")
                if raw("published_marts")
                else beside_the_warehouse(warehouse, catalog, path("ducklake_data_path"))
            ),
            celery_broker=raw("celery_broker"),
            celery_settings=path("celery_settings") if raw("celery_settings") else CELERY_SETTINGS,
            manifest_policy=choice("manifest_policy", text("manifest_policy"), MANIFEST_POLICIES),
            schema_drift=choice("schema_drift", text("schema_drift"), DRIFT_POLICIES),
            duckdb_memory_limit=text("duckdb_memory_limit"),
            dagster_home=path("dagster_home"),
            last_day=last_day(text("last_day")),
            sensor_interval_seconds=(
                whole("sensor_interval_seconds", raw("sensor_interval_seconds"), least=1)
                if raw("sensor_interval_seconds")
                else None
            ),
            ingest_cron=text("ingest_cron"),
            alert_log=path("alert_log"),
            alert_webhook_url=webhook,
            alert_channels=channels,
            ui_base_url=text("ui_base_url"),
            quarantine_limit_percent=whole(
                "quarantine_limit_percent", text("quarantine_limit_percent"), least=0, most=100
            ),
            volume_tolerance_percent=whole(
                "volume_tolerance_percent", text("volume_tolerance_percent"), least=0
            ),
        )
        if environ is not None:  # another environment's variables mean nothing to this process
            return settings
        given = {
            f.name
            for f in settings_fields()
            if raw(f.name) is not None and str(getattr(settings, f.name)) == raw(f.name)
        }
        return dataclasses.replace(settings, from_environment=frozenset(given))

    @property
    def warehouse(self) -> str | backends.Lake:
        """Where the tables are: the DuckDB file, or the DuckLake when a catalog is set."""
        if self.ducklake_catalog:
            return backends.Lake(self.ducklake_catalog, str(self.ducklake_data_path))
        return self.warehouse_path

    @property
    def on_celery(self) -> bool:
        """Whether runs send their steps to Celery workers (ETL_CELERY_BROKER is set)."""
        return self.celery_broker is not None

    def interval(self, default: int) -> int:
        """A sensor's interval: ETL_SENSOR_INTERVAL_SECONDS when set, else its own default."""
        return self.sensor_interval_seconds or default

    def given(self, name: str) -> str | None:
        """The variable of a setting the environment gave as it is used, else None."""
        return variable(name) if name in self.from_environment else None


def beside_the_warehouse(warehouse: str, catalog: str | None, lake_data: Path) -> Path | None:
    """Where the published marts go unless told: next to the DuckDB file (warehouse.duckdb:
    warehouse.marts.duckdb), or next to a DuckLake's data folder; nowhere for a warehouse
    in memory or on MotherDuck."""
    if catalog:
        return lake_data.parent / f"{lake_data.name}.marts.duckdb"
    if warehouse == ":memory:" or warehouse.startswith("md:"):
        return None
    file = Path(warehouse)
    return file.with_name(f"{file.stem}.marts.duckdb")


def settings_fields() -> tuple[dataclasses.Field, ...]:
    return tuple(f for f in dataclasses.fields(Settings) if "variable" in f.metadata)


def _field(name: str) -> dataclasses.Field:
    [found] = [f for f in settings_fields() if f.name == name]
    return found


def variable(name: str) -> str:
    """The environment variable of a setting."""
    return _field(name).metadata["variable"]


def default(name: str) -> object:
    return _field(name).metadata["default"]


def project_folder(named: str | None) -> Path:
    """The project's folder: ETL_PROJECT_DIR, else the checkout this package was loaded from."""
    if named:
        folder = Path(named).expanduser()
        if not folder.is_absolute():
            raise ValueError(f"{PROJECT_DIR_VAR} must be an absolute path, not {named!r}")
        return folder
    checkout = Path(__file__).resolve().parents[2]
    if all((checkout / marker).exists() for marker in _MARKERS):
        return checkout
    raise ValueError(
        f"etl_assets is installed outside its project ({checkout}), so a relative path has "
        f"nothing to be relative to: set {PROJECT_DIR_VAR} to an absolute folder, or give the "
        f"path as absolute"
    )


def inside(project: Path, path: str | os.PathLike) -> Path:
    """The path itself when absolute, else the same path inside the project."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project / path


def choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{variable(name)} must be one of {allowed}, not {value!r}")
    return value


def whole(name: str, value: str | None, least: int, most: int | None = None) -> int:
    if (
        value is None
        or not value.isdigit()
        or int(value) < least
        or (most is not None and int(value) > most)
    ):
        limits = f"at least {least}" + (f" and at most {most}" if most is not None else "")
        raise ValueError(f"{variable(name)} must be a whole number, {limits}, not {value!r}")
    return int(value)


def last_day(value: str) -> str:
    """ETL_LAST_DAY: the last daily partition (YYYY-MM-DD), or 'open'."""
    if value == OPEN:
        return value
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"ETL_LAST_DAY must be a date (YYYY-MM-DD) or '{OPEN}', not {value!r}"
        ) from None
    if day < dt.date.fromisoformat(FIRST_DAY):
        raise ValueError(f"ETL_LAST_DAY {value} is before the first day {FIRST_DAY}")
    return value


def check_webhook_url(url: str) -> None:
    """Only an http(s) URL with a host; the message names what is wrong, never the URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"ETL_ALERT_WEBHOOK_URL must be an http:// or https:// URL with a "
            f"host, not a {parts.scheme or 'scheme-less'} URL"
        )
    if parts.username is not None or parts.password is not None:  # urllib would echo them
        raise ValueError(
            "ETL_ALERT_WEBHOOK_URL must not carry a user or password "
            "(user:password@host): put the secret in the URL's path or query"
        )
