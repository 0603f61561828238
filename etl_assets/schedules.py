"""Schedules: the daily ingest of yesterday's files and a weekly refresh of reference tables.

With the bundled 2013 range the daily schedule would request the last partition (2013-12-31)
once and then nothing, so it starts stopped; with an open range (ETL_LAST_DAY=open) each tick
requests yesterday's partition and it starts running.
"""

import dagster as dg

from etl_assets.jobs import reference_job
from etl_assets.partitions import OPEN, TIMEZONE


def build_daily_ingest_schedule(job, last_day: str) -> dg.ScheduleDefinition:
    """Daily at 06:00 New York time: the day that just ended (the partitions' own timezone)."""
    return dg.build_schedule_from_partitioned_job(
        job, name="daily_ingest_schedule", hour_of_day=6, minute_of_hour=0,
        default_status=(dg.DefaultScheduleStatus.RUNNING if last_day == OPEN
                        else dg.DefaultScheduleStatus.STOPPED),
        description="Ingest the day that just ended, at 06:00 New York time.",
    )


weekly_reference_schedule = dg.ScheduleDefinition(
    name="weekly_reference_schedule",
    job=reference_job,
    cron_schedule="0 5 * * 1",
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Reload airlines, airports and planes every Monday at 05:00 New York time.",
)
