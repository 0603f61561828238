"""Dagster's own CLI, `dg`, works on the project ([tool.dg] in pyproject.toml): it checks and
lists the same definitions as the code location, launches one asset's partition, and `dg dev`
serves the location under the name workspace.yaml gives it."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from etl_assets.definitions import defs
from etl_assets.operations.demo import end_group
from etl_assets.pipeline.landing import land
from etl_assets_tests.support.servers import free_port, graphql, wait_for

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAY = dt.date(2013, 1, 2)


def dg_env(tmp_path: Path) -> dict[str, str]:
    """The project's venv active (dg warns otherwise), everything written under tmp_path."""
    (tmp_path / "home").mkdir(exist_ok=True)
    return {
        **os.environ,
        "VIRTUAL_ENV": str(BIN.parent),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DAGSTER_HOME": str(tmp_path / "home"),
        "ETL_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
        "ETL_LANDING_DIR": str(tmp_path / "landing"),
        "ETL_ALERT_LOG": str(tmp_path / "alerts.jsonl"),
    }


def run_dg(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(BIN / "dg"), *args],
        cwd=REPO,
        env=dg_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_dg_check_defs_loads_the_definitions(tmp_path):
    done = run_dg(tmp_path, "check", "defs")
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_dg_list_defs_lists_what_the_code_location_defines(tmp_path):
    listed = json.loads(run_dg(tmp_path, "list", "defs", "--json").stdout)
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    assert {a["asset_key"] for a in listed["assets"]} == {
        key.to_user_string() for key in graph.get_all_asset_keys()
    }
    assert {c["key"] for c in listed["asset_checks"]} == {
        f"{key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys
    }
    assert len(listed["asset_checks"]) == 90
    assert {j["name"] for j in listed["jobs"]} == {"etl_job", "daily_ingest_job", "reference_job"}
    assert {s["name"] for s in listed["schedules"]} == {s.name for s in definitions.schedules or []}
    assert {s["name"] for s in listed["sensors"]} == {s.name for s in definitions.sensors or []}


def test_dg_launch_materializes_one_asset_for_one_day(tmp_path):
    land(tmp_path / "landing", DAY, DAY + dt.timedelta(days=1))
    run_dg(tmp_path, "launch", "--assets", "raw/flights", "--partition", DAY.isoformat())
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        days = conn.sql("select delivery_date, count(*) from raw.flights group by 1").fetchall()
    assert [(day, rows > 0) for day, rows in days] == [(DAY, True)]  # that day, not the next
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == DAY.isoformat()


LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries {
  name locationOrLoadError { __typename ... on PythonError { message }
    ... on RepositoryLocation { repositories { assetNodes { id } } } } } } } }"""


@pytest.mark.e2e
def test_dg_dev_serves_the_location_named_etl_assets(tmp_path):
    port = free_port()
    with open(tmp_path / "dg_dev.log", "w") as log:
        process = subprocess.Popen(
            [str(BIN / "dg"), "dev", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env=dg_env(tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def loaded():
            try:
                entries = graphql(port, LOCATIONS)["workspaceOrError"]["locationEntries"]
            except OSError:
                assert process.poll() is None, (tmp_path / "dg_dev.log").read_text()[-3000:]
                return None
            if not entries or any(e["locationOrLoadError"] is None for e in entries):
                return None  # still loading
            return {e["name"]: e["locationOrLoadError"] for e in entries}

        locations = wait_for("dg dev's code location", loaded, timeout=240)
        assert list(locations) == ["etl_assets"]
        assert locations["etl_assets"]["__typename"] == "RepositoryLocation", locations
        [repository] = locations["etl_assets"]["repositories"]
        assert len(repository["assetNodes"]) == 19  # 18 tables and the published marts
    finally:
        end_group(process)
