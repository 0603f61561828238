"""Sensors: runs start when files land in the landing zone; the marts follow by automation.

The scan and its cursor are plain Python (`etl_assets.pipeline.deliveries`); this module turns a
scan into run requests. The alert sensors are in `etl_assets/automation/alert_sensors.py`.
"""

import datetime as dt
import warnings

import dagster as dg

from etl_assets.assets.checks import MART_KEYS, freshness_checks
from etl_assets.assets.partitions import daily_partitions
from etl_assets.assets.published import PUBLISHED_KEY
from etl_assets.automation.jobs import daily_ingest_job, feed_assets, reference_job
from etl_assets.pipeline import deliveries, extract, readiness
from etl_assets.runtime import dagster_adapter
from etl_assets.runtime.alerts import Alert, AlertSink
from etl_assets.runtime.resources import LandingZone, WarehouseResource

# How often the landing sensor and the marts' automation look, unless the settings say
# (ETL_SENSOR_INTERVAL_SECONDS, for tests and demos that wait on the daemon).
LANDING_SECONDS = 15


def build_landing_zone_sensor(interval: int = LANDING_SECONDS) -> dg.SensorDefinition:
    return dg.sensor(
        name="landing_zone_sensor",
        jobs=[daily_ingest_job, reference_job],
        minimum_interval_seconds=interval,
        # Safe to run by default: it only reacts to files, and a file's run key never runs twice.
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Requests a daily_ingest_job run for each block of consecutive days whose "
        f"new or changed files in the landing zone are verified (one day with a bad "
        f"file: a run of its own), and a reference_job run for changed reference "
        f"files; at most {deliveries.MAX_FILES_PER_TICK} files a tick, oldest "
        f"first. Files that map to no partition are logged, alerted once and "
        f"passed over.",
    )(landing_zone_tick)


def landing_zone_tick(
    context: dg.SensorEvaluationContext,
    landing: LandingZone,
    alerts: AlertSink,
    warehouse: WarehouseResource,
):
    """One look at the landing zone: the run requests of what changed, and the new cursor."""
    found = deliveries.scan(
        landing.root,
        deliveries.Cursor.load(context.cursor),
        partition_days(context),
        limit=deliveries.MAX_FILES_PER_TICK,
        manifests_required=landing.manifests_required,
    )
    # What the warehouse already holds is not loaded again, whatever this instance remembers: a
    # new cursor, a throwaway instance or a deleted DAGSTER_HOME sees every file as new.
    candidates = [f.file.identity for files in found.daily.values() for f in files]
    candidates += [f.file.identity for f in found.reference]
    try:
        held = extract.loaded_identities(warehouse.location, candidates)
    except extract.WarehouseBusy as busy:  # the cursor stays: the same files are seen next tick
        return dg.SkipReason(
            f"{len(candidates)} changed file(s) wait: the warehouse is being written ({busy})"
        )
    for bad in found.unmappable:
        context.log.warning(f"not loaded: {bad.path} ({bad.reason})")
        alerts.send(
            Alert(
                dedup_key=f"delivery:{bad.file.identity}",
                kind="bad_delivery",
                title=f"Delivery {bad.path} was not loaded",
                job="landing_zone_sensor",
                asset=None,
                partition=None,
                error=f"{bad.path}: {bad.reason}",
                run_id=None,
            )
        )
    for path, why in found.waiting.items():
        context.log.info(f"{path} {why}")
    if found.backlog:
        context.log.info(f"{found.backlog} more changed file(s) wait for the next ticks")

    # One run per block of consecutive days whose files are verified, as `etl-assets run` cuts a
    # range: a backlog of days is one run (a single-run backfill of their range), a day that
    # lands alone is its own, and a day with a bad file runs alone, failing with the file's
    # error. Only the feeds whose files changed are read: a file not landed yet is not waited for.
    daily = {
        day: new
        for day, files in found.daily.items()
        if (new := [f for f in files if f.file.identity not in held])
    }
    requests = []
    for block in readiness.delivery_blocks(
        landing.root, daily, landing.manifest_policy, landing.schema_drift
    ):
        one_day = block.start == block.end
        requests.append(
            dg.RunRequest(
                job_name=daily_ingest_job.name,
                run_key=deliveries.run_key(block.deliveries),
                asset_selection=feed_assets(block.feeds),
                partition_key=block.start.isoformat() if one_day else None,
                tags=None
                if one_day
                else {
                    dagster_adapter.RANGE_START_TAG: block.start.isoformat(),
                    dagster_adapter.RANGE_END_TAG: block.end.isoformat(),
                },
            )
        )
    reference = [f for f in found.reference if f.file.identity not in held]
    if reference:
        requests.append(
            dg.RunRequest(
                job_name=reference_job.name,
                run_key=deliveries.run_key(reference),
                asset_selection=feed_assets(sorted({f.feed for f in reference})),
            )
        )
    skip = None
    if not requests:
        skip = (
            f"landing zone {landing.root} does not exist"
            if not landing.root.is_dir()
            else "no new or changed deliveries"
            + (f"; {len(held)} changed file(s) already in the warehouse" if held else "")
            + (
                f"; {len(found.unmappable)} file(s) not loaded, see the log"
                if found.unmappable
                else ""
            )
        )
    return dg.SensorResult(run_requests=requests, cursor=found.cursor.dump(), skip_reason=skip)


def partition_days(context: dg.SensorEvaluationContext) -> deliveries.Days:
    """The days daily_ingest_job has partitions for now, in the definitions the sensor runs in."""
    partitions: dg.DailyPartitionsDefinition = daily_partitions  # alone: the bundled range
    if context.repository_def is not None:
        job_partitions = context.repository_def.get_job(daily_ingest_job.name).partitions_def
        assert isinstance(job_partitions, dg.DailyPartitionsDefinition), job_partitions
        partitions = job_partitions
    last = partitions.get_last_partition_key()
    return deliveries.Days(
        first=partitions.start.date(),
        last=dt.date.fromisoformat(last) if last else None,
        open_ended=partitions.end is None,
    )


def build_marts_automation_sensor(interval: int = LANDING_SECONDS) -> dg.SensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "marts_automation_sensor",
        target=dg.AssetSelection.assets(*MART_KEYS, PUBLISHED_KEY),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval,
        # Several days requested in one tick become a backfill, which runs them by the marts'
        # single-run backfill policy: one run per block of consecutive days, not one per day.
        emit_backfills=True,
        description="Rebuilds a day's marts when that day's clean tables change; days requested "
        "together are built in one run.",
    )


# The freshness checks run with each mart materialization, when they pass by construction; this
# sensor re-evaluates them on a clock, so marts that stop updating warn (and show in status).
with warnings.catch_warnings():  # superseded by FreshnessPolicy, kept for the checks' outcomes
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    marts_freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=freshness_checks,
        name="marts_freshness_sensor",
        minimum_interval_seconds=600,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
