"""What the benchmark cases must agree on, read from one warehouse: row counts and mart checksums;
and what two loads of one case must agree on: every table's full-precision digest.

Run in a process of its own (`python -m benchmarks.outputs WAREHOUSE [LAKE_DATA]` prints JSON;
with LAKE_DATA, WAREHOUSE is a DuckLake catalog), so the harness stays small: a child's peak
memory as the kernel reports it starts from its parent's.
"""

from __future__ import annotations

import json
import sys

from etl_assets.pipeline import backends, quality
from etl_assets.pipeline.contract import ALL_FEEDS
from etl_assets.pipeline.marts import MARTS

TABLES = [f"{layer}.{c.name}" for layer in ("raw", "clean", "quarantine") for c in ALL_FEEDS]
TABLES += [f"marts.{name}" for name in MARTS]
CHECKSUMMED = [f"marts.{name}" for name in MARTS]
LOAD_TIMES = ("_loaded_at", "loaded_at")  # when a file was loaded: the one thing a re-run changes


def outputs(warehouse: str | backends.Lake) -> dict:
    with backends.connect(warehouse, read_only=True) as conn:
        rows, exact = {}, {}
        for table in TABLES:  # the full-precision digest counts the rows on the way
            rows[table], exact[table] = quality.table_checksum(conn, table, LOAD_TIMES, digits=None)
        checksums = {t: quality.table_checksum(conn, t)[1] for t in CHECKSUMMED}
        return {"rows": rows, "checksums": checksums, "exact": exact}


if __name__ == "__main__":
    where, lake_data = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
    print(json.dumps(outputs(backends.Lake(where, lake_data) if lake_data else where)))
