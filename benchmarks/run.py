"""`make bench`: the platform against the plain script it replaces, on the same landed files.

Each case runs as a whole process, `--repeats` times (median reported), with its peak resident
memory read from the kernel (wait4). The harness itself imports neither pandas nor DuckDB and
does its own work in child processes: the kernel counts a child's peak from its parent's size.
The cases that build a warehouse must agree: row counts of every table and a checksum of each
mart's content. Results go to `<root>/results.json` and
`<root>/results.md`, and the markdown table is printed.

    python -m benchmarks.run [--repeats 3] [--only a c d] [--root data/bench]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from etl_assets_tests.support.servers import celery_worker, postgres_server, redis_server

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TABLES, CHECKSUMMED = 18, 3  # what benchmarks.outputs compares


@dataclass
class Case:
    key: str
    title: str
    # (workdir, the environment of its servers) -> argv, the environment to add
    command: Callable[[Path, dict[str, str]], tuple[list[str], dict[str, str]]]
    builds_warehouse: bool = False  # a warehouse in its workdir, compared with the others
    needs_postgres: bool = False  # runs against a fresh PostgreSQL server of its own
    needs_redis: bool = False  # and a Redis server of its own (ETL_CELERY_BROKER)
    workers: int = 0  # Celery workers started for it (one step at a time each)
    metric: str | None = None  # a figure the process reports itself (BENCH line), else wall time
    repeats: int | None = None  # fewer runs than --repeats, for a case of minutes
    on_request: bool = False  # run only when named in --only (a case of an hour)


@dataclass
class Sample:
    wall_seconds: float
    peak_rss_mb: float
    metric_seconds: float | None = None
    outputs: dict | None = None
    figures: dict = field(default_factory=dict)  # all the process reported (BENCH line)


@dataclass
class Result:
    case: Case
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    @property
    def seconds(self) -> float:
        values = [s.metric_seconds if self.case.metric else s.wall_seconds for s in self.samples]
        return statistics.median(values)


def measure(argv: list[str], env: dict[str, str], log: Path) -> tuple[Sample, str]:
    """Run argv to its end; wall time, the peak RSS of the process (and its waited children)."""
    with log.open("w") as out:
        began = time.perf_counter()
        process = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if process.returncode != 0:
        tail = "\n".join(text.splitlines()[-15:])
        raise RuntimeError(f"{' '.join(argv)} exited {process.returncode}:\n{tail}")
    figures = {}
    for line in text.splitlines():
        if line.startswith("BENCH "):
            figures = json.loads(line[6:])
    return Sample(
        wall_seconds=wall,
        peak_rss_mb=usage.ru_maxrss / 1024,
        metric_seconds=figures.get("seconds"),
        figures=figures,
    ), text


def outputs(work: Path, env: dict[str, str]) -> dict:
    """Row counts of every table and a checksum of each mart (benchmarks.outputs), read from
    the case's DuckLake when it has one (its env), else from its warehouse.duckdb."""
    where = (
        [env["ETL_DUCKLAKE_CATALOG"], env["ETL_DUCKLAKE_DATA_PATH"]]
        if "ETL_DUCKLAKE_CATALOG" in env
        else [str(work / "warehouse.duckdb")]
    )
    done = subprocess.run(
        [str(BIN / "python"), "-m", "benchmarks.outputs", *where],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT,
    )
    return json.loads(done.stdout)


def on_lake(work: Path) -> dict[str, str]:
    """The settings of a DuckLake in the workdir, its catalog in a DuckDB file."""
    return {
        "ETL_DUCKLAKE_CATALOG": str(work / "catalog.ducklake"),
        "ETL_DUCKLAKE_DATA_PATH": str(work / "lake"),
    }


