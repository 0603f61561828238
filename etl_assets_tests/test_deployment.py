"""The production deployment (deploy/): code server, webserver and daemon as separate processes,
started with the commands of their systemd units, on the PostgreSQL instance of a real server."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from etl_assets.definitions import defs
from etl_assets.operations.demo import ACTIVE, end_group
from etl_assets.operations.report import latest_check_outcomes
from etl_assets.pipeline import readers
from etl_assets.pipeline.landing import land
from etl_assets_tests.support.servers import (
    free_port,
    graphql,
    postgres_bin,
    postgres_server,
    wait_for,
)

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        postgres_bin() is None,
        reason="needs Debian's postgresql package "
        "(apt-get install -y postgresql); .ci/run installs it",
    ),
]


def unit_command(unit: str, env: dict[str, str], port: int) -> list[str]:
    """A unit's ExecStart, with this checkout for /opt/etl-assets and the environment filled in."""
    text = (DEPLOY / "systemd" / f"etl-assets-{unit}.service").read_text()
    [line] = [each for each in text.splitlines() if each.startswith("ExecStart=")]
    command = line.removeprefix("ExecStart=").replace("/opt/etl-assets/.venv/bin", str(BIN))
    command = command.replace("/opt/etl-assets", str(REPO)).replace("-p 3000", f"-p {port}")
    return re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], command).split()


@contextlib.contextmanager
def service(unit: str, env: dict[str, str], log_dir: Path, port: int = 0):
    with open(log_dir / f"{unit}.log", "a") as log:
        process = subprocess.Popen(
            unit_command(unit, env, port),
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        end_group(process)


DAEMONS = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"


def daemons_healthy(port: int) -> bool:
    try:
        statuses = graphql(port, DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
    except OSError:
        return False
    return bool(statuses) and all(s["healthy"] for s in statuses)


def test_the_three_services_on_postgres_survive_a_daemon_restart(tmp_path, monkeypatch):
    with postgres_server() as postgres:
        for name, value in postgres.env.items():  # this process reads the instance too
            monkeypatch.setenv(name, value)
        home = tmp_path / "home"
        home.mkdir()
        shutil.copy(DEPLOY / "postgres" / "dagster.yaml", home / "dagster.yaml")
        env = {
            **os.environ,
            **postgres.env,
            "DAGSTER_HOME": str(home),
            "ETL_CODE_SERVER_HOST": "127.0.0.1",
            "ETL_CODE_SERVER_PORT": str(free_port()),
            "ETL_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
            "ETL_LANDING_DIR": str(tmp_path / "landing"),
            "ETL_ALERT_LOG": str(tmp_path / "alerts.jsonl"),
        }
        first, second = dt.date(2013, 1, 1), dt.date(2013, 1, 2)
        land(tmp_path / "landing", first, first)
        loaded = subprocess.run(
            [str(BIN / "etl-assets"), "run", "--start", str(first), "--end", str(first)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert loaded.returncode == 0, loaded.stdout[-2000:] + loaded.stderr[-2000:]
        port = free_port()
        with service("code-server", env, tmp_path), service("webserver", env, tmp_path, port):
            with service("daemon", env, tmp_path):
                wait_for("healthy daemons", lambda: daemons_healthy(port), timeout=240)
            # The daemon is gone; a new one starts on the same instance.
            with service("daemon", env, tmp_path):
                wait_for("healthy daemons again", lambda: daemons_healthy(port), timeout=240)
                land(tmp_path / "landing", second, second)  # the restarted daemon's sensor

                def loaded_by_the_daemon():
                    with dg.DagsterInstance.from_config(str(home)) as instance:
                        runs = instance.get_runs(
                            filters=dg.RunsFilter(tags={"dagster/partition": str(second)})
                        )
                        assert not [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
                        return any(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)

                wait_for("the restarted daemon's sensor run", loaded_by_the_daemon, timeout=300)

                def marts_done_and_idle():
                    # The marts automation follows the ingest run; stopping the daemon while
                    # its run is queued would leave that run's checks planned, never evaluated.
                    with dg.DagsterInstance.from_config(str(home)) as instance:
                        active = instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE))
                        return not active and bool(
                            instance.fetch_materializations(
                                dg.AssetRecordsFilter(
                                    asset_key=dg.AssetKey(["marts", "fct_flights"]),
                                    asset_partitions=[str(second)],
                                ),
                                limit=1,
                            ).records
                        )

                wait_for(
                    "the daemon's day published",
                    lambda: readers.covers(tmp_path / "warehouse.marts.duckdb", second),
                    timeout=300,
                )
                wait_for(
                    "the marts of the daemon's day, no run active", marts_done_and_idle, timeout=300
                )

        # Everything the first run recorded is still there, next to the daemon's run.
        with dg.DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs()
            assert {r.job_name for r in runs} >= {"etl_job", "daily_ingest_job"}
            assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}, [
                (r.job_name, r.status) for r in runs
            ]
            assert {(r.job_name, r.status) for r in runs} >= {
                ("etl_job", dg.DagsterRunStatus.SUCCESS),
                ("daily_ingest_job", dg.DagsterRunStatus.SUCCESS),
            }
            for day in (first, second):  # one by the CLI run, one by the daemon's run
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(
                        asset_key=dg.AssetKey(["raw", "flights"]), asset_partitions=[str(day)]
                    ),
                    limit=5,
                ).records
                assert len(records) == 1, (day, records)
            for day in (first, second):  # the CLI run's marts, then the automation's
                assert instance.fetch_materializations(
                    dg.AssetRecordsFilter(
                        asset_key=dg.AssetKey(["marts", "fct_flights"]), asset_partitions=[str(day)]
                    ),
                    limit=1,
                ).records, day
            outcomes = latest_check_outcomes(defs(), instance)
            assert len(outcomes) == 90 and {o.outcome for o in outcomes} <= {"passed", "WARN"}
