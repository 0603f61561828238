"""Pins what the adapter's environment flags do in the pinned Dagster, so an upgrade shows it."""

import datetime as dt
import os

import dagster as dg
import pytest

from etl_assets import dagster_adapter

pytestmark = pytest.mark.slow


def planned_partitions(instance, run_id, key):
    events = [e.dagster_event for e in instance.all_logs(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
        if e.dagster_event.asset_key == key]
    return [(e.event_specific_data.partition, e.event_specific_data.partitions_subset)
            for e in events]


def test_one_planned_event_per_asset_and_run_covers_every_day(deployment, monkeypatch):
    monkeypatch.delenv(dagster_adapter.PLANNED_EVENTS_FLAG, raising=False)
    monkeypatch.delenv(dagster_adapter.EVENT_BATCH_FLAG, raising=False)
    summary = deployment.run(dt.date(2013, 1, 1), dt.date(2013, 1, 3))  # sets both flags
    assert summary.success, summary.render()
    assert os.environ[dagster_adapter.EVENT_BATCH_FLAG] == str(dagster_adapter.EVENT_BATCH_SIZE)

    planned = planned_partitions(deployment.instance, summary.run_id,
                                 dg.AssetKey(["raw", "flights"]))
    assert len(planned) == 1
    partition, subset = planned[0]
    assert partition is None
    assert sorted(subset.get_partition_keys()) == ["2013-01-01", "2013-01-02", "2013-01-03"]
    # ...while every day still gets its own materialization.
    records = deployment.instance.fetch_materializations(
        dg.AssetKey(["raw", "flights"]), limit=10).records
    assert sorted(r.partition_key for r in records if r.run_id == summary.run_id) == [
        "2013-01-01", "2013-01-02", "2013-01-03"]


def test_without_the_flag_dagster_plans_each_day_on_its_own(deployment, monkeypatch):
    monkeypatch.setenv(dagster_adapter.PLANNED_EVENTS_FLAG, "false")  # kept: set, so not defaulted
    summary = deployment.run(dt.date(2013, 1, 1), dt.date(2013, 1, 3))
    assert summary.success, summary.render()
    planned = planned_partitions(deployment.instance, summary.run_id,
                                 dg.AssetKey(["raw", "flights"]))
    assert sorted(p for p, _subset in planned) == ["2013-01-01", "2013-01-02", "2013-01-03"]
