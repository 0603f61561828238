"""Alerts against a real webhook server on loopback and real runs in a SQLite Dagster instance."""

import dataclasses
import datetime as dt
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from etl_assets.alert_sensors import (
    UndeliveredAlerts,
    alert_delivery_sensor,
    check_failure_alert_sensor,
    run_failure_alert_sensor,
    run_partition,
)
from etl_assets.alerts import Alert, AlertSink
from etl_assets.resources import build_alert_sink

UI = "http://dagster.test:3000"
DAY = "2013-01-02"
days = dg.DailyPartitionsDefinition(start_date="2013-01-01", end_date="2013-01-10")

# --- a webhook receiver --------------------------------------------------------------------


@dataclass
class Webhook:
    url: str = ""
    status: int = 200
    delay: float = 0.0
    received: list[dict] = field(default_factory=list)


def serve(hook: "Webhook", release: threading.Event, port: int = 0) -> ThreadingHTTPServer:
    """A Slack-like incoming webhook on 127.0.0.1 that records every POST it gets."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.received.append({"path": self.path, "type": self.headers["Content-Type"],
                                  "key": self.headers["Idempotency-Key"],
                                  "body": json.loads(body), "status": hook.status})
            release.wait(hook.delay)
            self.send_response(hook.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    # shutdown() waits up to one poll interval (0.5 s by default) for the loop to notice
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                     daemon=True).start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/services/etl"
    return server


@pytest.fixture
def webhook():
    hook, release = Webhook(), threading.Event()
    server = serve(hook, release)
    yield hook
    release.set()
    server.shutdown()
    server.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/services/etl"  # nothing listens there any more


def logged(sink: AlertSink) -> list[dict]:
    with open(sink.log_path) as log:
        return [json.loads(line) for line in log]


@pytest.fixture
def sink(tmp_path, webhook) -> AlertSink:
    return AlertSink(log_path=str(tmp_path / "alerts" / "alerts.jsonl"), webhook_url=webhook.url,
                     ui_base_url=UI + "/", webhook_timeout_seconds=0.5)


ALERT = Alert(dedup_key="run:abc", kind="run_failure", title="Run of etl_job failed: raw/flights",
              job="etl_job", asset="raw/flights", partition=DAY,
              error="ValueError: flights_2013-01-02.csv is missing", run_id="abc-123")

# --- the sink ------------------------------------------------------------------------------


def test_the_webhook_gets_a_slack_message_naming_asset_partition_error_and_run(sink, webhook):
    record = sink.send(ALERT)

    [post] = webhook.received
    assert post["path"] == "/services/etl" and post["type"] == "application/json"
    text = post["body"]["text"]
    for part in ("raw/flights", DAY, "ValueError: flights_2013-01-02.csv is missing",
                 f"{UI}/runs/abc-123"):
        assert part in text
    assert record["webhook_delivered"] is True and record["webhook_error"] is None
    [line] = logged(sink)
    assert line == record
    assert line["run_url"] == f"{UI}/runs/abc-123"  # one slash, whatever the base URL ends with
    assert {"dedup_key", "kind", "title", "asset", "partition", "error", "run_id",
            "created_at"} <= line.keys()


def test_the_log_is_written_without_a_webhook(tmp_path):
    sink = AlertSink(log_path=str(tmp_path / "alerts.jsonl"))
    sink.send(ALERT)
    [line] = logged(sink)
    assert (line["asset"], line["partition"]) == ("raw/flights", DAY)
    assert line["webhook_delivered"] is None and line["webhook_error"] is None


@pytest.mark.parametrize("failure", ["closed port", "HTTP 500", "too slow"])
def test_a_failing_webhook_is_logged_as_not_delivered_and_never_raises(sink, webhook, failure):
    if failure == "closed port":
        sink = sink.model_copy(update={"webhook_url": closed_port_url()})
    elif failure == "HTTP 500":
        webhook.status = 500
    else:
        webhook.delay = 5

    started = time.monotonic()
    record = sink.send(ALERT)

    assert time.monotonic() - started < 3  # the timeout holds the sensor for at most 0.5 s
    assert record["webhook_delivered"] is False
    assert record["webhook_error"]
    if failure == "HTTP 500":
        assert "500" in record["webhook_error"]
    assert logged(sink) == [record]


def test_an_alert_is_sent_once_even_by_a_fresh_sink_on_the_same_log(sink, webhook):
    assert sink.send(ALERT) is not None
    assert sink.send(ALERT) is None
    restarted = AlertSink(log_path=sink.log_path, webhook_url=webhook.url)  # a new daemon process
    assert restarted.send(ALERT) is None
    assert len(logged(sink)) == 1 and len(webhook.received) == 1


def test_an_alert_the_webhook_missed_is_delivered_exactly_once_when_it_comes_back(tmp_path):
    down = closed_port_url()  # nothing listens: the webhook is down
    sink = AlertSink(log_path=str(tmp_path / "alerts.jsonl"), webhook_url=down,
                     webhook_timeout_seconds=2)
    first = sink.send(ALERT)
    assert first["webhook_delivered"] is False and "Connection refused" in first["webhook_error"]
    sent = dt.datetime.fromisoformat(first["created_at"])

    hook, release = Webhook(status=500), threading.Event()  # up again, but failing
    server = serve(hook, release, port=int(down.split(":")[2].split("/")[0]))
    try:
        early = sink.retry_undelivered(now=sent + dt.timedelta(seconds=10))  # 30 s wait first
        assert early == {"delivered": [], "failed": [], "expired": []} and hook.received == []
        second = sink.retry_undelivered(now=sent + dt.timedelta(seconds=31))
        assert [r["dedup_key"] for r in second["failed"]] == ["run:abc"]
        assert "HTTP Error 500" in second["failed"][0]["webhook_error"]
        # the wait doubles: 60 s after the second try, not 30
        assert sink.retry_undelivered(now=sent + dt.timedelta(seconds=80))["failed"] == []
        hook.status = 200  # back
        third = sink.retry_undelivered(now=sent + dt.timedelta(seconds=92))
        assert [r["dedup_key"] for r in third["delivered"]] == ["run:abc"]
        for later in (100, 10_000, 200_000):  # delivered: never again, never expired
            assert sink.retry_undelivered(now=sent + dt.timedelta(seconds=later)) == {
                "delivered": [], "failed": [], "expired": []}
    finally:
        release.set()
        server.shutdown()
        server.server_close()

    assert [(p["status"], p["key"]) for p in hook.received] == [(500, "run:abc"),
                                                                 (200, "run:abc")]
    [record] = sink.alerts()
    assert (record["webhook_delivered"], record["webhook_attempts"]) == (True, 3)
    assert sink.sent_keys() == {"run:abc"}


def test_an_alert_never_delivered_expires_and_the_tick_reports_it_once(tmp_path):
    sink = AlertSink(log_path=str(tmp_path / "alerts.jsonl"), webhook_url=closed_port_url(),
                     webhook_expiry_hours=0)
    sink.send(ALERT)
    context = dg.build_sensor_context(resources={"alerts": sink})
    with pytest.raises(UndeliveredAlerts, match=r"1 alert\(s\) never reached the webhook within "
                                                r"0 h .*Run of etl_job failed: raw/flights"):
        alert_delivery_sensor(context)
    assert alert_delivery_sensor(dg.build_sensor_context(resources={"alerts": sink})
                                 ).skip_message.startswith("0 alert(s) delivered")
    [record] = sink.alerts()
    assert record["webhook_expired"] is True and record["webhook_delivered"] is False


SECRET = "T0000/B0000/XXXXsecretXXXX"


@pytest.mark.parametrize("url", [
    f"http://127.0.0.1:{{port}}/services/{SECRET}",  # down
    f"http://127.0.0.1:99999/services/{SECRET}",  # a port out of range
    f"http://127.0.0.1:{{port}}/services/hook?token={SECRET}",
])
def test_the_webhook_url_is_never_written_to_the_log_or_the_sensor_log(tmp_path, url, caplog):
    url = url.format(port=closed_port_url().split(":")[2].split("/")[0])
    sink = AlertSink(log_path=str(tmp_path / "alerts.jsonl"), webhook_url=url,
                     webhook_expiry_hours=1)
    record = sink.send(ALERT)
    assert record["webhook_delivered"] is False and record["webhook_error"]
    old = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    assert sink.retry_undelivered(now=old)["failed"]
    with caplog.at_level("DEBUG"):
        alert_delivery_sensor(dg.build_sensor_context(resources={"alerts": sink}))
    written = (tmp_path / "alerts.jsonl").read_text() + caplog.text
    assert SECRET not in written and "/services/" not in written


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/hook",
                                 "https:///no-host", "127.0.0.1:8080/hook"])
def test_only_http_webhooks_are_accepted(tmp_path, monkeypatch, url):
    monkeypatch.setenv("ETL_ALERT_WEBHOOK_URL", url)
    with pytest.raises(ValueError, match="must be an http:// or https:// URL") as error:
        build_alert_sink()
    assert url not in str(error.value)
    sink = AlertSink(log_path=str(tmp_path / "alerts.jsonl"), webhook_url=url)
    record = sink.send(ALERT)  # given directly, it is refused at the post
    assert record["webhook_delivered"] is False
    assert record["webhook_error"].startswith("ETL_ALERT_WEBHOOK_URL must be an http")


def test_alerts_sent_at_the_same_moment_by_many_threads_are_one_alert(sink, webhook):
    webhook.delay = 0.2  # the first post is slow, so the others arrive while it is under way
    threads = [threading.Thread(target=sink.send, args=(ALERT,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(webhook.received) == 1 and len(logged(sink)) == 1


def test_the_sink_comes_from_the_environment(monkeypatch):
    for name in ("ETL_ALERT_LOG", "ETL_ALERT_WEBHOOK_URL", "ETL_UI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    defaults = build_alert_sink()
    assert (defaults.log_path, defaults.webhook_url, defaults.ui_base_url) == (
        str(Path(__file__).resolve().parents[1] / "data/alerts.jsonl"), None,
        "http://127.0.0.1:3000")  # the log in the project, whatever the working directory

    monkeypatch.setenv("ETL_ALERT_LOG", "/var/log/etl/alerts.jsonl")
    monkeypatch.setenv("ETL_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("ETL_UI_BASE_URL", "https://dagster.example.org")
    sink = build_alert_sink()
    assert sink.webhook_url == dg.EnvVar("ETL_ALERT_WEBHOOK_URL")  # a secret: shown by name
    with dg.build_resources({"alerts": sink}) as resources:
        resolved = resources.alerts
    assert (resolved.log_path, resolved.webhook_url, resolved.ui_base_url) == (
        "/var/log/etl/alerts.jsonl", "http://127.0.0.1:9/hook", "https://dagster.example.org")


def test_the_sensors_load_with_the_sink():
    defs = dg.Definitions(sensors=[run_failure_alert_sensor, check_failure_alert_sensor],
                          resources={"alerts": build_alert_sink()})
    dg.Definitions.validate_loadable(defs)


def test_a_run_names_its_partition_or_range():
    def run(**tags):
        return dg.DagsterRun(job_name="etl_job", tags=tags)

    assert run_partition(run(**{"dagster/partition": DAY})) == DAY
    assert run_partition(run(**{"dagster/asset_partition_range_start": "2013-01-01",
                                "dagster/asset_partition_range_end": "2013-01-03"})) == (
        "2013-01-01...2013-01-03")
    assert run_partition(run()) is None

# --- failed runs ---------------------------------------------------------------------------


@pytest.fixture
def instance():
    """A SQLite instance like the project's (run-sharded event log), with run retries enabled."""
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 2}}) as i:
        yield i


