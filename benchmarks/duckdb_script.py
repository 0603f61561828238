"""Benchmark (d): the same work through the pipeline's DuckDB path alone, with no Dagster.

The plain functions the assets call (`extract.load_raw`, `transform.load_clean`,
`marts.load_mart`), called in order from a script: the floor of what the platform can cost.

    python -m benchmarks.duckdb_script --landing data/landing --warehouse out.duckdb
    python -m benchmarks.duckdb_script ... --warehouse catalog.ducklake --lake-data lake/
"""

from __future__ import annotations

import datetime as dt
import os

from benchmarks import script_args
from etl_assets.pipeline import backends, extract, marts, transform, warehouse
from etl_assets.pipeline.contract import ALL_FEEDS
from etl_assets.pipeline.landing import days


def main(argv: list[str] | None = None) -> None:
    args = script_args.parse(__doc__.splitlines()[0], argv)
    start, end = args.start, args.end + dt.timedelta(days=1)
    loaded_at = dt.datetime.now(dt.timezone.utc)
    location = backends.Lake(args.warehouse, args.lake_data) if args.lake_data else args.warehouse
    with backends.connect(
        location, config=warehouse.connection_config(os.environ.get("ETL_DUCKDB_MEMORY_LIMIT"))
    ) as conn:
        for contract in ALL_FEEDS:
            if contract.delivered_daily:
                files = extract.daily_deliveries(args.landing, contract, days(args.start, args.end))
                extract.load_raw(conn, contract, files, loaded_at, start, end)
                transform.load_clean(conn, contract, start, end)
            else:
                files = [extract.reference_delivery(args.landing, contract)]
                extract.load_raw(conn, contract, files, loaded_at)
                transform.load_clean(conn, contract)
        for name in marts.MARTS:
            marts.load_mart(conn, name, start, end)


if __name__ == "__main__":
    main()
