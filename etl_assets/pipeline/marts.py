"""Marts: the analyst-facing tables, built in the warehouse with SQL over the clean layer.

Each builder is SQL text with $start/$end parameters (dates, end exclusive) so a step reads only
the partitions it writes; the columns each mart delivers are declared here as its contract.

Re-runs are bit-identical. DuckDB adds DOUBLEs in whatever order its threads and row groups
deliver them, so a float sum or average can differ in its last bits from one load to the next.
Every sum and average of a DOUBLE here therefore adds the values as DECIMAL(18, 6) (`exact`):
integer arithmetic, the same in any order. The source carries at most 6 decimal places, so
nothing is rounded away; the result is stored as DOUBLE, one rounding of an exact value.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from etl_assets.pipeline import warehouse
from etl_assets.pipeline.tables import Column, TableContract

AGGREGATE_DECIMALS = 6  # the scale sums and averages of DOUBLE columns are taken at


def exact(column: str) -> str:
    """A DOUBLE column as the DECIMAL that sums and averages over it add, exactly."""
    return f"{column}::DECIMAL(18, {AGGREGATE_DECIMALS})"


def _mart(name: str, description: str, key: tuple[str, ...], *columns: Column) -> TableContract:
    return TableContract(
        name=name,
        description=description,
        source_columns=(),
        columns=columns,
        key=key,
        partition_column="flight_date",
    )


FCT_FLIGHTS = _mart(
    "fct_flights",
    "One row per flight, cancelled ones included, with airline, airport, plane and weather.",
    ("carrier", "flight", "scheduled_departure", "time_hour"),
    Column(
        "flight_date",
        "DATE",
        "Local date of the scheduled departure.",
        nullable=False,
        lineage=("clean.flights.flight_date",),
    ),
    Column(
        "carrier", "VARCHAR", "Airline code.", nullable=False, lineage=("clean.flights.carrier",)
    ),
    Column("carrier_name", "VARCHAR", "Airline name.", lineage=("clean.airlines.name",)),
    Column("flight", "BIGINT", "Flight number.", nullable=False, lineage=("clean.flights.flight",)),
    Column("tailnum", "VARCHAR", "Plane tail number.", lineage=("clean.flights.tailnum",)),
    Column(
        "origin", "VARCHAR", "Departure airport.", nullable=False, lineage=("clean.flights.origin",)
    ),
    Column("origin_name", "VARCHAR", "Departure airport name.", lineage=("clean.airports.name",)),
    Column(
        "dest", "VARCHAR", "Destination airport.", nullable=False, lineage=("clean.flights.dest",)
    ),
    Column(
        "dest_name",
        "VARCHAR",
        "Destination airport name (unknown for a few airports).",
        lineage=("clean.airports.name",),
    ),
    Column(
        "scheduled_departure",
        "TIMESTAMP",
        "Scheduled departure, local.",
        nullable=False,
        lineage=("clean.flights.scheduled_departure",),
    ),
    Column(
        "time_hour",
        "TIMESTAMPTZ",
        "Scheduled departure hour in UTC.",
        nullable=False,
        lineage=("clean.flights.time_hour",),
    ),
    Column(
        "actual_departure",
        "TIMESTAMP",
        "Actual departure, local; missing if cancelled.",
        lineage=("clean.flights.actual_departure",),
    ),
    Column(
        "dep_delay", "DOUBLE", "Departure delay, minutes.", lineage=("clean.flights.dep_delay",)
    ),
    Column("arr_delay", "DOUBLE", "Arrival delay, minutes.", lineage=("clean.flights.arr_delay",)),
    Column("distance", "DOUBLE", "Miles.", lineage=("clean.flights.distance",)),
    Column("air_time", "DOUBLE", "Minutes in the air.", lineage=("clean.flights.air_time",)),
    Column(
        "status",
        "VARCHAR",
        "arrived, cancelled or diverted.",
        nullable=False,
        allowed=("arrived", "cancelled", "diverted"),
        lineage=("clean.flights.status",),
    ),
    Column(
        "plane_manufacturer",
        "VARCHAR",
        "Plane manufacturer, where the plane is known.",
        lineage=("clean.planes.manufacturer",),
    ),
    Column("plane_model", "VARCHAR", "Plane model, where known.", lineage=("clean.planes.model",)),
    Column(
        "plane_year",
        "BIGINT",
        "Year the plane was built, where known.",
        lineage=("clean.planes.year",),
    ),
    Column(
        "origin_temp",
        "DOUBLE",
        "Temperature at the origin in the scheduled hour, °F.",
        lineage=("clean.weather.temp",),
    ),
    Column(
        "origin_wind_speed",
        "DOUBLE",
        "Wind speed at the origin in that hour, mph.",
        lineage=("clean.weather.wind_speed",),
    ),
    Column(
        "origin_precip",
        "DOUBLE",
        "Precipitation at the origin in that hour, inches.",
        lineage=("clean.weather.precip",),
    ),
    Column(
        "origin_visib",
        "DOUBLE",
        "Visibility at the origin in that hour, miles.",
        lineage=("clean.weather.visib",),
    ),
)

FCT_FLIGHTS_SQL = """
SELECT f.flight_date, f.carrier, a.name AS carrier_name, f.flight, f.tailnum,
       f.origin, o.name AS origin_name, f.dest, d.name AS dest_name,
       f.scheduled_departure, f.time_hour, f.actual_departure, f.dep_delay, f.arr_delay,
       f.distance, f.air_time, f.status,
       p.manufacturer AS plane_manufacturer, p.model AS plane_model, p.year AS plane_year,
       w.temp AS origin_temp, w.wind_speed AS origin_wind_speed,
       w.precip AS origin_precip, w.visib AS origin_visib
