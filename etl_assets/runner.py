"""Run the ETL job in this process against the project's Dagster instance, with progress and a summary.

The run is recorded in DAGSTER_HOME (default: the project's .dagster_home), so it and its materializations
appear in `dagster dev` afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from etl_assets import dagster_adapter
from etl_assets.assets.keys import key_table, table_key
from etl_assets.jobs import feed_assets
from etl_assets.pipeline import quality
from etl_assets.pipeline.contract import ALL_FEEDS, REFERENCE_FEEDS
from etl_assets.pipeline.landing import days
from etl_assets.pipeline.marts import MARTS
from etl_assets.pipeline.readiness import Block, Readiness, check_range
from etl_assets.project import env_path
from etl_assets.resources import setting_value

# Who runs a CLI run, so that a later run can tell one whose process died.
LAUNCHER_TAG, HOST_TAG, PID_TAG = "etl/launched_by", "etl/host", "etl/pid"
_PROGRESS_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
}


def project_instance() -> dg.DagsterInstance:
    """The instance in DAGSTER_HOME, or in the project's .dagster_home when it is not set."""
    home = str(env_path("DAGSTER_HOME", ".dagster_home"))
    Path(home).mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = home
    return dg.DagsterInstance.get()


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
        return cls(key_table(evaluation.asset_key),
                   evaluation.check_name, outcome, evaluation.description or "", when)


NOT_RUN = "not run"
_ORDER = {"FAILED": 0, "WARN": 1, NOT_RUN: 2, "passed": 3}


def table_text(header: tuple[str, ...], body: list[tuple[str, ...]], width: int = 0) -> list[str]:
    """Rows as aligned columns; the last column is cut to `width` characters when given."""
    if width:
        body = [(*row[:-1], row[-1] if len(row[-1]) <= width else row[-1][:width - 1] + "…")
                for row in body]
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
            for row in (header, tuple("-" * w for w in widths), *body)]


def render_checks(outcomes: list[CheckOutcome], *, with_when: bool = False) -> list[str]:
    """Every check, one line each: table order, then problems first within a table."""
    rows = sorted(outcomes, key=lambda o: (o.table, _ORDER.get(o.outcome, 9), o.check))
    header = ("table", "check", "outcome", *(("when",) if with_when else ()), "detail")
    body = [(o.table, o.check, o.outcome, *((o.when,) if with_when else ()), o.detail)
            for o in rows]
    return [f"{len(outcomes)} checks: {_tally(outcomes)}", *table_text(header, body, width=110)]


def _tally(outcomes: list[CheckOutcome]) -> str:
    """'3 WARN, 82 passed': how many checks had each outcome, worst first."""
    counts = {k: sum(o.outcome == k for o in outcomes) for k in _ORDER}
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
            lines += [f"  {p.block}: run {p.run_id} {'succeeded' if p.success else 'FAILED'}"
                      + (" (held back)" if p.block.held else "") for p in self.runs]
        lines += [f"  failed: {f}" for f in self.failures]
        if self.held:
            held_days = ", ".join(str(b) for b in self.held)
            first, last = self.held[0].start, self.held[-1].end
            lines.append(f"\nnot loaded: {held_days}. Once the files are fixed, load just those "
                         f"days, e.g. `etl-assets run --start {first} --end {last}`; the landing "
                         f"sensor does it by itself for a file delivered again.")
        return "\n".join(lines)


