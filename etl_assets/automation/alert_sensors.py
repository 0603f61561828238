"""The alert sensors: one alert for each failed run once its retries are exhausted, one for
each failed ERROR check, and deliveries the webhook missed tried again.

Never two alerts for the same failure (and the sink, `alerts.py`, drops a repeated key):
- A failed run is keyed by its run id. While the run retry daemon will still re-execute it
  (tag `dagster/will_retry`), it does not alert: only the last run of a retry chain does.
- A failed check is keyed by check and run group (a run with its retries and re-executions,
  which all cover the same partitions), so a retry that fails it again does not alert again.
- A failed blocking ERROR check also fails its step, and so its run. Such a step is the check's
  failure, alerted by the check sensor; the run sensor alerts only steps that failed otherwise.
- Both sensors start at the newest run when first switched on: history is not replayed.
"""

from __future__ import annotations

from typing import Literal, Protocol

import dagster as dg

from etl_assets.runtime import dagster_adapter
from etl_assets.runtime.alerts import Alert, AlertSink
from etl_assets.runtime.dagster_adapter import (
    BLOCKING_CHECK_ERROR,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    WILL_RETRY_TAG,
)

ERROR_LIMIT = 1500  # characters of an error kept in an alert


RunStatusEvent = Literal[
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
]


class ErrorInfo(Protocol):
    """What an alert reads of the serialized error a failure event carries."""

    message: str
    cls_name: str | None
    cause: ErrorInfo | None


FINISHED_RUN_EVENTS: tuple[RunStatusEvent, ...] = (
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
)
RUNS_PER_TICK = 50


def retry_pending(run: dg.DagsterRun) -> bool:
    """Whether the run retry daemon will re-execute this failed run, so its failure is not final."""
    # Dagster tags every failed run it means to retry, but the daemon can only relaunch a run
    # started from a code location: a run executed in process (`etl-assets run`) keeps the tag
    # and is never retried (auto_run_reexecution.retry_run), so its failure is final.
    return run.tags.get(WILL_RETRY_TAG) == "true" and run.remote_job_origin is not None


def run_partition(run: dg.DagsterRun) -> str | None:
    """The run's partition, or its range of partitions, from the tags Dagster gives it."""
    if run.tags.get(PARTITION_TAG):
        return run.tags[PARTITION_TAG]
    start, end = run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)
    if start and end:
        return start if start == end else f"{start}...{end}"
    return None


def error_text(error: ErrorInfo) -> str:
    """The innermost cause of a serialized error: the user's exception, not Dagster's wrapper."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()[:ERROR_LIMIT]


def failure_error(event: dg.DagsterEvent) -> ErrorInfo | None:
    """The error a step's or a run's failure event carries, if it carries one."""
    return getattr(event.event_specific_data, "error", None)


def _assets_by_step(instance: dg.DagsterInstance, run_id: str) -> dict[str, set[str]]:
    planned, _ = dagster_adapter.run_events(
        instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    )
    steps: dict[str, set[str]] = {}
    for entry in planned:
        event = entry.dagster_event
        if event is not None and event.step_key and event.asset_key:
            steps.setdefault(event.step_key, set()).add(event.asset_key.to_user_string())
    return steps


# --- sensors -------------------------------------------------------------------------------

# How often the alert sensors look, unless the settings say (ETL_SENSOR_INTERVAL_SECONDS).
ALERT_SECONDS = 30


def build_alert_sensors(interval: int = ALERT_SECONDS) -> list[dg.SensorDefinition]:
    """The sensors that alert: failed runs, failed ERROR checks, and the webhook's redelivery."""
    return [
        dg.run_failure_sensor(
            name="run_failure_alert_sensor",
            default_status=dg.DefaultSensorStatus.RUNNING,
            # Every run in the instance, including runs executed in process by `etl-assets
            # run`, which have no code location and so would not match "the jobs of this code
            # location".
            monitor_all_code_locations=True,
            minimum_interval_seconds=interval,
            description="Alerts once for a failed run whose retries are exhausted.",
        )(run_failure_tick),
        dg.sensor(
            name="check_failure_alert_sensor",
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=interval,
            description="Alerts once for each failed ERROR-severity asset check; WARN checks do "
            "not alert.",
        )(check_failure_tick),
        dg.sensor(
            name="alert_delivery_sensor",
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=interval,
            description="Posts again each alert the webhook has not taken, with doubling waits, "
            "until it takes it or the alert expires; an expired alert fails the "
            "tick, once.",
        )(alert_delivery_tick),
    ]


def run_failure_tick(context: dg.RunFailureSensorContext, alerts: AlertSink) -> None:
    """A failed run: one alert, unless a retry follows or its blocking checks alert instead."""
    run = context.dagster_run
    if WILL_RETRY_TAG not in run.tags:
        # Dagster tags the run just after storing its failure; read it again if this tick was first.
        run = context.instance.get_run_by_id(run.run_id) or run
    if retry_pending(run):
        context.log.info(f"Run {run.run_id} will be retried; the last retry alerts if it fails.")
        return

    step_failures = context.get_step_failure_events()
    failures = [
        e
        for e in step_failures
        if (cause := failure_error(e)) is None or cause.cls_name != BLOCKING_CHECK_ERROR
    ]
    if step_failures and not failures:
        context.log.info(f"Run {run.run_id} failed on blocking checks; the check sensor alerts.")
        return

    assets_by_step = _assets_by_step(context.instance, run.run_id)
    assets = sorted(
        {a for e in failures for a in assets_by_step.get(e.step_key or "", {e.step_key or "?"})}
    )
    if failures:
        errors = [
            error_text(cause) if (cause := failure_error(e)) else e.message or "step failed"
            for e in failures
        ]
        error = (
            errors[0]
            if len(errors) == 1
            else "\n".join(
                f"{e.step_key}: {text}" for e, text in zip(failures, errors, strict=True)
            )
        )
    else:  # the run failed outside any step: launch, resources, a crashed worker
        run_error = failure_error(context.failure_event)
        error = error_text(run_error) if run_error else context.failure_event.message or ""
    sent = alerts.send(
        Alert(
            dedup_key=f"run:{run.root_run_id or run.run_id}",
            kind="run_failure",
            title=f"Run of {run.job_name} failed" + (f": {', '.join(assets)}" if assets else ""),
            job=run.job_name,
            asset=", ".join(assets) or None,
            partition=run_partition(run),
            error=error[:ERROR_LIMIT],
            run_id=run.run_id,
        )
    )
    _report(context.log, sent, f"run:{run.root_run_id or run.run_id}")


