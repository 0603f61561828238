"""Deliveries: which landing-zone files are new or changed since the last look, oldest first.

A scan lists the landing zone and returns the files that changed after the cursor's high-water
mark, at most `limit` of them, each placed as a daily feed's day, a reference feed, or a file that
cannot be placed (with the reason). The cursor it returns holds only the mark, the identities of
the files handled at exactly the mark's instant (so a file changed in that same instant is not
missed) and the few files that wait (a live feed's early file for its day's partition, a file for
its manifest): its size does not grow with the number of files ever delivered.

The mark is the file's change time (`st_ctime_ns`), not its modified time: the system sets it
whenever a file is written, renamed into place or has its times set, and no writer can set it
back, while a file moved (`mv`, an atomic rename) or copied with its times kept (`rsync -t`,
`cp -p`) keeps an old modified time that a high-water mark would already have passed. A file's
identity, which makes the run keys, is its path, size and modified time: touching a file's
permissions moves it past the mark again but yields the same identity, so no new run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from etl_assets.pipeline.contract import DAILY_FEEDS, REFERENCE_FEEDS
from etl_assets.pipeline.landing import daily_file, manifest_file, reference_file

# A burst of deliveries beyond this is handled over several looks, oldest first. A look verifies
# the files it takes (a year of the bundled feed, 730 files, in about 0.9 s), and a block of ready
# days is one run, so a year waiting in the landing zone is one look and one run.
MAX_FILES_PER_TICK = 1000
MAX_DEPTH = 3  # folders below the landing zone: <feed>/<file> is one; deeper ones are reported

# A file changed in the last moments before a scan is left for the next one: the folders are
# listed one after another, and a file renamed into a folder already listed, with a later file
# handed out from the next folder, would otherwise fall behind the mark and never be seen.
SETTLE_NS = 2 * 10**9

# A live feed's file can land before its day has a partition: the day ends later in New York than
# where the file was written. Up to this many days after the last partition it waits in the cursor;
# later than that it is a bad name.
EARLY_DAYS = 2

_DAY_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")
_DAILY_FOLDERS = {
    daily_file(Path(), c.name, dt.date(2000, 1, 1)).parent.as_posix(): c.name for c in DAILY_FEEDS
}
_REFERENCE_PATHS = {reference_file(Path(), c.name).as_posix(): c.name for c in REFERENCE_FEEDS}
_EXPECTED = "<feed>/YYYY-MM-DD.csv or reference/<feed>.csv"


@dataclass(frozen=True)
class Days:
    """The days that have a daily partition: first..last, and whether later days will get one."""

    first: dt.date
    last: dt.date | None  # None while no day has a partition yet
    open_ended: bool = False


@dataclass(frozen=True)
class FileState:
    """A landing-zone file as seen by one scan: where it is, its size and its times."""

    path: str  # relative to the landing zone, with '/' separators
    size: int
    mtime_ns: int
    changed_ns: int
    problem: str | None = None  # why this entry cannot be a delivery (a link, a folder, ...)

    @property
    def identity(self) -> str:
        """Path, size and modified time: a new identity is a new delivery of that file."""
        return f"{self.path}:{self.size}:{self.mtime_ns}"


@dataclass(frozen=True)
class Delivery:
    """A file placed as a feed's delivery: a daily feed's day, or a reference feed (day None)."""

    file: FileState
    feed: str
    day: dt.date | None = None


@dataclass(frozen=True)
class Unmappable:
    """A file that is no feed's delivery, and why; it is reported once and then passed over."""

    file: FileState
    reason: str

    @property
    def path(self) -> str:
        return self.file.path


