"""`etl-assets demo`: the bundled year delivered as a live feed into an empty warehouse, under the
real `dagster dev`, so a person can watch the sensor, the automation and the checks at work.

It starts `dagster dev` in a process group of its own, replays one day every few seconds, waits
until every delivered file is in the warehouse with its day's marts and no run is left, then
ends the whole group.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import duckdb

from etl_assets.operations.instance import instance_at
from etl_assets.pipeline import extract, readers
from etl_assets.pipeline.landing import replay

ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@contextlib.contextmanager
def dagster_dev(
    workspace_dir: Path,
    port: int,
    log: Path,
    env: dict[str, str] | None = None,
    timeout: float = 180.0,
) -> Iterator[subprocess.Popen]:
    """`dagster dev` on 127.0.0.1:port, answering, then ended with its whole process group.

    Its own process group: the webserver, the daemon and the code servers it starts would
    outlive a kill of the parent alone.
    """
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster"),
                "dev",
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            env=env,
            cwd=workspace_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text()[-3000:] if log.exists() else ""
                    raise RuntimeError(f"dagster dev did not start; see {log}:\n{tail}") from None
                time.sleep(1)
        yield process
    finally:
        end_group(process)


def end_group(process: subprocess.Popen) -> None:
    """End a process started with start_new_session=True and everything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):  # nothing of the group may outlive it
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)


def caught_up(warehouse: Path, published: Path, landing: Path, last: dt.date) -> bool:
    """Every delivered file is in the warehouse, and the last day's marts are published (the
    step after the marts, in the copy readers open)."""
    files = [p for p in landing.rglob("*.csv") if not p.name.startswith(".")]
    identities = [extract.delivered(landing, p, None).identity for p in files]
    try:
        if len(extract.loaded_identities(warehouse, identities)) < len(identities):
            return False
        return readers.covers(published, last)
    except (extract.WarehouseBusy, duckdb.Error):
        return False  # being written, or the marts are not there yet


def run_demo(
    start: dt.date,
    end: dt.date,
    *,
    every: float,
    port: int,
    home: Path,
    warehouse: Path,
    published: Path,
    landing: Path,
    project: Path,
    timeout: float,
    echo: Callable[[str], None] = print,
) -> int:
    with dagster_dev(project, port, home / "dagster_dev.log"):
        echo(f"dagster dev is up: open http://127.0.0.1:{port} (Runs, Automation, Lineage)")
        days = replay(landing, start, end, every=every, progress=echo)
        echo(f"all {days} day(s) delivered; waiting for the pipeline to catch up")
        deadline = time.monotonic() + timeout
        with instance_at(home) as instance:
            while not (
                caught_up(warehouse, published, landing, end)
                and not instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE))
            ):
                if time.monotonic() > deadline:
                    echo(f"error: not caught up after {timeout:.0f}s; see {home}")
                    return 1
                time.sleep(5)
            failed = instance.get_runs(
                filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])
            )
            runs = len(instance.get_runs())
        echo(f"caught up: {runs} run(s), {len(failed)} failed; stopping dagster dev")
    return 1 if failed else 0
