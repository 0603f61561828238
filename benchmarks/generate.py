"""Scale the bundled year to N years of deliveries: 2013's files replayed as 2014, 2015, ….

Each later year gets every daily file of 2013 with its dates moved to that year: year, and the
UTC `time_hour` recomputed from the local (New York) hour, so the rows are as valid as the
original ones (a few in the hours that daylight saving moves may be quarantined). A 29 February
gets a header-only file, as a day without flights would. The reference files are the same.

    python -m benchmarks.generate --landing data/bench/landing-10y --years 10
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pandas as pd

from etl_assets.pipeline.contract import DAILY_FEEDS
from etl_assets.pipeline.landing import daily_file, days, deliver, land

TZ = "America/New_York"
FIRST_YEAR = 2013


def shift_year(frame: pd.DataFrame, year: int) -> pd.DataFrame:
    """One day's rows of 2013 as if delivered for the same month and day of `year`."""
    out = frame.copy()
    if out.empty:
        return out
    out["year"] = str(year)
    hour = out["hour"].astype(int)
    local = pd.to_datetime(
        {
            "year": year,
            "month": out["month"].astype(int),
            "day": out["day"].astype(int),
            "hour": hour,
        }
    )
    utc = local.dt.tz_localize(TZ, ambiguous=True, nonexistent="shift_forward").dt.tz_convert("UTC")
    out["time_hour"] = utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def generate(landing: Path, years: int, progress=print) -> None:
    last = dt.date(FIRST_YEAR + years - 1, 12, 31)
    land(landing, dt.date(FIRST_YEAR, 1, 1), dt.date(FIRST_YEAR, 12, 31))
    for contract in DAILY_FEEDS:
        for year in range(FIRST_YEAR + 1, last.year + 1):
            todo = [
                d
                for d in days(dt.date(year, 1, 1), dt.date(year, 12, 31))
                if not daily_file(landing, contract.name, d).exists()
            ]
            for day in todo:
                if (day.month, day.day) == (2, 29):
                    source_day = dt.date(FIRST_YEAR, 2, 28)
                    rows = read(landing, contract.name, source_day).iloc[0:0]
                else:
                    rows = shift_year(
                        read(landing, contract.name, day.replace(year=FIRST_YEAR)), year
                    )
                deliver(daily_file(landing, contract.name, day), rows)
            progress(f"{contract.name} {year}: {len(todo)} file(s) written")


def read(landing: Path, feed: str, day: dt.date) -> pd.DataFrame:
    return pd.read_csv(
        daily_file(landing, feed, day), dtype=str, keep_default_na=False, na_filter=False
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--years", type=int, default=10)
    args = parser.parse_args()
    generate(args.landing, args.years)


if __name__ == "__main__":
    main()
