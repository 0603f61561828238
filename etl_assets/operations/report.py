"""What a run did, for a person: each check's outcome, and the summary table of every table.

`etl-assets run` prints a RunSummary when its runs end; `etl-assets status` prints the latest
outcome of every check from the instance. Both read the warehouse and the instance only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg
import duckdb

from etl_assets.assets.keys import key_table, step_key
from etl_assets.pipeline import backends, quality
from etl_assets.pipeline.contract import ALL_FEEDS
from etl_assets.pipeline.marts import MARTS
from etl_assets.pipeline.readiness import Block
from etl_assets.runtime import dagster_adapter


@dataclass(frozen=True)
class CheckOutcome:
    """A check's outcome: passed, WARN (failed, warning), FAILED (failed, error) or not run."""

    table: str  # schema.table
    check: str
    outcome: str
    detail: str = ""
    when: str = ""  # for the latest outcome of a check: when and in which run

    @classmethod
    def of(cls, evaluation, when: str = "") -> CheckOutcome:
        if evaluation.passed:
            outcome = "passed"
        else:
            outcome = "WARN" if evaluation.severity == dg.AssetCheckSeverity.WARN else "FAILED"
        return cls(
            key_table(evaluation.asset_key),
            evaluation.check_name,
            outcome,
            evaluation.description or "",
            when,
        )


NOT_RUN = "not run"
OUTCOME_ORDER = {"FAILED": 0, "WARN": 1, NOT_RUN: 2, "passed": 3}


def table_text(
    header: tuple[str, ...], body: Sequence[tuple[str, ...]], width: int = 0
) -> list[str]:
    """Rows as aligned columns; the last column is cut to `width` characters when given."""
    if width:
        body = [
            (*row[:-1], row[-1] if len(row[-1]) <= width else row[-1][: width - 1] + "…")
            for row in body
        ]
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, tuple("-" * w for w in widths), *body)
    ]


def render_checks(outcomes: list[CheckOutcome], *, with_when: bool = False) -> list[str]:
    """Every check, one line each: table order, then problems first within a table."""
    rows = sorted(outcomes, key=lambda o: (o.table, OUTCOME_ORDER.get(o.outcome, 9), o.check))
    header = ("table", "check", "outcome", *(("when",) if with_when else ()), "detail")
    body = [
        (o.table, o.check, o.outcome, *((o.when,) if with_when else ()), o.detail) for o in rows
    ]
    return [f"{len(outcomes)} checks: {_tally(outcomes)}", *table_text(header, body, width=110)]


def _tally(outcomes: list[CheckOutcome]) -> str:
    """'3 WARN, 82 passed': how many checks had each outcome, worst first."""
    counts = {k: sum(o.outcome == k for o in outcomes) for k in OUTCOME_ORDER}
    return ", ".join(f"{n} {k}" for k, n in counts.items() if n)


@dataclass
class TableSummary:
    table: str
    rows: int | None
    quarantined: int | None
    checks: list[CheckOutcome] = field(default_factory=list)
    seconds: float | None = None

    def checks_text(self) -> str:
        return _tally(self.checks) or "-"


@dataclass(frozen=True)
class RunPart:
    """One Dagster run of a range run: a block of days, and whether it succeeded."""

    block: Block
    run_id: str
    success: bool


@dataclass
class RunSummary:
    runs: list[RunPart]
    seconds: float
    tables: list[TableSummary]
    failures: list[str]
    checks: list[CheckOutcome] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(part.success for part in self.runs) and not self.failures

    @property
    def run_id(self) -> str:
        """The run's id, when the range was one run."""
        if len(self.runs) != 1:
            raise ValueError(f"the range was {len(self.runs)} runs: see run_ids")
        return self.runs[0].run_id

    @property
    def run_ids(self) -> list[str]:
        return [part.run_id for part in self.runs]

    @property
    def held(self) -> list[Block]:
        return [part.block for part in self.runs if part.block.held]

    def render(self) -> str:
        body = [
            (
                t.table,
                "-" if t.rows is None else f"{t.rows:,}",
                "-" if t.quarantined is None else f"{t.quarantined:,}",
                t.checks_text(),
                "-" if t.seconds is None else f"{t.seconds:.1f}",
            )
            for t in self.tables
        ]
        lines = table_text(("table", "rows", "quarantined", "checks", "seconds"), body)
        lines += ["", *render_checks(self.checks)]
        status = "succeeded" if self.success else "FAILED"
        if len(self.runs) == 1:
            lines.append(f"\nrun {self.runs[0].run_id} {status} in {self.seconds:.1f}s")
        else:
            lines.append(f"\n{len(self.runs)} runs {status} in {self.seconds:.1f}s:")
            lines += [
                f"  {p.block}: run {p.run_id} {'succeeded' if p.success else 'FAILED'}"
                + (" (held back)" if p.block.held else "")
                for p in self.runs
            ]
        lines += [f"  failed: {f}" for f in self.failures]
        if self.held:
            held_days = ", ".join(str(b) for b in self.held)
            first, last = self.held[0].start, self.held[-1].end
            lines.append(
                f"\nnot loaded: {held_days}. Once the files are fixed, load just those "
                f"days, e.g. `etl-assets run --start {first} --end {last}`; the landing "
                f"sensor does it by itself for a file delivered again."
            )
        return "\n".join(lines)


