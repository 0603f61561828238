"""The project's Dagster instance, and the runs `etl-assets run` started whose process is gone.

The instance is DAGSTER_HOME, or the project's .dagster_home when it is not set, so a run from
the CLI shows in `make dev` afterwards. A CLI run carries who started it (host and process), so
a later run can tell one whose process died and release what it held.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from etl_assets.runtime import dagster_adapter
from etl_assets.runtime.settings import Settings

# Who runs a CLI run, so that a later run can tell one whose process died.
LAUNCHER_TAG, HOST_TAG, PID_TAG = "etl/launched_by", "etl/host", "etl/pid"


def project_instance(settings: Settings) -> dg.DagsterInstance:
    """The instance in the settings' DAGSTER_HOME (the project's .dagster_home unless set)."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    # Dagster, and the project's event log in dagster.yaml, find the instance by this variable.
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    return dg.DagsterInstance.get()


@contextmanager
def instance_at(home: Path | str) -> Iterator[dg.DagsterInstance]:
    """The instance whose dagster.yaml is in `home`, closed after use.

    Opened with DAGSTER_HOME pointing at `home`, since the project's event log finds its folder
    there (etl_assets/runtime/sqlite_event_log.py); the variable is as before once it is open.
    """
    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = dg.DagsterInstance.from_config(str(home))
    finally:
        if before is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = before
    with instance:
        yield instance


def release_abandoned_runs(instance: dg.DagsterInstance, echo: Callable[[str], None]) -> int:
    """Fail the CLI runs on this host whose process is gone, and free their pool slots.

    A run killed mid-step (kill -9, a closed laptop) keeps its slot in the `warehouse` pool, limit
    1, and every later run would wait for it for ever. The daemon frees slots only of runs that
    have finished, and nothing else would ever finish this one.
    """
    released = 0
    records = instance.get_run_records(
        dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
            tags={LAUNCHER_TAG: "etl-assets", HOST_TAG: socket.gethostname()},
        )
    )
    for record in records:
        run = record.dagster_run
        if _process_alive(int(run.tags.get(PID_TAG, "0"))):
            continue
        dagster_adapter.fail_run(instance, run, "its etl-assets process ended without finishing")
        slots = dagster_adapter.free_pool_slots(instance, run.run_id)
        echo(
            f"released run {run.run_id[:8]}, abandoned by process {run.tags.get(PID_TAG)}: "
            f"marked failed, {slots} pool slot(s) freed"
        )
        released += 1
    return released


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