def cases(landing: Path, root: Path) -> list[Case]:
    python = str(BIN / "python")
    home_config = PROJECT / ".dagster_home" / "dagster.yaml"
    postgres_config = PROJECT / "deploy" / "postgres" / "dagster.yaml"
    scale_out_config = PROJECT / "deploy" / "scale-out" / "dagster.yaml"

    def etl_assets_run(config: Path, work: Path, extra: dict[str, str]):
        home = work / "dagster_home"
        home.mkdir(parents=True)
        shutil.copy(config, home / "dagster.yaml")
        return [str(BIN / "etl-assets"), "run"], {
            "DAGSTER_HOME": str(home),
            "ETL_WAREHOUSE_PATH": str(work / "warehouse.duckdb"),
            "ETL_LANDING_DIR": str(landing),
            "ETL_ALERT_LOG": str(work / "alerts.jsonl"),
            **extra,
        }

    def script(module: str):
        def command(work: Path, env: dict[str, str]):
            return [
                python,
                "-m",
                module,
                "--landing",
                str(landing),
                "--warehouse",
                str(work / "warehouse.duckdb"),
            ], {}

        return command

    def one_day(years: int, lake: bool = False):
        def command(work: Path, env: dict[str, str]):
            history_landing, history_warehouse = history(root, years, lake)
            day = f"{2013 + years - 1}-{ONE_DAY}"
            if lake:  # the catalog copied; its Parquet files stay in the history's folder
                shutil.copy(history_warehouse / "catalog.ducklake", work / "catalog.ducklake")
                env = {
                    **env,
                    "ETL_DUCKLAKE_CATALOG": str(work / "catalog.ducklake"),
                    "ETL_DUCKLAKE_DATA_PATH": str(history_warehouse / "lake"),
                }
            else:
                shutil.copy(history_warehouse, work / "warehouse.duckdb")
            argv, run_env = etl_assets_run(home_config, work, env)
            run_env["ETL_LANDING_DIR"] = str(history_landing)
            run_env["ETL_LAST_DAY"] = f"{2013 + years - 1}-12-31"
            return [*argv, "--start", day, "--end", day], run_env

        return command

    def on_celery(work: Path, env: dict[str, str]):
        """`etl-assets run` on the scale-out instance; the catalog and broker come in env."""
        return etl_assets_run(
            scale_out_config, work, {**env, "ETL_DUCKLAKE_DATA_PATH": str(work / "lake")}
        )

    def days_run(last: str):
        def command(work: Path, env: dict[str, str]):
            argv, run_env = etl_assets_run(home_config, work, env)
            return [*argv, "--start", "2013-01-01", "--end", last], run_env

        return command

    def live_backlog(last: str):
        def command(work: Path, env: dict[str, str]):
            return [
                python,
                "-m",
                "benchmarks.probes",
                "backlog",
                "--start",
                "2013-01-01",
                "--end",
                last,
                "--root",
                str(work / "live"),
            ], {}

        return command

    def ten_years(work: Path, env: dict[str, str]):
        history_landing, _ = history(root, HISTORY_YEARS)
        return [
            python,
            "-m",
            "benchmarks.duckdb_script",
            "--landing",
            str(history_landing),
            "--warehouse",
            str(work / "warehouse-10y.duckdb"),
            "--end",
            "2022-12-31",
        ], {}

    return [
        Case(
            "a",
            "full year, every layer and check: `etl-assets run` on the embedded SQLite instance",
            lambda work, env: etl_assets_run(home_config, work, env),
            builds_warehouse=True,
        ),
        Case(
            "b",
            "the same on the PostgreSQL instance (deploy/postgres), batched event writes",
            lambda work, env: etl_assets_run(postgres_config, work, env),
            builds_warehouse=True,
            needs_postgres=True,
        ),
        Case(
            "c",
            "full year: plain pandas script, same extract / clean / quarantine / marts",
            script("benchmarks.pandas_script"),
            builds_warehouse=True,
        ),
        Case(
            "d",
            "full year: the pipeline's DuckDB path alone (its plain functions, no Dagster)",
            script("benchmarks.duckdb_script"),
            builds_warehouse=True,
        ),
        Case(
            "e1",
            f"one partition ({ONE_DAY} of the last year) end to end, 1 year of history",
            one_day(1),
        ),
        Case(
            "e10",
            f"the same with {HISTORY_YEARS} years of history in the warehouse",
            one_day(HISTORY_YEARS),
        ),
        Case(
            "h10",
            f"{HISTORY_YEARS} years through the DuckDB path in one go (memory bound)",
            ten_years,
            repeats=1,
        ),
        Case(
            "k",
            "full year on DuckLake (catalog in a DuckDB file), one process, embedded "
            "SQLite instance",
            lambda work, env: etl_assets_run(home_config, work, {**env, **on_lake(work)}),
            builds_warehouse=True,
        ),
        Case(
            "l1",
            "full year on DuckLake (catalog on PostgreSQL), steps on 1 Celery worker, "
            "PostgreSQL instance (deploy/scale-out); RSS of the run process only",
            on_celery,
            builds_warehouse=True,
            needs_postgres=True,
            needs_redis=True,
            workers=1,
        ),
        Case(
            "l2",
            "the same on 2 Celery workers",
            on_celery,
            builds_warehouse=True,
            needs_postgres=True,
            needs_redis=True,
            workers=2,
        ),
        Case(
            "m10",
            f"one partition at {HISTORY_YEARS} years of history on DuckLake (catalog "
            "in a DuckDB file), one process",
            one_day(HISTORY_YEARS, lake=True),
        ),
        Case(
            "n10",
            "backlog of 10 days (01-01..01-10) caught up by the live path: `dagster dev` "
            "on a fresh instance, its sensors and automation, nobody launching",
            live_backlog("2013-01-10"),
            metric="backlog",
        ),
        Case(
            "o10",
            "the same 10 days by `etl-assets run` (embedded instance)",
            days_run("2013-01-10"),
        ),
        Case(
            "n365",
            "backlog of the year caught up by the live path (as n10; only with --only n365)",
            live_backlog("2013-12-31"),
            metric="backlog",
            repeats=1,
            on_request=True,
        ),
        Case(
            "f",
            "landing-sensor tick over 10,000 files (in-process, worst of two ticks)",
            lambda work, env: (
                [
                    python,
                    "-m",
                    "benchmarks.probes",
                    "sensor-tick",
                    "--files",
                    "10000",
                    "--root",
                    str(root / "sensor"),
                ],
                {},
            ),
            metric="tick",
        ),
        Case(
            "g",
            "code location load: import + definitions + jobs (in-process)",
            lambda work, env: ([python, "-m", "benchmarks.probes", "code-location"], {}),
            metric="load",
        ),
    ]


