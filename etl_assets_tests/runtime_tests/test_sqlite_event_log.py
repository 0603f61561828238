"""The embedded instance's event log stores what Dagster's own SQLite storage stores, row for row,
and reads back the same, while it writes a batch of asset events in one transaction a shard."""

import datetime as dt
import hashlib
import inspect
import shutil
import sqlite3
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.base import EventLogStorage
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

from etl_assets.operations.instance import instance_at
from etl_assets.pipeline.landing import daily_file, land
from etl_assets.runtime import sqlite_event_log
from etl_assets.runtime.sqlite_event_log import BatchedSqliteEventLogStorage
from etl_assets_tests.support.deployment import Deployment
from etl_assets_tests.support.warehouse import FIRST_DAYS

REPO = Path(__file__).resolve().parents[2]
FAILED_DAY, MISSING_DAY = dt.date(2013, 1, 4), dt.date(2013, 1, 5)
DAYS = [(FIRST_DAYS[0] + dt.timedelta(days=n)).isoformat() for n in range(5)]
RAW_FLIGHTS = dg.AssetKey(["raw", "flights"])
# The index shard's tables an event writes, every column but two: asset_keys.cached_status_data,
# a cache that reads fill in, and asset_check_executions.create_timestamp, the database's clock
# at the insert (a replay is later).
INDEX_TABLES = {
    "event_logs": "*",
    "asset_event_tags": "*",
    "asset_check_executions": "id, asset_key, check_name, partition, run_id, "
    "execution_status, evaluation_event, "
    "evaluation_event_timestamp, evaluation_event_storage_id, "
    "materialization_event_storage_id",
    "asset_keys": "id, asset_key, last_materialization, last_run_id, asset_details, "
    "wipe_timestamp, last_materialization_timestamp, tags",
}

# What the subclass builds on, as the pinned Dagster has it. A change to any of these fails
# here: read the new code against etl_assets/runtime/sqlite_event_log.py, then record its digest.
PINNED = {
    (SqliteEventLogStorage, "__init__"): "264c15baa761a7bb",
    (SqliteEventLogStorage, "_connect"): "b8435f2665689760",
    (SqliteEventLogStorage, "_initdb"): "7a302d98eb61a34d",
    (SqliteEventLogStorage, "has_table"): "577d801c70b2a4a5",
    (SqliteEventLogStorage, "store_event"): "f89aed40602438b9",
    (SqliteEventLogStorage, "conn_string_for_shard"): "896bc510d776042e",
    (SqliteEventLogStorage, "dispose"): "df16dafbfa8427c1",
    (SqlEventLogStorage, "_event_to_row"): "93d47fbe7edc4f70",
    (SqlEventLogStorage, "_store_asset_event"): "fdb9340b9eef1c9b",
    (SqlEventLogStorage, "_store_asset_event_tags"): "85d6f17ef04b926f",
    (SqlEventLogStorage, "_get_asset_entry_values"): "bb3b9df2c6c371fe",
    (SqlEventLogStorage, "index_transaction"): "00b2488c8cdfd277",
    (EventLogStorage, "store_event_batch"): "d710189545dbace2",
}


def digest(owner, name: str) -> str:
    return hashlib.sha256(inspect.getsource(getattr(owner, name)).encode()).hexdigest()[:16]


def test_the_pinned_dagster_storage_is_the_one_the_subclass_was_written_against():
    changed = {
        f"{owner.__name__}.{name}": digest(owner, name)
        for (owner, name), known in PINNED.items()
        if digest(owner, name) != known
    }
    assert changed == {}


def test_the_project_instance_uses_it_and_says_so_when_opened_from_another_home(
    tmp_path, monkeypatch
):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    with instance_at(home) as instance:
        assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
        assert (home / "history" / "runs" / "index.db").exists()  # as Dagster's default
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    with pytest.raises(dg.DagsterInvariantViolationError, match="set DAGSTER_HOME"):
        dg.DagsterInstance.from_config(str(home))


