"""Extract: delivered files → raw tables, read by DuckDB itself, every value as text.

Raw keeps each delivered row and column as delivered (text, 'NA' included; an empty field is
NULL) plus where it came from: the file, its identity (path, size, modified time: what the
landing sensor keys runs on) and when it was loaded. Nothing a later rule rejects is lost before
it can be quarantined with a reason. Each file is checked first (there, UTF-8, the feed's header,
in any order), so a bad delivery fails with its name rather than midway through the read.

A file whose columns differ from the contract (schema drift) loads under policy "warn": a column
the contract does not declare is kept in raw's `_undeclared` map, a missing column that nothing
required is parsed or derived from loads as NULL, and the ledger names both for the checks. A
missing required column, or a typed column none of whose values parse, refuses the file. Policy
"refuse" refuses any difference.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import math
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from etl_assets.pipeline import backends, warehouse
from etl_assets.pipeline.landing import (
    daily_file,
    manifest_file,
    missing_daily_files,
    reference_file,
)
from etl_assets.pipeline.tables import UNDECLARED, Column, TableContract, raw_columns


class DeliveryError(ValueError):
    """A delivery that cannot be read as the feed it claims to be: missing, empty or misshapen."""


class WarehouseBusy(RuntimeError):
    """Another process is writing the warehouse file, so it cannot be read just now."""


# The warehouse's own record of what it holds: one row per delivered file that raw holds now,
# written in the transaction that loads the file, so any instance (or none) can tell a file that
# is already loaded from a new one, an empty file included.
LEDGER = ("raw", "delivered_files")
LEDGER_COLUMNS = (
    Column("feed", "VARCHAR", "The feed the file was delivered for.", nullable=False),
    Column("delivery_date", "DATE", "The day of a daily feed's file; empty for a reference file."),
    Column(
        "source_file", "VARCHAR", "The file, relative to the landing directory.", nullable=False
    ),
    Column(
        "identity",
        "VARCHAR",
        "path:size:modified-time (ns), as the landing sensor names a delivery.",
        nullable=False,
    ),
    Column("rows", "BIGINT", "Rows of the file in raw.", nullable=False),
    Column("loaded_at", "TIMESTAMPTZ", "When the run loaded the file (UTC).", nullable=False),
    Column(
        "undeclared_columns",
        "VARCHAR[]",
        "Columns of the file the contract does not declare (kept in raw's _undeclared).",
    ),
    Column(
        "missing_columns",
        "VARCHAR[]",
        "Declared columns the file lacked (loaded as NULL).",
    ),
)


@dataclass(frozen=True)
class DeliveredFile:
    path: Path
    relative: str  # to the landing directory, '/'-separated
    identity: str  # path:size:mtime_ns, as the landing sensor names a delivery
    delivery_date: dt.date | None


MANIFEST_POLICIES = ("warn", "require")
DRIFT_POLICIES = ("warn", "refuse")  # a file whose columns differ from the contract's
MANIFEST_MAX_BYTES = 64 * 1024  # a file without a manifest: load it warning, or wait


class ManifestMissing(DeliveryError):
    """A file whose manifest has not arrived, where the policy is to wait for it."""


@dataclass(frozen=True)
class Verified:
    """A delivery that may be loaded: its header, its rows, and whether a manifest vouched."""

    header: tuple[str, ...]
    rows: int
    manifest: bool
    undeclared: tuple[str, ...] = ()  # columns the contract does not declare, in file order
    missing: tuple[str, ...] = ()  # declared columns the file lacks, all of them nullable


def verify_delivery(
    path: Path, contract: TableContract, policy: str = "warn", drift: str = "warn"
) -> Verified:
    """Check a delivered file as a whole: readable, the feed's header, and what its manifest says.

    A file whose rows or checksum differ from its manifest is refused, naming both counts; one
    without a manifest is accepted (`Verified.manifest` False) under policy "warn" and raises
    ManifestMissing under "require". drift: what a header other than the contract's does (see
    the module's docstring).
    """
    if policy not in MANIFEST_POLICIES:
        raise ValueError(f"manifest policy must be one of {MANIFEST_POLICIES}, not {policy!r}")
    data = _read(path)
    text = _text(path, data)
    header = _header(path, text, contract, drift)
    undeclared = tuple(c for c in header if c not in contract.source_columns)
    missing = tuple(c for c in contract.source_columns if c not in header)
    _refuse_changed_types(path, text, header, contract)
    rows = _records(text)
    manifest = _manifest(path)
    if manifest is None:
        if policy == "require":
            raise ManifestMissing(f"{path}: waits for its manifest, {manifest_file(path).name}")
        return Verified(header, rows, False, undeclared, missing)
    if manifest["rows"] != rows:
        raise DeliveryError(
            f"{path}: {rows:,} rows, but its manifest says {manifest['rows']:,}: the file is "
            f"incomplete or not the one the manifest describes"
        )
    if manifest["sha256"].lower() != hashlib.sha256(data).hexdigest():
        raise DeliveryError(
            f"{path}: {rows:,} rows as its manifest says, but its SHA-256 "
            f"differs from the manifest's: the file was changed"
        )
    return Verified(header, rows, True, undeclared, missing)


def _read(path: Path) -> bytes:
    if path.is_symlink():
        raise DeliveryError(f"{path}: a symbolic link; a delivery must be a regular file")
    if not path.is_file():
        raise DeliveryError(f"{path}: not a regular file")
    try:
        return path.read_bytes()
    except PermissionError:
        raise DeliveryError(f"{path}: cannot be read (permission denied)") from None
    except OSError as error:
        raise DeliveryError(f"{path}: cannot be read ({error.strerror or error})") from None


def _text(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DeliveryError(f"{path}: not a readable UTF-8 CSV file: {error}") from None
    if not text.strip():
        raise DeliveryError(f"{path}: file is empty (not even a header)")
    return text


def _header(path: Path, text: str, contract: TableContract, drift: str) -> tuple[str, ...]:
    if drift not in DRIFT_POLICIES:
        raise ValueError(f"schema drift policy must be one of {DRIFT_POLICIES}, not {drift!r}")
    try:
        header = next(csv.reader(io.StringIO(text[: text.find("\n") + 1 or None])))
    except (csv.Error, StopIteration) as error:
        raise DeliveryError(f"{path}: not a readable UTF-8 CSV file: {error}") from None
    header = [h.strip() for h in header]
    missing = [c for c in contract.source_columns if c not in header]
    extra = [c for c in header if c not in contract.source_columns]
    required = [c for c in missing if c in contract.required_sources]
    folded = [h.casefold() for h in header]
    if len(set(folded)) != len(folded) or "" in header:
        raise DeliveryError(
            f"{path}: header does not match the {contract.name} feed; "
            + ("a column without a name" if "" in header else "a column appears twice")
        )
    if required or (drift == "refuse" and (missing or extra)):
        raise DeliveryError(
            f"{path}: header does not match the {contract.name} feed"
            + (f"; missing required columns {required}" if required else "")
            + (f"; missing columns {missing}" if missing and not required else "")
            + (f"; unexpected columns {extra}" if extra else "")
            + ("" if required else " (ETL_SCHEMA_DRIFT=refuse)")
        )
    return tuple(header)


def _refuse_changed_types(
    path: Path, text: str, header: tuple[str, ...], contract: TableContract
) -> None:
    """Refuse a file with a typed column none of whose values is of its type (and at least one
    is there): its type changed upstream, and every row would be quarantined for it.

    Rows are read until each typed column has shown one value of its type, the first row or so
    of a file, so the whole file is read only for a column that changed. A few values that do
    not parse are the quarantine's, row by row, with their reasons.
    """
    position = {name: i for i, name in enumerate(header)}
    pending = {
        position[c.source]: c
        for c in contract.parsed_columns
        if c.dtype in _PARSES and c.source in position
    }
    seen: dict[int, tuple[int, str]] = {}  # position: values present, the first of them
    body = text[text.find("\n") + 1 :] if "\n" in text else ""  # the records after the header
    for record in csv.reader(io.StringIO(body)):
        for at in list(pending):
            value = record[at].strip() if at < len(record) else ""
            if value in ("", "NA"):
                continue
            if is_of_type(pending[at].dtype, value):
                del pending[at]
                continue
            count, first = seen.get(at, (0, value))
            seen[at] = (count + 1, first)
        if not pending:
            return
    for at, col in pending.items():
        if at in seen:
            count, first = seen[at]
            raise DeliveryError(
                f"{path}: column {col.source} is no longer {col.dtype}: none of its {count:,} "
                f"values is one (the first: {first[:40]!r}); the file is refused until the "
                f"delivery or the contract changes"
            )


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _timestamp_with_offset(text: str) -> bool:
    if not _OFFSET.search(text):
        return False
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


_OFFSET = re.compile(r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$")
# Whether a value (trimmed, not 'NA') is of a type, as cleaning types it
# (`transform.typed_select_sql`, where DuckDB's casts are the rule; a test holds the two equal).
_PARSES = {
    "BIGINT": lambda v: (n := _number(v)) is not None and n == int(n),
    "DOUBLE": lambda v: _number(v) is not None,
    "TIMESTAMPTZ": _timestamp_with_offset,
}


def is_of_type(dtype: str, text: str) -> bool:
    """Whether a delivered value (trimmed, not 'NA') is of the type, as cleaning would type it."""
    return _PARSES[dtype](text)


def _records(text: str) -> int:
    """CSV records after the header (a quoted field may hold line breaks; blank lines are none)."""
    if '"' not in text:  # no quoting: a record is a non-blank line, ended by \n or \r\n
        return sum(1 for line in text.split("\n") if line.strip()) - 1
    return sum(1 for record in csv.reader(io.StringIO(text)) if record) - 1


def _manifest(path: Path) -> dict[str, Any] | None:
    """The file's manifest, checked for shape; None when there is none."""
    where = manifest_file(path)
    try:
        info = where.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MANIFEST_MAX_BYTES:
        raise DeliveryError(
            f"{where}: a manifest must be a regular file of at most "
            f"{MANIFEST_MAX_BYTES:,} bytes (not a link, a pipe or a device)"
        )
    try:
        manifest = json.loads(where.read_bytes())
    except (OSError, ValueError) as error:
        raise DeliveryError(f"{where}: not a readable manifest: {error}") from None
    if not (
        isinstance(manifest, dict)
        and type(manifest.get("rows")) is int
        and manifest["rows"] >= 0
        and isinstance(manifest.get("sha256"), str)
        and len(manifest["sha256"]) == 64
    ):
        raise DeliveryError(
            f'{where}: a manifest needs "rows" (a count) and "sha256" (64 hex '
            f'digits), e.g. {{"file": "{path.name}", "rows": 943, '
            f'"sha256": "…"}}'
        )
    return manifest


