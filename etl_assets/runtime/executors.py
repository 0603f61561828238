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
import functools
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import dagster as dg
import yaml

from etl_assets.pipeline import backends
from etl_assets.runtime import dagster_adapter
from etl_assets.runtime.settings import Settings


def build_executor(settings: Settings) -> dg.ExecutorDefinition:
    """The executor of every job and asset run: Celery's with ETL_CELERY_BROKER, else one process.

    In one process, DuckDB's single writer and Dagster's start-up cost per step process make
    extra processes a loss; on Celery the steps of different days (and of independent assets)
    run on several workers at once.
    """
    scope = functools.partial(run_scope, settings)
    if not settings.on_celery:
        return dagster_adapter.executor_within(dg.in_process_executor, scope)
    from dagster_celery import celery_executor

    # dagster-celery registers its step task again for every step it submits; Celery warns of
    # the second registration each time (the first one stands, and is the same code).
    warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")

    return dagster_adapter.executor_within(celery_executor, scope).configured(
        celery_settings(settings), name="celery"
    )


def celery_settings(settings: Settings) -> dict:
    """The executor's config block of the settings file, the file the workers start with."""
    return yaml.safe_load(settings.celery_settings.read_text())["execution"]["config"]


def days_held(settings: Settings, first: dt.date, last: dt.date, say: Callable[[str], None]):
    """Hold the days first..last of the settings' warehouse for one run."""
    return backends.hold_days(settings.warehouse, first, last, on_wait=say)


def run_days(tags: Mapping[str, str]) -> tuple[dt.date, dt.date] | None:
    """The first and last day a run loads, from its partition tags; None for a run of no day."""
    if dagster_adapter.PARTITION_TAG in tags:
        day = dt.date.fromisoformat(tags[dagster_adapter.PARTITION_TAG])
        return day, day
    if dagster_adapter.RANGE_START_TAG in tags:
        return (
            dt.date.fromisoformat(tags[dagster_adapter.RANGE_START_TAG]),
            dt.date.fromisoformat(tags[dagster_adapter.RANGE_END_TAG]),
        )
    return None


@contextmanager
def run_scope(settings: Settings, run: dg.DagsterRun, say: Callable[[str], None]) -> Iterator[None]:
    """What a run executes inside: its days held (nothing for a run of no day), and its events
    stored in batches, as `etl-assets run` stores them, when the daemon launched it."""
    days = run_days(run.tags)
    with (
        dagster_adapter.batched_event_writes(),
        days_held(settings, *days, say) if days is not None else contextlib.nullcontext(),
    ):
        yield