@dg.asset(key_prefix="raw", partitions_def=days)
def flights() -> None:
    raise ValueError("flights_2013-01-02.csv is missing")


@dg.asset(key_prefix="clean", partitions_def=days, deps=[flights])
def clean_flights() -> None:
    pass


def fail_a_run(instance, tags=None) -> dg.ExecuteInProcessResult:
    result = dg.materialize([flights, clean_flights], partition_key=DAY, instance=instance,
                            raise_on_error=False, tags=tags)
    assert not result.success
    return result


def evaluate_run_sensor(instance, sink, result, run=None) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor", dagster_event=result.get_run_failure_event(),
        dagster_instance=instance, dagster_run=run or instance.get_run_by_id(result.run_id),
        resources={"alerts": sink})
    run_failure_alert_sensor(context)


def test_a_failed_run_alerts_once_naming_asset_partition_and_error(instance, sink, webhook):
    result = fail_a_run(instance)
    # Retries are on, so Dagster marks the run for retry, but a run executed in process has no
    # code location to be relaunched from: the daemon never retries it, so it must alert now.
    assert instance.get_run_by_id(result.run_id).tags["dagster/will_retry"] == "true"

    evaluate_run_sensor(instance, sink, result)
    evaluate_run_sensor(instance, sink, result)  # the same failure seen again: a restarted tick

    [alert] = logged(sink)
    assert alert["kind"] == "run_failure"
    assert alert["asset"] == "raw/flights"  # the failed step, not the skipped one downstream
    assert alert["partition"] == DAY
    assert alert["error"] == "ValueError: flights_2013-01-02.csv is missing"
    assert alert["run_url"] == f"{UI}/runs/{result.run_id}"
    assert len(webhook.received) == 1 and "raw/flights" in webhook.received[0]["body"]["text"]


