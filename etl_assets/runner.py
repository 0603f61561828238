"""Run the ETL job in this process against the project's Dagster instance, with progress and a summary.

The run is recorded in DAGSTER_HOME (default: ./.dagster_home), so it and its materializations
appear in `dagster dev` afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from etl_assets.pipeline import quality
from etl_assets.pipeline.contract import ALL_FEEDS
from etl_assets.pipeline.marts import MARTS

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
_PROGRESS_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
}


def project_instance() -> dg.DagsterInstance:
    """The instance in DAGSTER_HOME, or in ./.dagster_home when DAGSTER_HOME is not set."""
    home = os.environ.get("DAGSTER_HOME") or str(Path(".dagster_home").resolve())
    Path(home).mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = home
    return dg.DagsterInstance.get()


@dataclass
class TableSummary:
    table: str
    rows: int | None
    quarantined: int | None
    checks: list[tuple[str, bool]] = field(default_factory=list)
    seconds: float | None = None


@dataclass
class RunSummary:
    run_id: str
    success: bool
    seconds: float
    tables: list[TableSummary]
    failures: list[str]

    def render(self) -> str:
        header = ("table", "rows", "quarantined", "checks", "seconds")
        body = [
            (
                t.table,
                "-" if t.rows is None else f"{t.rows:,}",
                "-" if t.quarantined is None else f"{t.quarantined:,}",
                ", ".join(f"{name} {'passed' if ok else 'FAILED'}" for name, ok in t.checks) or "-",
                "-" if t.seconds is None else f"{t.seconds:.1f}",
            )
            for t in self.tables
        ]
        widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                 for row in (header, tuple("-" * w for w in widths), *body)]
        status = "succeeded" if self.success else "FAILED"
        lines.append(f"\nrun {self.run_id} {status} in {self.seconds:.1f}s")
        lines += [f"  failed: {f}" for f in self.failures]
        return "\n".join(lines)


class _Progress(threading.Thread):
    """Prints step and check events of a run as they land in the instance's event log."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, echo: Callable[[str], None]):
        super().__init__(daemon=True)
        self.instance, self.run_id, self.echo = instance, run_id, echo
        self.done = threading.Event()
        self.step_seconds: dict[str, float] = {}
        self._step_began: dict[str, float] = {}
        self._seen = 0

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.poll()
        self.poll()

    def poll(self) -> None:
        try:
            entries = self.instance.all_logs(self.run_id, of_type=_PROGRESS_EVENTS)
        except Exception:  # the run may not be stored yet
            return
        for entry in entries[self._seen:]:
            event = entry.dagster_event
            step = event.step_key or ""
            kind = event.event_type
            if kind == dg.DagsterEventType.STEP_START:
                self._step_began[step] = entry.timestamp
                self.echo(f"  ▶ {step}")
            elif kind == dg.DagsterEventType.STEP_SUCCESS:
                self.step_seconds[step] = entry.timestamp - self._step_began.get(step, entry.timestamp)
                self.echo(f"  ✔ {step} ({self.step_seconds[step]:.1f}s)")
            elif kind == dg.DagsterEventType.STEP_FAILURE:
                self.echo(f"  ✘ {step} failed")
            elif kind == dg.DagsterEventType.STEP_SKIPPED:
                self.echo(f"  – {step} skipped (an upstream step or blocking check failed)")
            else:
                evaluation = event.event_specific_data
                outcome = "passed" if evaluation.passed else "FAILED"
                self.echo(f"    check {evaluation.asset_key.to_user_string()}:"
                          f"{evaluation.check_name} {outcome}")
        self._seen = len(entries)


def run_job(
    definitions: dg.Definitions,
    start: dt.date,
    end: dt.date,
    *,
    warehouse_path: str,
    instance: dg.DagsterInstance | None = None,
    echo: Callable[[str], None] = print,
) -> RunSummary:
    """Materialize the whole graph for start..end (inclusive) as one run."""
    instance = instance or project_instance()
    # One "planned" event per asset for the run's range instead of one per asset and day: on
    # the SQLite instance each event costs ~30 ms, which for a year of 9 partitioned assets is
    # 3,285 events and over a minute and a half before the first step starts. The cost: if the
    # run fails, its days show as missing rather than failed in the UI.
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    job = definitions.resolve_job_def("etl_job")
    run_id = str(uuid.uuid4())
    progress = _Progress(instance, run_id, echo)
    began = time.monotonic()
    progress.start()
    try:
        result = job.execute_in_process(
            instance=instance,
            run_id=run_id,
            raise_on_error=False,
            tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()},
            # Progress lines and the summary replace the console log; the full event log, stack
            # traces included, stays in the instance for `make dev`.
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
    finally:
        progress.done.set()
        progress.join()
    seconds = time.monotonic() - began
    failures = [
        f"{e.step_key}: {_error_message(e)}"
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.STEP_FAILURE
    ]
    checks = [(e.asset_key.to_user_string(), e.check_name, e.passed)
              for e in result.get_asset_check_evaluations()]
    failures += [f"check {key}:{name} failed" for key, name, ok in checks if not ok]
    tables = _table_summaries(warehouse_path, start, end + dt.timedelta(days=1), checks,
                              progress.step_seconds)
    return RunSummary(run_id=run_id, success=result.success and not failures, seconds=seconds,
                      tables=tables, failures=failures)


def _error_message(event) -> str:
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


def _table_summaries(warehouse_path, start, end, checks, step_seconds) -> list[TableSummary]:
    layout: list[tuple[str, str | None, str | None, str]] = []  # table, date column, quarantine, step
    for c in ALL_FEEDS:
        layout.append((f"raw.{c.name}", "delivery_date" if c.delivered_daily else None, None,
                       f"raw__{c.name}"))
    for c in ALL_FEEDS:
        layout.append((f"clean.{c.name}", c.partition_column, f"quarantine.{c.name}",
                       f"clean_{c.name}"))
    for name, (contract, _sql) in MARTS.items():
        layout.append((f"marts.{name}", contract.partition_column, None, f"marts__{name}"))

    summaries = []
    try:
        conn = duckdb.connect(warehouse_path, read_only=True)
    except duckdb.Error:
        conn = None
    for table, date_column, quarantine, step in layout:
        rows = quarantined = None
        if conn is not None:
            rows = _count(conn, table, date_column, start, end)
            if quarantine:
                quarantined = _count(conn, quarantine, date_column and "delivery_date", start, end)
        summaries.append(TableSummary(
            table=table, rows=rows, quarantined=quarantined,
            checks=[(name, ok) for key, name, ok in checks if key.replace("/", ".") == table],
            seconds=step_seconds.get(step),
        ))
    if conn is not None:
        conn.close()
    return summaries


def _count(conn, table, date_column, start, end) -> int | None:
    try:
        return quality.row_count(conn, table, date_column, start, end)
    except duckdb.CatalogException:
        return None
