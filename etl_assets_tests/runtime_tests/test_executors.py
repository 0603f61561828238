"""Steps on one process or on Celery workers, chosen by ETL_CELERY_BROKER; the same tables."""

import datetime as dt
import functools
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml

from etl_assets.assets.keys import step_key
from etl_assets.definitions import build_definitions
from etl_assets.pipeline import backends
from etl_assets.pipeline.landing import land
from etl_assets.runtime import dagster_adapter, executors
from etl_assets.runtime.settings import Settings
from etl_assets_tests.runtime_tests.test_concurrency import warehouse_steps
from etl_assets_tests.support.deployment import Deployment
from etl_assets_tests.support.servers import (
    celery_worker,
    postgres_bin,
    postgres_server,
    redis_bin,
    redis_server,
    wait_for,
)
from etl_assets_tests.support.warehouse import LOAD_COLUMNS, checksums

REPO = Path(__file__).resolve().parents[2]
JOBS = ("etl_job", "daily_ingest_job", "reference_job")


def test_without_a_broker_every_run_stays_in_one_process():
    definitions = build_definitions(Settings.from_env({}))
    assert {definitions.resolve_job_def(j).executor_def.name for j in JOBS} == {"in_process"}


def test_with_a_broker_every_job_sends_its_steps_to_celery_with_the_workers_settings():
    on_celery = Settings.from_env({"ETL_CELERY_BROKER": "redis://127.0.0.1:1/0"})
    definitions = build_definitions(on_celery)
    assert {definitions.resolve_job_def(j).executor_def.name for j in JOBS} == {"celery"}
    # what `dagster-celery worker start -y` reads too
    settings = executors.celery_settings(on_celery)
    assert settings["broker"] == {"env": "ETL_CELERY_BROKER"}
    assert settings["config_source"]["task_acks_late"] is True  # a killed worker's step returns


def test_a_run_holds_the_days_its_partition_tags_name():
    assert executors.run_days({dagster_adapter.PARTITION_TAG: "2013-01-05"}) == (
        dt.date(2013, 1, 5),
        dt.date(2013, 1, 5),
    )
    assert executors.run_days(
        {dagster_adapter.RANGE_START_TAG: "2013-01-01", dagster_adapter.RANGE_END_TAG: "2013-12-31"}
    ) == (dt.date(2013, 1, 1), dt.date(2013, 12, 31))
    assert executors.run_days({"dagster/schedule_name": "reference"}) is None  # no day held


# --- two workers, a PostgreSQL instance and catalog, Redis ---------------------------------

DAYS = (dt.date(2013, 1, 1), dt.date(2013, 1, 30))
VICTIM = step_key("clean", "flights")  # the step whose worker is killed as it runs it


SEEN_BATCH_SIZES = []  # the event batch size each step of batched_job saw (it runs here)


@dg.op
def note_batch_size():
    SEEN_BATCH_SIZES.append(os.environ.get(dagster_adapter.EVENT_BATCH_FLAG))


@dg.job(
    executor_def=dagster_adapter.executor_within(
        dg.in_process_executor, functools.partial(executors.run_scope, Settings.from_env({}))
    )
)
def batched_job():
    note_batch_size()


def test_a_run_launched_as_the_daemon_does_stores_its_events_in_batches(tmp_path, monkeypatch):
    monkeypatch.delenv(dagster_adapter.EVENT_BATCH_FLAG, raising=False)
    SEEN_BATCH_SIZES.clear()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        assert dg.execute_job(dg.reconstructable(batched_job), instance).success
    assert [str(dagster_adapter.EVENT_BATCH_SIZE)] == SEEN_BATCH_SIZES
    assert dagster_adapter.EVENT_BATCH_FLAG not in os.environ  # set for the run only


