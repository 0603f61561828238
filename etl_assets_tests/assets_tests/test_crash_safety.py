"""A run killed with SIGKILL while it writes a layer leaves every table as it was or fully new,
and the re-run converges on what an undisturbed run writes."""

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from etl_assets.pipeline.landing import daily_file, deliver
from etl_assets_tests.support.deployment import Deployment
from etl_assets_tests.support.servers import wait_for
from etl_assets_tests.support.warehouse import FIRST_DAYS, LOAD_COLUMNS, TABLES
from etl_assets_tests.support.warehouse import checksums as all_checksums

JAN2 = dt.date(2013, 1, 2)
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

LAYERS = {"raw": ("raw.",), "clean": ("clean.", "quarantine."), "marts": ("marts.",)}


def checksums(warehouse: str) -> dict[str, tuple[int, str]]:
    return all_checksums(warehouse, LOAD_COLUMNS)


def redeliver_jan2(landing: Path) -> None:
    """The upstream delivers 2013-01-02 again, 100 flights fewer: a new day that differs."""
    path = daily_file(landing, "flights", JAN2)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    deliver(path, frame.iloc[100:])


@pytest.fixture(scope="module")
def states(tmp_path_factory, landed_days):
    """The warehouse before (three days loaded) and after an undisturbed re-run of 2013-01-02."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        deployment = Deployment(tmp_path_factory.mktemp("before"), landed_days, monkeypatch)
        assert deployment.run(*FIRST_DAYS).success
        before = tmp_path_factory.mktemp("saved") / "warehouse.duckdb"
        shutil.copy(deployment.warehouse, before)
        old = checksums(deployment.warehouse)
        redeliver_jan2(deployment.landing)
        assert deployment.run(JAN2, JAN2).success
        return before, old, checksums(deployment.warehouse)


@pytest.mark.parametrize("layer", list(LAYERS))
def test_a_run_killed_while_writing_a_layer_leaves_each_table_old_or_new(
    layer, states, tmp_path, landed_days, monkeypatch
):
    before, old, new = states
    deployment = Deployment(tmp_path, landed_days, monkeypatch)
    shutil.copy(before, deployment.warehouse)
    redeliver_jan2(deployment.landing)
    signal_file = tmp_path / "writing"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "ETL_PROJECT_DIR": str(tmp_path),
        "ETL_LANDING_DIR": str(deployment.landing),
        "ETL_WAREHOUSE_PATH": deployment.warehouse,
    }
    (tmp_path / "home").mkdir()
    log = tmp_path / "child.log"
    with open(log, "w") as out:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "etl_assets_tests.support.crash_child",
                layer,
                str(signal_file),
                str(JAN2),
                str(JAN2),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            f"the run to reach its {layer} write",
            lambda: signal_file.exists() or child.poll() is not None,
            timeout=180,
            every=0.1,
        )
        assert child.poll() is None, log.read_text()
        stopped_in = signal_file.read_text().split(",")
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)

    killed = checksums(deployment.warehouse)
    changed = {"raw": "raw.flights", "clean": "clean.flights", "marts": "marts.fct_flights"}
    assert changed[layer] in stopped_in  # killed in the transaction that writes that table
    assert old[changed[layer]] != new[changed[layer]]  # so "as it was" can be told from "new"
    assert killed[changed[layer]] == old[changed[layer]]
    for table in TABLES:
        assert killed[table] in (old[table], new[table]), table
        if table.startswith(LAYERS[layer]):
            assert killed[table] == old[table], f"{table}: the killed write is not there"
    if layer != "raw":  # the layers before it committed: raw holds the new day
        assert killed["raw.flights"] == new["raw.flights"]

    rerun = deployment.run(JAN2, JAN2)
    assert rerun.success, rerun.render()
    assert checksums(deployment.warehouse) == new


def test_materializing_a_day_three_times_gives_identical_tables(
    states, tmp_path, landed_days, monkeypatch
):
    before, _old, _new = states
    deployment = Deployment(tmp_path, landed_days, monkeypatch)
    shutil.copy(before, deployment.warehouse)
    seen = []
    for _ in range(3):
        assert deployment.run(JAN2, JAN2).success
        seen.append(checksums(deployment.warehouse))
    assert seen[0] == seen[1] == seen[2]
