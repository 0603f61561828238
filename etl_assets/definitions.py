"""The code location's definitions: assets, checks, jobs, schedules, sensors and resources."""

import dagster as dg

from etl_assets.automation.alert_sensors import (
    alert_delivery_sensor,
    check_failure_alert_sensor,
    run_failure_alert_sensor,
)
from etl_assets.assets.clean import build_clean_assets
from etl_assets.assets.marts import build_mart_assets
from etl_assets.assets.raw import build_raw_assets
from etl_assets.assets.checks import factory_checks
from etl_assets.runtime.executors import build_executor
from etl_assets.automation.jobs import daily_ingest_job, etl_job, reference_job
from etl_assets.assets.partitions import build_daily_partitions, last_day_setting
from etl_assets.runtime.resources import build_resources
from etl_assets.automation.schedules import (
    build_daily_ingest_schedule,
    ingest_cron_setting,
    weekly_reference_schedule,
)
from etl_assets.automation.sensors import (
    landing_zone_sensor,
    marts_automation_sensor,
    marts_freshness_sensor,
)


@dg.definitions
def defs() -> dg.Definitions:
    last_day = last_day_setting()
    partitions = build_daily_partitions(last_day)
    return dg.Definitions(
        assets=[*build_raw_assets(partitions), *build_clean_assets(partitions),
                *build_mart_assets(partitions)],
        asset_checks=factory_checks,
        jobs=[etl_job, daily_ingest_job, reference_job],
        schedules=[build_daily_ingest_schedule(daily_ingest_job, partitions, last_day,
                                               ingest_cron_setting()),
                   weekly_reference_schedule],
        sensors=[landing_zone_sensor, marts_automation_sensor, marts_freshness_sensor,
                 run_failure_alert_sensor, check_failure_alert_sensor, alert_delivery_sensor],
        resources=build_resources(),
        # Every job and every run of the assets themselves (the marts automation, a
        # materialization from the UI): one process, or Celery workers (ETL_CELERY_BROKER).
        executor=build_executor(),
    )
