"""Warehouse backends: what differs between the embedded DuckDB file and DuckLake, in one place.

DuckLake keeps its catalog in a database (a DuckDB file here, PostgreSQL on a server) and its
data as Parquet files under a data path. Its extensions come from PyPI packages built for the
pinned DuckDB (`duckdb-ext-ducklake`, `duckdb-ext-postgres`) and load from the installed package
with autoinstall off: nothing is downloaded at run time.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import importlib.util
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import duckdb
import psycopg2

EXTENSION_PACKAGE = "duckdb_ext"  # the folder the duckdb-ext-* packages install into
LAKE = "lake"  # what the DuckLake catalog is attached as
# Extension names as LOAD takes them, and the file each is shipped as.
EXTENSION_FILES = {"ducklake": "ducklake", "postgres": "postgres_scanner"}
POSTGRES = "postgres:"  # a catalog on PostgreSQL: postgres:<libpq connection string>
INIT_ATTEMPTS = 5  # ATTACHes of an empty catalog, which another process may be creating
# How long a writer waits for another writer of the same days before it gives up (and its step
# retries): a year's range holds a table's days for tens of seconds.
LOCK_WAIT = "10min"
# The first key of a run's advisory lock on its days (the second is the day): a write_lock's
# first key is a table name's hash instead.
RUN_DAYS_KEY = 0x45544C44  # "ETLD"
RUN_DAYS_LOCK_FILE = ".days.lock"  # beside a DuckDB file: one byte per day, locked by a run

# Connection settings, as duckdb.connect(config=...) takes them.
ConfigValue: TypeAlias = str | bool | int | float | list[str]
ConnectionConfig: TypeAlias = dict[str, ConfigValue]


class CatalogUnavailable(ConnectionError):
    """The lake's PostgreSQL catalog could not be reached, or its days stayed locked: transient."""


class _Cursor(Protocol):
    """What a query has run on: a DuckDB connection or a psycopg2 cursor."""

    def fetchone(self) -> tuple[Any, ...] | None: ...


def one_row(cursor: _Cursor) -> tuple[Any, ...]:
    """The row of a query that always returns one (count(*), a PRAGMA, a lock function)."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("a query that always returns a row returned none")
    return row


def on_postgres(catalog: str) -> bool:
    """Whether a DuckLake catalog is a PostgreSQL database (else a DuckDB file)."""
    return catalog.startswith(POSTGRES)


@functools.cache
def extension_directory() -> Path:
    """The installed duckdb-ext-* packages' folder, as DuckDB's extension_directory."""
    spec = importlib.util.find_spec(EXTENSION_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the duckdb-ext-ducklake and duckdb-ext-postgres packages are not "
            "installed: pip install -e ."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "extensions"


def platform() -> str:
    """DuckDB's name for this machine's platform, e.g. linux_amd64."""
    return str(one_row(duckdb.execute("PRAGMA platform"))[0])


@functools.cache  # the installed packages do not change while a process runs
def extension_problems(duckdb_version: str | None = None) -> list[str]:
    """What keeps the installed extension packages from loading into this DuckDB; [] if none."""
    version = duckdb_version or duckdb.__version__
    try:
        root = extension_directory()
    except RuntimeError as error:
        return [str(error)]
    built_for = sorted(p.name.removeprefix("v") for p in root.glob("v*") if p.is_dir())
    folder = root / f"v{version}" / platform()
    problems = []
    for name, file in EXTENSION_FILES.items():
        if not (folder / f"{file}.duckdb_extension").is_file():
            problems.append(
                f"the {name} extension is installed for DuckDB "
                f"{', '.join(built_for) or 'no version'} on "
                f"{', '.join(sorted(p.name for p in root.glob('v*/*'))) or '-'}, "
                f"not for the pinned DuckDB {version} on {platform()}: pin duckdb "
                f"and duckdb-ext-{name} to the same release (setup.py)"
            )
    return problems


def offline_config() -> ConnectionConfig:
    """Connection settings that load extensions from the installed packages only."""
    return {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "extension_directory": str(extension_directory()),
    }


def attach_ducklake(
    conn: duckdb.DuckDBPyConnection, catalog: str, data_path: str, read_only: bool = False
) -> None:
    """Load DuckLake (and postgres, for a `postgres:` catalog) and attach the lake as LAKE.

    catalog: a DuckDB file path, or `postgres:dbname=... host=... port=...`; data_path: the
    folder (on a server, object storage) the Parquet files go under.
    """
    problems = extension_problems()
    if problems:
        raise RuntimeError("; ".join(problems))
    for name, value in offline_config().items():
        conn.execute(f"SET {name} = {_literal(str(value))}")
    conn.execute("LOAD ducklake")
    if on_postgres(catalog):
        conn.execute("LOAD postgres")
    options = f"DATA_PATH {_literal(data_path)}" + (", READ_ONLY" if read_only else "")
    for attempt in range(INIT_ATTEMPTS):
        try:
            conn.execute(f"ATTACH {_literal(f'ducklake:{catalog}')} AS {LAKE} ({options})")
            return
        except duckdb.Error as error:
            # The first ATTACH of an empty catalog creates its tables. Two processes doing that
            # at once (two workers' first steps) collide on the catalog server; the loser finds
            # the tables there when it tries again.
            if "Failed to initialize DuckLake" not in str(error) or attempt + 1 == INIT_ATTEMPTS:
                raise
            time.sleep(0.2 * (attempt + 1))


def _literal(text: str) -> str:
    """A SQL string literal (ATTACH takes no parameters)."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Lake:
    """A DuckLake warehouse: its catalog (a DuckDB file, or `postgres:<libpq string>`) and the
    folder its Parquet files go under."""

    catalog: str
    data_path: str

    def __str__(self) -> str:
        where = "PostgreSQL" if on_postgres(self.catalog) else self.catalog
        return f"DuckLake (catalog {where}, data {self.data_path})"