@pytest.mark.e2e
@pytest.mark.skipif(
    postgres_bin() is None,
    reason="needs Debian's postgresql package (apt-get install -y postgresql); .ci/run installs it",
)
@pytest.mark.skipif(
    redis_bin() is None,
    reason="needs Debian's redis-server package "
    "(apt-get install -y redis-server); .ci/run installs it",
)
def test_thirty_days_on_two_celery_workers_equal_the_embedded_default_though_one_is_killed(
    tmp_path, monkeypatch
):
    landing = tmp_path / "landing"
    land(landing, *DAYS)
    embedded = Deployment(tmp_path / "embedded", landing, monkeypatch)
    summary = embedded.run(*DAYS)
    assert summary.success, summary.render()
    expected = checksums(embedded.warehouse, LOAD_COLUMNS)

    # The shipped settings, with a task handed to another worker 10 s after a worker took it
    # rather than 300 s, so the test need not wait that long.
    settings = yaml.safe_load(Settings.from_env({}).celery_settings.read_text())
    settings["execution"]["config"]["config_source"]["broker_transport_options"][
        "visibility_timeout"
    ] = 10
    settings_file = tmp_path / "celery.yaml"
    settings_file.write_text(yaml.safe_dump(settings))

    with postgres_server() as pg, redis_server() as broker:
        lake = backends.Lake(pg.create_database("lake").ducklake_catalog, str(tmp_path / "lake"))
        home = tmp_path / "home"
        home.mkdir()
        shutil.copy(REPO / "deploy" / "scale-out" / "dagster.yaml", home / "dagster.yaml")
        env = {
            **os.environ,
            **pg.env,
            "DAGSTER_HOME": str(home),
            "ETL_LANDING_DIR": str(landing),
            "ETL_DUCKLAKE_CATALOG": lake.catalog,
            "ETL_DUCKLAKE_DATA_PATH": lake.data_path,
            "ETL_CELERY_BROKER": broker,
            "ETL_CELERY_SETTINGS": str(settings_file),
        }
        for name, value in pg.env.items():  # this process reads the instance too
            monkeypatch.setenv(name, value)
        with (
            celery_worker("one", env, tmp_path / "one.log") as one,
            celery_worker("two", env, tmp_path / "two.log") as two,
            dg.DagsterInstance.from_config(str(home)) as instance,
        ):
            workers = {"one": one, "two": two}
            run = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "etl-assets"),
                    "run",
                    "--start",
                    str(DAYS[0]),
                    "--end",
                    str(DAYS[1]),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                run_id = wait_for(
                    "the run to be stored", lambda: instance.get_run_ids(limit=1), 120, every=0.1
                )[0]
                victim = wait_for(
                    f"a worker to begin {VICTIM}",
                    lambda: (
                        [
                            w
                            for s, w in dagster_adapter.celery_step_workers(instance, run_id)
                            if s == VICTIM
                        ]
                        or run.poll() is not None
                    ),
                    300,
                    every=0.05,
                )
                assert run.poll() is None, run.communicate()[0][-4000:]
                victim = victim[0]
                killed = victim.split("@")[0]
                with psycopg2.connect(pg.libpq) as watch, watch.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND classid = %s AND granted",
                        (backends.RUN_DAYS_KEY,),
                    )
                    held_days = cursor.fetchone()[0]
                os.killpg(workers[killed].pid, signal.SIGKILL)  # the worker and its pool
                output, _ = run.communicate(timeout=600)
            finally:
                if run.poll() is None:
                    run.kill()
            assert run.returncode == 0, output[-4000:]
            assert held_days == (DAYS[1] - DAYS[0]).days + 1  # the run holds its 30 days

            began = [
                w.split("@")[0]
                for s, w in dagster_adapter.celery_step_workers(instance, run_id)
                if s == VICTIM
            ]
            finished = [
                e
                for e in dagster_adapter.run_events(
                    instance, run_id, dg.DagsterEventType.STEP_SUCCESS
                )[0]
                if e.dagster_event.step_key == VICTIM
            ]
            survivor = ({"one", "two"} - {killed}).pop()
            # begun on the killed worker, never finished there, taken again by the other
            assert began == [killed, survivor] and len(finished) == 1, (began, output[-3000:])
            spans = warehouse_steps(instance, run_id)
            on_lake = checksums(lake, LOAD_COLUMNS)
    # the pool lets both workers write the lake at once (deploy/scale-out: limit 4, not 1)
    assert any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1 :])
    assert on_lake == expected  # every table, row for row: nothing lost, nothing twice
    assert on_lake["marts.fct_flights"][0] > 25_000
