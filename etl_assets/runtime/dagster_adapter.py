"""Everything the project needs of Dagster 1.13 that has no public name, in one place.

Environment flags, run tags, reading a run's events, a check's latest outcome, the checks of a job,
failing an abandoned run and freeing its pool slots, one fix to how a range run plans its checks,
what a run executes inside (its executor's scope), and dagster-duckdb's IO manager with another
client. Each is pinned by etl_assets_tests/runtime_tests/test_dagster_adapter.py (the IO
manager by the load_asset_value tests), so an upgrade that changes one fails there first; the
rest of the package uses only `import dagster as dg`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

import dagster as dg

# One "planned" event per asset and run instead of one per asset and day (read by the event log).
PLANNED_EVENTS_FLAG = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
# Events of a step written in batches of this many; only PostgreSQL storage writes a batch as one
# multi-row insert, other storages write them one by one as before.
EVENT_BATCH_FLAG = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 1000


def use_fast_event_writes() -> None:
    """Both flags on for this process and the runs it executes (unless the environment says),
    and each unpartitioned check planned once per run (plan_checks_once)."""
    os.environ.setdefault(PLANNED_EVENTS_FLAG, "1")
    os.environ.setdefault(EVENT_BATCH_FLAG, str(EVENT_BATCH_SIZE))
    plan_checks_once()


@contextmanager
def batched_event_writes() -> Iterator[None]:
    """Within: a step's events of many partitions are stored in batches, unless the environment
    sets the batch size itself. For the runs the daemon launches (a sensor's, the automation's),
    whose process is Dagster's and was never told to; the flag is read at each event."""
    if os.environ.get(EVENT_BATCH_FLAG) is not None:
        yield
        return
    os.environ[EVENT_BATCH_FLAG] = str(EVENT_BATCH_SIZE)
    try:
        yield
    finally:
        os.environ.pop(EVENT_BATCH_FLAG, None)


@contextmanager
def planned_per_partition() -> Iterator[None]:
    """Within: one planned event per asset and day, so a run that fails marks its days failed.

    For the short runs that are expected to fail (a held-back day): with the flag above on, the
    days of a failed run show as missing, not failed.
    """
    before = os.environ.get(PLANNED_EVENTS_FLAG)
    os.environ[PLANNED_EVENTS_FLAG] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PLANNED_EVENTS_FLAG, None)
        else:
            os.environ[PLANNED_EVENTS_FLAG] = before


# Run tags Dagster sets (dagster/_core/storage/tags.py) and the error class of a step stopped by a
# failed blocking check (dagster/_core/execution/plan/execute_step.py).
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
WILL_RETRY_TAG = "dagster/will_retry"
BLOCKING_CHECK_ERROR = "DagsterAssetCheckFailedError"


# --- planning ------------------------------------------------------------------------------

_planned_subset = dg.DagsterRun.get_resolved_partitions_subset_for_events


def _planned_subset_of_own_partitions(run: dg.DagsterRun, partitions_def):
    # Dagster 1.13 gives a range run's partitions to whatever it plans, partitioned or not
    # (DagsterRun.get_resolved_partitions_subset_for_events). An unpartitioned check then gets one
    # PLANNED row per day of the run, which its single result never resolves: 85 checks over a
    # year are 31,025 rows that stay "planned" for ever. An unpartitioned node has no partitions.
    return None if partitions_def is None else _planned_subset(run, partitions_def)


def plan_checks_once() -> None:
    """Plan each unpartitioned check (and unpartitioned asset) of a range run once, not per day.

    Applies to runs created in this process (`etl-assets run`); runs the daemon creates are
    planned by Dagster as it is.
    """
    # Replacing a method of Dagster's own class, on purpose: the one such patch, pinned by a test.
    dg.DagsterRun.get_resolved_partitions_subset_for_events = (  # type: ignore[method-assign]
        _planned_subset_of_own_partitions  # type: ignore[assignment]
    )


def reuse_connections(instance: dg.DagsterInstance) -> None:
    """Keep the instance's database connections open between event writes.

    dagster-postgres opens a new connection for every write unless told it serves a long-lived
    process, as the webserver does; a run of the year writes thousands of events. No statement
    timeout (0): a run's writes are not a webserver's reads. SQLite storage ignores it.
    """
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)


# --- executing ----------------------------------------------------------------------------

# What a run's execution happens inside: given the run and a function that logs to it.
RunScope = Callable[[dg.DagsterRun, Callable[[str], None]], AbstractContextManager]


class _ScopedExecutor(dg.Executor):
    def __init__(self, inner: dg.Executor, scope: RunScope):
        self._inner, self._scope = inner, scope

    @property
    def retries(self):
        return self._inner.retries

    def __getattr__(self, name):  # what an executor's own loop reads of it (Celery: app_args)
        return getattr(self._inner, name)

    def execute(self, plan_context, execution_plan):
        # The orchestration context (run and log) has no public name in 1.13.
        with self._scope(plan_context.dagster_run, plan_context.log.info):
            yield from self._inner.execute(plan_context, execution_plan)


