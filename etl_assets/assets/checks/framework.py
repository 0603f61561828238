"""The check framework: what a check sees (Scope), what it finds (Verdict), and how a TableCheck
becomes a Dagster check spec and result with counts, the failing share and a sample."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from etl_assets.assets.metadata import markdown
from etl_assets.runtime.resources import QualityPolicy

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


@dataclass(frozen=True)
class Scope:
    """What a check looks at: a warehouse connection and the run's days (None: whole table)."""

    conn: duckdb.DuckDBPyConnection
    start: dt.date | None
    end: dt.date | None  # exclusive
    policy: QualityPolicy = field(default_factory=QualityPolicy)
    # (column, type) as the table's previous materialization recorded them; None if none did
    previous_schema: list[tuple[str, str]] | None = None

    def days(self) -> tuple[dt.date, dt.date]:
        """The run's first day and the day after its last, for a check of a partitioned table."""
        if self.start is None or self.end is None:
            raise ValueError("a check of a partitioned table needs the run's days")
        return self.start, self.end


@dataclass(frozen=True)
class Verdict:
    passed: bool
    summary: str  # one line: what is wrong, or what was checked
    metadata: dict[str, Any]


@dataclass(frozen=True)
class TableCheck:
    """One check of one table: its name, severity, why, and how to evaluate it."""

    name: str
    severity: dg.AssetCheckSeverity
    blocking: bool
    description: str
    evaluate: Callable[[Scope], Verdict]
    additional_deps: tuple[dg.AssetKey, ...] = ()

    def spec(self, asset: dg.AssetKey) -> dg.AssetCheckSpec:
        label = "ERROR, blocking" if self.blocking else self.severity.value
        return dg.AssetCheckSpec(
            self.name,
            asset=asset,
            blocking=self.blocking,
            additional_deps=list(self.additional_deps),
            description=f"{label}: {self.description}",
        )

    def result(self, asset: dg.AssetKey, scope: Scope) -> dg.AssetCheckResult:
        verdict = self.evaluate(scope)
        return dg.AssetCheckResult(
            asset_key=asset,
            check_name=self.name,
            passed=verdict.passed,
            severity=self.severity,
            description=verdict.summary,
            metadata=verdict.metadata,
        )


def evaluate(
    asset: dg.AssetKey, checks: list[TableCheck], scope: Scope
) -> Iterator[dg.AssetCheckResult]:
    for check in checks:
        yield check.result(asset, scope)


def share(part: int, whole: int) -> float:
    """part / whole to six places; 0 for an empty whole."""
    return round(part / whole, 6) if whole else 0.0


def counted(checked: int, failing: int, sample: pd.DataFrame, **extra) -> dict[str, Any]:
    """The metadata every row-level check shows: rows checked, failing, their share, a sample."""
    return {
        "checked_rows": dg.MetadataValue.int(checked),
        "failing_rows": dg.MetadataValue.int(failing),
        "failing_share": dg.MetadataValue.float(share(failing, checked)),
        "sample": markdown(sample),
        **extra,
    }


def date_range(scope: Scope, date_column: str | None) -> tuple[dt.date | None, dt.date | None]:
    """The run's days for a table with a date column; (None, None), the whole table, without."""
    return (scope.start, scope.end) if date_column else (None, None)
