"""The alert sink against a real webhook server on loopback: each alert once, retried until
taken."""

import dataclasses
import datetime as dt
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from etl_assets.automation.alert_sensors import UndeliveredAlerts, build_alert_sensors
from etl_assets.runtime.alerts import AlertSink
from etl_assets.runtime.resources import build_alert_sink
from etl_assets.runtime.settings import Settings
from etl_assets_tests.support.alerting import (
    ALERT,
    DAY,
    UI,
    Webhook,
    closed_port_url,
    logged,
    serve,
)

_, _, alert_delivery_sensor = build_alert_sensors()

# --- the sink ------------------------------------------------------------------------------


def test_the_webhook_gets_a_slack_message_naming_asset_partition_error_and_run(sink, webhook):
    record = sink.send(ALERT)

    [post] = webhook.received
    assert post["path"] == "/services/etl" and post["type"] == "application/json"
    text = post["body"]["text"]
    for part in (
        "raw/flights",
        DAY,
        "ValueError: flights_2013-01-02.csv is missing",
        f"{UI}/runs/abc-123",
    ):
        assert part in text
    assert record["webhook_delivered"] is True and record["webhook_error"] is None
    [line] = logged(sink)
    assert line == record
    assert line["run_url"] == f"{UI}/runs/abc-123"  # one slash, whatever the base URL ends with
    assert {
        "dedup_key",
        "kind",
        "title",
        "asset",
        "partition",
        "error",
        "run_id",
        "created_at",
    } <= line.keys()


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
    sink = AlertSink(
        log_path=str(tmp_path / "alerts.jsonl"), webhook_url=down, webhook_timeout_seconds=2
    )
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
                "delivered": [],
                "failed": [],
                "expired": [],
            }
    finally:
        release.set()
        server.shutdown()
        server.server_close()

    assert [(p["status"], p["key"]) for p in hook.received] == [(500, "run:abc"), (200, "run:abc")]
    [record] = sink.alerts()
    assert (record["webhook_delivered"], record["webhook_attempts"]) == (True, 3)
    assert sink.sent_keys() == {"run:abc"}


def test_an_alert_never_delivered_expires_and_the_tick_reports_it_once(tmp_path):
    sink = AlertSink(
        log_path=str(tmp_path / "alerts.jsonl"),
        webhook_url=closed_port_url(),
        webhook_expiry_hours=0,
    )
    sink.send(ALERT)
    context = dg.build_sensor_context(resources={"alerts": sink})
    with pytest.raises(
        UndeliveredAlerts,
        match=r"1 alert\(s\) never reached the webhook within "
        r"0 h .*Run of etl_job failed: raw/flights",
    ):
        alert_delivery_sensor(context)
    assert alert_delivery_sensor(
        dg.build_sensor_context(resources={"alerts": sink})
    ).skip_message.startswith("0 alert(s) delivered")
    [record] = sink.alerts()
    assert record["webhook_expired"] is True and record["webhook_delivered"] is False


SECRET = "T0000/B0000/XXXXsecretXXXX"


@pytest.mark.parametrize(
    "url",
    [
        f"http://127.0.0.1:{{port}}/services/{SECRET}",  # down
        f"http://127.0.0.1:99999/services/{SECRET}",  # a port out of range
        f"http://127.0.0.1:{{port}}/services/hook?token={SECRET}",
    ],
)
def test_the_webhook_url_is_never_written_to_the_log_or_the_sensor_log(tmp_path, url, caplog):
    url = url.format(port=closed_port_url().split(":")[2].split("/")[0])
    sink = AlertSink(
        log_path=str(tmp_path / "alerts.jsonl"), webhook_url=url, webhook_expiry_hours=1
    )
    record = sink.send(ALERT)
    assert record["webhook_delivered"] is False and record["webhook_error"]
    old = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    assert sink.retry_undelivered(now=old)["failed"]
    with caplog.at_level("DEBUG"):
        alert_delivery_sensor(dg.build_sensor_context(resources={"alerts": sink}))
    written = (tmp_path / "alerts.jsonl").read_text() + caplog.text
    assert SECRET not in written and "/services/" not in written


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.org/hook", "https:///no-host", "127.0.0.1:8080/hook"],
)
def test_only_http_webhooks_are_accepted(tmp_path, monkeypatch, url):
    monkeypatch.setenv("ETL_ALERT_WEBHOOK_URL", url)
    with pytest.raises(ValueError, match="must be an http:// or https:// URL") as error:
        build_alert_sink(Settings.from_env())
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
    defaults = build_alert_sink(Settings.from_env())
    assert (defaults.log_path, defaults.webhook_url, defaults.ui_base_url) == (
        str(Path(__file__).resolve().parents[2] / "data/alerts.jsonl"),
        None,
        "http://127.0.0.1:3000",
    )  # the log in the project, whatever the working directory

    monkeypatch.setenv("ETL_ALERT_LOG", "/var/log/etl/alerts.jsonl")
    monkeypatch.setenv("ETL_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("ETL_UI_BASE_URL", "https://dagster.example.org")
    sink = build_alert_sink(Settings.from_env())
    assert sink.webhook_url == dg.EnvVar("ETL_ALERT_WEBHOOK_URL")  # a secret: shown by name
    with dg.build_resources({"alerts": sink}) as resources:
        resolved = resources.alerts
    assert (resolved.log_path, resolved.webhook_url, resolved.ui_base_url) == (
        "/var/log/etl/alerts.jsonl",
        "http://127.0.0.1:9/hook",
        "https://dagster.example.org",
    )


def test_a_webhook_url_with_a_password_is_refused_without_repeating_it(tmp_path, monkeypatch):
    url = "https://bot:s3cretpw@hooks.example.org/services/x"
    monkeypatch.setenv("ETL_ALERT_WEBHOOK_URL", url)
    with pytest.raises(ValueError, match="must not carry a user or password") as error:
        build_alert_sink(Settings.from_env())
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