# How a run launched from the UI or a schedule is stored: with the code location it came from,
# which is what lets the retry daemon relaunch it.
LAUNCHED_FROM_LOCATION = dg.deserialize_value(json.dumps({
    "__class__": "ExternalPipelineOrigin",
    "external_repository_origin": {
        "__class__": "ExternalRepositoryOrigin",
        "repository_location_origin": {"__class__": "RegisteredRepositoryLocationOrigin",
                                       "location_name": "etl_assets"},
        "repository_name": "__repository__",
    },
    "pipeline_name": "__ephemeral_asset_job__",
}))


@pytest.mark.parametrize(("max_retries", "alerts"), [("2", 0), ("0", 1)])
def test_a_launched_run_alerts_only_when_no_retry_is_left(instance, sink, max_retries, alerts):
    result = fail_a_run(instance, tags={"dagster/max_retries": max_retries})
    stored = instance.get_run_by_id(result.run_id)
    # Dagster itself decides whether the daemon will retry the failed run.
    assert stored.tags["dagster/will_retry"] == ("true" if alerts == 0 else "false")
    launched = dg.DagsterRun(job_name=stored.job_name, run_id=stored.run_id,
                             status=stored.status, tags=stored.tags,
                             remote_job_origin=LAUNCHED_FROM_LOCATION)

    evaluate_run_sensor(instance, sink, result, run=launched)

    if alerts:
        [line] = logged(sink)
        assert line["dedup_key"] == f"run:{result.run_id}"
    else:
        assert not Path(sink.log_path).exists()

