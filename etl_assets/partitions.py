import datetime as dt
import warnings

import dagster as dg

# backfill_policy is marked beta in the pinned dagster; say so once here, not on every load.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

# The bundled feed covers 2013; a live feed would move end_date forward (or drop it).
FIRST_DAY = "2013-01-01"
END_EXCLUSIVE = "2014-01-01"
TIMEZONE = "America/New_York"  # the feed's dates are local New York dates

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=FIRST_DAY, end_date=END_EXCLUSIVE, timezone=TIMEZONE
)

# A backfill of any range runs as one run: one read of the landing files per feed and one
# set-based write per table, instead of one run (and one process) per day.
single_run = dg.BackfillPolicy.single_run()


def partition_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The run's partition range as local dates: first day, and the day after the last."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()