def delivered(landing_dir: Path, path: Path, day: dt.date | None) -> DeliveredFile:
    """The file as a delivery: where it is, and its identity; a file that resolves outside
    the landing zone (through a linked folder) is refused."""
    if path.is_symlink():
        raise DeliveryError(f"{path}: a symbolic link; a delivery must be a regular file")
    if not path.resolve().is_relative_to(Path(landing_dir).resolve()):
        raise DeliveryError(
            f"{path}: resolves outside the landing zone {landing_dir} "
            f"(through a link); a delivery must be inside it"
        )
    info = path.stat()
    relative = path.relative_to(landing_dir).as_posix()
    return DeliveredFile(
        path=path,
        relative=relative,
        delivery_date=day,
        identity=f"{relative}:{info.st_size}:{info.st_mtime_ns}",
    )


def daily_deliveries(
    landing_dir: Path, contract: TableContract, wanted: Sequence[dt.date]
) -> list[DeliveredFile]:
    """The files of a daily feed for the given days; every one must be there."""
    landing_dir = Path(landing_dir)
    missing = missing_daily_files(landing_dir, [contract.name], wanted)
    if missing:
        shown = ", ".join(str(path) for _, _, path in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DeliveryError(
            f"{len(missing)} {contract.name} file(s) missing from the landing zone: {shown}{more}. "
            f"Land them first, e.g. `etl-assets land --start {missing[0][1]} "
            f"--end {missing[-1][1]}`."
        )
    return [
        delivered(landing_dir, daily_file(landing_dir, contract.name, day), day) for day in wanted
    ]


def reference_delivery(landing_dir: Path, contract: TableContract) -> DeliveredFile:
    landing_dir = Path(landing_dir)
    path = reference_file(landing_dir, contract.name)
    if not path.exists():
        raise DeliveryError(
            f"{contract.name} reference file missing from the landing zone: {path}. "
            "Land it first, e.g. `etl-assets land --start 2013-01-01 --end 2013-01-01`."
        )
    return delivered(landing_dir, path, None)


def read_sql(contract: TableContract, header: tuple[str, ...], group: int) -> str:
    """The files of one header as raw rows: declared columns by name, then lineage.

    The header was checked, so the reader is told the columns instead of sniffing every file.
    A declared column the header lacks is NULL; the columns the contract does not declare go
    into `_undeclared`, named by $undeclared<group> (a header's names never enter the SQL: the
    reader calls those columns by their position). $paths<group>, $relative<group>,
    $identities<group> and $dates<group> are parallel lists, one entry per file.
    """
    named = [
        c if c in contract.source_columns else f"_undeclared_{i}" for i, c in enumerate(header)
    ]
    delivered_columns = ", ".join(
        f"r.{c}" if c in header else f"NULL::VARCHAR AS {c}" for c in contract.source_columns
    )
    undeclared = [f"r.{n}" for n, c in zip(named, header, strict=True) if n != c]
    kept = (
        f"map($undeclared{group}, [{', '.join(undeclared)}])"
        if undeclared
        else "NULL::MAP(VARCHAR, VARCHAR)"
    )
    types = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in named) + "}"
    return f"""
    SELECT {delivered_columns}, {kept} AS {UNDECLARED}, f.delivery_date,
           f.source_file AS _source_file, f.identity AS _source_identity, $loaded_at AS _loaded_at
    FROM read_csv($paths{group}, header = true, auto_detect = false, columns = {types},
                  filename = true, delim = ',', quote = '"', escape = '"',
                  null_padding = true, encoding = 'utf-8') AS r
    JOIN (SELECT unnest($paths{group}) AS filename, unnest($relative{group}) AS source_file,
                 unnest($identities{group}) AS identity,
                 unnest($dates{group})::DATE AS delivery_date) AS f
      USING (filename)"""