# --- failed checks -------------------------------------------------------------------------


OUTCOMES: dict[str, bool] = {}  # check name -> passed, set by each test
FAILS_TOO: dict[str, bool] = {"summary": False}


@dg.asset(key_prefix="clean", name="checked_flights", partitions_def=days, check_specs=[
    dg.AssetCheckSpec("key_is_unique", asset=["clean", "checked_flights"], blocking=True),
    dg.AssetCheckSpec("delay_in_range", asset=["clean", "checked_flights"]),
    dg.AssetCheckSpec("carrier_is_known", asset=["clean", "checked_flights"]),
])
def checked_flights():
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="key_is_unique", passed=OUTCOMES["key_is_unique"],
                              description="3 duplicate keys (flight_id)")
    yield dg.AssetCheckResult(check_name="delay_in_range", passed=OUTCOMES["delay_in_range"],
                              description="2 delays above 24 hours")
    yield dg.AssetCheckResult(check_name="carrier_is_known", passed=OUTCOMES["carrier_is_known"],
                              severity=dg.AssetCheckSeverity.WARN,
                              description="5 flights of unknown carriers")


@dg.asset(key_prefix="marts", partitions_def=days, deps=[checked_flights])
def daily_delays() -> None:
    pass


@dg.asset(key_prefix="marts", partitions_def=days)
def airport_summary() -> None:
    if FAILS_TOO["summary"]:
        raise RuntimeError("airports table is locked")


def run_checks(instance, **passed) -> dg.ExecuteInProcessResult:
    OUTCOMES.update({"key_is_unique": True, "delay_in_range": True, "carrier_is_known": True},
                    **passed)
    return dg.materialize([checked_flights, daily_delays, airport_summary], partition_key=DAY,
                          instance=instance, raise_on_error=False)


def evaluate_check_sensor(instance, sink, cursor) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"alerts": sink})
    return check_failure_alert_sensor(context)


def test_a_failed_error_check_alerts_once_and_a_failed_warn_check_never(instance, sink, webhook):
    run_checks(instance, delay_in_range=False)  # before the sensor started: history, not news
    started = evaluate_check_sensor(instance, sink, None)
    assert started.skip_reason is not None

    result = run_checks(instance, delay_in_range=False, carrier_is_known=False)
    assert result.success  # a non-blocking check does not fail its run
    first = evaluate_check_sensor(instance, sink, started.cursor)
    second = evaluate_check_sensor(instance, sink, first.cursor)
    evaluate_check_sensor(instance, sink, started.cursor)  # a lost cursor: the log still knows

    [alert] = logged(sink)
    assert alert["kind"] == "check_failure" and alert["run_id"] == result.run_id
    assert "delay_in_range" in alert["title"]  # the ERROR check; the WARN one is not alerted
    assert (alert["asset"], alert["partition"]) == ("clean/checked_flights", DAY)
    assert alert["error"] == "2 delays above 24 hours"
    assert int(first.cursor) > int(started.cursor) and second.cursor == first.cursor
    assert second.skip_reason is not None
    assert "delay_in_range" in webhook.received[0]["body"]["text"] and len(webhook.received) == 1


