"""Where a run's steps execute: in the run's own process (the default), or on Celery workers.

With ETL_CELERY_BROKER set (a Redis URL), every step of a run is a task that any worker on that
broker takes (`dagster-celery`, settings in `celery.yaml`). Runs, workers and the webserver must
then share a Dagster instance on PostgreSQL (deploy/scale-out) and a warehouse every worker can
reach: DuckLake with its catalog on PostgreSQL (a DuckDB file has one writer process).

Either way a run holds its days for as long as it executes (`days_held`): a second run of any
of them waits for it to end, so two runs of one day never interleave their steps. And its events
of many partitions are stored in batches, whoever launched it (`run_scope`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import yaml

from etl_assets.runtime import dagster_adapter
from etl_assets.pipeline import backends
from etl_assets.runtime.resources import warehouse_location

BROKER_SETTING = "ETL_CELERY_BROKER"
SETTINGS_FILE_SETTING = "ETL_CELERY_SETTINGS"  # another settings file, e.g. a shorter timeout
DEFAULT_SETTINGS_FILE = Path(__file__).with_name("celery.yaml")


def settings_file(environ: Mapping[str, str] | None = None) -> Path:
    """The Celery settings the runs and the workers read: ETL_CELERY_SETTINGS in the environment
    (this process's, or the one a worker is started with), else celery.yaml."""
    named = (os.environ if environ is None else environ).get(SETTINGS_FILE_SETTING)
    return Path(named) if named else DEFAULT_SETTINGS_FILE


def on_celery() -> bool:
    """Whether runs send their steps to Celery workers (ETL_CELERY_BROKER is set)."""
    return bool(os.environ.get(BROKER_SETTING))


def celery_settings() -> dict:
    """The executor's config block of the settings file, the file the workers start with."""
    return yaml.safe_load(settings_file().read_text())["execution"]["config"]


def build_executor() -> dg.ExecutorDefinition:
    """The executor of every job and asset run: Celery's with ETL_CELERY_BROKER, else one process.

    In one process, DuckDB's single writer and Dagster's start-up cost per step process make
    extra processes a loss; on Celery the steps of different days (and of independent assets)
    run on several workers at once.
    """
    if not on_celery():
        return dagster_adapter.executor_within(dg.in_process_executor, run_scope)
    from dagster_celery import celery_executor

    # dagster-celery registers its step task again for every step it submits; Celery warns of
    # the second registration each time (the first one stands, and is the same code).
    warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")

    return dagster_adapter.executor_within(celery_executor, run_scope).configured(
        celery_settings(), name="celery")


def days_held(first: dt.date, last: dt.date, say: Callable[[str], None]):
    """Hold the days first..last of the warehouse (as the resources find it) for one run."""
    return backends.hold_days(warehouse_location(), first, last, on_wait=say)


def run_days(tags: Mapping[str, str]) -> tuple[dt.date, dt.date] | None:
    """The first and last day a run loads, from its partition tags; None for a run of no day."""
    if dagster_adapter.PARTITION_TAG in tags:
        day = dt.date.fromisoformat(tags[dagster_adapter.PARTITION_TAG])
        return day, day
    if dagster_adapter.RANGE_START_TAG in tags:
        return (dt.date.fromisoformat(tags[dagster_adapter.RANGE_START_TAG]),
                dt.date.fromisoformat(tags[dagster_adapter.RANGE_END_TAG]))
    return None


@contextmanager
def run_scope(run: dg.DagsterRun, say: Callable[[str], None]) -> Iterator[None]:
    """What a run executes inside: its days held (nothing for a run of no day), and its events
    stored in batches, as `etl-assets run` stores them, when the daemon launched it."""
    days = run_days(run.tags)
    with dagster_adapter.batched_event_writes(), (
            days_held(*days, say) if days is not None else contextlib.nullcontext()):
        yield