def stock_home(root: Path) -> Path:
    """An instance folder whose dagster.yaml keeps Dagster's own event log."""
    home = root / "stock"
    home.mkdir()
    text = (REPO / ".dagster_home" / "dagster.yaml").read_text()
    begin = text.index("event_log_storage:")
    end = text.index("\n\n", begin)
    (home / "dagster.yaml").write_text(text[:begin] + text[end + 2 :])
    return home


@pytest.fixture(scope="module")
def stored(tmp_path_factory, landed_days):
    """Three good days and a day whose flights file is cut short (its run fails), loaded by
    etl-assets' runner on the project's instance; then every event of every run stored again,
    one at a time and in the same order, into Dagster's own storage (the stock instance)."""
    root = tmp_path_factory.mktemp("event_log")
    batches = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        deployment = Deployment(root, landed_days, monkeypatch)
        land(deployment.landing, FAILED_DAY, FAILED_DAY)
        path = daily_file(deployment.landing, "flights", FAILED_DAY)
        cut = pd.read_csv(path, dtype=str, keep_default_na=False).iloc[:100]
        path.write_text(cut.to_csv(index=False))  # its manifest still says the whole day
        home = root / "home"
        home.mkdir()
        shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
        own = BatchedSqliteEventLogStorage.store_event_batch

        def spy(storage, events):
            batches.append([e.dagster_event_type for e in events])
            return own(storage, events)

        monkeypatch.setattr(BatchedSqliteEventLogStorage, "store_event_batch", spy)
        with instance_at(home) as instance:
            deployment.instance = instance
            summary = deployment.run(FIRST_DAYS[0], FAILED_DAY)
            runs = [
                r.dagster_run
                for r in sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
            ]
            stock = stock_home(root)
            (stock / "history").mkdir()
            shutil.copy(home / "history" / "runs.db", stock / "history")  # the same runs
            with instance_at(stock) as replayed:
                assert type(replayed.event_log_storage) is SqliteEventLogStorage
                for run in runs:
                    for event in instance.all_logs(run.run_id):
                        replayed.event_log_storage.store_event(event)
                yield deployment, summary, runs, home, stock, batches, instance, replayed


def rows(database: Path, table: str, columns: str = "*") -> list[tuple]:
    with sqlite3.connect(database) as conn:
        return conn.execute(f"SELECT {columns} FROM {table} ORDER BY 1").fetchall()


def test_the_runs_went_as_planned_and_asset_events_were_stored_in_batches(stored):
    _, summary, runs, _, _, batches, _, _ = stored
    assert [p.success for p in summary.runs] == [True, False]  # the cut day failed alone
    assert len(runs) == 2
    materializations = [b for b in batches if set(b) == {dg.DagsterEventType.ASSET_MATERIALIZATION}]
    assert materializations and all(len(b) == 3 for b in materializations)  # a step's 3 days


def test_every_row_it_stored_is_the_row_dagsters_own_storage_stores(stored):
    _, _, runs, home, stock, _, _, _ = stored
    for table, columns in INDEX_TABLES.items():
        ours = rows(home / "history" / "runs" / "index.db", table, columns)
        assert ours, table
        assert ours == rows(stock / "history" / "runs" / "index.db", table, columns), table
    for run in runs:
        shard = f"{run.run_id}.db"
        ours = rows(home / "history" / "runs" / shard, "event_logs")
        assert len(ours) > 10
        assert ours == rows(stock / "history" / "runs" / shard, "event_logs"), run.run_id


def test_each_partition_reads_back_with_its_own_metadata(stored):
    deployment, _, _, _, _, _, instance, replayed = stored

    def by_day(of):
        records = of.fetch_materializations(RAW_FLIGHTS, limit=100).records
        return {r.partition_key: (r.storage_id, r.asset_materialization.metadata) for r in records}

    ours = by_day(instance)
    assert sorted(ours) == DAYS[:3]
    counts = {day: meta["dagster/partition_row_count"].value for day, (_, meta) in ours.items()}
    source = pd.read_csv(daily_file(deployment.landing, "flights", FIRST_DAYS[0]))
    assert counts[DAYS[0]] == len(source) and len(set(counts.values())) == 3
    assert ours == by_day(replayed)


