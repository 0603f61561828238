"""Overlapping runs against one DuckDB file queue for the warehouse pool instead of failing."""

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from etl_assets import dagster_adapter
from etl_assets.assets.keys import step_key
from etl_assets.pipeline.contract import ALL_FEEDS
from etl_assets.pipeline.marts import MARTS
from etl_assets.pipeline.landing import land, read_source

REPO = Path(__file__).resolve().parents[1]
DAYS = [dt.date(2013, 2, d) for d in (1, 2, 3, 4)]
pytestmark = pytest.mark.e2e


# The steps of the assets in the warehouse pool: every step that writes a table.
WAREHOUSE_STEPS = ({step_key(layer, c.name) for layer in ("raw", "clean") for c in ALL_FEEDS}
                   | {step_key("marts", name) for name in MARTS})


def warehouse_steps(instance, run_id) -> list[tuple[float, float, str]]:
    """(start, end, step) of each step of the run that writes the warehouse."""
    began, spans = {}, []
    entries, _ = dagster_adapter.run_events(
        instance, run_id, {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS})
    for entry in entries:
        step = entry.dagster_event.step_key
        if step not in WAREHOUSE_STEPS:
            continue
        if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            began[step] = entry.timestamp
        else:
            spans.append((began[step], entry.timestamp, step))
    return spans


def test_four_runs_at_once_all_succeed_without_a_lock_error(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    land(tmp_path / "landing", DAYS[0], DAYS[-1])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs()  # create the instance's storage once, as a first `make run` would
    env = {**os.environ, "DAGSTER_HOME": str(home),
           "ETL_LANDING_DIR": str(tmp_path / "landing"),
           "ETL_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb")}

    began = time.monotonic()
    runs = [subprocess.Popen([sys.executable, "-m", "etl_assets.cli", "run",
                              "--start", str(day), "--end", str(day)],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
            for day in DAYS]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    seconds = time.monotonic() - began

    for day, run, output in zip(DAYS, runs, outputs):
        assert run.returncode == 0, f"{day}:\n{output}"
        assert "lock" not in output.lower(), output
    print(f"\n{len(DAYS)} overlapping runs succeeded in {seconds:.1f}s")

    with dg.DagsterInstance.from_config(str(home)) as instance:
        finished = instance.get_runs()
        assert [r.status for r in finished] == [dg.DagsterRunStatus.SUCCESS] * len(DAYS)
        retried = [e for r in finished for e in dagster_adapter.run_events(
            instance, r.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY)[0]]
        assert retried == []  # no step ever met a locked warehouse, even once
        writes = sorted(iv for r in finished for iv in warehouse_steps(instance, r.run_id))
    assert len(writes) == 13 * len(DAYS)  # every asset step of every run ran
    # The pool held one warehouse step at a time: no two steps of different runs overlapped
    # (without it, the same four runs overlap steps a dozen times, measured).
    overlaps = [(a, b) for a, b in zip(writes, writes[1:]) if b[0] < a[1]]
    assert overlaps == []

    source = read_source("flights")
    expected = [int(((source.month == "2") & (source.day == str(d.day))).sum()) for d in DAYS]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        loaded = conn.execute("SELECT flight_date, count(*) FROM marts.fct_flights "
                              "GROUP BY 1 ORDER BY 1").fetchall()
    assert [n for _, n in loaded] == expected
    assert [d for d, _ in loaded] == DAYS