FROM clean.flights AS f
LEFT JOIN clean.airlines AS a ON a.carrier = f.carrier
LEFT JOIN clean.airports AS o ON o.faa = f.origin
LEFT JOIN clean.airports AS d ON d.faa = f.dest
LEFT JOIN clean.planes AS p ON p.tailnum = f.tailnum
LEFT JOIN clean.weather AS w ON w.origin = f.origin AND w.time_hour = f.time_hour
    AND w.observation_date >= $start AND w.observation_date < $end
WHERE f.flight_date >= $start AND f.flight_date < $end
ORDER BY f.flight_date, f.scheduled_departure, f.carrier, f.flight
"""

CARRIER_DAILY_PERFORMANCE = _mart(
    "carrier_daily_performance",
    "One row per airline and day: flights, cancellations, diversions, delays, on-time rate.",
    ("carrier", "flight_date"),
    Column(
        "carrier",
        "VARCHAR",
        "Airline code.",
        nullable=False,
        lineage=("marts.fct_flights.carrier",),
    ),
    Column("carrier_name", "VARCHAR", "Airline name.", lineage=("marts.fct_flights.carrier_name",)),
    Column(
        "flight_date",
        "DATE",
        "Local date.",
        nullable=False,
        lineage=("marts.fct_flights.flight_date",),
    ),
    Column(
        "flights",
        "BIGINT",
        "Scheduled flights.",
        nullable=False,
        min=1,
        lineage=("marts.fct_flights.flight",),
    ),
    Column(
        "cancelled",
        "BIGINT",
        "Cancelled flights.",
        nullable=False,
        min=0,
        lineage=("marts.fct_flights.status",),
    ),
    Column(
        "diverted",
        "BIGINT",
        "Diverted flights.",
        nullable=False,
        min=0,
        lineage=("marts.fct_flights.status",),
    ),
    Column(
        "mean_dep_delay",
        "DOUBLE",
        "Mean departure delay of departed flights, minutes.",
        lineage=("marts.fct_flights.dep_delay",),
    ),
    Column(
        "mean_arr_delay",
        "DOUBLE",
        "Mean arrival delay of arrived flights, minutes.",
        lineage=("marts.fct_flights.arr_delay",),
    ),
    Column(
        "on_time_rate",
        "DOUBLE",
        "Share of arrived flights with arr_delay <= 15.",
        min=0,
        max=1,
        lineage=("marts.fct_flights.arr_delay", "marts.fct_flights.status"),
    ),
)

CARRIER_DAILY_PERFORMANCE_SQL = f"""
SELECT carrier, any_value(carrier_name) AS carrier_name, flight_date,
       count(*) AS flights,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE status = 'diverted') AS diverted,
       avg({exact("dep_delay")}) AS mean_dep_delay,
       avg({exact("arr_delay")}) FILTER (WHERE status = 'arrived') AS mean_arr_delay,
       avg(CASE WHEN arr_delay <= 15 THEN 1.0 ELSE 0.0 END)
           FILTER (WHERE status = 'arrived') AS on_time_rate