@contextmanager
def connect(
    warehouse: str | Path | Lake,
    *,
    read_only: bool = False,
    config: ConnectionConfig | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection in which the tables are `schema.name` on either backend, closed after.

    On DuckLake the lake is attached and made the default catalog (USE), so the contract's SQL
    runs there unchanged: per connection for a catalog in a DuckDB file, once per process for
    one on PostgreSQL (`_cursor`).
    """
    if isinstance(warehouse, Lake) and on_postgres(warehouse.catalog):
        key = (os.getpid(), warehouse, read_only, tuple(sorted((config or {}).items())))
        conn = _cursor(key)  # a connection of its own, to the lake the process attached
        try:
            conn.execute(f"USE {LAKE}")
            yield conn
        except BaseException:
            _ATTACHED.pop(key, None)  # the catalog's server may have gone: attach anew next time
            raise
        finally:
            conn.close()
        return
    if isinstance(warehouse, Lake):
        conn = duckdb.connect(config=config or {})
        try:
            attach_ducklake(conn, warehouse.catalog, warehouse.data_path, read_only=read_only)
            conn.execute(f"USE {LAKE}")
        except BaseException:
            conn.close()
            raise
    else:
        conn = duckdb.connect(str(warehouse), read_only=read_only, config=config or {})
    try:
        yield conn
    finally:
        conn.close()


# A lake whose catalog is on PostgreSQL, attached once per process (loading the extensions and
# reading the catalog took about 0.5 s a connection, twice a step) and shared by that process's
# connections: DuckLake reads the catalog's latest snapshot at the start of every transaction,
# and a PostgreSQL catalog locks no file, so nothing is held between steps. A lake whose catalog
# is a DuckDB file is attached per connection, so the file stays free for other processes.
# Keyed by the process id, the lake, read_only and the connection settings' items.
_Key: TypeAlias = tuple[int, Lake, bool, tuple[tuple[str, ConfigValue], ...]]
_ATTACHED: dict[_Key, duckdb.DuckDBPyConnection] = {}
_ATTACHING = threading.Lock()


def _cursor(key: _Key) -> duckdb.DuckDBPyConnection:
    """A new connection to the process's attachment of the lake, attaching it first if need be.
    The process id is in the key: a forked child never uses its parent's DuckDB."""
    _pid, lake, read_only, config = key
    with _ATTACHING:
        if key not in _ATTACHED:
            base = duckdb.connect(config=dict(config))
            try:
                attach_ducklake(base, lake.catalog, lake.data_path, read_only=read_only)
            except BaseException:
                base.close()
                raise
            _ATTACHED[key] = base
        return _ATTACHED[key].cursor()


def local_folders(warehouse: str | Path | Lake) -> list[Path]:
    """The local folders the warehouse writes into, to create before its first write."""
    if isinstance(warehouse, Lake):
        catalog = [] if on_postgres(warehouse.catalog) else [Path(warehouse.catalog).parent]
        return [Path(warehouse.data_path), *catalog]
    if str(warehouse) in ("", ":memory:") or str(warehouse).startswith("md:"):
        return []  # in memory, or MotherDuck
    return [Path(warehouse).parent]


def exists(warehouse: str | Path | Lake) -> bool:
    """Whether anything was ever written: the file, or the lake's catalog (a file or a server)."""
    if isinstance(warehouse, Lake):
        return on_postgres(warehouse.catalog) or Path(warehouse.catalog).exists()
    return Path(warehouse).exists()


def lake_catalog(conn: duckdb.DuckDBPyConnection) -> str | None:
    """The catalog of the lake the connection writes by default (USE), or None off DuckLake."""
    row = conn.execute(
        "SELECT type, path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return row[1] if row and row[0] == "ducklake" else None


@contextmanager
def write_lock(
    conn: duckdb.DuckDBPyConnection, table: str | None, start: dt.date | None, end: dt.date | None
) -> Iterator[None]:
    """Hold the table's days start..end (end exclusive; the whole table without them) against
    other writers until the block ends, on a lake whose catalog is on PostgreSQL.

    DuckLake detects two transactions deleting from the same file, but two that replace a day
    which is still empty both commit, and the day holds both sets of rows. So a writer takes a
    PostgreSQL advisory lock per (table, day), in day order, before its transaction begins (its
    snapshot then sees the previous writer's rows); the locks go when the block ends. Writers of
    other days do not wait. A DuckDB file, or a lake with its catalog in one, has a single writer
    process (the file's lock), so nothing is taken there.
    """
    catalog = lake_catalog(conn) if table else None
    if catalog is None or not on_postgres(catalog):
        yield
        return
    days = (
        [(start + dt.timedelta(days=n)).toordinal() for n in range((end - start).days)]
        if start and end
        else [0]
    )
    try:
        pg = psycopg2.connect(catalog.removeprefix(POSTGRES), connect_timeout=30)
    except psycopg2.OperationalError as error:
        raise CatalogUnavailable(f"the lake's catalog is not reachable: {error}") from None
    with closing(pg), pg:  # the transaction ends (and the locks go) when the block does
        try:
            with pg.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = %s", (LOCK_WAIT,))
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s), d) "
                    "FROM (SELECT unnest(%s::int[]) AS d ORDER BY d) AS days",
                    (table, days),
                )
        except psycopg2.errors.LockNotAvailable:
            raise CatalogUnavailable(
                f"{table}: another writer held its days for longer than {LOCK_WAIT}"
            ) from None
        yield


