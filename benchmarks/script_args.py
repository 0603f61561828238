"""The command line every benchmark script takes: where the files are, where the warehouse goes."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path


def parse(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2013, 1, 1))
    parser.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2013, 12, 31))
    parser.add_argument(
        "--lake-data",
        help="the warehouse is a DuckLake: --warehouse names its "
        "catalog, this the folder of its Parquet files",
    )
    return parser.parse_args(argv)
