"""Run the ETL job in this process against the project's Dagster instance, with progress.

Verifies the range's files first, runs one run per block of days (a held-back block runs only
its failing raw steps), prints each step as it lands in the event log, and returns the summary
(`etl_assets/operations/report.py`).
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
from typing import cast

import dagster as dg

from etl_assets.assets.keys import key_table, table_key
from etl_assets.automation.jobs import feed_assets
from etl_assets.definitions import defs
from etl_assets.operations.instance import (
    HOST_TAG,
    LAUNCHER_TAG,
    PID_TAG,
    project_instance,
    release_abandoned_runs,
)
from etl_assets.operations.report import (
    NOT_RUN,
    OUTCOME_ORDER,
    CheckOutcome,
    RunPart,
    RunSummary,
    error_message,
    table_summaries,
)
from etl_assets.pipeline.contract import REFERENCE_FEEDS
from etl_assets.pipeline.landing import days
from etl_assets.pipeline.readiness import Block, Readiness, check_range
from etl_assets.runtime import dagster_adapter, executors
from etl_assets.runtime.settings import Settings

# Names one call's run, so its progress can follow it before the run id is known.
ATTEMPT_TAG = "etl/attempt"
_PROGRESS_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
}


def etl_job() -> dg.JobDefinition:
    """etl_job as every process of a run rebuilds it: the run's own and each worker's, which
    write the run's events with the same settings as `etl-assets run` (batched on PostgreSQL)."""
    dagster_adapter.use_fast_event_writes()
    return defs().resolve_job_def("etl_job")


class _Progress(threading.Thread):
    """Prints step and check events of a run as they land in the instance's event log."""

    def __init__(self, instance: dg.DagsterInstance, attempt: str, echo: Callable[[str], None]):
        super().__init__(daemon=True)
        self.instance, self.attempt, self.echo = instance, attempt, echo
        self.run_id: str | None = None  # found by the run's ATTEMPT_TAG once it is stored
        self.done = threading.Event()
        self.step_seconds: dict[str, float] = {}
        self._step_began: dict[str, float] = {}
        self._cursor: str | None = None

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.poll()
        self.poll()

    def poll(self) -> None:
        try:
            if self.run_id is None:
                found = self.instance.get_run_ids(
                    dg.RunsFilter(tags={ATTEMPT_TAG: self.attempt}), limit=1
                )
                if not found:
                    return  # not stored yet
                self.run_id = found[0]
            # only the events after the last poll's
            entries, cursor = dagster_adapter.run_events(
                self.instance, self.run_id, _PROGRESS_EVENTS, self._cursor
            )
        except Exception:  # the run or its storage may not be there yet: the next poll
            return
        self._cursor = cursor or self._cursor
        for entry in entries:
            event = entry.dagster_event
            if event is None:
                continue
            step = event.step_key or ""
            kind = event.event_type
            if kind == dg.DagsterEventType.STEP_START:
                self._step_began[step] = entry.timestamp
                self.echo(f"  ▶ {step}")
            elif kind == dg.DagsterEventType.STEP_SUCCESS:
                self.step_seconds[step] = entry.timestamp - self._step_began.get(
                    step, entry.timestamp
                )
                self.echo(f"  ✔ {step} ({self.step_seconds[step]:.1f}s)")
            elif kind == dg.DagsterEventType.STEP_FAILURE:
                self.echo(f"  ✘ {step} failed")
            elif kind == dg.DagsterEventType.STEP_SKIPPED:
                self.echo(f"  – {step} skipped (an upstream step or blocking check failed)")
            else:
                outcome = CheckOutcome.of(cast(dg.AssetCheckEvaluation, event.event_specific_data))
                self.echo(f"    check {outcome.table}:{outcome.check} {outcome.outcome}")


