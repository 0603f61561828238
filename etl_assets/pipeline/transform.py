"""Transform: type, derive, validate and deduplicate raw rows into clean rows and quarantine.

Typing runs in the warehouse (`typed_select_sql`: TRY_CAST over the raw text, which is far cheaper
than parsing millions of Python strings); every rule after that is a vectorised pandas mask built
from the data contract. A row that breaks any rule goes to quarantine with every reason it
broke, so for each partition raw rows = clean rows + quarantined rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from etl_assets.pipeline.contract import (
    FLIGHTS,
    QUARANTINE_REASON,
    WEATHER,
    TableContract,
)

LOCAL_TZ = "America/New_York"
UNPARSED = "__unparsed"  # suffix of the column holding a value that failed to parse
_NUMERIC = ("BIGINT", "DOUBLE")


def typed_select_sql(contract: TableContract, raw_table: str, *, by_delivery_date: bool) -> str:
    """SQL that reads a raw table and types each delivered column as the contract declares.

    'NA' and empty text become NULL. A value that does not parse comes back NULL with its text in
    `<column>__unparsed`: BIGINT takes whole numbers only (a plain cast would round '12.5' to 13),
    DOUBLE finite numbers only ('nan' is not a measurement), TIMESTAMPTZ only with an offset. With by_delivery_date the query takes $start and $end (dates, end exclusive).
    """
    selects = []
    for col in contract.parsed_columns:
        text = f"NULLIF(NULLIF(TRIM({col.source}), 'NA'), '')"
        if col.dtype == "VARCHAR":
            selects.append(f"{text} AS {col.name}")
            continue
        if col.dtype in _NUMERIC:
            number = f"TRY_CAST({text} AS DOUBLE)"
            value = (f"CASE WHEN {number} = TRUNC({number}) THEN TRY_CAST({number} AS BIGINT) END"
                     if col.dtype == "BIGINT" else f"CASE WHEN isfinite({number}) THEN {number} END")
        elif col.dtype == "TIMESTAMPTZ":
            # Only with an explicit offset: without one DuckDB would read the session's zone.
            value = (f"CASE WHEN regexp_matches({text}, '(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$') "
                     f"THEN TRY_CAST({text} AS TIMESTAMPTZ) END")
        else:
            value = f"TRY_CAST({text} AS {col.dtype})"
        selects.append(f"{value} AS {col.name}")
        selects.append(
            f"CASE WHEN {text} IS NOT NULL AND ({value}) IS NULL "
            f"THEN {col.source} END AS {col.name}{UNPARSED}"
        )
    selects += ["delivery_date", "_source_file"]
    where = " WHERE delivery_date >= $start AND delivery_date < $end" if by_delivery_date else ""
    return f"SELECT {', '.join(selects)} FROM {raw_table}{where}"


@dataclass
class CleanResult:
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    rule_counts: dict[str, int]  # rows failing each rule (a row may fail several)


Message = Callable[[pd.DataFrame], pd.Series]


class Reasons:
    """Collects rule failures as boolean masks; renders text only for the rows that failed."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self._rules: list[tuple[str, np.ndarray, Message | None]] = []

    def add(self, rule: str, mask, detail: Message | None = None) -> None:
        """Record that rows in mask break rule; detail renders a row-specific reason."""
        mask = np.asarray(pd.Series(mask).fillna(False), dtype=bool)
        if mask.any():
            self._rules.append((rule, mask, detail))

    @property
    def bad(self) -> np.ndarray:
        bad = np.zeros(len(self.frame), dtype=bool)
        for _, mask, _ in self._rules:
            bad |= mask
        return bad

    @property
    def counts(self) -> dict[str, int]:
        return {rule: int(mask.sum()) for rule, mask, _ in self._rules}

    def render(self) -> pd.Series:
        """The '; '-joined reasons of each failing row, indexed like the frame."""
        bad = self.bad
        rows = self.frame.index[bad]
        parts: dict[object, list[str]] = {index: [] for index in rows}
        for rule, mask, detail in self._rules:
            subset = self.frame.loc[rows[mask[bad]]]
            texts = detail(subset) if detail else pd.Series(rule, index=subset.index)
            for index, text in texts.items():
                parts[index].append(text)
        return pd.Series({index: "; ".join(texts) for index, texts in parts.items()},
                         index=rows, dtype=object)