def latest_check_outcomes(
    definitions: dg.Definitions, instance: dg.DagsterInstance
) -> list[CheckOutcome]:
    """Every check of the definitions with its latest recorded outcome in the instance."""
    outcomes = []
    for key in dagster_adapter.check_keys(definitions):
        table = key_table(key.asset_key)
        evaluation, event, status = dagster_adapter.latest_check_evaluation(instance, key)
        if evaluation is not None and event is not None:
            when = dt.datetime.fromtimestamp(event.timestamp).strftime("%Y-%m-%d %H:%M")
            outcomes.append(CheckOutcome.of(evaluation, f"{when} {event.run_id[:8]}"))
        else:
            outcomes.append(CheckOutcome(table, key.name, NOT_RUN, f"latest record: {status}"))
    return outcomes


def error_message(event) -> str:
    """The first line of what went wrong, from the user's code rather than Dagster's wrapper."""
    error = getattr(event.event_specific_data, "error", None)
    if error is None:
        return "unknown error"
    while error.cause is not None and error.cls_name.startswith("DagsterExecution"):
        error = error.cause  # e.g. DagsterExecutionHandleOutputError wrapping the real error
    message = error.message.strip()
    prefix = message.split(": ", 1)
    if len(prefix) == 2 and prefix[0].rsplit(".", 1)[-1] == error.cls_name:
        message = prefix[1]  # drop "package.module.Failure: "
    return f"{message.splitlines()[0]}" if message else error.cls_name


def table_summaries(warehouse, start, end, checks, step_seconds) -> list[TableSummary]:
    """Each table's rows (and quarantined rows) in the range, its checks and its step's time;
    rows are None where the warehouse or the table cannot be read."""
    layout: list[
        tuple[str, str | None, str | None, str]
    ] = []  # table, date column, quarantine, step
    for c in ALL_FEEDS:
        layout.append(
            (
                f"raw.{c.name}",
                "delivery_date" if c.delivered_daily else None,
                None,
                step_key("raw", c.name),
            )
        )
    for c in ALL_FEEDS:
        layout.append(
            (
                f"clean.{c.name}",
                c.partition_column,
                f"quarantine.{c.name}",
                step_key("clean", c.name),
            )
        )
    for name, (contract, _sql) in MARTS.items():
        layout.append((f"marts.{name}", contract.partition_column, None, step_key("marts", name)))

    summaries = []
    with contextlib.ExitStack() as opened:
        try:
            conn = (
                opened.enter_context(backends.connect(warehouse, read_only=True))
                if backends.exists(warehouse)
                else None
            )
        except duckdb.Error:
            conn = None
        for table, date_column, quarantine, step in layout:
            rows = quarantined = None
            if conn is not None:
                rows = _count(conn, table, date_column, start, end)
                if quarantine:
                    quarantined = _count(
                        conn, quarantine, date_column and "delivery_date", start, end
                    )
            summaries.append(
                TableSummary(
                    table=table,
                    rows=rows,
                    quarantined=quarantined,
                    checks=[c for c in checks if c.table in (table, quarantine)],
                    seconds=step_seconds.get(step),
                )
            )
    return summaries


def _count(conn, table, date_column, start, end) -> int | None:
    try:
        return quality.row_count(conn, table, date_column, start, end)
    except duckdb.CatalogException:
        return None
