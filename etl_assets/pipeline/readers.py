"""What analysts read: a copy of the marts in a DuckDB file of its own, published whole.

The warehouse has one writer, and a DuckDB file cannot be opened, even to read, while another
process writes it. So readers never open the warehouse: after each successful marts run the marts
are copied into a new file beside the published one, which then replaces it in one rename. A
reader opens the published file read-only and keeps the copy it opened (the old file lives on
until its last reader closes it); the next open sees the newer one. No reader ever waits for a
load, fails on its lock, or sees half of a run's days.

Each copy carries a table `published` (one row): when it was published, by which run, and the
days its marts cover, so a reader can say how old the figures are.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from etl_assets.pipeline import backends
from etl_assets.pipeline.marts import MARTS

PUBLISHED = "published"


@dataclass(frozen=True)
class Published:
    """What a published copy holds: when, by which run, the days covered, each mart's rows."""

    path: Path
    published_at: dt.datetime
    run_id: str
    first_day: dt.date | None
    last_day: dt.date | None
    rows: dict[str, int]

    def age(self, now: dt.datetime | None = None) -> dt.timedelta:
        return (now or dt.datetime.now(dt.timezone.utc)) - self.published_at

    def describe(self, now: dt.datetime | None = None) -> str:
        days = f"{self.first_day}..{self.last_day}" if self.first_day else "no day yet"
        age = int(self.age(now).total_seconds())
        return (
            f"marts of run {self.run_id[:8]} ({days}), published "
            f"{self.published_at:%Y-%m-%d %H:%M:%S} UTC, {age // 60} min {age % 60} s ago"
        )


def _quoted(path: Path) -> str:
    """A path as a SQL string literal (ATTACH takes no parameters)."""
    return "'" + str(path).replace("'", "''") + "'"


def publish(
    conn: duckdb.DuckDBPyConnection, path: Path, run_id: str, now: dt.datetime | None = None
) -> Published:
    """Copy every mart from the warehouse `conn` reads into a new file, then put it at `path` in
    one rename. The copy is complete and on disk before any reader can open it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    published_at = now or dt.datetime.now(dt.timezone.utc)
    conn.execute(f"ATTACH {_quoted(staging)} AS staging")
    try:
        conn.execute("CREATE SCHEMA staging.marts")
        rows: dict[str, int] = {}
        for name in MARTS:
            conn.execute(f"CREATE TABLE staging.marts.{name} AS SELECT * FROM marts.{name}")
            rows[name] = int(
                backends.one_row(conn.execute(f"SELECT count(*) FROM staging.marts.{name}"))[0]
            )
        first, last = backends.one_row(
            conn.execute("SELECT min(flight_date), max(flight_date) FROM staging.marts.fct_flights")
        )
        conn.execute(
            f"CREATE TABLE staging.main.{PUBLISHED} AS SELECT $at::TIMESTAMPTZ AS published_at, "
            "$run AS run_id, $first::DATE AS first_day, $last::DATE AS last_day",
            {"at": published_at, "run": run_id, "first": first, "last": last},
        )
        conn.execute("CHECKPOINT staging")  # everything in the file itself, no log beside it
        conn.execute("DETACH staging")
        with open(staging, "rb+") as file:  # on disk before it is visible under its name
            os.fsync(file.fileno())
        os.replace(staging, path)
    except BaseException:  # the published copy stays as it was; no half copy is left behind
        with contextlib.suppress(duckdb.Error):
            conn.execute("DETACH DATABASE IF EXISTS staging")
        for leftover in (staging, staging.with_name(staging.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return Published(path, published_at, run_id, first, last, rows)


def open_published(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection to the published marts, read-only; their tables are marts.<name>."""
    if not path.exists():
        raise FileNotFoundError(
            f"no marts are published at {path} yet: they are after the first successful "
            f"marts run (etl-assets run, or the marts' automation under dagster dev)"
        )
    conn = duckdb.connect()  # the file attached under one name, whatever the file is called
    conn.execute(f"ATTACH {_quoted(path)} AS published (READ_ONLY)")
    conn.execute("USE published")
    return conn


def published(conn: duckdb.DuckDBPyConnection, path: Path) -> Published:
    """What the copy a reader opened holds."""
    at, run_id, first, last = backends.one_row(
        conn.execute(f"SELECT published_at, run_id, first_day, last_day FROM main.{PUBLISHED}")
    )
    rows = {
        name: int(backends.one_row(conn.execute(f"SELECT count(*) FROM marts.{name}"))[0])
        for name in MARTS
    }
    return Published(path, at.astimezone(dt.timezone.utc), run_id, first, last, rows)


def covers(path: Path, day: dt.date) -> bool:
    """Whether the published copy holds `day`: the pipeline has caught up with it, as far as the
    copy readers open (the last step of a run that changes the marts)."""
    if not path.exists():
        return False
    with open_published(path) as conn:  # the one row it needs, not the marts' counts
        first, last = backends.one_row(
            conn.execute(f"SELECT first_day, last_day FROM main.{PUBLISHED}")
        )
    return first is not None and first <= day <= (last or day)