def _show(series: pd.Series) -> pd.Series:
    return series.map(lambda v: f"{v:g}" if isinstance(v, float) else str(v))


def check_columns(frame: pd.DataFrame, contract: TableContract, reasons: Reasons) -> None:
    """Apply each column's declared rule: parses, required, range, allowed values, pattern."""
    for col in contract.columns:
        if col.name not in frame:
            continue
        values = frame[col.name]
        unparsed = frame.get(f"{col.name}{UNPARSED}")
        if unparsed is not None:
            kind = _KINDS.get(col.dtype, f"a {col.dtype}")
            reasons.add(f"{col.name} is not {kind}", unparsed.notna(), lambda rows, c=col.name,
                        u=unparsed, k=kind: f"{c} '" + u.loc[rows.index].astype(str) + f"' is not {k}")
        present = values.notna()
        if not col.nullable and col.source is not None:  # derived columns: see their derivation
            missing = ~present if unparsed is None else ~present & unparsed.isna()
            reasons.add(f"{col.name} is missing", missing, None)
        if col.min is not None or col.max is not None:
            low = -np.inf if col.min is None else col.min
            high = np.inf if col.max is None else col.max
            rule = f"{col.name} outside [{_bound(col.min)}, {_bound(col.max)}]"
            reasons.add(rule, present & ((values < low) | (values > high)),
                        lambda rows, c=col.name, r=rule: c + " " + _show(rows[c]) + r[len(c):])
        if col.allowed is not None:
            rule = f"{col.name} not one of {'/'.join(col.allowed)}"
            reasons.add(rule, present & ~values.isin(col.allowed),
                        lambda rows, c=col.name, r=rule: c + " '" + rows[c].astype(str) + "'" + r[len(c):])
        if col.pattern is not None:
            # Match each distinct value once: far cheaper than a regex per row.
            distinct = values.dropna().unique()
            mismatched = [v for v in distinct if not re.fullmatch(col.pattern, str(v))]
            rule = f"{col.name} does not match {col.pattern}"
            reasons.add(rule, values.isin(mismatched),
                        lambda rows, c=col.name, r=rule: c + " '" + rows[c].astype(str) + "'" + r[len(c):])


_KINDS = {"BIGINT": "a whole number", "DOUBLE": "a finite number",
          "TIMESTAMPTZ": "a timestamp with a UTC offset"}


def _bound(value: float | None) -> str:
    return "…" if value is None else f"{value:g}"


def mark_duplicates(frame: pd.DataFrame, key: tuple[str, ...], reasons: Reasons) -> None:
    """Among rows that pass every other rule, the second and later rows of a key are duplicates."""
    candidates = ~reasons.bad
    duplicated = np.zeros(len(frame), dtype=bool)
    if candidates.any():
        duplicated[candidates] = frame.loc[candidates, list(key)].duplicated(keep="first").to_numpy()
    reasons.add(f"duplicate key ({', '.join(key)})", duplicated)


def split(frame: pd.DataFrame, contract: TableContract, reasons: Reasons) -> CleanResult:
    """Clean rows in the contract's columns and types; quarantined rows with their reasons."""
    bad = reasons.bad
    clean = conform(frame.loc[~bad], contract).reset_index(drop=True)
    quarantine = conform(frame.loc[bad], contract)
    quarantine["delivery_date"] = frame.loc[bad, "delivery_date"]
    quarantine["_source_file"] = frame.loc[bad, "_source_file"]
    quarantine[QUARANTINE_REASON] = reasons.render()
    return CleanResult(clean=clean, quarantine=quarantine.reset_index(drop=True),
                       rule_counts=reasons.counts)


