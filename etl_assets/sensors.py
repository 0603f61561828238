"""Sensors: the landing zone starts runs when files land; the marts follow by automation.

The alert sensors live with the alerts (`etl_assets/alerts.py`).
"""

import datetime as dt

import dagster as dg

from etl_assets.alerts import Alert, AlertSink
from etl_assets.partitions import FIRST_DAY, OPEN
from etl_assets.pipeline import deliveries
from etl_assets.resources import LandingZone

MAX_FILES_PER_TICK = 100  # a burst of deliveries is worked through over several ticks
TICK_SECONDS = 15


def _feed(delivery: deliveries.Delivery) -> str:
    folder, name = delivery.path.split("/")
    return name[: -len(".csv")] if folder == deliveries.REFERENCE_DIR else folder


def _loaded_after(instance: dg.DagsterInstance, partition: str | None,
                  files: list[deliveries.Delivery]) -> bool:
    """Whether each file's raw table was loaded, for this partition, after the file was written.

    A sensor whose cursor is new (just switched on, or on an instance that `etl-assets run`
    already loaded) would otherwise run every file in the landing zone again.
    """
    for delivery in files:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["raw", _feed(delivery)]),
                                  asset_partitions=[partition] if partition else None),
            limit=1).records
        if not records or records[0].timestamp < delivery.mtime_ns / 1e9:
            return False
    return True


def build_landing_zone_sensor(daily_job, reference_job, last_day: str) -> dg.SensorDefinition:
    """One run per new or changed day (its flights and weather files), one per reference change."""
    first = dt.date.fromisoformat(FIRST_DAY)
    last = None if last_day == OPEN else dt.date.fromisoformat(last_day)

    @dg.sensor(
        name="landing_zone_sensor",
        jobs=[daily_job, reference_job],
        minimum_interval_seconds=TICK_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Requests a run for each day whose files are new or changed in the "
                    f"landing zone (at most {MAX_FILES_PER_TICK} files a tick), and a reference "
                    f"refresh when a reference file changes. Unreadable names are alerted.",
    )
    def landing_zone_sensor(context: dg.SensorEvaluationContext, landing: LandingZone,
                            alerts: AlertSink) -> dg.SensorResult:
        found = deliveries.scan(landing.root, deliveries.decode_cursor(context.cursor),
                                MAX_FILES_PER_TICK, first, last)
        requests = [
            # The run key is the identity of the day's files: the same files never run twice,
            # a changed file runs again.
            dg.RunRequest(run_key="|".join(sorted(f.identity for f in files)),
                          job_name=daily_job.name, partition_key=day.isoformat(),
                          tags={"etl/trigger": "landing_zone"})
            for day, files in sorted(found.daily.items())
            if not _loaded_after(context.instance, day.isoformat(), files)
        ]
        if found.reference and not _loaded_after(context.instance, None, found.reference):
            requests.append(dg.RunRequest(
                run_key="|".join(sorted(f.identity for f in found.reference)),
                job_name=reference_job.name, tags={"etl/trigger": "landing_zone"}))
        for delivery, why in found.unmappable:
            context.log.warning(f"cannot map {delivery.path} to a partition: {why}")
            alerts.send(Alert(
                dedup_key=f"delivery:{delivery.identity}", kind="bad_delivery",
                title=f"Delivery {delivery.path} was not loaded", job="landing_zone_sensor",
                asset=None, partition=None, error=f"{delivery.path}: {why}", run_id=None))
        if found.pending:
            context.log.info(f"{found.pending} more new file(s) wait for the next tick")
        return dg.SensorResult(run_requests=requests,
                               cursor=deliveries.encode_cursor(found.mark))

    return landing_zone_sensor


def build_marts_automation_sensor(mart_keys) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the marts' automation conditions: a day whose clean tables changed is rebuilt."""
    return dg.AutomationConditionSensorDefinition(
        "marts_automation_sensor",
        target=dg.AssetSelection.assets(*mart_keys),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=TICK_SECONDS,
        description="Rebuilds a day's marts when that day's clean tables change.",
    )
