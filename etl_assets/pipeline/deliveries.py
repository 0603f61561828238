"""Deliveries: which files in the landing zone are new or changed since the last look.

A file's identity is its path, size and modification time; a changed file is a new identity.
The cursor is a high-water mark, (modification time, path) of the last file handed out, so a
look costs one directory listing and remembers nothing per old file; each look hands out at
most `limit` files, oldest first, and the next look carries on where it stopped, so a burst of
deliveries is worked through over several looks and none is lost. Files being written (dotfiles,
`*.tmp`, anything not `*.csv`) are not deliveries yet. A file that cannot be mapped to a feed and
a day is returned with the reason, and the cursor moves past it.

A file written later with an older modification time than the cursor (copied with its times
preserved, `cp -p`) is not seen; `etl-assets land` and the upstream feed write new files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from etl_assets.pipeline.contract import DAILY_FEEDS, REFERENCE_FEEDS

DAILY = {c.name for c in DAILY_FEEDS}
REFERENCE = {c.name for c in REFERENCE_FEEDS}
REFERENCE_DIR = "reference"


@dataclass(frozen=True, order=True)
class Delivery:
    mtime_ns: int
    path: str  # relative to the landing directory, with forward slashes
    size: int

    @property
    def identity(self) -> str:
        return f"{self.path}:{self.size}:{self.mtime_ns}"

    @property
    def mark(self) -> tuple[int, str]:
        return (self.mtime_ns, self.path)


@dataclass
class Scan:
    """What one look at the landing zone found, in delivery order."""

    daily: dict[dt.date, list[Delivery]] = field(default_factory=dict)  # day → its files
    reference: list[Delivery] = field(default_factory=list)
    unmappable: list[tuple[Delivery, str]] = field(default_factory=list)  # file, why
    mark: tuple[int, str] | None = None  # the cursor after this look
    pending: int = 0  # new files left for the next looks


def encode_cursor(mark: tuple[int, str] | None) -> str | None:
    return None if mark is None else json.dumps({"mtime_ns": mark[0], "path": mark[1]})


def decode_cursor(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    value = json.loads(cursor)
    return (int(value["mtime_ns"]), str(value["path"]))


def _is_delivery(name: str) -> bool:
    return not name.startswith(".") and name.endswith(".csv")


def list_deliveries(landing: Path) -> list[Delivery]:
    """Every finished file in the landing zone: in a feed folder or, by mistake, at its top."""
    found: list[Delivery] = []
    if not landing.is_dir():
        return found
    with os.scandir(landing) as top:
        for entry in top:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                with os.scandir(entry.path) as folder:
                    for item in folder:
                        if item.is_file() and _is_delivery(item.name):
                            stat = item.stat()
                            found.append(Delivery(stat.st_mtime_ns, f"{entry.name}/{item.name}",
                                                  stat.st_size))
            elif entry.is_file() and _is_delivery(entry.name):
                stat = entry.stat()
                found.append(Delivery(stat.st_mtime_ns, entry.name, stat.st_size))
    return found


def classify(delivery: Delivery, first_day: dt.date, last_day: dt.date | None
             ) -> tuple[str, dt.date | None] | str:
    """(feed, day) for a daily file, (feed, None) for a reference file, or why neither."""
    parts = delivery.path.split("/")
    if len(parts) != 2:
        return "not in a feed folder (flights/, weather/ or reference/)"
    folder, name = parts[0], parts[1][: -len(".csv")]
    if folder == REFERENCE_DIR:
        if name in REFERENCE:
            return (name, None)
        return f"unknown reference table '{name}' (expected one of {', '.join(sorted(REFERENCE))})"
    if folder not in DAILY:
        return f"unknown feed folder '{folder}'"
    try:
        day = dt.date.fromisoformat(name)
    except ValueError:
        return f"'{name}' is not a date (YYYY-MM-DD)"
    if day < first_day or (last_day is not None and day > last_day):
        upto = last_day.isoformat() if last_day else "…"
        return f"{day} is outside the partitions {first_day}..{upto}"
    return (folder, day)


def scan(landing: Path, after: tuple[int, str] | None, limit: int, first_day: dt.date,
         last_day: dt.date | None) -> Scan:
    """The files new or changed since the mark `after`, at most `limit` of them, oldest first."""
    new = sorted(d for d in list_deliveries(landing) if after is None or d.mark > after)
    taken = new[:limit]
    result = Scan(mark=taken[-1].mark if taken else after, pending=len(new) - len(taken))
    for delivery in taken:
        where = classify(delivery, first_day, last_day)
        if isinstance(where, str):
            result.unmappable.append((delivery, where))
        elif where[1] is None:
            result.reference.append(delivery)
        else:
            result.daily.setdefault(where[1], []).append(delivery)
    return result