def load_raw(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    files: Sequence[DeliveredFile],
    loaded_at: dt.datetime,
    start: dt.date | None = None,
    end: dt.date | None = None,
    manifest_policy: str = "warn",
    drift: str = "warn",
) -> dict[dt.date | None, int]:
    """Replace the range's raw rows (the whole table for a reference feed) with the files' rows.

    Returns the rows loaded per delivery date. Every file is verified first (`verify_delivery`),
    and all are loaded in one transaction: a file that is refused or fails to read leaves the
    table as it was.
    """
    by_header: dict[tuple[str, ...], list[DeliveredFile]] = {}
    verified: dict[str, Verified] = {}
    for file in files:
        verified[file.identity] = verify_delivery(file.path, contract, manifest_policy, drift)
        by_header.setdefault(verified[file.identity].header, []).append(file)
    columns = raw_columns(contract)
    target = warehouse.table("raw", contract.name)
    date_column = "delivery_date" if contract.delivered_daily else None
    params: dict[str, object] = {"loaded_at": loaded_at}
    for group, group_files in enumerate(by_header.values()):
        params |= {
            f"paths{group}": [str(f.path) for f in group_files],
            f"relative{group}": [f.relative for f in group_files],
            f"identities{group}": [f.identity for f in group_files],
            f"dates{group}": [f.delivery_date for f in group_files],
        }
        undeclared = verified[group_files[0].identity].undeclared  # one header, one list
        if undeclared:
            params[f"undeclared{group}"] = list(undeclared)
    read = " UNION ALL ".join(
        read_sql(contract, header, group) for group, header in enumerate(by_header)
    )
    days = warehouse.day_range(start, end) if date_column else None
    with warehouse.transaction(conn, target, days):
        warehouse.ensure_table(conn, "raw", contract.name, columns, date_column)
        # by feed: a reference file's delivery_date is empty, and DuckLake cannot partition NULLs
        warehouse.ensure_table(conn, *LEDGER, LEDGER_COLUMNS, "feed")
        if files:
            try:
                warehouse.replace_rows(conn, target, columns, date_column, start, end, read, params)
            except Exception as error:  # DuckDB's reader: a line it cannot parse
                if type(error).__module__.split(".")[0] not in ("duckdb", "_duckdb"):
                    raise
                names = ", ".join(f.relative for f in files[:3])
                raise DeliveryError(
                    f"cannot read {names}{' …' if len(files) > 3 else ''}: "
                    f"{str(error).splitlines()[0]}"
                ) from None
            _check_loaded(conn, target, date_column, start, end, files, verified)
        else:
            conn.execute(
                f"DELETE FROM {target}{warehouse.range_filter(date_column)}",
                warehouse.range_params(date_column, start, end),
            )
        _record_deliveries(conn, contract, files, verified, loaded_at, start, end)
        counts = conn.execute(
            f"SELECT delivery_date, count(*) FROM {target}{warehouse.range_filter(date_column)} "
            f"GROUP BY 1 ORDER BY 1",
            warehouse.range_params(date_column, start, end),
        ).fetchall()
    return {day: int(rows) for day, rows in counts}


