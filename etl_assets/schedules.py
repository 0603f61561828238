"""Schedules: the daily ingest of the day that just ended and a weekly reference refresh.

The daily schedule asks for the partitions definition's last day. With an open range
(ETL_LAST_DAY=open) that is yesterday, and it starts running. With the bundled fixed range it is
2013-12-31 on every tick (each tick is a new scheduled time, so the daemon would load that day
again every morning), so it starts stopped. The weekly refresh starts stopped too: the
landing-zone sensor already reloads a reference table when its file changes, and on an empty
landing zone the refresh would fail every week. Turn either on in the UI (Automation).
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
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Reload airlines, airports and planes every Monday at 05:00 New York time.",
)
