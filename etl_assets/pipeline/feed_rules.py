"""What each feed derives, and the rules of its own beyond its columns' (`rules.py`): a daily
feed's local date checked against its file, flights' timestamps from HHMM times and their
consistency, weather's local hour. Each returns SQL for the contract engine in `transform.py`.
"""

from __future__ import annotations

from etl_assets.pipeline.contract import FEED_TIMEZONE, FLIGHTS, WEATHER
from etl_assets.pipeline.rules import Rule, literal, within
from etl_assets.pipeline.tables import TableContract

_TZ = literal(FEED_TIMEZONE)


def daily(contract: TableContract) -> tuple[list[str], list[Rule]]:
    """A daily feed's local date from year/month/day, checked against its delivery file."""
    date = contract.partition_column
    derived = [f"try(make_date(year, month, day)) AS {date}"]
    checks = [
        Rule(
            "year/month/day is not a date",
            f"year IS NOT NULL AND month IS NOT NULL AND day IS NOT NULL AND {date} IS NULL",
        ),
        Rule(
            "dated outside its delivery file",
            f"{date} <> delivery_date",
            f"'dated ' || strftime({date}, '%Y-%m-%d') || ' but delivered in the file for ' "
            f"|| strftime(delivery_date, '%Y-%m-%d')",
        ),
    ]
    return derived, checks


def hhmm_minutes(column: str) -> str:
    """Minutes after midnight of an HHMM time; 2400 (the source's midnight) is 0."""
    return f"(({column} // 100) % 24) * 60 + {column} % 100"


def flights() -> tuple[list[list[str]], list[Rule]]:
    """Flights: timestamps from HHMM times (2400 is midnight), status, and their consistency.

    Timestamps only from values inside the contract's ranges: an absurd delay or hour is already
    a reason to quarantine, and must not overflow the arithmetic first. A flight with no
    departure time was cancelled, a valid record.
    """
    hour, minute, delay = (within(FLIGHTS.column(n)) for n in ("hour", "minute", "dep_delay"))
    steps = [
        [
            f"flight_date + to_minutes(({hour}) * 60 + ({minute})) AS scheduled_departure",
            "CASE WHEN dep_time IS NULL THEN 'cancelled' WHEN arr_delay IS NULL THEN 'diverted' "
            "ELSE 'arrived' END AS status",
        ],
        [
            f"scheduled_departure + to_microseconds(CAST(round(({delay}) * 60000000) AS BIGINT)) "
            "AS actual_departure"
        ],
    ]
    checks = [
        Rule(
            f"{n} is not an HHMM time",
            f"{n} % 100 >= 60",
            f"'{n} ' || printf('%g', {n}::DOUBLE) || ' is not an HHMM time'",
        )
        for n in ("sched_dep_time", "dep_time", "sched_arr_time", "arr_time")
    ] + [
        Rule(
            "hour/minute disagree with sched_dep_time",
            "hour::DOUBLE * 100 + minute <> sched_dep_time",
        ),
        Rule("dep_time without dep_delay", "dep_time IS NOT NULL AND dep_delay IS NULL"),
        Rule("dep_delay without dep_time", "dep_time IS NULL AND dep_delay IS NOT NULL"),
        Rule(
            "dep_time disagrees with sched_dep_time + dep_delay",
            "dep_time IS NOT NULL AND hour(actual_departure) * 60 + minute(actual_departure)"
            f" <> {hhmm_minutes('dep_time')}",
        ),
        # The instant time_hour names, read in New York, must be the scheduled local hour: in the
        # hour repeated when daylight saving ends both instants qualify, in the skipped hour none.
        Rule(
            "time_hour is not the scheduled hour in UTC",
            f"timezone({_TZ}, time_hour) <> date_trunc('hour', scheduled_departure)",
        ),
    ]
    return steps, checks


def weather() -> tuple[list[list[str]], list[Rule]]:
    local = f"timezone({_TZ}, time_hour)"
    return [], [
        Rule(
            "time_hour (UTC) is not the local date and hour",
            f"hour({local}) <> hour OR CAST({local} AS DATE) <> observation_date",
        )
    ]


# The feeds with rules of their own, by name.
OWN_RULES = {FLIGHTS.name: flights, WEATHER.name: weather}