def _finished_runs_after(instance: dg.DagsterInstance, storage_id: int) -> list[dg.EventLogRecord]:
    """Run-finished events after the storage id, oldest first, without gaps between kinds."""
    records: list[dg.EventLogRecord] = []
    bound: int | None = None
    for event_type in FINISHED_RUN_EVENTS:
        batch = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type, after_storage_id=storage_id),
            limit=RUNS_PER_TICK,
            ascending=True,
        ).records
        records += batch
        if len(batch) == RUNS_PER_TICK:  # more of this kind wait: stop where this batch ends
            last = batch[-1].storage_id
            bound = last if bound is None else min(bound, last)
    records = [r for r in records if bound is None or r.storage_id <= bound]
    return sorted(records, key=lambda r: r.storage_id)


def _check_alerts(instance: dg.DagsterInstance, run: dg.DagsterRun):
    entries, _ = dagster_adapter.run_events(
        instance, run.run_id, dg.DagsterEventType.ASSET_CHECK_EVALUATION
    )
    events = [e.dagster_event for e in entries if e.dagster_event is not None]
    for evaluation in dagster_adapter.check_evaluations(events):
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        asset = evaluation.asset_key.to_user_string()
        partition = evaluation.partition or run_partition(run)
        # A run group re-executes the same partitions, so the run's own need not be in the key.
        group = run.root_run_id or run.run_id
        key = f"check:{group}:{asset}:{evaluation.check_name}:{evaluation.partition or ''}"
        blocked = " (blocking: downstream assets were not updated)" if evaluation.blocking else ""
        yield Alert(
            dedup_key=key,
            kind="check_failure",
            title=f"Check {evaluation.check_name} failed on {asset}{blocked}",
            job=run.job_name,
            asset=asset,
            partition=partition,
            error=(evaluation.description or "the check did not pass")[:ERROR_LIMIT],
            run_id=run.run_id,
        )


def check_failure_tick(context: dg.SensorEvaluationContext, alerts: AlertSink) -> dg.SensorResult:
    """The runs finished since the cursor: one alert per failed ERROR check."""
    # Checks run inside the runs' steps, so the sensor reads each run once, when it finishes. The
    # cursor is the storage id of the last run-finished event read, unique across runs. (Check
    # evaluation events cannot be the cursor: on the default SQLite storage, get_event_records
    # reads them from per-run files, where ids repeat, and refuses an id cursor.)
    instance = context.instance
    if context.cursor is None:
        newest = [
            r.storage_id
            for t in FINISHED_RUN_EVENTS
            for r in instance.fetch_run_status_changes(t, limit=1).records
        ]
        start = max(newest, default=-1)
        return dg.SensorResult(cursor=str(start), skip_reason=f"Watching runs after {start}.")

    records = _finished_runs_after(instance, int(context.cursor))
    sent = 0
    for record in records:
        run = instance.get_run_by_id(record.event_log_entry.run_id)
        for alert in _check_alerts(instance, run) if run else ():
            result = alerts.send(alert)
            sent += result is not None
            _report(context.log, result, alert.dedup_key)
    cursor = str(records[-1].storage_id) if records else context.cursor
    return dg.SensorResult(
        cursor=cursor,
        skip_reason=None
        if sent
        else f"No new failed ERROR checks in {len(records)} finished run(s).",
    )


def _report(log, sent: dict | None, key: str) -> None:
    if sent is None:
        log.info(f"Alert {key} was already sent.")
    elif sent["delivered"] is False:
        log.warning(
            f"Alert {key} logged; a channel did not take it, so alert_delivery_sensor "
            f"tries it again: {sent['delivery_error']}"
        )
    else:
        log.info(f"Alert {key} sent.")


class UndeliveredAlerts(Exception):
    """Alerts a channel never took before they expired: the tick fails so the UI shows it."""


def alert_delivery_tick(context: dg.SensorEvaluationContext, alerts: AlertSink) -> dg.SkipReason:
    """The alerts a channel has not taken, sent to it again when their wait is over."""
    outcome = alerts.retry_undelivered()
    for record in outcome["delivered"]:
        context.log.info(
            f"Alert {record['dedup_key']} delivered to {record['channel']} on a later try."
        )
    for record in outcome["failed"]:
        context.log.warning(
            f"Alert {record['dedup_key']} not taken again by {record['channel']}: "
            f"{record['delivery_error']}"
        )
    if outcome["expired"]:
        titles = "; ".join(f"{r['title']} ({r['channel']})" for r in outcome["expired"][:5])
        raise UndeliveredAlerts(
            f"{len(outcome['expired'])} alert delivery(ies) never reached their channel within "
            f"{alerts.expiry_hours:g} h and are no longer tried: {titles}. They are in "
            f"{alerts.log_path}."
        )
    return dg.SkipReason(
        f"{len(outcome['delivered'])} delivery(ies) made on a later try, "
        f"{len(outcome['failed'])} still waiting for their channel."
    )