@contextmanager
def hold_days(
    warehouse: str | Path | Lake, first: dt.date, last: dt.date, on_wait: Callable[[str], None]
) -> Iterator[None]:
    """Hold the days first..last (inclusive) of the warehouse for one run until the block ends;
    a run of any of them elsewhere waits for that (on_wait is told once, before it waits).

    So two runs of the same day never interleave their steps, while runs of other days go on.
    On a PostgreSQL catalog: a session advisory lock per day, taken in day order. Otherwise (a
    DuckDB file, or a lake whose catalog is one): a lock on the day's byte of a file beside it,
    the whole range in one call. Both go when the process ends, however it ends.
    """
    catalog = warehouse.catalog if isinstance(warehouse, Lake) else str(warehouse)
    told: list[str] = []

    def wait(text: str) -> None:
        if not told:
            told.append(text)
            on_wait(text)

    if on_postgres(catalog):
        with _days_on_postgres(catalog.removeprefix(POSTGRES), first, last, wait):
            yield
    elif catalog in ("", ":memory:") or catalog.startswith("md:"):
        yield  # in memory (one process), or MotherDuck: no file here to hold days in
    else:
        with _days_in_file(Path(catalog + RUN_DAYS_LOCK_FILE), first, last, wait):
            yield


def _held_text(first: dt.date, last: dt.date) -> str:
    days = str(first) if first == last else f"some of the days {first}..{last}"
    return f"another run is loading {days}; this run waits until it ends"


@contextmanager
def _days_on_postgres(
    dsn: str, first: dt.date, last: dt.date, wait: Callable[[str], None]
) -> Iterator[None]:
    try:
        pg = psycopg2.connect(dsn, connect_timeout=30)
    except psycopg2.OperationalError as error:
        raise CatalogUnavailable(f"the lake's catalog is not reachable: {error}") from None
    pg.autocommit = True
    with closing(pg), pg.cursor() as cursor:  # closing the session releases its locks
        for day in range(first.toordinal(), last.toordinal() + 1):  # in order: no deadlock
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", (RUN_DAYS_KEY, day))
            if not one_row(cursor)[0]:
                wait(_held_text(dt.date.fromordinal(day), dt.date.fromordinal(day)))
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", (RUN_DAYS_KEY, day))
        yield


@contextmanager
def _days_in_file(
    path: Path, first: dt.date, last: dt.date, wait: Callable[[str], None]
) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    span = (last.toordinal() - first.toordinal() + 1, first.toordinal())  # length, start
    with open(path, "a+b") as file:  # closing it releases the lock
        try:
            fcntl.lockf(file, fcntl.LOCK_EX | fcntl.LOCK_NB, *span)
        except (BlockingIOError, PermissionError):  # held by another process (EAGAIN, EACCES)
            wait(_held_text(first, last))
            fcntl.lockf(file, fcntl.LOCK_EX, *span)
        yield
