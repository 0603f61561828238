"""Schedules: the daily ingest of the day that just ended and a weekly reference refresh.

The daily schedule asks for the partitions definition's last day. With an open range
(ETL_LAST_DAY=open) that is yesterday, and it starts running. With the bundled fixed range it is
2013-12-31 on every tick (each tick is a new scheduled time, so the daemon would load that day
again every morning), so it starts stopped. The weekly refresh starts stopped too: the
landing-zone sensor already reloads a reference table when its file changes, and on an empty
landing zone the refresh would fail every week. Turn either on in the UI (Automation).
"""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from etl_assets.assets.partitions import TIMEZONE
from etl_assets.automation.jobs import reference_job
from etl_assets.runtime.settings import OPEN, default


def build_daily_ingest_schedule(
    job,
    partitions: dg.DailyPartitionsDefinition,
    last_day: str,
    cron: str = str(default("ingest_cron")),
) -> dg.ScheduleDefinition:
    """Each tick ingests the day that ended before it, in New York (the partitions' timezone);
    after a fixed range's last day, that last day."""

    @dg.schedule(
        name="daily_ingest_schedule",
        job=job,
        cron_schedule=cron,
        execution_timezone=TIMEZONE,
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if last_day == OPEN
            else dg.DefaultScheduleStatus.STOPPED
        ),
        description=f"Ingest the day that just ended ({cron}, New York time).",
    )
    def daily_ingest_schedule(context: dg.ScheduleEvaluationContext):
        when = context.scheduled_execution_time.astimezone(ZoneInfo(TIMEZONE))
        day = when.date() - dt.timedelta(days=1)
        if partitions.end is not None:  # a fixed range: never past its last day
            day = min(day, partitions.end.date() - dt.timedelta(days=1))
        if day < partitions.start.date():
            return dg.SkipReason(f"no day has ended since {partitions.start.date()} yet")
        return dg.RunRequest(partition_key=day.isoformat())

    return daily_ingest_schedule


weekly_reference_schedule = dg.ScheduleDefinition(
    name="weekly_reference_schedule",
    job=reference_job,
    cron_schedule="0 5 * * 1",
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Reload airlines, airports and planes every Monday at 05:00 New York time.",
)