def conform(frame: pd.DataFrame, contract: TableContract) -> pd.DataFrame:
    """The contract's columns, in order, in pandas types that load into the declared types."""
    out = frame.reindex(columns=contract.column_names)
    for col in contract.columns:
        wanted = _PANDAS_TYPES.get(col.dtype)
        if wanted is not None and str(out[col.name].dtype) != wanted:
            out[col.name] = _as_dtype(out[col.name], col.dtype)
    return out


_PANDAS_TYPES = {
    "BIGINT": "Int64",
    "DOUBLE": "float64",
    "DATE": "datetime64[us]",
    "TIMESTAMP": "datetime64[us]",
    "TIMESTAMPTZ": "datetime64[us, UTC]",
}


def _as_dtype(values: pd.Series, dtype: str) -> pd.Series:
    if dtype == "BIGINT":
        return pd.to_numeric(values).astype("Int64")
    if dtype == "DOUBLE":
        return pd.to_numeric(values).astype("float64")
    if dtype in ("DATE", "TIMESTAMP"):
        return pd.to_datetime(values).astype("datetime64[us]")
    return pd.to_datetime(values, utc=True).astype("datetime64[us, UTC]")


def within_contract(frame: pd.DataFrame, contract: TableContract, name: str) -> pd.Series:
    """A column's values, missing where they break the column's declared range."""
    col = contract.column(name)
    low = -np.inf if col.min is None else col.min
    high = np.inf if col.max is None else col.max
    values = frame[name]
    return values.where(values.between(low, high))


def _is_local_hour_in_utc(local: pd.Series, utc_hour: pd.Series) -> pd.Series:
    """Whether utc_hour is the hour of the local (New York) timestamp, in UTC.

    In the repeated hour when daylight saving ends both readings are accepted (time_hour is what
    tells them apart); a local time that never happened (the skipped hour) matches nothing.
    """
    hour = local.dt.floor("h")
    readings = [
        hour.dt.tz_localize(LOCAL_TZ, ambiguous=np.full(len(hour), dst), nonexistent="NaT")
        .dt.tz_convert("UTC")
        for dst in (True, False)
    ]
    return (readings[0] == utc_hour) | (readings[1] == utc_hour)


