"""End to end: the real `dagster dev` (webserver + daemon) runs the pipeline with nobody
launching it.

Files are landed; the landing-zone sensor requests the day, declarative automation builds its
marts, and a delivery that cannot be read fails its run, which alerts once on a real webhook and
once by e-mail, through a real SMTP server.
Plain `dagster dev` on a throwaway instance reloads nothing the warehouse holds, and the daemon
launches the daily schedule. Needs nothing but the project's own packages, so it never skips.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from etl_assets.operations.demo import ACTIVE
from etl_assets.operations.instance import instance_at
from etl_assets.pipeline import readers
from etl_assets.pipeline.landing import daily_file, land, read_source
from etl_assets.runtime import dagster_adapter
from etl_assets_tests.support.alerting import Mailbox, Webhook, smtp_server
from etl_assets_tests.support.servers import dagster_dev, free_port, graphql, wait_for

REPO = Path(__file__).resolve().parents[1]
DAY, BAD_DAY = dt.date(2013, 1, 5), dt.date(2013, 1, 6)
TICK_SECONDS = 5  # every sensor's interval here: the test waits on ticks, not on the clock
pytestmark = pytest.mark.e2e


@pytest.fixture
def deployment(tmp_path, webhook):
    """`dagster dev` on a free port with a temporary DAGSTER_HOME, warehouse and landing zone."""
    yield from _started(tmp_path, webhook)


BACKLOG = [dt.date(2013, 1, 1) + dt.timedelta(days=n) for n in range(5)]


@pytest.fixture
def deployment_with_backlog(tmp_path, webhook):
    """The same, with the BACKLOG days already in the landing zone when `dagster dev` starts
    (its first sensor tick comes seconds later, when every file has settled)."""
    land(tmp_path / "landing", BACKLOG[0], BACKLOG[-1])
    yield from _started(tmp_path, webhook)


def _started(tmp_path: Path, webhook: Webhook):
    """`dagster dev` on the deployment's temporary folders, until the test ends."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    with smtp_server() as mailbox:
        yield from _served(tmp_path, home, webhook, mailbox, port)


def _served(tmp_path: Path, home: Path, webhook: Webhook, mailbox: Mailbox, port: int):
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ETL_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
        "ETL_LANDING_DIR": str(tmp_path / "landing"),
        "ETL_ALERT_LOG": str(tmp_path / "alerts.jsonl"),
        "ETL_ALERT_WEBHOOK_URL": webhook.url,
        "ETL_ALERT_CHANNELS": mailbox.url(),
        "ETL_UI_BASE_URL": f"http://127.0.0.1:{port}",
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
        "ETL_SENSOR_INTERVAL_SECONDS": str(TICK_SECONDS),
    }
    with dagster_dev(REPO, env, tmp_path / "dagster_dev.log", port=port) as server:
        yield _Deployment(tmp_path, home, webhook, mailbox, server.port)


class _Deployment:
    def __init__(self, root: Path, home: Path, webhook: Webhook, mailbox: Mailbox, port: int):
        self.root, self.home, self.webhook, self.port = root, home, webhook, port
        self.mailbox = mailbox
        self.landing = root / "landing"
        self.warehouse = root / "warehouse.duckdb"

    def instance(self):
        return instance_at(self.home)

    def log(self) -> str:
        return (self.root / "dagster_dev.log").read_text()

    def materialized(self, *path: str, partition: str | None = None) -> bool:
        with self.instance() as instance:
            event = instance.get_latest_materialization_event(dg.AssetKey(list(path)))
            return event is not None and (
                partition is None
                or event.dagster_event.partition == partition
                or _in_range(instance, event, partition)
            )

    def published(self, day: dt.date) -> bool:
        """The copy readers open holds the day: the last step after the marts is done."""
        return readers.covers(self.warehouse.with_name("warehouse.marts.duckdb"), day)

    def idle(self) -> bool:
        with self.instance() as instance:
            active = instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE))
            return not active

    def alerts(self) -> list[dict]:
        path = self.root / "alerts.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _in_range(instance, event, partition: str) -> bool:
    run = instance.get_run_by_id(event.run_id)
    start = run.tags.get(dagster_adapter.RANGE_START_TAG)
    end = run.tags.get(dagster_adapter.RANGE_END_TAG)
    return bool(start and end and start <= partition <= end)