class _Progress(threading.Thread):
    """Prints step and check events of a run as they land in the instance's event log."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, echo: Callable[[str], None]):
        super().__init__(daemon=True)
        self.instance, self.run_id, self.echo = instance, run_id, echo
        self.done = threading.Event()
        self.step_seconds: dict[str, float] = {}
        self._step_began: dict[str, float] = {}
        self._cursor: str | None = None

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.poll()
        self.poll()

    def poll(self) -> None:
        try:  # only the events after the last poll's
            entries, cursor = dagster_adapter.run_events(self.instance, self.run_id,
                                                         _PROGRESS_EVENTS, self._cursor)
        except Exception:  # the run may not be stored yet
            return
        self._cursor = cursor or self._cursor
        for entry in entries:
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
                outcome = CheckOutcome.of(event.event_specific_data)
                self.echo(f"    check {outcome.table}:{outcome.check} {outcome.outcome}")


def run_job(
    definitions: dg.Definitions,
    start: dt.date,
    end: dt.date,
    *,
    warehouse_path: str,
    instance: dg.DagsterInstance | None = None,
    echo: Callable[[str], None] = print,
) -> RunSummary:
    """Materialize the whole graph for start..end (inclusive), holding back days whose files
    cannot be loaded.

    The days' files are verified first (`pipeline/readiness.py`). Ready days run as one run per
    block of consecutive days; each held-back block runs only the raw steps of its bad feeds, so
    it fails in the UI with the files' errors and the run failure alert, and touches nothing.
    """
    instance = instance or project_instance()
    # One "planned" event per asset for the run's range instead of one per asset and day, and
    # batched event writes where the storage supports them (PostgreSQL). The cost of the first:
    # if the run fails, its days show as missing rather than failed in the UI.
    dagster_adapter.use_fast_event_writes()
    dagster_adapter.reuse_connections(instance)
    job = definitions.resolve_job_def("etl_job")
    release_abandoned_runs(instance, echo)
    landing = definitions.resources["landing"]
    landing_dir = Path(setting_value(landing.path))
    policy = setting_value(landing.manifest_policy)
    readiness = check_range(landing_dir, days(start, end), policy)
    if readiness.reference_problems:  # not a day's: every day needs the reference tables
        readiness = Readiness([Block(start, end)], readiness.reference_problems)
    for block in readiness.blocks:
        if block.held:
            echo(f"holding back {block}: " + "; ".join(
                why for reasons in block.problems.values() for why in reasons[:3]))
    every_key = definitions.resolve_all_asset_keys()
    reference_keys = set(feed_assets(c.name for c in REFERENCE_FEEDS))

    began = time.monotonic()
    parts, events, step_seconds = [], [], {}
    todo, reference_loaded = list(readiness.blocks), False
    while todo:
        block = todo.pop(0)
        if block.held:  # looked at again just before: a file fixed meanwhile makes it ready
            again = check_range(landing_dir, days(block.start, block.end), policy).blocks
            if any(not b.held for b in again):
                todo = again + todo
                continue
        if block.held:  # only the raw steps that fail, with the files' errors
            selection = [table_key("raw", feed) for feed in sorted(block.problems)]
        elif reference_loaded:
            selection = [k for k in every_key if k not in reference_keys]  # loaded already
        else:
            selection = None  # the whole graph
        if len(readiness.blocks) > 1:
            echo(f"run {len(parts) + 1}: {block}" + (" (held back)" if block.held else ""))
        with dagster_adapter.planned_per_partition() if block.held else nullcontext():
            result, seconds = _execute(job, instance, block, selection, echo)
        parts.append(RunPart(block, result.run_id, result.success))
        reference_loaded |= selection is None and result.success
        events += result.all_events
        for step, took in seconds.items():
            step_seconds[step] = step_seconds.get(step, 0.0) + took
    seconds = time.monotonic() - began

    failures = [
        f"{e.step_key}: {_error_message(e)}"
        for e in events
        if e.event_type == dg.DagsterEventType.STEP_FAILURE
    ]
    evaluated: dict[tuple, CheckOutcome] = {}
    for evaluation in dagster_adapter.check_evaluations(events):
        outcome = CheckOutcome.of(evaluation)
        key = (evaluation.asset_key, evaluation.check_name)
        if key not in evaluated or _ORDER[outcome.outcome] < _ORDER[evaluated[key].outcome]:
            evaluated[key] = outcome  # over several runs, the worst outcome stands
    checks = [evaluated.get((key.asset_key, key.name)) or CheckOutcome(
                  key_table(key.asset_key), key.name, NOT_RUN,
                  "an upstream step or blocking check failed, or its days were held back")
              for key in dagster_adapter.check_keys(definitions, job.name)]
    failures += [f"check {c.table}:{c.check} failed: {c.detail}" for c in checks
                 if c.outcome == "FAILED"]
    tables = _table_summaries(warehouse_path, start, end + dt.timedelta(days=1), checks,
                              step_seconds)
    return RunSummary(runs=parts, seconds=seconds, tables=tables, failures=failures,
                      checks=checks)


def _execute(job: dg.JobDefinition, instance: dg.DagsterInstance, block: Block,
             selection: list[dg.AssetKey] | None, echo: Callable[[str], None]):
    """One run of the job for the block's days (the selected assets only, when given)."""
    run_id = str(uuid.uuid4())
    progress = _Progress(instance, run_id, echo)
    progress.start()
    try:
        result = job.execute_in_process(
            instance=instance,
            run_id=run_id,
            raise_on_error=False,
            asset_selection=selection,
            tags={dagster_adapter.RANGE_START_TAG: block.start.isoformat(),
                  dagster_adapter.RANGE_END_TAG: block.end.isoformat(),
                  LAUNCHER_TAG: "etl-assets", HOST_TAG: socket.gethostname(),
                  PID_TAG: str(os.getpid())},
            # Progress lines and the summary replace the console log; the full event log, stack
            # traces included, stays in the instance for `make dev`.
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
    finally:
        progress.done.set()
        progress.join()
    return result, progress.step_seconds


def release_abandoned_runs(instance: dg.DagsterInstance, echo: Callable[[str], None]) -> int:
    """Fail the CLI runs on this host whose process is gone, and free their pool slots.

    A run killed mid-step (kill -9, a closed laptop) keeps its slot in the `warehouse` pool, limit
    1, and every later run would wait for it for ever. The daemon frees slots only of runs that
    have finished, and nothing else would ever finish this one.
    """
    released = 0
    records = instance.get_run_records(dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
        tags={LAUNCHER_TAG: "etl-assets", HOST_TAG: socket.gethostname()}))
    for record in records:
        run = record.dagster_run
        if _process_alive(int(run.tags.get(PID_TAG, "0"))):
            continue
        dagster_adapter.fail_run(instance, run, "its etl-assets process ended without finishing")
        slots = dagster_adapter.free_pool_slots(instance, run.run_id)
        echo(f"released run {run.run_id[:8]}, abandoned by process {run.tags.get(PID_TAG)}: "
             f"marked failed, {slots} pool slot(s) freed")
        released += 1
    return released


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def latest_check_outcomes(definitions: dg.Definitions,
                          instance: dg.DagsterInstance) -> list[CheckOutcome]:
    """Every check of the definitions with its latest recorded outcome in the instance."""
    outcomes = []
    for key in dagster_adapter.check_keys(definitions):
        table = key_table(key.asset_key)
        evaluation, event, status = dagster_adapter.latest_check_evaluation(instance, key)
        if evaluation is not None:
            when = dt.datetime.fromtimestamp(event.timestamp).strftime("%Y-%m-%d %H:%M")
            outcomes.append(CheckOutcome.of(evaluation, f"{when} {event.run_id[:8]}"))
        else:
            outcomes.append(CheckOutcome(table, key.name, NOT_RUN, f"latest record: {status}"))
    return outcomes


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
            checks=[c for c in checks if c.table in (table, quarantine)],
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