def hhmm_minutes(hhmm: pd.Series) -> pd.Series:
    """Minutes after midnight of an HHMM time; 2400 (the source's midnight) is 0."""
    return (hhmm // 100 % 24) * 60 + hhmm % 100


def local_date(frame: pd.DataFrame) -> pd.Series:
    """The date from year/month/day columns; NaT where they do not form a date."""
    parts = frame[["year", "month", "day"]].astype("float64")  # NaN, not NA, where missing
    return pd.to_datetime(parts, errors="coerce").astype("datetime64[us]")


def _daily_rows(typed: pd.DataFrame, contract: TableContract) -> tuple[pd.DataFrame, Reasons]:
    """A daily feed's rows with their local date derived, the column rules applied, and each row
    checked against the date of the file it was delivered in."""
    frame = typed.copy()
    frame["time_hour"] = pd.to_datetime(frame["time_hour"], utc=True)
    date_column = contract.partition_column
    frame[date_column] = local_date(frame)
    reasons = Reasons(frame)
    check_columns(frame, contract, reasons)
    has_parts = frame[["year", "month", "day"]].notna().all(axis=1)
    reasons.add("year/month/day is not a date", has_parts & frame[date_column].isna())
    reasons.add(
        "dated outside its delivery file",
        frame[date_column].notna() & frame[date_column].ne(frame["delivery_date"]),
        lambda rows: "dated " + rows[date_column].dt.strftime("%Y-%m-%d")
        + " but delivered in the file for " + rows["delivery_date"].dt.strftime("%Y-%m-%d"),
    )
    return frame, reasons


def clean_flights(typed: pd.DataFrame) -> CleanResult:
    """Flights: derive local date, timestamps and status, then apply the contract.

    Source quirks: HHMM integers with 2400 for midnight; time_hour is the scheduled hour in UTC;
    a flight with no departure time was cancelled, which is a valid record, not a bad row.
    """
    frame, reasons = _daily_rows(typed, FLIGHTS)
    for name in ("sched_dep_time", "dep_time", "sched_arr_time", "arr_time"):
        reasons.add(f"{name} is not an HHMM time", frame[name] % 100 >= 60,
                    lambda rows, n=name: f"{n} " + _show(rows[n]) + " is not an HHMM time")

    reasons.add("hour/minute disagree with sched_dep_time",
                (frame["hour"] * 100 + frame["minute"]).ne(frame["sched_dep_time"]))
    # Timestamps only from values inside the contract's ranges: an absurd delay or hour is
    # already a reason to quarantine, and must not overflow the arithmetic first.
    minutes = (within_contract(frame, FLIGHTS, "hour") * 60
               + within_contract(frame, FLIGHTS, "minute")).astype("float64")
    frame["scheduled_departure"] = frame["flight_date"] + pd.to_timedelta(minutes, unit="min")
    frame["actual_departure"] = frame["scheduled_departure"] + pd.to_timedelta(
        within_contract(frame, FLIGHTS, "dep_delay"), unit="min")

    departed = frame["dep_time"].notna()
    reasons.add("dep_time without dep_delay", departed & frame["dep_delay"].isna())
    reasons.add("dep_delay without dep_time", ~departed & frame["dep_delay"].notna())
    actual = frame["actual_departure"]
    reasons.add("dep_time disagrees with sched_dep_time + dep_delay",
                (actual.dt.hour * 60 + actual.dt.minute).ne(hhmm_minutes(frame["dep_time"]))
                & departed & actual.notna())
    reasons.add("time_hour is not the scheduled hour in UTC",
                frame["scheduled_departure"].notna() & frame["time_hour"].notna()
                & ~_is_local_hour_in_utc(frame["scheduled_departure"], frame["time_hour"]))

    frame["status"] = np.where(
        ~departed, "cancelled", np.where(frame["arr_delay"].isna(), "diverted", "arrived"))
    mark_duplicates(frame, FLIGHTS.key, reasons)
    return split(frame, FLIGHTS, reasons)


def clean_weather(typed: pd.DataFrame) -> CleanResult:
    """Weather: derive the local date, check time_hour (UTC) against local date and hour."""
    frame, reasons = _daily_rows(typed, WEATHER)
    local = frame["time_hour"].dt.tz_convert(LOCAL_TZ)
    reasons.add(
        "time_hour (UTC) is not the local date and hour",
        frame["time_hour"].notna() & frame["observation_date"].notna()
        & (local.dt.hour.ne(frame["hour"])
           | local.dt.tz_localize(None).dt.normalize().ne(frame["observation_date"])),
    )
    mark_duplicates(frame, WEATHER.key, reasons)
    return split(frame, WEATHER, reasons)


def clean_reference(typed: pd.DataFrame, contract: TableContract) -> CleanResult:
    """A reference table: the contract's column rules and its key."""
    frame = typed.copy()
    reasons = Reasons(frame)
    check_columns(frame, contract, reasons)
    mark_duplicates(frame, contract.key, reasons)
    return split(frame, contract, reasons)


CLEANERS: dict[str, Callable[[pd.DataFrame], CleanResult]] = {
    "flights": clean_flights,
    "weather": clean_weather,
}


def clean(typed: pd.DataFrame, contract: TableContract) -> CleanResult:
    cleaner = CLEANERS.get(contract.name)
    return cleaner(typed) if cleaner else clean_reference(typed, contract)