def run_job(
    definitions: dg.Definitions,
    settings: Settings,
    start: dt.date,
    end: dt.date,
    *,
    instance: dg.DagsterInstance | None = None,
    echo: Callable[[str], None] = print,
) -> RunSummary:
    """Materialize the whole graph for start..end (inclusive), holding back days whose files
    cannot be loaded.

    The days' files are verified first (`pipeline/readiness.py`). Ready days run as one run per
    block of consecutive days; each held-back block runs only the raw steps of its bad feeds, so
    it fails in the UI with the files' errors and the run failure alert, and touches nothing.
    """
    instance = instance or project_instance(settings)
    # One "planned" event per asset for the run's range instead of one per asset and day, and
    # batched event writes where the storage supports them (PostgreSQL). The cost of the first:
    # if the run fails, its days show as missing rather than failed in the UI.
    dagster_adapter.use_fast_event_writes()
    dagster_adapter.reuse_connections(instance)
    job = definitions.resolve_job_def("etl_job")
    release_abandoned_runs(instance, echo)
    landing_dir, policy, drift = (
        settings.landing_dir,
        settings.manifest_policy,
        settings.schema_drift,
    )
    readiness = check_range(landing_dir, days(start, end), policy, drift)
    if readiness.reference_problems:  # not a day's: every day needs the reference tables
        readiness = Readiness([Block(start, end)], readiness.reference_problems)
    for block in readiness.blocks:
        if block.held:
            echo(
                f"holding back {block}: "
                + "; ".join(why for reasons in block.problems.values() for why in reasons[:3])
            )
    every_key = definitions.resolve_all_asset_keys()
    reference_keys = set(feed_assets(c.name for c in REFERENCE_FEEDS))

    began = time.monotonic()
    parts: list[RunPart] = []
    events: list[dg.DagsterEvent] = []
    step_seconds: dict[str, float] = {}
    todo, reference_loaded = list(readiness.blocks), False
    while todo:
        block = todo.pop(0)
        if block.held:  # looked at again just before: a file fixed meanwhile makes it ready
            again = check_range(landing_dir, days(block.start, block.end), policy, drift).blocks
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
            result, seconds = _execute(job, instance, block, selection, echo, settings)
        parts.append(RunPart(block, result.run_id, result.success))
        reference_loaded |= selection is None and result.success
        events += result.all_events
        for step, took in seconds.items():
            step_seconds[step] = step_seconds.get(step, 0.0) + took
    seconds = time.monotonic() - began

    failures = [
        f"{e.step_key}: {error_message(e)}"
        for e in events
        if e.event_type == dg.DagsterEventType.STEP_FAILURE
    ]
    evaluated: dict[tuple, CheckOutcome] = {}
    for evaluation in dagster_adapter.check_evaluations(events):
        outcome = CheckOutcome.of(evaluation)
        key = (evaluation.asset_key, evaluation.check_name)
        worse = key in evaluated and (
            OUTCOME_ORDER[outcome.outcome] < OUTCOME_ORDER[evaluated[key].outcome]
        )
        if key not in evaluated or worse:
            evaluated[key] = outcome  # over several runs, the worst outcome stands
    checks = [
        evaluated.get((key.asset_key, key.name))
        or CheckOutcome(
            key_table(key.asset_key),
            key.name,
            NOT_RUN,
            "an upstream step or blocking check failed, or its days were held back",
        )
        for key in dagster_adapter.check_keys(definitions, job.name)
    ]
    failures += [
        f"check {c.table}:{c.check} failed: {c.detail}" for c in checks if c.outcome == "FAILED"
    ]
    tables = table_summaries(
        settings.warehouse, start, end + dt.timedelta(days=1), checks, step_seconds
    )
    return RunSummary(runs=parts, seconds=seconds, tables=tables, failures=failures, checks=checks)


def _execute(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    block: Block,
    selection: list[dg.AssetKey] | None,
    echo: Callable[[str], None],
    settings: Settings,
):
    """One run of the job for the block's days (the selected assets only, when given)."""
    attempt = str(uuid.uuid4())
    tags = {
        dagster_adapter.RANGE_START_TAG: block.start.isoformat(),
        dagster_adapter.RANGE_END_TAG: block.end.isoformat(),
        LAUNCHER_TAG: "etl-assets",
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
        ATTEMPT_TAG: attempt,
    }
    # Progress lines and the summary replace the console log; the full event log, stack traces
    # included, stays in the instance for `make dev`.
    run_config = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    progress = _Progress(instance, attempt, echo)
    progress.start()
    try:
        result: dg.JobExecutionResult | dg.ExecuteInProcessResult
        if job.executor_def.name != "in_process":  # Celery: each worker rebuilds the job
            result = dg.execute_job(
                dg.reconstructable(etl_job),
                instance,
                run_config=run_config,
                tags=tags,
                raise_on_error=False,
                asset_selection=selection,
            )
        else:  # execute_in_process has its own executor: the days are held here instead
            with executors.days_held(settings, block.start, block.end, echo):
                result = job.execute_in_process(
                    instance=instance,
                    raise_on_error=False,
                    asset_selection=selection,
                    tags=tags,
                    run_config=run_config,
                )
    finally:
        progress.done.set()
        progress.join()
    return result, progress.step_seconds