def executor_within(executor_def: dg.ExecutorDefinition, scope: RunScope) -> dg.ExecutorDefinition:
    """The executor, each of whose runs executes its steps inside scope(run, log): in the run's
    own process, whether the daemon launched it or `execute_job` (not `execute_in_process`,
    which brings its own executor). Configure it after (`.configured`), as the executor itself."""

    creation_fn = executor_def.executor_creation_fn
    assert creation_fn is not None, f"executor {executor_def.name} has no creation function"

    def create(init_context: dg.InitExecutorContext) -> dg.Executor:
        return _ScopedExecutor(creation_fn(init_context), scope)

    return dg.ExecutorDefinition(
        name=executor_def.name,
        # the executor's own schema object, handed back as it is (typed as the raw forms only)
        config_schema=executor_def.config_schema,  # type: ignore[arg-type]
        requirements=executor_def.get_requirements,
        executor_creation_fn=create,
        description=executor_def.description,
    )


def duckdb_client(
    connect: Callable[[Mapping[str, Any]], AbstractContextManager[Any] | None],
) -> Any:
    """dagster-duckdb's client (DuckDbClient has no public name in 0.29), connecting through
    connect(the IO manager's config) when that gives a connection, else as its own does."""
    from dagster_duckdb.io_manager import DuckDbClient

    class _Client(DuckDbClient):
        @staticmethod
        @contextmanager
        def connect(context, table_slice):
            chosen = connect(context.resource_config)
            if chosen is None:
                with DuckDbClient.connect(context, table_slice) as conn:
                    yield conn
                return
            with chosen as conn:
                yield conn

    return _Client()


def duckdb_io_manager(factory, db_client):
    """What DuckDBIOManager.create_io_manager builds (dagster-duckdb 0.29), with another client,
    i.e. another way to connect: DbIOManager has no public name in 1.13."""
    from dagster._core.storage.db_io_manager import DbIOManager

    return DbIOManager(
        db_client=db_client,
        database=factory.database,
        schema=factory.schema_,
        type_handlers=factory.type_handlers(),
        default_load_type=factory.default_load_type(),
        io_manager_name="DuckDBIOManager",
    )


# --- reading what a run did ----------------------------------------------------------------


def run_events(
    instance: dg.DagsterInstance,
    run_id: str,
    of_type: dg.DagsterEventType | set[dg.DagsterEventType],
    cursor: str | None = None,
) -> tuple[list[dg.EventLogEntry], str | None]:
    """The run's events of these types after the cursor, oldest first, and the next cursor."""
    connection = instance.get_records_for_run(run_id, cursor=cursor, of_type=of_type)
    return [r.event_log_entry for r in connection.records], connection.cursor


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process that executes the run's steps, from the engine event that names its pid."""
    entries, _ = run_events(instance, run_id, dg.DagsterEventType.ENGINE_EVENT)
    for entry in entries:
        if entry.dagster_event is None:
            continue
        pid = getattr(entry.dagster_event.event_specific_data, "metadata", {}).get("pid")
        if pid is not None:
            return int(pid.value)
    return None


def celery_step_workers(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(step, worker) each time a Celery worker began one of the run's steps, oldest first: the
    engine event dagster-celery reports as a task starts."""
    entries, _ = run_events(instance, run_id, dg.DagsterEventType.ENGINE_EVENT)
    began: list[tuple[str, str]] = []
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        worker = getattr(event.event_specific_data, "metadata", {}).get("Celery worker")
        if worker is not None and event.step_key:
            began.append((event.step_key, str(worker.value)))
    return began


Evaluation = tuple[dg.AssetCheckEvaluation | None, dg.EventLogEntry | None, str]


def latest_check_evaluation(instance: dg.DagsterInstance, key: dg.AssetCheckKey) -> Evaluation:
    """A check's latest evaluation, the event that carried it, and its record's status."""
    record = instance.get_latest_asset_check_evaluation_record(key)
    if record is None:
        return None, None, "never"
    event = record.event and record.event.dagster_event
    if event is not None and event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        evaluation = cast(dg.AssetCheckEvaluation, event.event_specific_data)
        return evaluation, record.event, record.status.value.lower()
    return None, None, record.status.value.lower()


def check_evaluations(events: Iterable[dg.DagsterEvent]) -> list[dg.AssetCheckEvaluation]:
    """The check evaluations among a run's events (an in-process result's `all_events`)."""
    return [
        cast(dg.AssetCheckEvaluation, e.event_specific_data)
        for e in events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]


def check_keys(definitions: dg.Definitions, job_name: str | None = None) -> list[dg.AssetCheckKey]:
    """Every check of the definitions, or of one of their jobs, in a stable order."""
    graph = (
        definitions.resolve_job_def(job_name).asset_layer.asset_graph
        if job_name
        else definitions.resolve_asset_graph()
    )
    return sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name))


# --- abandoned runs ------------------------------------------------------------------------


def fail_run(instance: dg.DagsterInstance, run: dg.DagsterRun, message: str) -> None:
    """Record a run whose process is gone as failed, so nothing waits on it."""
    instance.report_run_failed(run, message)


def free_pool_slots(instance: dg.DagsterInstance, run_id: str) -> int:
    """Free every pool slot the run holds; how many it held."""
    storage = instance.event_log_storage
    held = sum(
        slot.run_id == run_id
        for key in storage.get_concurrency_keys()
        for slot in storage.get_concurrency_info(key).claimed_slots
    )
    storage.free_concurrency_slots_for_run(run_id)
    return held
