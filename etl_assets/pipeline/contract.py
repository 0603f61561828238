"""The data contract: every table's columns, types, keys and allowed values, declared once.

Cleaning, quarantine reasons, the asset checks and the column schema shown in the UI all read
these declarations; `tables.py` is how they are declared.
"""

from __future__ import annotations

from etl_assets.pipeline.tables import Column, TableContract

FEED_TIMEZONE = "America/New_York"  # the feed's dates and hours are local New York time
NYC_ORIGINS = ("EWR", "JFK", "LGA")
_IATA = r"[A-Z0-9]{3}"
_CARRIER = r"[A-Z0-9]{2}"

FLIGHTS = TableContract(
    name="flights",
    description="Every scheduled departure from New York, one row per flight, typed and validated.",
    source_columns=(
        "year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time",
        "sched_arr_time", "arr_delay", "carrier", "flight", "tailnum", "origin", "dest",
        "air_time", "distance", "hour", "minute", "time_hour",
    ),
    columns=(
        Column("flight_date", "DATE", "Local (New York) date of the scheduled departure.",
               nullable=False, lineage=("year", "month", "day")),
        Column("year", "BIGINT", "Year of the scheduled departure.", nullable=False,
               min=2000, max=2100, source="year"),
        Column("month", "BIGINT", "Month of the scheduled departure.", nullable=False,
               min=1, max=12, source="month"),
        Column("day", "BIGINT", "Day of month of the scheduled departure.", nullable=False,
               min=1, max=31, source="day"),
        Column("carrier", "VARCHAR", "Two-letter airline code.", nullable=False,
               pattern=_CARRIER, source="carrier"),
        Column("flight", "BIGINT", "Flight number.", nullable=False, min=1, max=9999,
               source="flight"),
        Column("tailnum", "VARCHAR", "Plane tail number; missing for some cancelled flights.",
               pattern=r"[A-Z0-9]{2,6}", source="tailnum"),
        Column("origin", "VARCHAR", "Departure airport (FAA code).", nullable=False,
               allowed=NYC_ORIGINS, source="origin"),
        Column("dest", "VARCHAR", "Destination airport (FAA code).", nullable=False,
               pattern=_IATA, source="dest"),
        Column("sched_dep_time", "BIGINT", "Scheduled departure, local HHMM.", nullable=False,
               min=0, max=2359, source="sched_dep_time"),
        Column("dep_time", "BIGINT", "Actual departure, local HHMM (2400 is midnight); "
               "missing when cancelled.", min=1, max=2400, source="dep_time"),
        Column("sched_arr_time", "BIGINT", "Scheduled arrival, destination-local HHMM.",
               nullable=False, min=0, max=2400, source="sched_arr_time"),
        Column("arr_time", "BIGINT", "Actual arrival, destination-local HHMM (2400 is midnight).",
               min=1, max=2400, source="arr_time"),
        Column("dep_delay", "DOUBLE", "Departure delay in minutes (negative: early).",
               min=-120, max=1800, source="dep_delay"),
        Column("arr_delay", "DOUBLE", "Arrival delay in minutes (negative: early).",
               min=-180, max=1800, source="arr_delay"),
        Column("air_time", "DOUBLE", "Minutes in the air.", min=5, max=900, source="air_time"),
        Column("distance", "DOUBLE", "Distance between airports in miles.", nullable=False,
               min=10, max=6000, source="distance"),
        Column("hour", "BIGINT", "Hour of the scheduled departure.", nullable=False,
               min=0, max=23, source="hour"),
        Column("minute", "BIGINT", "Minute of the scheduled departure.", nullable=False,
               min=0, max=59, source="minute"),
        Column("time_hour", "TIMESTAMPTZ", "Scheduled departure hour in UTC (joins weather).",
               nullable=False, source="time_hour"),
        Column("scheduled_departure", "TIMESTAMP", "Scheduled departure, local timestamp.",
               nullable=False, lineage=("flight_date", "hour", "minute")),
        Column("actual_departure", "TIMESTAMP", "Actual departure, local timestamp "
               "(scheduled + delay); missing when cancelled.",
               lineage=("scheduled_departure", "dep_delay")),
        Column("status", "VARCHAR", "cancelled (no departure), diverted (departed, no arrival "
               "delay) or arrived.", nullable=False,
               allowed=("arrived", "cancelled", "diverted"), lineage=("dep_time", "arr_delay")),
    ),
    # time_hour (UTC) tells apart the two 01:30s of the night daylight saving ends.
    key=("carrier", "flight", "scheduled_departure", "time_hour"),
    partition_column="flight_date",
    delivered_daily=True,
)

