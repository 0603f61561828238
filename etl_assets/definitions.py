"""The code location's definitions: assets, checks, jobs, schedules, sensors and resources."""

import dagster as dg

from etl_assets.assets.checks import factory_checks
from etl_assets.assets.clean import build_clean_assets
from etl_assets.assets.marts import build_mart_assets
from etl_assets.assets.partitions import build_daily_partitions
from etl_assets.assets.published import published_marts
from etl_assets.assets.raw import build_raw_assets
from etl_assets.automation.alert_sensors import ALERT_SECONDS, build_alert_sensors
from etl_assets.automation.jobs import daily_ingest_job, etl_job, reference_job
from etl_assets.automation.schedules import build_daily_ingest_schedule, weekly_reference_schedule
from etl_assets.automation.sensors import (
    LANDING_SECONDS,
    build_landing_zone_sensor,
    build_marts_automation_sensor,
    marts_freshness_sensor,
)
from etl_assets.runtime.executors import build_executor
from etl_assets.runtime.resources import build_resources
from etl_assets.runtime.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """Everything the code location holds, built from the settings."""
    partitions = build_daily_partitions(settings.last_day)
    return dg.Definitions(
        assets=[
            *build_raw_assets(partitions),
            *build_clean_assets(partitions),
            *build_mart_assets(partitions),
            published_marts,
        ],
        asset_checks=factory_checks,
        jobs=[etl_job, daily_ingest_job, reference_job],
        schedules=[
            build_daily_ingest_schedule(
                daily_ingest_job, partitions, settings.last_day, settings.ingest_cron
            ),
            weekly_reference_schedule,
        ],
        sensors=[
            build_landing_zone_sensor(settings.interval(LANDING_SECONDS)),
            build_marts_automation_sensor(settings.interval(LANDING_SECONDS)),
            marts_freshness_sensor,
            *build_alert_sensors(settings.interval(ALERT_SECONDS)),
        ],
        resources=build_resources(settings),
        # Every job and every run of the assets themselves (the marts automation, a
        # materialization from the UI): one process, or Celery workers (ETL_CELERY_BROKER).
        executor=build_executor(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The definitions of this environment's settings, read when the code location loads."""
    return build_definitions(Settings.from_env())