HISTORY_YEARS = 10
ONE_DAY = "12-30"  # the partition (e) runs: in the last year of the history


def history(root: Path, years: int, lake: bool = False) -> tuple[Path, Path]:
    """A landing zone of `years` years and a warehouse holding them all, built once and kept:
    a DuckDB file, or (lake) a folder with a DuckLake's catalog.ducklake and its lake/ data.

    The warehouse is built by the DuckDB path (benchmarks.duckdb_script): history, not a
    measurement of Dagster. The landing zone comes from benchmarks.generate.
    """
    landing = root / "landing" if years == 1 else root / f"landing-{years}y"
    warehouse = root / (f"history-{years}y-lake" if lake else f"history-{years}y.duckdb")
    last = dt.date(2013 + years - 1, 12, 31)
    if not warehouse.exists():
        print(
            f"preparing {years} year(s) of history in {warehouse} (kept between runs)", flush=True
        )
        if not (landing / "flights").exists():
            subprocess.run(
                [
                    str(BIN / "python"),
                    "-m",
                    "benchmarks.generate",
                    "--landing",
                    str(landing),
                    "--years",
                    str(years),
                ],
                check=True,
                cwd=PROJECT,
            )
        building = warehouse.with_name(warehouse.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        building.unlink(missing_ok=True)
        target = (
            [
                "--warehouse",
                str(building / "catalog.ducklake"),
                "--lake-data",
                str(warehouse / "lake"),
            ]
            if lake
            else ["--warehouse", str(building)]
        )
        if lake:
            building.mkdir(parents=True)
            shutil.rmtree(warehouse / "lake", ignore_errors=True)
        # The lake a year at a time: ten years in one transaction of 3,650 day partitions
        # outgrow the 400MB DuckDB limit on DuckLake (docs/performance.md).
        spans = (
            [(f"{y}-01-01", f"{y}-12-31") for y in range(2013, last.year + 1)]
            if lake
            else [("2013-01-01", last.isoformat())]
        )
        for first, end in spans:
            subprocess.run(
                [
                    str(BIN / "python"),
                    "-m",
                    "benchmarks.duckdb_script",
                    "--landing",
                    str(landing),
                    *target,
                    "--start",
                    first,
                    "--end",
                    end,
                ],
                check=True,
                cwd=PROJECT,
            )
        if lake:  # the data went straight to its place; the catalog comes with it
            shutil.move(str(building / "catalog.ducklake"), str(warehouse / "catalog.ducklake"))
            building.rmdir()
        else:
            building.rename(warehouse)
    return landing, warehouse


def compare(results: list[Result]) -> list[str]:
    """What differs between the warehouses the cases built (empty when all agree): row counts
    and mart checksums across cases, every table bit for bit across the loads of one case."""
    built = [(r.case.key, s.outputs) for r in results for s in r.samples if s.outputs]
    if not built:
        return []
    reference_key, reference = built[0]
    problems = []
    for result in results:
        first, *others = [s.outputs["exact"] for s in result.samples if s.outputs] or [{}]
        problems += [
            f"{table} differs bit for bit between two loads of ({result.case.key})"
            for table, digest in first.items()
            if any(o[table] != digest for o in others)
        ]
    for key, found in built[1:]:
        for what in ("rows", "checksums"):
            for table, value in reference[what].items():
                if found[what].get(table) != value:
                    problems.append(
                        f"{what} of {table}: ({reference_key}) {value} vs ({key}) "
                        f"{found[what].get(table)}"
                    )
    return sorted(set(problems))


def render(results: list[Result], problems: list[str], meta: dict) -> str:
    by_key = {r.case.key: r for r in results if r.samples}
    baselines = {k: by_key[k].seconds for k in ("c", "d") if k in by_key}
    lines = [
        f"Benchmark of {meta['date']} on {meta['machine']}; medians of {meta['repeats']} "
        f"whole-process runs.",
        "",
        "| case | what | median s | range s | × pandas (c) | × DuckDB (d) | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if not r.samples:
            lines.append(f"| {r.case.key} | {r.case.title} | {r.error or 'not run'} | | | | |")
            continue
        values = [s.metric_seconds if r.case.metric else s.wall_seconds for s in r.samples]
        ratios = [
            f"{r.seconds / baselines[k]:.2f}" if k in baselines and r.case.builds_warehouse else ""
            for k in ("c", "d")
        ]
        rss = max(s.peak_rss_mb for s in r.samples)
        lines.append(
            f"| {r.case.key} | {r.case.title} | {r.seconds:.2f} | "
            f"{min(values):.2f}–{max(values):.2f} | {ratios[0]} | {ratios[1]} | "
            f"{rss:.0f} |"
        )
    lines.append("")
    if "e1" in by_key and "e10" in by_key:
        lines += [
            f"One partition at {HISTORY_YEARS} years of history takes "
            f"{by_key['e10'].seconds / by_key['e1'].seconds:.2f}× the same partition at "
            f"one year.",
            "",
        ]
    ratios = [
        ("The year on DuckLake in one process (k) takes", "k", "a", "the embedded default (a)"),
        ("on 1 Celery worker (l1)", "l1", "a", "the embedded default (a)"),
        ("on 2 Celery workers (l2)", "l2", "l1", "1 worker (l1)"),
        (
            f"One partition at {HISTORY_YEARS} years on DuckLake (m10)",
            "m10",
            "e10",
            "the embedded warehouse (e10)",
        ),
    ]
    found = [
        f"{what} {by_key[k].seconds / by_key[base].seconds:.2f}× {of}"
        for what, k, base, of in ratios
        if k in by_key and base in by_key
    ]
    for key in ("n10", "n365"):
        if key in by_key:
            runs = statistics.median(s.figures["runs"] for s in by_key[key].samples)
            versus = (
                f", {by_key[key].seconds / by_key['o10'].seconds:.2f}× `etl-assets run` (o10)"
                if key == "n10" and "o10" in by_key
                else ""
            )
            found.append(f"The live path ({key}) took {runs:g} runs (median){versus}")
    if found:
        lines += ["; ".join(found) + ".", ""]
    if problems:
        lines += ["**Outputs differ:**", *[f"- {p}" for p in problems]]
    elif compared := sorted({r.case.key for r in results if r.case.builds_warehouse and r.samples}):
        lines.append(
            f"Outputs agree across ({', '.join(compared)}): row counts of all "
            f"{TABLES} tables and checksums of the {CHECKSUMMED} marts; the loads of "
            f"each case are bit-identical in every table."
        )
    return "\n".join(lines)


def duckdb_version() -> str:
    from importlib.metadata import version

    return version("duckdb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=int(os.environ.get("BENCH_REPEATS", 3)))
    parser.add_argument("--only", nargs="*", help="case letters to run (default: all)")
    parser.add_argument("--root", type=Path, default=PROJECT / "data" / "bench")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    landing = root / "landing"
    print(f"landing the bundled year into {landing} (kept between benchmark runs)", flush=True)
    subprocess.run(
        [str(BIN / "etl-assets"), "land"],
        check=True,
        cwd=PROJECT,
        env={**os.environ, "ETL_LANDING_DIR": str(landing)},
        stdout=subprocess.DEVNULL,
    )

    chosen = [
        c for c in cases(landing, root) if (c.key in args.only if args.only else not c.on_request)
    ]
    results = [Result(c) for c in chosen]
    for repeat in range(1, args.repeats + 1):
        for result in results:
            if result.error or repeat > (result.case.repeats or args.repeats):
                continue
            work = root / "runs" / f"{result.case.key}-{repeat}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            print(
                f"[{repeat}/{args.repeats}] ({result.case.key}) {result.case.title} …", flush=True
            )
            try:
                with contextlib.ExitStack() as servers:
                    server_env = {}
                    if result.case.needs_postgres:
                        pg = servers.enter_context(postgres_server())
                        server_env = {**pg.env}
                        if result.case.workers:  # the lake's catalog beside the instance
                            server_env["ETL_DUCKLAKE_CATALOG"] = pg.create_database(
                                "lake"
                            ).ducklake_catalog
                    if result.case.needs_redis:
                        server_env["ETL_CELERY_BROKER"] = servers.enter_context(redis_server())
                    argv, env = result.case.command(work, server_env)
                    for n in range(1, result.case.workers + 1):
                        servers.enter_context(
                            celery_worker(
                                f"bench{n}", {**os.environ, **env}, work / f"worker{n}.log"
                            )
                        )
                    sample, _ = measure(argv, env, work / "output.log")
                    if result.case.builds_warehouse:  # while its servers still run
                        sample.outputs = outputs(work, env)
            except (RuntimeError, FileNotFoundError, subprocess.CalledProcessError) as error:
                result.error = "failed"
                print(f"  FAILED: {error}", flush=True)
                continue
            for built in work.glob("*.duckdb"):
                built.unlink()  # a year's warehouse is ~100 MB
            shutil.rmtree(work / "lake", ignore_errors=True)
            result.samples.append(sample)
            shown = sample.metric_seconds if result.case.metric else sample.wall_seconds
            print(f"  {shown:.2f} s, peak RSS {sample.peak_rss_mb:.0f} MB", flush=True)

    problems = compare(results)
    meta = {
        "date": dt.date.today().isoformat(),
        "repeats": args.repeats,
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, DuckDB {duckdb_version()}",
    }
    table = render(results, problems, meta)
    (root / "results.md").write_text(table + "\n")
    (root / "results.json").write_text(
        json.dumps(
            {
                **meta,
                "problems": problems,
                "cases": [
                    {
                        "case": r.case.key,
                        "title": r.case.title,
                        "error": r.error,
                        "median_seconds": r.seconds if r.samples else None,
                        "samples": [dict(vars(s).items()) for s in r.samples],
                    }
                    for r in results
                ],
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    print("\n" + table)
    print(f"\nwritten: {root / 'results.md'}, {root / 'results.json'}")
    return 1 if problems or any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
