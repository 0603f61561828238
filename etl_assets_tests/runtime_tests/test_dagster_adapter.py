"""Pins what the adapter takes from Dagster beyond its public API, so an upgrade shows it."""

import ast
import datetime as dt
import importlib
import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

import etl_assets
from etl_assets.assets.keys import key_table
from etl_assets.runtime import dagster_adapter
from etl_assets_tests.support.deployment import Deployment
from etl_assets_tests.support.warehouse import FIRST_DAYS


@pytest.fixture(scope="module")
def range_run(tmp_path_factory, landed_days):
    """One run of three days by run_job, on an instance of its own, with the adapter's flags
    unset before it; the tests below read what it left in the instance."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv(dagster_adapter.PLANNED_EVENTS_FLAG, raising=False)
        monkeypatch.delenv(dagster_adapter.EVENT_BATCH_FLAG, raising=False)
        deployment = Deployment(tmp_path_factory.mktemp("range_run"), landed_days, monkeypatch)
        summary = deployment.run(*FIRST_DAYS)  # sets both flags
        batch_size = os.environ.get(dagster_adapter.EVENT_BATCH_FLAG)
    assert summary.success, summary.render()
    return deployment, summary, batch_size


def planned_partitions(instance, run_id, key):
    entries, _ = dagster_adapter.run_events(
        instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    )
    events = [e.dagster_event for e in entries if e.dagster_event.asset_key == key]
    return [
        (e.event_specific_data.partition, e.event_specific_data.partitions_subset) for e in events
    ]


def test_one_planned_event_per_asset_and_run_covers_every_day(range_run):
    deployment, summary, batch_size = range_run
    assert batch_size == str(dagster_adapter.EVENT_BATCH_SIZE)

    planned = planned_partitions(
        deployment.instance, summary.run_id, dg.AssetKey(["raw", "flights"])
    )
    assert len(planned) == 1
    partition, subset = planned[0]
    assert partition is None
    assert sorted(subset.get_partition_keys()) == ["2013-01-01", "2013-01-02", "2013-01-03"]
    # ...while every day still gets its own materialization.
    records = deployment.instance.fetch_materializations(
        dg.AssetKey(["raw", "flights"]), limit=10
    ).records
    assert sorted(r.partition_key for r in records if r.run_id == summary.run_id) == [
        "2013-01-01",
        "2013-01-02",
        "2013-01-03",
    ]


def test_without_the_flag_dagster_plans_each_day_on_its_own(deployment, monkeypatch):
    monkeypatch.setenv(dagster_adapter.PLANNED_EVENTS_FLAG, "false")  # kept: set, so not defaulted
    summary = deployment.run(dt.date(2013, 1, 1), dt.date(2013, 1, 3))
    assert summary.success, summary.render()
    planned = planned_partitions(
        deployment.instance, summary.run_id, dg.AssetKey(["raw", "flights"])
    )
    assert sorted(p for p, _subset in planned) == ["2013-01-01", "2013-01-02", "2013-01-03"]


def check_rows(instance, key, run_id=None):
    """The asset_check_executions rows of one check (of one run): (partition, status), by day."""
    records = instance.event_log_storage.get_asset_check_execution_history(key, limit=1000)
    return sorted(
        ((r.partition, r.status.value) for r in records if run_id in (None, r.run_id)),
        key=lambda row: (row[0] or "", row[1]),
    )


VALUES_CHECK = dg.AssetCheckKey(dg.AssetKey(["clean", "flights"]), "values_within_contract")


def test_a_range_run_plans_each_check_once_and_resolves_it(range_run):
    deployment, summary, _ = range_run
    for key in dagster_adapter.check_keys(deployment.definitions, "etl_job"):
        rows = check_rows(deployment.instance, key, summary.run_id)
        assert rows in ([(None, "SUCCEEDED")], [(None, "FAILED")]), (key, rows)


def test_without_the_fix_dagster_leaves_a_planned_row_per_day_of_each_check(
    deployment, monkeypatch
):
    monkeypatch.setattr(dagster_adapter, "plan_checks_once", lambda: None)
    monkeypatch.setattr(
        dg.DagsterRun, "get_resolved_partitions_subset_for_events", dagster_adapter._planned_subset
    )
    summary = deployment.run(dt.date(2013, 1, 1), dt.date(2013, 1, 3))
    assert summary.success, summary.render()
    # One never-resolved PLANNED row per day, beside the one evaluated row. When an upgrade
    # makes this fail, Dagster plans unpartitioned checks by itself and the fix can go.
    assert check_rows(deployment.instance, VALUES_CHECK, summary.run_id) == [
        (None, "SUCCEEDED"),
        ("2013-01-01", "PLANNED"),
        ("2013-01-02", "PLANNED"),
        ("2013-01-03", "PLANNED"),
    ]


def test_run_events_reads_on_from_its_cursor(range_run):
    deployment, summary, _ = range_run
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
    first, cursor = dagster_adapter.run_events(deployment.instance, summary.run_id, kinds)
    assert first and {e.dagster_event.event_type for e in first} == kinds
    assert len(first) == 2 * len({e.dagster_event.step_key for e in first})
    rest, _ = dagster_adapter.run_events(deployment.instance, summary.run_id, kinds, cursor)
    assert rest == []


def test_latest_check_evaluation_is_the_newest_runs(range_run):
    never, _event, status = dagster_adapter.latest_check_evaluation(
        dg.DagsterInstance.ephemeral(), VALUES_CHECK
    )
    assert (never, status) == (None, "never")
    deployment, first, _ = range_run
    summary = deployment.run(FIRST_DAYS[1], FIRST_DAYS[1])  # after the range run
    assert summary.run_id != first.run_id
    evaluation, event, status = dagster_adapter.latest_check_evaluation(
        deployment.instance, VALUES_CHECK
    )
    assert evaluation.passed and event.run_id == summary.run_id and status == "succeeded"


def test_check_keys_of_a_job_are_those_its_runs_evaluate(deployment):
    all_keys = dagster_adapter.check_keys(deployment.definitions)
    reference = dagster_adapter.check_keys(deployment.definitions, "reference_job")
    assert VALUES_CHECK in all_keys and VALUES_CHECK not in reference
    assert set(reference) < set(all_keys)
    assert {key_table(k.asset_key).split(".")[1] for k in reference} == {
        "airlines",
        "airports",
        "planes",
    }


def test_free_pool_slots_frees_the_runs_slots_and_counts_them(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("warehouse", 3)
        for run_id, step in (("dead", "a"), ("dead", "b"), ("alive", "c")):
            assert storage.claim_concurrency_slot("warehouse", run_id, step).is_claimed
        assert dagster_adapter.free_pool_slots(instance, "dead") == 2
        claimed = storage.get_concurrency_info("warehouse").claimed_slots
        assert [(s.run_id, s.step_key) for s in claimed] == [("alive", "c")]
        assert dagster_adapter.free_pool_slots(instance, "dead") == 0


SCOPED = []  # what the scoped job below did, in order (it runs in this process)


@contextmanager
def recording_scope(run, say):
    SCOPED.append(("enter", run.tags.get("day")))
    say("scope entered")
    try:
        yield
    finally:
        SCOPED.append(("exit", run.tags.get("day")))


@dg.op
def scoped_step():
    SCOPED.append(("step", None))


@dg.job(executor_def=dagster_adapter.executor_within(dg.in_process_executor, recording_scope))
def scoped_job():
    scoped_step()


def test_a_run_launched_as_the_daemon_does_executes_its_steps_inside_the_scope(tmp_path):
    SCOPED.clear()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.execute_job(dg.reconstructable(scoped_job), instance, tags={"day": "d1"})
        assert result.success
        logged = [e.user_message for e in instance.all_logs(result.run_id)]
    assert SCOPED == [("enter", "d1"), ("step", None), ("exit", "d1")]
    assert "scope entered" in logged  # said in the run's own log
    assert scoped_job.executor_def.name == "in_process"  # what etl-assets run asks


# What the package needs of Dagster beyond its public API; only the adapter may touch these.
NON_PUBLIC = {
    "all_logs",
    "get_records_for_run",
    "get_latest_asset_check_evaluation_record",
    "report_run_failed",
    "event_log_storage",
    "free_concurrency_slots_for_run",
    "asset_layer",
    "resolve_asset_graph",
    "get_asset_check_evaluations",
    "get_resolved_partitions_subset_for_events",
    "optimize_for_webserver",
}


# ...and the private modules it imports: DbIOManager, to give dagster-duckdb's IO manager a
# client that attaches the lake.
PRIVATE_MODULES = {
    "dagster._core.storage.db_io_manager",
    "dagster_duckdb.io_manager.DuckDbClient",  # the IO manager's client, to connect to the lake
}
# The embedded instance's event log, the second and last home of non-public names, subclasses
# Dagster's SQLite storage (its tests pin the code it builds on).
STORAGE_MODULES = {
    "dagster._core.storage.event_log",
    "dagster._core.storage.event_log.schema",
    "dagster._core.storage.sqlite",
    "dagster._serdes",
}


def reaches(path: Path) -> set[str]:
    """Private Dagster modules imported, names a Dagster package does not export imported from its
    submodules (dagster_duckdb.io_manager.DuckDbClient), and non-public names used, in one file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in NON_PUBLIC:
            found.add(node.attr)
        modules = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        found |= {m for m in modules if m.startswith("dagster") and "._" in m}
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dagster"):
            package, _, submodule = (node.module or "").partition(".")
            if submodule and "._" not in node.module and not submodule.startswith("_"):
                exported = importlib.import_module(package)
                found |= {
                    f"{node.module}.{a.name}" for a in node.names if not hasattr(exported, a.name)
                }
    return found


def test_only_the_adapter_reaches_past_dagsters_public_api():
    package = Path(etl_assets.__file__).parent  # the whole package, every folder
    homes = {"runtime/dagster_adapter.py", "runtime/sqlite_event_log.py"}
    offenders = {
        str(p.relative_to(package)): reaches(p)
        for p in sorted(package.rglob("*.py"))
        if str(p.relative_to(package)) not in homes and reaches(p)
    }
    assert offenders == {}
    assert reaches(package / "runtime" / "sqlite_event_log.py") == STORAGE_MODULES
    # ...and the list above is what the adapter really uses, so it cannot go stale unnoticed.
    assert (
        reaches(Path(dagster_adapter.__file__))
        == NON_PUBLIC - {"all_logs", "get_asset_check_evaluations"} | PRIVATE_MODULES
    )


def test_the_run_worker_pid_is_read_from_the_runs_engine_events():
    @dg.asset
    def one() -> int:
        return 1

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([one], instance=instance)
        assert dagster_adapter.run_worker_pid(instance, result.run_id) == os.getpid()
        assert dagster_adapter.run_worker_pid(instance, "no-such-run") is None