FROM marts.fct_flights
WHERE flight_date >= $start AND flight_date < $end
GROUP BY carrier, flight_date
ORDER BY flight_date, carrier
"""

ORIGIN_DAILY_WEATHER = _mart(
    "origin_daily_weather_delays",
    "One row per New York airport and day: departures and delays beside that day's weather.",
    ("origin", "flight_date"),
    Column(
        "origin",
        "VARCHAR",
        "Departure airport.",
        nullable=False,
        lineage=("marts.fct_flights.origin",),
    ),
    Column(
        "flight_date",
        "DATE",
        "Local date.",
        nullable=False,
        lineage=("marts.fct_flights.flight_date",),
    ),
    Column(
        "flights",
        "BIGINT",
        "Scheduled departures.",
        nullable=False,
        min=1,
        lineage=("marts.fct_flights.flight",),
    ),
    Column(
        "cancelled",
        "BIGINT",
        "Cancelled departures.",
        nullable=False,
        min=0,
        lineage=("marts.fct_flights.status",),
    ),
    Column(
        "mean_dep_delay",
        "DOUBLE",
        "Mean departure delay, minutes.",
        lineage=("marts.fct_flights.dep_delay",),
    ),
    Column(
        "delayed_share",
        "DOUBLE",
        "Share of departed flights more than 15 minutes late.",
        min=0,
        max=1,
        lineage=("marts.fct_flights.dep_delay",),
    ),
    Column(
        "weather_hours",
        "BIGINT",
        "Hours with a weather observation.",
        nullable=False,
        min=0,
        max=25,
        lineage=("clean.weather.time_hour",),
    ),
    Column("mean_temp", "DOUBLE", "Mean temperature, °F.", lineage=("clean.weather.temp",)),
    Column(
        "max_wind_speed",
        "DOUBLE",
        "Highest wind speed, mph.",
        lineage=("clean.weather.wind_speed",),
    ),
    Column(
        "total_precip",
        "DOUBLE",
        "Precipitation over the day, inches.",
        lineage=("clean.weather.precip",),
    ),
    Column("min_visib", "DOUBLE", "Lowest visibility, miles.", lineage=("clean.weather.visib",)),
)

ORIGIN_DAILY_WEATHER_SQL = f"""
WITH departures AS (
    SELECT origin, flight_date, count(*) AS flights,
           count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
           avg({exact("dep_delay")}) AS mean_dep_delay,
           avg(CASE WHEN dep_delay > 15 THEN 1.0 ELSE 0.0 END)
               FILTER (WHERE status <> 'cancelled') AS delayed_share
    FROM marts.fct_flights
    WHERE flight_date >= $start AND flight_date < $end
    GROUP BY origin, flight_date
), daily_weather AS (
    SELECT origin, observation_date AS flight_date, count(*) AS weather_hours,
           avg({exact("temp")}) AS mean_temp, max(wind_speed) AS max_wind_speed,
           sum({exact("precip")})::DOUBLE AS total_precip, min(visib) AS min_visib
    FROM clean.weather
    WHERE observation_date >= $start AND observation_date < $end
    GROUP BY origin, observation_date
)
SELECT d.origin, d.flight_date, d.flights, d.cancelled, d.mean_dep_delay, d.delayed_share,
       coalesce(w.weather_hours, 0) AS weather_hours, w.mean_temp, w.max_wind_speed,
       w.total_precip, w.min_visib
FROM departures AS d
LEFT JOIN daily_weather AS w USING (origin, flight_date)
ORDER BY d.flight_date, d.origin
"""

MARTS = {
    FCT_FLIGHTS.name: (FCT_FLIGHTS, FCT_FLIGHTS_SQL),
    CARRIER_DAILY_PERFORMANCE.name: (CARRIER_DAILY_PERFORMANCE, CARRIER_DAILY_PERFORMANCE_SQL),
    ORIGIN_DAILY_WEATHER.name: (ORIGIN_DAILY_WEATHER, ORIGIN_DAILY_WEATHER_SQL),
}


def load_mart(
    conn: duckdb.DuckDBPyConnection, name: str, start: dt.date, end: dt.date
) -> dict[dt.date, int]:
    """Replace a mart's days start..end (end exclusive) with its query's rows, atomically.

    Returns the rows written per day.
    """
    contract, sql = MARTS[name]
    target = warehouse.table("marts", name)
    date = contract.partition_column
    with warehouse.transaction(conn, target, (start, end)):
        warehouse.ensure_table(conn, "marts", name, contract.columns, date)
        warehouse.replace_rows(
            conn, target, contract.columns, date, start, end, sql, {"start": start, "end": end}
        )
        counts = conn.execute(
            f"SELECT {date}, count(*) FROM {target}"
            f"{warehouse.range_filter(date)} GROUP BY 1 ORDER BY 1",
            {"start": start, "end": end},
        ).fetchall()
    return {day: int(rows) for day, rows in counts}


# Each mart's own figures for one day, the daily series its partitions show in the UI.
_DAILY_FIGURES = {
    FCT_FLIGHTS.name: """
        count(*) AS flights, count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
        avg(CASE WHEN arr_delay <= 15 THEN 1.0 ELSE 0.0 END) FILTER (WHERE status = 'arrived')
            AS on_time_rate, avg(dep_delay) AS mean_dep_delay""",
    CARRIER_DAILY_PERFORMANCE.name: """
        count(*) AS carriers, sum(flights)::BIGINT AS flights,
        sum(on_time_rate * (flights - cancelled - diverted))
            / nullif(sum(flights - cancelled - diverted), 0) AS on_time_rate""",
    ORIGIN_DAILY_WEATHER.name: """
        count(*) AS airports, sum(flights)::BIGINT AS flights,
        max(max_wind_speed) AS max_wind_speed, sum(total_precip) AS total_precip""",
}


def daily_figures(
    conn: duckdb.DuckDBPyConnection, name: str, start: dt.date, end: dt.date
) -> dict[dt.date, dict[str, int | float | None]]:
    """Per day in start..end (end exclusive): the mart's rows and its own headline figures."""
    contract, _sql = MARTS[name]
    date = contract.partition_column
    cursor = conn.execute(
        f'SELECT {date}, count(*) AS "dagster/partition_row_count", {_DAILY_FIGURES[name]} '
        f"FROM {warehouse.table('marts', name)}{warehouse.range_filter(date)} "
        f"GROUP BY 1 ORDER BY 1",
        {"start": start, "end": end},
    )
    names = [d[0] for d in cursor.description][1:]
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in cursor.fetchall()}