def _check_loaded(
    conn: duckdb.DuckDBPyConnection,
    target: str,
    date_column: str | None,
    start: dt.date | None,
    end: dt.date | None,
    files: Sequence[DeliveredFile],
    verified: dict[str, Verified],
) -> None:
    """Refuse, before the commit, a file that changed between its check and DuckDB's read: the
    rows loaded are not what its manifest says, or its size or modified time moved."""
    loaded = dict(
        conn.execute(
            f"SELECT _source_identity, count(*) FROM {target}{warehouse.range_filter(date_column)} "
            f"GROUP BY 1",
            warehouse.range_params(date_column, start, end),
        ).fetchall()
    )
    for file in files:
        check = verified[file.identity]
        if check.manifest and loaded.get(file.identity, 0) != check.rows:
            raise DeliveryError(
                f"{file.path}: {loaded.get(file.identity, 0):,} rows read, but "
                f"its manifest says {check.rows:,}: the file changed while it "
                f"was loaded"
            )
        try:
            info = file.path.stat()
            now = [str(info.st_size), str(info.st_mtime_ns)]
        except OSError:
            now = None
        if now != file.identity.rsplit(":", 2)[1:]:  # path:size:mtime
            raise DeliveryError(
                f"{file.path}: changed while it was loaded; the new file is a "
                f"new delivery, to be loaded as one"
            )


