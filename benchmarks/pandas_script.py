"""Benchmark (c): the year's extract / clean / quarantine / marts work as one plain pandas script.

The baseline a team would keep if it had no platform: read every delivered file with pandas,
type and validate the rows against the same contract, split clean from quarantined rows, join and
aggregate the marts, and store every table in a DuckDB file. Written to be fast the ordinary
pandas way (vectorised masks, one concat per feed, merges and groupbys); it has no Dagster, no
checks beyond the contract's rules, and no run history.

    python -m benchmarks.pandas_script --landing data/landing --warehouse out.duckdb
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from benchmarks import script_args
from etl_assets.pipeline.contract import ALL_FEEDS, FLIGHTS, WEATHER
from etl_assets.pipeline.landing import daily_file, days, reference_file
from etl_assets.pipeline.marts import CARRIER_DAILY_PERFORMANCE, FCT_FLIGHTS, ORIGIN_DAILY_WEATHER
from etl_assets.pipeline.tables import (
    QUARANTINE_REASON,
    TableContract,
    quarantine_columns,
    raw_columns,
)

TZ = "America/New_York"


def read_feed(landing: Path, contract: TableContract, wanted: list[dt.date]) -> pd.DataFrame:
    """Every delivered row as text, with its delivery date and file."""
    if contract.delivered_daily:
        paths = [(daily_file(landing, contract.name, d), d) for d in wanted]
    else:
        paths = [(reference_file(landing, contract.name), None)]
    frames = []
    for path, day in paths:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
        frame = frame[list(contract.source_columns)]
        frame["delivery_date"] = pd.Timestamp(day) if day else pd.NaT
        relative, stat = path.relative_to(landing).as_posix(), path.stat()
        frame["_source_file"] = relative
        frame["_source_identity"] = f"{relative}:{stat.st_size}:{stat.st_mtime_ns}"
        frames.append(frame)
    raw = pd.concat(frames, ignore_index=True)
    raw["_loaded_at"] = pd.Timestamp.now(tz="UTC")
    raw["_undeclared"] = None  # the bundled feed has the contract's columns
    return raw


def typed(raw: pd.DataFrame, contract: TableContract, reasons: list) -> pd.DataFrame:
    """Each delivered column in its declared type; text that does not parse is a reason."""
    out = pd.DataFrame(index=raw.index)
    for col in contract.parsed_columns:
        text = raw[col.source].str.strip().replace({"NA": None, "": None})
        if col.dtype in ("BIGINT", "DOUBLE"):
            number = pd.to_numeric(text, errors="coerce")
            number = number.where(np.isfinite(number))
            if col.dtype == "BIGINT":
                number = number.where((number == np.trunc(number)) & (number.abs() < 2**63))
            value = number
        elif col.dtype == "TIMESTAMPTZ":
            with_offset = text.str.contains(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", na=False)
            value = pd.to_datetime(
                text.where(with_offset), utc=True, errors="coerce", format="ISO8601"
            )
        else:
            value = text
        if col.dtype != "VARCHAR":
            reasons.append((f"{col.name} does not parse", text.notna() & value.isna()))
        out[col.name] = value
    return out


def column_rules(frame: pd.DataFrame, contract: TableContract, reasons: list) -> None:
    for col in contract.columns:
        if col.name not in frame:
            continue
        values = frame[col.name]
        if not col.nullable and col.source is not None:
            reasons.append((f"{col.name} missing", values.isna()))
        if col.min is not None:
            reasons.append((f"{col.name} low", values < col.min))
        if col.max is not None:
            reasons.append((f"{col.name} high", values > col.max))
        if col.allowed is not None:
            reasons.append((f"{col.name} not allowed", values.notna() & ~values.isin(col.allowed)))
        if col.pattern is not None:
            matches = values.str.fullmatch(col.pattern)
            reasons.append((f"{col.name} pattern", values.notna() & ~matches.fillna(False)))


def local_hour_in_utc(local: pd.Series, utc: pd.Series) -> pd.Series:
    hour = local.dt.floor("h")
    early = hour.dt.tz_localize(TZ, ambiguous=np.ones(len(hour), bool), nonexistent="NaT")
    late = hour.dt.tz_localize(TZ, ambiguous=np.zeros(len(hour), bool), nonexistent="NaT")
    return (early == utc) | (late == utc)


def daily_rules(frame, raw, date_column, reasons) -> None:
    parts = frame[["year", "month", "day"]].astype("float64")
    frame[date_column] = pd.to_datetime(parts, errors="coerce")
    reasons.append(("not a date", parts.notna().all(axis=1) & frame[date_column].isna()))
    reasons.append(
        ("outside file", frame[date_column].notna() & frame[date_column].ne(raw["delivery_date"]))
    )


def flights_rules(frame, reasons) -> None:
    for name in ("sched_dep_time", "dep_time", "sched_arr_time", "arr_time"):
        reasons.append((f"{name} not HHMM", frame[name] % 100 >= 60))
    reasons.append(
        ("hour/minute", (frame["hour"] * 100 + frame["minute"]).ne(frame["sched_dep_time"]))
    )
    hour = frame["hour"].where(frame["hour"].between(0, 23))
    minute = frame["minute"].where(frame["minute"].between(0, 59))
    delay = frame["dep_delay"].where(frame["dep_delay"].between(-120, 1800))
    frame["scheduled_departure"] = frame["flight_date"] + pd.to_timedelta(
        hour * 60 + minute, unit="min"
    )
    frame["actual_departure"] = frame["scheduled_departure"] + pd.to_timedelta(delay, unit="min")
    departed = frame["dep_time"].notna()
    reasons.append(("dep_time without delay", departed & frame["dep_delay"].isna()))
    reasons.append(("delay without dep_time", ~departed & frame["dep_delay"].notna()))
    actual = frame["actual_departure"]
    minutes = (frame["dep_time"] // 100 % 24) * 60 + frame["dep_time"] % 100
    reasons.append(
        (
            "dep_time disagrees",
            departed & actual.notna() & (actual.dt.hour * 60 + actual.dt.minute).ne(minutes),
        )
    )
    reasons.append(
        (
            "time_hour",
            frame["scheduled_departure"].notna()
            & frame["time_hour"].notna()
            & ~local_hour_in_utc(frame["scheduled_departure"], frame["time_hour"]),
        )
    )
    frame["status"] = np.where(
        ~departed, "cancelled", np.where(frame["arr_delay"].isna(), "diverted", "arrived")
    )


def weather_rules(frame, reasons) -> None:
    local = frame["time_hour"].dt.tz_convert(TZ)
    reasons.append(
        (
            "time_hour",
            frame["time_hour"].notna()
            & frame["observation_date"].notna()
            & (
                local.dt.hour.ne(frame["hour"])
                | local.dt.tz_localize(None).dt.normalize().ne(frame["observation_date"])
            ),
        )
    )


def clean(raw: pd.DataFrame, contract: TableContract) -> tuple[pd.DataFrame, pd.DataFrame]:
    reasons: list[tuple[str, pd.Series]] = []
    frame = typed(raw, contract, reasons)
    if contract.delivered_daily:
        daily_rules(frame, raw, contract.partition_column, reasons)
    column_rules(frame, contract, reasons)
    if contract is FLIGHTS:
        flights_rules(frame, reasons)
    elif contract is WEATHER:
        weather_rules(frame, reasons)
    bad = np.zeros(len(frame), bool)
    for _, mask in reasons:
        bad |= mask.fillna(False).to_numpy(bool)
    duplicate = np.zeros(len(frame), bool)
    duplicate[~bad] = frame.loc[~bad, list(contract.key)].duplicated().to_numpy()
    reasons.append(("duplicate", pd.Series(duplicate, index=frame.index)))
    bad |= duplicate
    text = pd.Series("", index=frame.index)
    for rule, mask in reasons:
        hit = mask.fillna(False).to_numpy(bool)
        if hit.any():
            text[hit] = text[hit] + rule + "; "
    good = frame.loc[~bad, contract.column_names]
    quarantined = frame.loc[bad, contract.column_names].copy()
    quarantined["delivery_date"] = raw.loc[bad, "delivery_date"]
    quarantined["_source_file"] = raw.loc[bad, "_source_file"]
    quarantined[QUARANTINE_REASON] = text[bad].str.rstrip("; ")
    return good, quarantined


def marts(clean: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    f = clean["flights"]
    airlines = clean["airlines"][["carrier", "name"]].rename(columns={"name": "carrier_name"})
    airports = clean["airports"][["faa", "name"]]
    planes = clean["planes"][["tailnum", "manufacturer", "model", "year"]].rename(
        columns={"manufacturer": "plane_manufacturer", "model": "plane_model", "year": "plane_year"}
    )
    weather = clean["weather"][["origin", "time_hour", "temp", "wind_speed", "precip", "visib"]]
    weather = weather.rename(
        columns={
            "temp": "origin_temp",
            "wind_speed": "origin_wind_speed",
            "precip": "origin_precip",
            "visib": "origin_visib",
        }
    )
    fct = (
        f.merge(airlines, on="carrier", how="left")
        .merge(
            airports.rename(columns={"faa": "origin", "name": "origin_name"}),
            on="origin",
            how="left",
        )
        .merge(airports.rename(columns={"faa": "dest", "name": "dest_name"}), on="dest", how="left")
        .merge(planes, on="tailnum", how="left")
        .merge(weather, on=["origin", "time_hour"], how="left")
    )
    fct = fct[FCT_FLIGHTS.column_names]

    arrived = fct["status"] == "arrived"
    by_carrier = (
        fct.assign(
            cancelled=fct["status"] == "cancelled",
            diverted=fct["status"] == "diverted",
            arr=fct["arr_delay"].where(arrived),
            on_time=np.where(arrived, (fct["arr_delay"] <= 15).astype(float), np.nan),
        )
        .groupby(["carrier", "flight_date"], as_index=False)
        .agg(
            carrier_name=("carrier_name", "first"),
            flights=("flight", "size"),
            cancelled=("cancelled", "sum"),
            diverted=("diverted", "sum"),
            mean_dep_delay=("dep_delay", "mean"),
            mean_arr_delay=("arr", "mean"),
            on_time_rate=("on_time", "mean"),
        )
    )

    departed = fct["status"] != "cancelled"
    departures = (
        fct.assign(
            cancelled=~departed,
            delayed=np.where(departed, (fct["dep_delay"] > 15).astype(float), np.nan),
        )
        .groupby(["origin", "flight_date"], as_index=False)
        .agg(
            flights=("flight", "size"),
            cancelled=("cancelled", "sum"),
            mean_dep_delay=("dep_delay", "mean"),
            delayed_share=("delayed", "mean"),
        )
    )
    w = (
        clean["weather"]
        .groupby(["origin", "observation_date"], as_index=False)
        .agg(
            weather_hours=("time_hour", "size"),
            mean_temp=("temp", "mean"),
            max_wind_speed=("wind_speed", "max"),
            total_precip=("precip", "sum"),
            min_visib=("visib", "min"),
        )
        .rename(columns={"observation_date": "flight_date"})
    )
    by_origin = departures.merge(w, on=["origin", "flight_date"], how="left")
    by_origin["weather_hours"] = by_origin["weather_hours"].fillna(0)
    return {
        "fct_flights": fct,
        "carrier_daily_performance": by_carrier,
        "origin_daily_weather_delays": by_origin,
    }


def store(conn, schema: str, name: str, frame: pd.DataFrame, columns) -> None:
    """Create the table with its declared types and insert the frame, cast column by column."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    conn.execute(
        f"CREATE OR REPLACE TABLE {schema}.{name} "
        f"({', '.join(f'{c.name} {c.dtype}' for c in columns)})"
    )
    conn.register("frame", frame)
    conn.execute(
        f"INSERT INTO {schema}.{name} SELECT "
        + ", ".join(f"CAST({c.name} AS {c.dtype})" for c in columns)
        + " FROM frame"
    )
    conn.unregister("frame")


def main(argv: list[str] | None = None) -> None:
    args = script_args.parse(__doc__.splitlines()[0], argv)
    wanted = days(args.start, args.end)
    conn = duckdb.connect(args.warehouse)
    cleaned = {}
    for contract in ALL_FEEDS:
        raw = read_feed(args.landing, contract, wanted)
        store(conn, "raw", contract.name, raw, raw_columns(contract))
        good, bad = clean(raw, contract)
        store(conn, "clean", contract.name, good, contract.columns)
        store(
            conn, "quarantine", contract.name, bad, contract.columns + quarantine_columns(contract)
        )
        cleaned[contract.name] = good
    built = marts(cleaned)
    for contract in (FCT_FLIGHTS, CARRIER_DAILY_PERFORMANCE, ORIGIN_DAILY_WEATHER):
        store(conn, "marts", contract.name, built[contract.name], contract.columns)
    conn.close()


if __name__ == "__main__":
    main()
