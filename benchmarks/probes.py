"""Benchmarks timed inside their own process: a landing-sensor tick (f), a code load (g), and a
backlog of landed days caught up by the live path under `dagster dev` (n).

    python -m benchmarks.probes sensor-tick --files 10000 --root DIR
    python -m benchmarks.probes code-location
    python -m benchmarks.probes backlog --start 2013-01-01 --end 2013-01-10 --root DIR

Each prints one line `BENCH {"seconds": ...}` for the harness to read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path


def report(**figures) -> None:
    print("BENCH " + json.dumps(figures), flush=True)


def code_location() -> None:
    """What a code server does on load: import the module, build the definitions and the jobs."""
    began = time.perf_counter()
    from etl_assets.definitions import defs

    imported = time.perf_counter()
    repository = defs().get_repository_def()
    repository.get_all_jobs()
    done = time.perf_counter()
    report(seconds=done - began, import_seconds=imported - began, build_seconds=done - imported)


def sensor_tick(files: int, root: Path) -> None:
    """The landing-zone sensor's first ticks over `files` daily files (header-only, real layout),
    with the warehouse holding half of them."""
    landing = root / "landing"
    day_count = files // 2  # a flights and a weather file a day
    first = dt.date(2013, 1, 1)
    last = first + dt.timedelta(days=day_count - 1)
    header = {"flights": "year,month,day\n", "weather": "origin,year\n"}
    for feed, text in header.items():
        (landing / feed).mkdir(parents=True, exist_ok=True)
        for i in range(day_count):
            path = landing / feed / f"{first + dt.timedelta(days=i)}.csv"
            if not path.exists():
                path.write_text(text)
    os.environ["ETL_LANDING_DIR"] = str(landing)
    os.environ["ETL_LAST_DAY"] = last.isoformat()  # every file maps to a partition
    # A warehouse whose ledger already holds every weather file: the sensor asks it each tick.
    warehouse_path = root / "warehouse.duckdb"
    warehouse_path.unlink(missing_ok=True)
    os.environ["ETL_WAREHOUSE_PATH"] = str(warehouse_path)
    import duckdb

    from etl_assets.pipeline import extract, warehouse

    conn = duckdb.connect(str(warehouse_path))
    warehouse.ensure_table(conn, *extract.LEDGER, extract.LEDGER_COLUMNS)
    held = [(f"weather/{p.name}", p.stat()) for p in (landing / "weather").iterdir()]
    conn.execute(
        f"INSERT INTO {warehouse.table(*extract.LEDGER)} BY NAME SELECT 'weather' AS feed, "
        "unnest($files) AS source_file, unnest($ids) AS identity, 0 AS rows, now() AS loaded_at",
        {
            "files": [f for f, _ in held],
            "ids": [f"{f}:{st.st_size}:{st.st_mtime_ns}" for f, st in held],
        },
    )
    conn.close()

    import dagster as dg

    from etl_assets.automation.sensors import build_landing_zone_sensor
    from etl_assets.definitions import defs
    from etl_assets.runtime.resources import LandingZone

    definitions = defs()
    instance = dg.DagsterInstance.ephemeral()
    from etl_assets.pipeline.deliveries import SETTLE_NS

    # A file younger than the sensor's settle window waits for the next tick: let the newest settle.
    newest = max(p.stat().st_ctime_ns for p in (landing / "weather").iterdir())
    time.sleep(max(0.0, (newest + SETTLE_NS - time.time_ns()) / 1e9 + 0.05))
    ticks = []
    cursor = None
    for _ in range(2):  # the first tick from an empty cursor, then one that finds the backlog
        context = dg.build_sensor_context(
            cursor=cursor,
            instance=instance,
            repository_def=definitions.get_repository_def(),
            resources={
                "landing": LandingZone(path=str(landing)),
                "alerts": definitions.resources["alerts"],
                "warehouse": definitions.resources["warehouse"],
            },
        )
        began = time.perf_counter()
        result = build_landing_zone_sensor()(context)
        ticks.append(time.perf_counter() - began)
        cursor = result.cursor
    report(
        seconds=max(ticks),
        first_tick_seconds=ticks[0],
        second_tick_seconds=ticks[1],
        files=day_count * 2,
        run_requests=len(result.run_requests or []),
    )


def backlog(start: dt.date, end: dt.date, root: Path) -> None:
    """The days start..end already waiting in the landing zone, then `dagster dev` on a fresh
    instance (the project's dagster.yaml) and an empty warehouse, nobody launching anything:
    seconds from its start until every file is loaded with the last day's marts and no run is
    left, and the runs it took."""
    import shutil

    import dagster as dg

    from etl_assets.operations.demo import ACTIVE, caught_up, dagster_dev
    from etl_assets.operations.instance import instance_at
    from etl_assets.pipeline.landing import land
    from etl_assets.runtime.dagster_adapter import PLANNED_EVENTS_FLAG
    from etl_assets_tests.support.servers import free_port

    project = Path(__file__).resolve().parent.parent
    shutil.rmtree(root, ignore_errors=True)
    home, landing, warehouse = root / "home", root / "landing", root / "warehouse.duckdb"
    published = root / "warehouse.marts.duckdb"
    home.mkdir(parents=True)
    shutil.copy(project / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    land(landing, start, end)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ETL_WAREHOUSE_PATH": str(warehouse),
        "ETL_LANDING_DIR": str(landing),
        "ETL_ALERT_LOG": str(root / "alerts.jsonl"),
        "ETL_PUBLISHED_MARTS": str(published),
        PLANNED_EVENTS_FLAG: "1",
    }  # as `make dev` (the Makefile) sets it
    began = time.perf_counter()
    with dagster_dev(project, free_port(), root / "dagster_dev.log", env=env):
        with instance_at(home) as instance:
            while not (
                caught_up(warehouse, published, landing, end)
                and not instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE))
            ):
                if time.perf_counter() - began > 7200:
                    raise SystemExit(f"not caught up after 2 h; see {root}")
                time.sleep(1)
            seconds = time.perf_counter() - began
            runs = instance.get_runs()
            failed = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
    report(seconds=seconds, runs=len(runs), failed_runs=len(failed), days=(end - start).days + 1)
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed; see {root}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    tick = commands.add_parser("sensor-tick")
    tick.add_argument("--files", type=int, default=10_000)
    tick.add_argument("--root", type=Path, required=True)
    commands.add_parser("code-location")
    caught = commands.add_parser("backlog")
    caught.add_argument("--start", type=dt.date.fromisoformat, required=True)
    caught.add_argument("--end", type=dt.date.fromisoformat, required=True)
    caught.add_argument("--root", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "sensor-tick":
        sensor_tick(args.files, args.root)
    elif args.command == "backlog":
        backlog(args.start, args.end, args.root)
    else:
        code_location()


if __name__ == "__main__":
    main()