def test_partition_status_shows_materialized_failed_and_missing_days(stored):
    deployment, _, _, _, _, _, instance, replayed = stored
    partitions = deployment.definitions.get_assets_def(RAW_FLIGHTS).partitions_def
    statuses = instance.get_status_by_partition(RAW_FLIGHTS, DAYS, partitions)
    assert {day: status and status.value for day, status in statuses.items()} == {
        DAYS[0]: "MATERIALIZED",
        DAYS[1]: "MATERIALIZED",
        DAYS[2]: "MATERIALIZED",
        DAYS[3]: "FAILED",
        DAYS[4]: None,
    }
    assert statuses == replayed.get_status_by_partition(RAW_FLIGHTS, DAYS, partitions)


def test_check_evaluations_and_run_status_changes_read_back_as_dagsters(stored):
    deployment, _, _runs, _, _, _, instance, replayed = stored
    keys = sorted(
        deployment.definitions.resolve_asset_graph().asset_check_keys,
        key=lambda k: (k.asset_key.to_user_string(), k.name),
    )
    evaluated = 0
    for key in keys:
        ours = instance.get_latest_asset_check_evaluation_record(key)
        theirs = replayed.get_latest_asset_check_evaluation_record(key)
        # the same record, but for the database's clock at the insert (see INDEX_TABLES)
        assert ours._replace(create_timestamp=0) == theirs._replace(create_timestamp=0), key
        evaluated += ours is not None and ours.status.value in ("SUCCEEDED", "FAILED")
    assert evaluated > 50
    for kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
        ours = instance.fetch_run_status_changes(kind, limit=10).records
        assert len(ours) == 1
        assert ours == replayed.fetch_run_status_changes(kind, limit=10).records


def test_engines_are_kept_per_shard_and_the_oldest_let_go(tmp_path):
    storage = BatchedSqliteEventLogStorage(str(tmp_path))
    for n in range(sqlite_event_log.ENGINES_KEPT + 3):
        storage.get_logs_for_run(f"run-{n}")
    kept = list(storage._engines)
    assert len(kept) == sqlite_event_log.ENGINES_KEPT
    assert kept[-1] == f"run-{sqlite_event_log.ENGINES_KEPT + 2}" and "run-0" not in kept
    first = storage._engines[kept[-1]]
    storage.get_logs_for_run(kept[-1])
    assert storage._engines[kept[-1]] is first  # the same engine, reused
    storage.dispose()
    assert storage._engines == {}


def pool_turns(storage) -> list[tuple[str, bool]]:
    """Two runs asking for the one slot of a pool, as their steps do, and the answers."""
    storage.set_concurrency_slots("warehouse", 1)
    turns = []
    for run_id, step in (("first", "raw__flights"), ("second", "raw__flights")):
        turns.append((run_id, storage.claim_concurrency_slot("warehouse", run_id, step).is_claimed))
    storage.free_concurrency_slots_for_run("first")
    turns.append(
        ("second", storage.claim_concurrency_slot("warehouse", "second", "raw__flights").is_claimed)
    )
    info = storage.get_concurrency_info("warehouse")
    turns.append((",".join(s.run_id for s in info.claimed_slots), info.slot_count == 1))
    return turns


def test_pool_slots_are_handed_out_as_by_dagsters_own_storage(tmp_path):
    ours = BatchedSqliteEventLogStorage(str(tmp_path / "ours"))
    theirs = SqliteEventLogStorage(str(tmp_path / "theirs" / "history" / "runs"))
    assert ours.supports_global_concurrency_limits
    found = pool_turns(ours)
    assert found == [("first", True), ("second", False), ("second", True), ("second", True)]
    assert found == pool_turns(theirs)