def _record_deliveries(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    files: Sequence[DeliveredFile],
    verified: dict[str, Verified],
    loaded_at: dt.datetime,
    start: dt.date | None,
    end: dt.date | None,
) -> None:
    """Replace the ledger's rows of the feed's range with the files just loaded into raw."""
    date_column = "delivery_date" if contract.delivered_daily else None
    where = warehouse.range_filter(date_column)
    range_params = warehouse.range_params(date_column, start, end)
    ledger = warehouse.table(*LEDGER)
    conn.execute(
        f"DELETE FROM {ledger} WHERE feed = $feed" + where.replace(" WHERE ", " AND "),
        {"feed": contract.name, **range_params},
    )
    if not files:
        return
    conn.execute(
        f"""
        INSERT INTO {ledger} BY NAME
        SELECT $feed AS feed, f.delivery_date, f.source_file, f.identity,
               coalesce(n.rows, 0) AS rows, $loaded_at AS loaded_at,
               f.undeclared_columns, f.missing_columns
        FROM (SELECT unnest($dates)::DATE AS delivery_date, unnest($relative) AS source_file,
                     unnest($identities) AS identity,
                     unnest($undeclared)::VARCHAR[] AS undeclared_columns,
                     unnest($missing)::VARCHAR[] AS missing_columns) AS f
        LEFT JOIN (SELECT _source_identity, count(*) AS rows
                   FROM {warehouse.table("raw", contract.name)}{where} GROUP BY 1) AS n
          ON n._source_identity = f.identity""",
        {
            "feed": contract.name,
            "loaded_at": loaded_at,
            **range_params,
            "dates": [f.delivery_date for f in files],
            "relative": [f.relative for f in files],
            "identities": [f.identity for f in files],
            "undeclared": [list(verified[f.identity].undeclared) for f in files],
            "missing": [list(verified[f.identity].missing) for f in files],
        },
    )


