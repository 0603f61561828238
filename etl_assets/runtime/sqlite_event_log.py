"""The embedded instance's event log: Dagster's SQLite storage, writing a batch of asset events in
one transaction per shard, on database engines it keeps.

Dagster 1.13's `SqliteEventLogStorage` builds and disposes of a SQLAlchemy engine for every write
(so every statement is compiled again), and has no batch write: the 3,294 materializations of a
year's run were written one by one, each in a transaction on the run's shard and another on the
index shard. This subclass changes how, never what:

- one engine per shard, kept (the most recently used ones, `ENGINES_KEPT`); each connection is
  still opened and closed per use (NullPool, as Dagster's), so a deleted shard file is never
  held open;
- a batch of materializations (or of observations) of one run, as Dagster hands over the
  partitions of one step's output, is stored in one transaction on the run's shard and one on
  the index shard: the same rows, in the same order, that Dagster's own storage writes for the
  events one at a time. Any other batch is stored event by event, as Dagster's storage does.

Configured in `.dagster_home/dagster.yaml` with `dagster_home: {env: DAGSTER_HOME}`; the shards
are in its `history/runs/` folder, where Dagster's default keeps them, so switching between this
and the stock storage keeps the history. This module and `dagster_adapter.py` are the only homes of
non-public Dagster names; `etl_assets_tests/runtime_tests/test_sqlite_event_log.py` pins them.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

ENGINES_KEPT = 16  # run shards a long-lived process (the webserver) keeps engines for
# What Dagster batches at once and this storage writes in one transaction a shard.
BATCHED = {dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_OBSERVATION}


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log in `<dagster_home>/history/runs`, one transaction a shard for a batch."""

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tables_present: set[str] = set()
        self.dagster_home = os.path.abspath(dagster_home)
        super().__init__(os.path.join(self.dagster_home, "history", "runs"), inst_data)

    @classmethod
    def config_type(cls) -> dict:
        return {"dagster_home": dg.StringSource}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def register_instance(self, instance: dg.DagsterInstance) -> None:
        # `dagster_home` comes from DAGSTER_HOME: an instance opened from another folder
        # (DagsterInstance.from_config) would otherwise read and write that folder's events.
        if os.path.abspath(instance.root_directory) != self.dagster_home:
            raise dg.DagsterInvariantViolationError(
                f"the event log of the instance in {instance.root_directory} is configured in "
                f"DAGSTER_HOME={self.dagster_home}: set DAGSTER_HOME to the instance's folder"
            )
        super().register_instance(instance)

    # --- engines ---------------------------------------------------------------------------

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None) or create_engine(
            self.conn_string_for_shard(shard),
            poolclass=NullPool,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        self._engines[shard] = engine  # the most recently used last
        while len(self._engines) > ENGINES_KEPT:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        # Asked before every asset event's tags are written. A table, once there, stays: only
        # a positive answer is kept.
        if table_name not in self._tables_present and super().has_table(table_name):
            self._tables_present.add(table_name)
        return table_name in self._tables_present

    def dispose(self) -> None:
        super().dispose()
        while self._engines:
            self._engines.popitem()[1].dispose()

    # --- writing ---------------------------------------------------------------------------

    def store_event_batch(self, events: Sequence[dg.EventLogEntry]) -> None:
        kinds = {e.dagster_event_type for e in events}
        if (
            not events
            or len(kinds) != 1
            or not kinds <= BATCHED
            or len({e.run_id for e in events}) != 1
        ):
            super().store_event_batch(events)  # event by event, as Dagster stores them
            return
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        # Mirrored into the index shard, where each event's id is the index's own (as in
        # SqliteEventLogStorage.store_event): its tags and its asset's latest event refer to it.
        with self.index_transaction() as conn:
            ids = [self._inserted_id(conn, row) for row in rows]
            self._store_asset_event_tags(conn, events, ids)
            latest = {
                event.dagster_event and event.dagster_event.asset_key: (event, event_id)
                for event, event_id in zip(events, ids, strict=True)
            }
            for event, event_id in latest.values():  # each event's write would end here too
                self._store_asset_event(conn, event, event_id)

    @staticmethod
    def _inserted_id(conn: Any, row: dict[str, Any]) -> int:
        """Insert one event row into the index shard; its id there."""
        key = conn.execute(SqlEventLogStorageTable.insert().values(**row)).inserted_primary_key
        assert key is not None, "the index shard gave the event no id"
        return int(key[0])