def test_landed_files_become_fresh_marts_and_a_bad_file_one_alert(deployment):
    # 1. Deliver one day (and the reference files): the sensor and automation do the rest.
    landed_at = time.monotonic()
    land(deployment.landing, DAY, DAY)
    day = DAY.isoformat()
    wait_for(
        "marts for the landed day",
        lambda: (
            deployment.materialized("marts", "carrier_daily_performance", partition=day)
            and deployment.materialized("marts", "origin_daily_weather_delays", partition=day)
        ),
        timeout=420,
    )
    latency = time.monotonic() - landed_at
    print(f"\nlanding → fresh marts: {latency:.0f}s")
    wait_for("the day's marts published", lambda: deployment.published(DAY), timeout=180)
    wait_for("runs to finish", deployment.idle, timeout=180)

    source = read_source("flights")
    expected = int(((source.month == "1") & (source.day == str(DAY.day))).sum())
    with duckdb.connect(str(deployment.warehouse), read_only=True) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM marts.fct_flights WHERE flight_date = $d", {"d": DAY}
        ).fetchone()[0]
    assert rows == expected > 0
    with deployment.instance() as instance:
        runs = instance.get_runs()
        assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [
            (r.job_name, r.status) for r in runs
        ]
        assert {r.job_name for r in runs} >= {"daily_ingest_job", "reference_job"}
    assert deployment.webhook.bodies == []  # nothing failed, nothing alerted

    # 2. A delivery nobody can read: a permanent failure, not retried, alerted once.
    path = daily_file(deployment.landing, "flights", BAD_DAY)
    land(deployment.landing, BAD_DAY, BAD_DAY)
    path.write_bytes(b"\xff\xfe not a csv \x00\n")
    wait_for("the alert", lambda: deployment.webhook.bodies, timeout=420)
    wait_for("runs to finish", deployment.idle, timeout=180)
    # Both alert sensors look again, twice each, after the runs ended: a second alert would be
    # sent by one of these ticks.
    quiet_since = time.time()
    for sensor in ("run_failure_alert_sensor", "check_failure_alert_sensor"):
        wait_for(
            f"two {sensor} ticks after the runs ended",
            lambda sensor=sensor: (
                len(finished_ticks(deployment.port, sensor, after=quiet_since)) >= 2
            ),
            timeout=120,
        )

    assert len(deployment.webhook.bodies) == 1, deployment.webhook.bodies
    text = deployment.webhook.bodies[0]["text"]
    assert BAD_DAY.isoformat() in text and "raw/flights" in text and "UTF-8" in text
    assert f"http://127.0.0.1:{deployment.port}/runs/" in text
    [mail] = deployment.mailbox.messages  # the same alert, once, by e-mail
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert BAD_DAY.isoformat() in text and "raw/flights" in text and "UTF-8" in text
    assert f"http://127.0.0.1:{deployment.port}/runs/" in text
    [alert] = deployment.alerts()
    assert alert["kind"] == "run_failure"
    kinds = sorted(name.split(":")[0] for name in alert["deliveries"])
    assert kinds == ["mailto", "webhook"] and set(alert["deliveries"].values()) == {None}
    with deployment.instance() as instance:
        failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    assert len(failed) == 1  # a delivery that cannot be read is not retried
    # The marts of the good day are untouched.
    with duckdb.connect(str(deployment.warehouse), read_only=True) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM marts.fct_flights WHERE flight_date = $d", {"d": DAY}
            ).fetchone()[0]
            == expected
        )


PARTITION_VIEWS = """query($path: [String!]!, $days: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) { ... on AssetNode {
    assetPartitionStatuses { ... on TimePartitionStatuses { ranges { status startKey endKey } } }
    assetMaterializations(partitions: $days) {
      partition metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }"""


def test_a_backlog_already_landed_is_caught_up_in_a_few_runs(deployment_with_backlog):
    """Days waiting in the landing zone when the platform starts (or after an outage): one
    ingest run for the block, the reference files' run, and the marts' automation."""
    deployment = deployment_with_backlog
    days = [d.isoformat() for d in BACKLOG]
    wait_for(
        "every day's marts",
        lambda: all(
            deployment.materialized("marts", "origin_daily_weather_delays", partition=d)
            for d in days
        ),
        timeout=420,
    )
    wait_for("the last day published", lambda: deployment.published(BACKLOG[-1]), timeout=180)
    wait_for("runs to finish", deployment.idle, timeout=180)

    with deployment.instance() as instance:
        runs = instance.get_runs()
        ingest = [r for r in runs if r.job_name == "daily_ingest_job"]
        by_day = {
            r.partition_key: r.asset_materialization.metadata["dagster/partition_row_count"].value
            for r in instance.fetch_materializations(
                dg.AssetKey(["raw", "flights"]), limit=20
            ).records
        }
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [
        (r.job_name, r.status) for r in runs
    ]
    # the ingest block, the reference files, the marts' automation, and what publishes them
    assert len(ingest) == 1 and len(runs) <= 6, [(r.job_name, r.tags) for r in runs]
    assert (
        ingest[0].tags[dagster_adapter.RANGE_START_TAG],
        ingest[0].tags[dagster_adapter.RANGE_END_TAG],
    ) == (days[0], days[-1])

    # What the UI shows of the days, read by the webserver from the event log the run wrote:
    # one materialized range, and each day's own row count in its event.
    node = graphql(deployment.port, PARTITION_VIEWS, {"path": ["raw", "flights"], "days": days})[
        "assetNodeOrError"
    ]
    assert node["assetPartitionStatuses"]["ranges"] == [
        {"status": "MATERIALIZED", "startKey": days[0], "endKey": days[-1]}
    ]
    shown = {
        m["partition"]: next(
            e["intValue"]
            for e in m["metadataEntries"]
            if e["label"] == "dagster/partition_row_count"
        )
        for m in node["assetMaterializations"]
    }
    assert shown == by_day and sorted(shown) == days and len(set(shown.values())) == len(days)