def drift_in_words(undeclared: Sequence[str], missing: Sequence[str]) -> str:
    """What a file's columns did, as the run's log and the check say it."""
    return "; ".join(
        ([f"undeclared {', '.join(undeclared)} kept in raw's {UNDECLARED}"] if undeclared else [])
        + ([f"missing {', '.join(missing)} loaded as NULL"] if missing else [])
    )


def drifted_files(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[tuple[str, list[str], list[str]]]:
    """The range's loaded files whose columns differed from the contract: (file, undeclared
    columns, missing columns), from the ledger; every day's without a range."""
    date_column = "delivery_date" if contract.delivered_daily and start is not None else None
    where = warehouse.range_filter(date_column).replace(" WHERE ", " AND ")
    return [
        (file, list(undeclared), list(missing))
        for file, undeclared, missing in conn.execute(
            f"SELECT source_file, undeclared_columns, missing_columns "
            f"FROM {warehouse.table(*LEDGER)} WHERE feed = $feed{where} "
            "AND len(undeclared_columns) + len(missing_columns) > 0 ORDER BY source_file",
            {"feed": contract.name, **warehouse.range_params(date_column, start, end)},
        ).fetchall()
    ]


def loaded_identities(
    warehouse_path: str | Path | backends.Lake, identities: Sequence[str]
) -> set[str]:
    """Which of these file identities the warehouse holds now (its ledger of delivered files).

    None before the first load. Raises WarehouseBusy while another process writes the file.
    """
    if not identities or not backends.exists(warehouse_path):
        return set()
    with contextlib.ExitStack() as opened:
        try:
            conn = opened.enter_context(backends.connect(warehouse_path, read_only=True))
        except duckdb.IOException as error:  # DuckDB's lock: one writing process, or readers
            raise WarehouseBusy(f"{warehouse_path}: {str(error).splitlines()[0]}") from None
        held = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = $s AND table_name = $t",
            {"s": LEDGER[0], "t": LEDGER[1]},
        ).fetchall()
        if not held:
            return set()
        rows = conn.execute(
            f"SELECT identity FROM {warehouse.table(*LEDGER)} "
            "WHERE identity IN (SELECT unnest($ids))",
            {"ids": list(identities)},
        ).fetchall()
        return {identity for (identity,) in rows}