def test_only_warn_checks_failing_sends_nothing(instance, sink):
    cursor = evaluate_check_sensor(instance, sink, None).cursor
    run_checks(instance, carrier_is_known=False)
    evaluate_check_sensor(instance, sink, cursor)
    assert not Path(sink.log_path).exists()


def test_a_failing_blocking_check_alerts_exactly_once_across_both_sensors(instance, sink):
    cursor = evaluate_check_sensor(instance, sink, None).cursor
    result = run_checks(instance, key_is_unique=False)

    # In 1.13 a failed blocking ERROR check fails its step, so the run fails and stops downstream.
    assert result.dagster_run.status == dg.DagsterRunStatus.FAILURE
    assert not result.asset_materializations_for_node("marts__daily_delays")
    evaluate_run_sensor(instance, sink, result)
    evaluate_check_sensor(instance, sink, cursor)

    [alert] = logged(sink)
    assert alert["kind"] == "check_failure" and "key_is_unique" in alert["title"]
    assert "blocking" in alert["title"]
    assert alert["error"] == "3 duplicate keys (flight_id)"


def test_a_run_failing_on_a_check_and_on_an_error_alerts_each_once(instance, sink, monkeypatch):
    monkeypatch.setitem(FAILS_TOO, "summary", True)
    cursor = evaluate_check_sensor(instance, sink, None).cursor
    result = run_checks(instance, key_is_unique=False)

    evaluate_run_sensor(instance, sink, result)
    evaluate_check_sensor(instance, sink, cursor)

    alerts = {a["kind"]: a for a in logged(sink)}
    assert len(logged(sink)) == 2 and alerts.keys() == {"run_failure", "check_failure"}
    assert alerts["run_failure"]["asset"] == "marts/airport_summary"  # not the checked asset
    assert alerts["run_failure"]["error"] == "RuntimeError: airports table is locked"
    assert "key_is_unique" in alerts["check_failure"]["title"]


checks_defs = dg.Definitions(assets=[checked_flights, daily_delays, airport_summary], jobs=[
    dg.define_asset_job("checks_job", executor_def=dg.in_process_executor)])


def checks_job() -> dg.JobDefinition:
    return checks_defs.resolve_job_def("checks_job")


def test_a_retry_that_fails_the_same_check_again_does_not_alert_again(instance, sink):
    cursor = evaluate_check_sensor(instance, sink, None).cursor
    OUTCOMES.update(key_is_unique=False, delay_in_range=True, carrier_is_known=True)
    job = dg.reconstructable(checks_job)
    with dg.execute_job(job, instance, tags={"dagster/partition": DAY}) as first:
        assert not first.success
    # What the retry daemon launches: the same run group, re-executing the failed step.
    options = dg.ReexecutionOptions.from_failure(first.run_id, instance)
    with dg.execute_job(job, instance, reexecution_options=options) as retry:
        assert not retry.success
        assert retry.dagster_run.root_run_id == first.run_id

    evaluate_check_sensor(instance, sink, cursor)

    [alert] = logged(sink)
    assert alert["run_id"] == first.run_id and "key_is_unique" in alert["title"]


def test_a_webhook_url_with_a_password_is_refused_without_repeating_it(tmp_path, monkeypatch):
    url = "https://bot:s3cretpw@hooks.example.org/services/x"
    monkeypatch.setenv("ETL_ALERT_WEBHOOK_URL", url)
    with pytest.raises(ValueError, match="must not carry a user or password") as error:
        build_alert_sink()
    assert "s3cretpw" not in str(error.value)
    sink = AlertSink(log_path=str(tmp_path / "alerts.jsonl"), webhook_url=url)
    assert sink.send(ALERT)["webhook_delivered"] is False
    assert "s3cretpw" not in (tmp_path / "alerts.jsonl").read_text()


def test_one_retry_pass_posts_at_most_its_limit(tmp_path, webhook):
    sink = AlertSink(log_path=str(tmp_path / "alerts.jsonl"), webhook_url=closed_port_url())
    for n in range(5):
        sink.send(dataclasses.replace(ALERT, dedup_key=f"run:{n}"))
    sink = sink.model_copy(update={"webhook_url": webhook.url})
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    assert len(sink.retry_undelivered(now=later, limit=3)["delivered"]) == 3
    assert len(sink.retry_undelivered(now=later, limit=3)["delivered"]) == 2
    assert sorted(p["key"] for p in webhook.received) == [f"run:{n}" for n in range(5)]