SENSOR_TICKS = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
  ... on Sensor { sensorState { ticks(limit: 20) { status skipReason runIds timestamp } } } } }"""


def finished_ticks(port: int, sensor: str, after: float = 0.0) -> list[dict]:
    """The sensor's newest finished ticks (at most 20) that began after `after` (epoch seconds)."""
    data = graphql(
        port,
        SENSOR_TICKS,
        {
            "s": {
                "repositoryLocationName": "etl_assets",
                "repositoryName": "__repository__",
                "sensorName": sensor,
            }
        },
    )
    state = data["sensorOrError"].get("sensorState") or {}
    return [
        t for t in state.get("ticks", []) if t["status"] != "STARTED" and t["timestamp"] > after
    ]


RUNS = "{ runsOrError { ... on Runs { results { runId jobName status } } } }"


def test_plain_dagster_dev_on_a_throwaway_instance_reloads_nothing(tmp_path):
    """`make run` on three days, then `dagster dev` as Dagster users type it: no DAGSTER_HOME."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env |= {
        "ETL_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
        "ETL_LANDING_DIR": str(tmp_path / "landing"),
        "ETL_ALERT_LOG": str(tmp_path / "alerts.jsonl"),
        "ETL_SENSOR_INTERVAL_SECONDS": str(TICK_SECONDS),
    }
    cli = str(Path(sys.executable).parent / "etl-assets")
    home = tmp_path / "home"  # the instance `make run` recorded in, which dagster dev never sees
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    for command in (["land"], ["run"]):
        done = subprocess.run(
            [cli, *command, "--start", "2013-01-01", "--end", "2013-01-03"],
            env={**env, "DAGSTER_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    project = tmp_path / "project"  # the project's workspace, and no .env: plain `dagster dev`
    project.mkdir()
    shutil.copy(REPO / "workspace.yaml", project / "workspace.yaml")
    log_path = tmp_path / "dagster_dev.log"
    with dagster_dev(project, env, log_path) as server:

        def ticks():
            done = finished_ticks(server.port, "landing_zone_sensor")
            return done if len(done) >= 2 else None

        finished = wait_for("two landing-sensor ticks", ticks, timeout=300)
        runs = graphql(server.port, RUNS)["runsOrError"]["results"]

    assert "tmp_dagster_home" in log_path.read_text()  # Dagster's throwaway instance, as typed
    assert [r for r in runs if r["jobName"] in ("daily_ingest_job", "reference_job")] == []
    assert all(t["status"] == "SKIPPED" and t["runIds"] == [] for t in finished), finished
    # The first tick of a new cursor saw all nine files, and the warehouse already held them.
    assert any(
        "9 changed file(s) already in the warehouse" in (t["skipReason"] or "") for t in finished
    ), finished


START_SCHEDULE = """mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) {
  __typename ... on ScheduleStateResult { scheduleState { status } }
  ... on PythonError { message } } }"""


def test_the_daemon_launches_the_daily_schedule_and_it_materializes_its_day(tmp_path):
    """A tick a minute (ETL_INGEST_CRON), switched on as a person would in the UI."""
    day = "2013-01-02"
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ETL_LAST_DAY": day,
        "ETL_INGEST_CRON": "* * * * *",
        "ETL_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
        "ETL_LANDING_DIR": str(tmp_path / "landing"),
        "ETL_ALERT_LOG": str(tmp_path / "alerts.jsonl"),
    }
    cli = str(Path(sys.executable).parent / "etl-assets")
    for command in (["land"], ["run"]):  # loaded already: the landing sensor launches nothing
        done = subprocess.run(
            [cli, *command, "--start", "2013-01-01", "--end", day],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    with dagster_dev(REPO, env, tmp_path / "dagster_dev.log") as server:
        started = graphql(
            server.port,
            START_SCHEDULE,
            {
                "s": {
                    "repositoryLocationName": "etl_assets",
                    "repositoryName": "__repository__",
                    "scheduleName": "daily_ingest_schedule",
                }
            },
        )["startSchedule"]
        assert started["scheduleState"]["status"] == "RUNNING", started

        def scheduled_run():
            with instance_at(home) as instance:
                runs = instance.get_runs(
                    filters=dg.RunsFilter(tags={"dagster/schedule_name": "daily_ingest_schedule"})
                )
                assert not [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE], (
                    server.log_tail()
                )
                return next((r for r in runs if r.status == dg.DagsterRunStatus.SUCCESS), None)

        run = wait_for("the daemon's scheduled run to succeed", scheduled_run, timeout=300)

    assert run.job_name == "daily_ingest_job" and run.tags["dagster/partition"] == day
    with instance_at(home) as instance:
        for table in ("flights", "weather"):
            [record] = instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=dg.AssetKey(["raw", table]), asset_partitions=[day]
                ),
                limit=1,
            ).records
            assert record.run_id == run.run_id  # the newest load of that day is the schedule's