WEATHER = TableContract(
    name="weather",
    description="Hourly weather at the three New York airports, typed and validated.",
    source_columns=(
        "origin", "year", "month", "day", "hour", "temp", "dewp", "humid", "wind_dir",
        "wind_speed", "wind_gust", "precip", "pressure", "visib", "time_hour",
    ),
    columns=(
        Column("observation_date", "DATE", "Local (New York) date of the observation.",
               nullable=False, lineage=("year", "month", "day")),
        Column("origin", "VARCHAR", "Airport (FAA code).", nullable=False,
               allowed=NYC_ORIGINS, source="origin"),
        Column("year", "BIGINT", "Local year.", nullable=False, min=2000, max=2100,
               source="year"),
        Column("month", "BIGINT", "Local month.", nullable=False, min=1, max=12, source="month"),
        Column("day", "BIGINT", "Local day of month.", nullable=False, min=1, max=31,
               source="day"),
        Column("hour", "BIGINT", "Local hour.", nullable=False, min=0, max=23, source="hour"),
        Column("temp", "DOUBLE", "Temperature, °F.", min=-40, max=130, source="temp"),
        Column("dewp", "DOUBLE", "Dew point, °F.", min=-60, max=100, source="dewp"),
        Column("humid", "DOUBLE", "Relative humidity, %.", min=0, max=100, source="humid"),
        Column("wind_dir", "DOUBLE", "Wind direction, degrees.", min=0, max=360,
               source="wind_dir"),
        Column("wind_speed", "DOUBLE", "Wind speed, mph.", min=0, max=150, source="wind_speed"),
        Column("wind_gust", "DOUBLE", "Gust speed, mph.", min=0, max=200, source="wind_gust"),
        Column("precip", "DOUBLE", "Precipitation, inches.", min=0, max=10, source="precip"),
        Column("pressure", "DOUBLE", "Sea level pressure, millibars.", min=900, max=1100,
               source="pressure"),
        Column("visib", "DOUBLE", "Visibility, miles.", min=0, max=10, source="visib"),
        Column("time_hour", "TIMESTAMPTZ", "Observation hour in UTC.", nullable=False,
               source="time_hour"),
    ),
    key=("origin", "time_hour"),
    partition_column="observation_date",
    delivered_daily=True,
)

AIRLINES = TableContract(
    name="airlines",
    description="Airline names by carrier code.",
    source_columns=("carrier", "name"),
    columns=(
        Column("carrier", "VARCHAR", "Two-letter airline code.", nullable=False,
               pattern=_CARRIER, source="carrier"),
        Column("name", "VARCHAR", "Airline name.", nullable=False, source="name"),
    ),
    key=("carrier",),
)

AIRPORTS = TableContract(
    name="airports",
    description="Airports by FAA code, with location and time zone.",
    source_columns=("faa", "name", "lat", "lon", "alt", "tz", "dst", "tzone"),
    columns=(
        Column("faa", "VARCHAR", "FAA airport code.", nullable=False, pattern=_IATA,
               source="faa"),
        Column("name", "VARCHAR", "Airport name.", nullable=False, source="name"),
        Column("lat", "DOUBLE", "Latitude.", nullable=False, min=-90, max=90, source="lat"),
        Column("lon", "DOUBLE", "Longitude.", nullable=False, min=-180, max=180, source="lon"),
        Column("alt", "DOUBLE", "Altitude, feet.", min=-1500, max=15000, source="alt"),
        Column("tz", "DOUBLE", "Offset from UTC, hours.", min=-12, max=14, source="tz"),
        Column("dst", "VARCHAR", "Daylight saving: A (US), U (unknown), N (none).",
               allowed=("A", "U", "N"), source="dst"),
        Column("tzone", "VARCHAR", "IANA time zone.", source="tzone"),
    ),
    key=("faa",),
)

PLANES = TableContract(
    name="planes",
    description="Planes by tail number: manufacturer, model, year built.",
    source_columns=("tailnum", "year", "type", "manufacturer", "model", "engines", "seats",
                    "speed", "engine"),
    columns=(
        Column("tailnum", "VARCHAR", "Tail number.", nullable=False, pattern=r"[A-Z0-9]{2,6}",
               source="tailnum"),
        Column("year", "BIGINT", "Year built.", min=1940, max=2014, source="year"),
        Column("type", "VARCHAR", "Type of plane.", source="type"),
        Column("manufacturer", "VARCHAR", "Manufacturer.", source="manufacturer"),
        Column("model", "VARCHAR", "Model.", source="model"),
        Column("engines", "BIGINT", "Number of engines.", min=1, max=8, source="engines"),
        Column("seats", "BIGINT", "Number of seats.", min=1, max=1000, source="seats"),
        Column("speed", "DOUBLE", "Average cruising speed, mph.", min=1, max=1000,
               source="speed"),
        Column("engine", "VARCHAR", "Type of engine.", source="engine"),
    ),
    key=("tailnum",),
)

DAILY_FEEDS = (FLIGHTS, WEATHER)
REFERENCE_FEEDS = (AIRLINES, AIRPORTS, PLANES)
ALL_FEEDS = DAILY_FEEDS + REFERENCE_FEEDS
CONTRACTS = {c.name: c for c in ALL_FEEDS}
