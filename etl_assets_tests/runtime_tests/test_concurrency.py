"""Overlapping runs against one DuckDB file queue for the warehouse pool instead of failing."""

import datetime as dt
import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from etl_assets.assets.keys import step_key
from etl_assets.operations.instance import instance_at
from etl_assets.pipeline.contract import ALL_FEEDS
from etl_assets.pipeline.landing import land, read_source
from etl_assets.pipeline.marts import MARTS
from etl_assets.runtime import dagster_adapter
from etl_assets.runtime.sqlite_event_log import BatchedSqliteEventLogStorage

REPO = Path(__file__).resolve().parents[2]
DAYS = [dt.date(2013, 2, d) for d in (1, 2, 3, 4)]
pytestmark = pytest.mark.e2e


# The steps of the assets in the warehouse pool: every step that writes a table.
WAREHOUSE_STEPS = {step_key(layer, c.name) for layer in ("raw", "clean") for c in ALL_FEEDS} | {
    step_key("marts", name) for name in MARTS
}


def step_spans(instance, run_id) -> list[tuple[float, float, str]]:
    """(start, end, step) of each step of the run."""
    began, spans = {}, []
    entries, _ = dagster_adapter.run_events(
        instance, run_id, {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
    )
    for entry in entries:
        step = entry.dagster_event.step_key
        if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            began[step] = entry.timestamp
        else:
            spans.append((began[step], entry.timestamp, step))
    return spans


def warehouse_steps(instance, run_id) -> list[tuple[float, float, str]]:
    """(start, end, step) of each step of the run that writes the warehouse."""
    return [span for span in step_spans(instance, run_id) if span[2] in WAREHOUSE_STEPS]


def runs_at_once(tmp_path: Path, days: list[dt.date]) -> tuple[Path, list[str]]:
    """`etl-assets run` of each day, one process each, started at once on one instance and
    warehouse; the instance's home and each run's output, once every run has succeeded."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    land(tmp_path / "landing", min(days), max(days))
    with instance_at(home) as instance:
        instance.get_runs()  # create the instance's storage once, as a first `make run` would
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ETL_LANDING_DIR": str(tmp_path / "landing"),
        "ETL_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
    }
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "etl_assets.operations.cli",
                "run",
                "--start",
                str(day),
                "--end",
                str(day),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for day in days
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for day, run, output in zip(days, runs, outputs, strict=True):
        assert run.returncode == 0, f"{day}:\n{output}"
    return home, outputs


def test_four_runs_at_once_all_succeed_without_a_lock_error(tmp_path):
    began = time.monotonic()
    home, outputs = runs_at_once(tmp_path, DAYS)
    seconds = time.monotonic() - began
    for output in outputs:
        assert "lock" not in output.lower(), output
    print(f"\n{len(DAYS)} overlapping runs succeeded in {seconds:.1f}s")

    with instance_at(home) as instance:
        # the project's event log (runtime/sqlite_event_log.py) handed out the pool's slot
        assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
        finished = instance.get_runs()
        assert [r.status for r in finished] == [dg.DagsterRunStatus.SUCCESS] * len(DAYS)
        retried = [
            e
            for r in finished
            for e in dagster_adapter.run_events(
                instance, r.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY
            )[0]
        ]
        assert retried == []  # no step ever met a locked warehouse, even once
        writes = sorted(iv for r in finished for iv in warehouse_steps(instance, r.run_id))
    assert len(writes) == 13 * len(DAYS)  # every asset step of every run ran
    # The pool holds one warehouse step at a time (without it, the same four runs overlap steps
    # a dozen times, measured). Not quite always: Dagster 1.13 claims a slot on SQLite by reading
    # a free one and then taking it by id (SqlEventLogStorage._claim_concurrency_slot), so two
    # claims at the same instant can both win. Seen once, at the runs' first steps; the DuckDB
    # file's lock then made the second writer wait at connect (no retry, no lock error: above).
    overlaps = [(a, b) for a, b in itertools.pairwise(writes) if b[0] < a[1]]
    assert len(overlaps) <= 1, overlaps

    source = read_source("flights")
    expected = [int(((source.month == "2") & (source.day == str(d.day))).sum()) for d in DAYS]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        loaded = conn.execute(
            "SELECT flight_date, count(*) FROM marts.fct_flights GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert [n for _, n in loaded] == expected
    assert [d for d, _ in loaded] == DAYS


def test_a_second_run_of_the_same_day_waits_for_the_first_to_end(tmp_path):
    """The pool alone lets two runs of one day take turns step by step (raw of one, raw of the
    other, clean of the first...); each run holds its days, so the second begins after."""
    home, outputs = runs_at_once(tmp_path, [DAYS[0], DAYS[0], DAYS[1]])
    told = [o for o in outputs[:2] if f"another run is loading {DAYS[0]}" in o]
    assert len(told) == 1, outputs[:2]  # the one that waited said so; the other did not wait

    with instance_at(home) as instance:
        of_the_day = dg.RunsFilter(tags={dagster_adapter.RANGE_START_TAG: str(DAYS[0])})
        same_day = [step_spans(instance, r.run_id) for r in instance.get_runs(filters=of_the_day)]
    assert len(same_day) == 2 and all(len(spans) > 13 for spans in same_day)
    first, second = sorted(same_day)
    assert max(end for _, end, _ in first) <= min(start for start, _, _ in second)

    source = read_source("flights")
    expected = int(((source.month == "2") & (source.day == "1")).sum())
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        loaded = conn.execute(
            "SELECT count(*) FROM marts.fct_flights WHERE flight_date = ?", [DAYS[0]]
        ).fetchone()[0]
    assert loaded == expected  # replaced by the second run, not added to