@dataclass(frozen=True)
class Cursor:
    """Where the last scan stopped; `dump` and `load` make the text a sensor keeps between ticks."""

    changed_ns: int = 0  # the high-water mark: the change time of the last file handled
    at_mark: frozenset[str] = frozenset()  # identities handled whose change time is the mark
    waiting: frozenset[str] = frozenset()  # paths of files seen but not ready (Scan.waiting)

    def dump(self) -> str:
        return json.dumps(
            {
                "changed_ns": self.changed_ns,
                "at_mark": sorted(self.at_mark),
                "waiting": sorted(self.waiting),
            },
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(
                changed_ns=int(data["changed_ns"]),
                at_mark=frozenset(data["at_mark"]),
                waiting=frozenset(data["waiting"]),
            )
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(
                f"not a landing-zone cursor ({error}): {text[:200]!r}; "
                "reset the sensor's cursor to scan the landing zone again"
            ) from None

    def is_behind(self, state: FileState) -> bool:
        """Whether the file changed after this cursor's mark (so it is still to be handled)."""
        return state.changed_ns > self.changed_ns or (
            state.changed_ns == self.changed_ns and state.identity not in self.at_mark
        )


@dataclass(frozen=True)
class Scan:
    """What one look at the landing zone found, and the cursor for the next look."""

    daily: dict[dt.date, list[Delivery]]  # by day, in the order the days' files arrived
    reference: list[Delivery]
    unmappable: list[Unmappable]
    cursor: Cursor
    backlog: int = 0  # changed files left for the next scans (beyond the limit, or too fresh)
    # Files seen that are not ready yet, and why: a live feed's file before its day has a
    # partition, or a file whose manifest has not arrived where manifests are required.
    waiting: dict[str, str] = field(default_factory=dict)


def run_key(deliveries: Iterable[Delivery]) -> str:
    """The identities of the files one run loads: the same files never make a second run."""
    return "|".join(sorted(d.file.identity for d in deliveries))


def scan(
    landing_dir: Path,
    cursor: Cursor,
    days: Days,
    limit: int = MAX_FILES_PER_TICK,
    manifests_required: bool = False,
) -> Scan:
    """The files changed after the cursor, oldest first and at most `limit`, placed as deliveries.

    Dotfiles and anything not named *.csv (temporary and partial files, manifests) are not
    deliveries and are never listed. A missing landing zone is an empty one. With
    `manifests_required`, a file waits (in the cursor) until its manifest is there too.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    landing_dir = Path(landing_dir)
    settled = time.time_ns() - SETTLE_NS
    changed = sorted(
        (s for s in _csv_files(landing_dir, landing_dir) if cursor.is_behind(s)),
        key=lambda s: (s.changed_ns, s.path),
    )
    taken = [s for s in changed if s.changed_ns <= settled][:limit]

    mark, at_mark = cursor.changed_ns, set(cursor.at_mark)
    if taken:
        if taken[-1].changed_ns != mark:
            mark, at_mark = taken[-1].changed_ns, set()
        at_mark |= {s.identity for s in taken if s.changed_ns == mark}

    # A waiting file that changed again is handled with the changed files, now or in a later scan.
    changed_paths = {s.path for s in changed}
    rechecked = [
        s
        for s in (_state(landing_dir, p) for p in sorted(cursor.waiting - changed_paths))
        if s is not None
    ]  # a waiting file that was removed is forgotten

    daily: dict[dt.date, list[Delivery]] = {}
    reference: list[Delivery] = []
    unmappable: list[Unmappable] = []
    waiting: dict[str, str] = {}
    for state in [*rechecked, *taken]:
        placed = _place(state, days)
        if (
            isinstance(placed, Delivery)
            and manifests_required
            and not manifest_file(landing_dir / state.path).exists()
        ):
            placed = Wait(f"waits for its manifest, {manifest_file(Path(state.path)).name}")
        if isinstance(placed, Wait):
            waiting[state.path] = placed.reason
        elif isinstance(placed, Unmappable):
            unmappable.append(placed)
        elif placed.day is None:
            reference.append(placed)
        else:
            daily.setdefault(placed.day, []).append(placed)

    return Scan(
        daily=daily,
        reference=reference,
        unmappable=unmappable,
        cursor=Cursor(changed_ns=mark, at_mark=frozenset(at_mark), waiting=frozenset(waiting)),
        backlog=len(changed) - len(taken),
        waiting=waiting,
    )


@dataclass(frozen=True)
class Wait:
    reason: str


def _place(state: FileState, days: Days) -> Delivery | Unmappable | Wait:
    if state.problem:
        return Unmappable(state, state.problem)
    path = PurePosixPath(state.path)
    if state.path in _REFERENCE_PATHS:
        return Delivery(state, feed=_REFERENCE_PATHS[state.path])
    folder = path.parent.as_posix()
    if folder not in _DAILY_FOLDERS:
        return Unmappable(state, f"not a feed's file: expected {_EXPECTED}")
    feed = _DAILY_FOLDERS[folder]
    try:
        if not _DAY_NAME.fullmatch(path.stem):
            raise ValueError
        day = dt.date.fromisoformat(path.stem)
    except ValueError:
        return Unmappable(state, f"{path.name!r} is not a date: expected {folder}/YYYY-MM-DD.csv")
    if daily_file(Path(), feed, day).as_posix() != state.path:  # e.g. a .CSV suffix
        return Unmappable(state, f"not a feed's file: expected {folder}/YYYY-MM-DD.csv")
    if day < days.first:
        return Unmappable(state, f"{day} is before the first partition, {days.first}")
    if days.last is None or day > days.last:
        latest = days.last or days.first - dt.timedelta(days=1)
        if days.open_ended and day <= latest + dt.timedelta(days=EARLY_DAYS):
            return Wait("waits: its day has no partition yet")
        last = f"the last partition, {days.last}" if days.last else "any partition"
        return Unmappable(state, f"{day} is after {last}")
    return Delivery(state, feed=feed, day=day)


def _csv_files(directory: Path, landing_dir: Path, depth: int = 0) -> Iterator[FileState]:
    """Every *.csv entry under the directory, and every entry that cannot be read as one.

    Links are never followed, so a link out of the landing zone or a loop of links cannot be
    read through or recursed into: a link is reported, as is a folder named like a delivery, a
    folder that cannot be listed, and a folder nested deeper than any feed's files.
    """
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as error:  # e.g. no permission to list it
        if directory != landing_dir:
            yield from _problem(
                directory, landing_dir, f"folder cannot be listed: {error.strerror}"
            )
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        named_csv = entry.name.lower().endswith(".csv")
        try:
            if entry.is_symlink():
                yield from _problem(
                    Path(entry.path),
                    landing_dir,
                    (
                        "a symbolic link: a delivery must be a regular file"
                        if named_csv
                        else "a symbolic link: the landing zone's scan does not follow links"
                    ),
                )
                continue
            if entry.is_dir(follow_symlinks=False):
                if named_csv:
                    yield from _problem(
                        Path(entry.path), landing_dir, "a folder: a delivery must be a regular file"
                    )
                if depth + 1 >= MAX_DEPTH:
                    yield from _problem(
                        Path(entry.path),
                        landing_dir,
                        f"a folder nested too deep: expected {_EXPECTED}",
                    )
                    continue
                yield from _csv_files(Path(entry.path), landing_dir, depth + 1)
                continue
            if not (named_csv and entry.is_file(follow_symlinks=False)):
                continue
            stat = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # renamed or removed while listed
            continue
        yield FileState(
            path=Path(entry.path).relative_to(landing_dir).as_posix(),
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            changed_ns=stat.st_ctime_ns,
        )


def _problem(path: Path, landing_dir: Path, reason: str) -> Iterator[FileState]:
    """The entry as a file that is no delivery, and why; nothing if it is gone already."""
    try:
        stat = path.lstat()
    except FileNotFoundError:
        return
    yield FileState(
        path=path.relative_to(landing_dir).as_posix(),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        changed_ns=stat.st_ctime_ns,
        problem=reason,
    )


def _state(landing_dir: Path, path: str) -> FileState | None:
    try:
        stat = (landing_dir / path).lstat()
    except FileNotFoundError:
        return None
    return FileState(
        path=path, size=stat.st_size, mtime_ns=stat.st_mtime_ns, changed_ns=stat.st_ctime_ns
    )
