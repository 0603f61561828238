"""How a table's contract is declared: Column and TableContract, and the columns every raw and
quarantine table adds to a feed's.

Identifiers are code constants, checked by `_identifier` so they can be quoted into SQL safely;
values never are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _identifier(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


@dataclass(frozen=True)
class Column:
    """One column of a clean or mart table and the rule each value must meet."""

    name: str
    dtype: str  # DuckDB type: VARCHAR, BIGINT, DOUBLE, DATE, TIMESTAMP, TIMESTAMPTZ
    description: str
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None  # full-match regular expression for VARCHAR values
    source: str | None = None  # the delivered column it is parsed from, if any
    lineage: tuple[str, ...] = ()  # "table.column" it derives from, for column lineage

    def __post_init__(self) -> None:
        _identifier(self.name)
        if self.source is not None:
            _identifier(self.source)

    def rule(self) -> str:
        """The rule in words, for the UI and for quarantine reasons."""
        parts = [self.dtype, "nullable" if self.nullable else "required"]
        if self.min is not None or self.max is not None:
            parts.append(f"in [{_fmt(self.min)}, {_fmt(self.max)}]")
        if self.allowed:
            parts.append("one of " + ", ".join(self.allowed))
        if self.pattern:
            parts.append(f"matches {self.pattern}")
        return "; ".join(parts)


def _fmt(value: float | None) -> str:
    if value is None:
        return "…"
    return f"{value:g}"


@dataclass(frozen=True)
class TableContract:
    """A clean table: the columns it delivers, the columns it keeps, its key and partition."""

    name: str
    description: str
    source_columns: tuple[str, ...]  # the header the upstream feed delivers, in order
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    partition_column: str | None = None  # local date column of a daily feed
    delivered_daily: bool = False

    def __post_init__(self) -> None:
        _identifier(self.name)
        for name in (*self.source_columns, *self.key):
            _identifier(name)
        names = {c.name for c in self.columns}
        missing = [k for k in self.key if k not in names]
        if missing:
            raise ValueError(f"{self.name}: key columns {missing} are not declared")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def parsed_columns(self) -> list[Column]:
        return [c for c in self.columns if c.source is not None]

    @property
    def required_sources(self) -> tuple[str, ...]:
        """The delivered columns a file cannot do without: one a required column is parsed
        from, or derived from (its lineage); the others may be missing and load as NULL."""
        required = [c for c in self.columns if not c.nullable]
        return tuple(
            s for s in self.source_columns if any(c.source == s or s in c.lineage for c in required)
        )


QUARANTINE_REASON = "_reason"
UNDECLARED = "_undeclared"  # a raw table's column of delivered columns the contract lacks


def raw_columns(contract: TableContract) -> tuple[Column, ...]:
    """A raw table's columns: each delivered column as text, then the lineage columns."""
    delivered = tuple(
        Column(name, "VARCHAR", f"'{name}' exactly as delivered (text, 'NA' kept).")
        for name in contract.source_columns
    )
    return (
        *delivered,
        Column(
            "delivery_date",
            "DATE",
            "Date of the daily file the row came in; empty for a reference file.",
        ),
        Column(
            "_source_file",
            "VARCHAR",
            "Delivered file, relative to the landing directory.",
            nullable=False,
        ),
        Column(
            "_source_identity",
            "VARCHAR",
            "The delivered file's path:size:modified-time "
            "(ns), as the landing sensor names a delivery.",
            nullable=False,
        ),
        Column("_loaded_at", "TIMESTAMPTZ", "When the run loaded the file (UTC).", nullable=False),
        # Last, where a table loaded before it had this column gets it (ALTER TABLE ADD COLUMN).
        Column(
            UNDECLARED,
            "MAP(VARCHAR, VARCHAR)",
            "Delivered columns the contract does not declare, by name, as text; empty when the "
            "file had none.",
        ),
    )


def quarantine_columns(contract: TableContract) -> tuple[Column, ...]:
    """A quarantine table's columns after the clean columns: where the row came from and why."""
    return (
        Column("delivery_date", "DATE", "Date of the daily file the row came in."),
        Column(
            "_source_file",
            "VARCHAR",
            "Delivered file, relative to the landing directory.",
            nullable=False,
        ),
        Column(
            QUARANTINE_REASON,
            "VARCHAR",
            "Every rule of the contract the row breaks.",
            nullable=False,
        ),
    )
