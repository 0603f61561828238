"""The alert sink against real servers on loopback (a webhook, an SMTP server): each alert once
per channel, each channel retried on its own until it takes it."""

import dataclasses
import datetime as dt
import json
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from etl_assets.automation.alert_sensors import UndeliveredAlerts, build_alert_sensors
from etl_assets.runtime import channels
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
    smtp_server,
    webhook_server,
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
    assert record["delivered"] is True and record["delivery_error"] is None
    [line] = logged(sink)
    assert line["deliveries"] == {"webhook": None}  # per channel: the first try's error, or none
    assert sink.alerts() == [record]  # the log read back is what send() said
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
    assert line["deliveries"] == {}
    [record] = sink.alerts()
    assert record["delivered"] is None and record["delivery_error"] is None


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
    assert record["delivered"] is False
    assert record["delivery_error"]
    if failure == "HTTP 500":
        assert "500" in record["delivery_error"]
    assert sink.alerts() == [record]


def test_an_alert_is_sent_once_even_by_a_fresh_sink_on_the_same_log(sink, webhook):
    assert sink.send(ALERT) is not None
    assert sink.send(ALERT) is None
    restarted = AlertSink(log_path=sink.log_path, webhook_url=webhook.url)  # a new daemon process
    assert restarted.send(ALERT) is None
    assert len(logged(sink)) == 1 and len(webhook.received) == 1


def nothing_more_is_sent(sink: AlertSink, sent: dt.datetime, seconds_later) -> bool:
    """Whether retry passes, those many seconds after the alert was sent, send nothing."""
    empty = {"delivered": [], "failed": [], "expired": []}
    return all(
        sink.retry_undelivered(now=sent + dt.timedelta(seconds=later)) == empty
        for later in seconds_later
    )


def test_an_alert_the_webhook_missed_is_delivered_exactly_once_when_it_comes_back(tmp_path):
    down = closed_port_url()  # nothing listens: the webhook is down
    sink = AlertSink(
        log_path=str(tmp_path / "alerts.jsonl"), webhook_url=down, webhook_timeout_seconds=2
    )
    first = sink.send(ALERT)
    assert first["delivered"] is False and "Connection refused" in first["delivery_error"]
    sent = dt.datetime.fromisoformat(first["created_at"])

    hook, release = Webhook(status=500), threading.Event()  # up again, but failing
    server = serve(hook, release, port=int(down.split(":")[2].split("/")[0]))
    try:
        early = sink.retry_undelivered(now=sent + dt.timedelta(seconds=10))  # 30 s wait first
        assert early == {"delivered": [], "failed": [], "expired": []} and hook.received == []
        second = sink.retry_undelivered(now=sent + dt.timedelta(seconds=31))
        assert [r["dedup_key"] for r in second["failed"]] == ["run:abc"]
        assert "HTTP Error 500" in second["failed"][0]["delivery_error"]
        # the wait doubles: 60 s after the second try, not 30
        assert sink.retry_undelivered(now=sent + dt.timedelta(seconds=80))["failed"] == []
        hook.status = 200  # back
        third = sink.retry_undelivered(now=sent + dt.timedelta(seconds=92))
        assert [r["dedup_key"] for r in third["delivered"]] == ["run:abc"]
        assert nothing_more_is_sent(sink, sent, (100, 10_000, 200_000))  # nor ever expired
    finally:
        release.set()
        server.shutdown()
        server.server_close()

    assert [(p["status"], p["key"]) for p in hook.received] == [(500, "run:abc"), (200, "run:abc")]
    [record] = sink.alerts()
    assert (record["delivered"], record["delivery_attempts"]) == (True, 3)
    assert sink.sent_keys() == {"run:abc"}


def test_an_alert_never_delivered_expires_and_the_tick_reports_it_once(tmp_path):
    sink = AlertSink(
        log_path=str(tmp_path / "alerts.jsonl"),
        webhook_url=closed_port_url(),
        expiry_hours=0,
    )
    sink.send(ALERT)
    context = dg.build_sensor_context(resources={"alerts": sink})
    with pytest.raises(
        UndeliveredAlerts,
        match=r"1 alert delivery\(ies\) never reached their channel within "
        r"0 h .*Run of etl_job failed: raw/flights",
    ):
        alert_delivery_sensor(context)
    assert alert_delivery_sensor(
        dg.build_sensor_context(resources={"alerts": sink})
    ).skip_message.startswith("0 delivery(ies) made")
    [record] = sink.alerts()
    assert record["delivery_expired"] is True and record["delivered"] is False


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
    sink = AlertSink(log_path=str(tmp_path / "alerts.jsonl"), webhook_url=url, expiry_hours=1)
    record = sink.send(ALERT)
    assert record["delivered"] is False and record["delivery_error"]
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
    assert record["delivered"] is False
    assert record["delivery_error"].startswith("webhook: ETL_ALERT_WEBHOOK_URL must be an http")


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
    assert sink.send(ALERT)["delivered"] is False
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


# --- channels through apprise: e-mail and a JSON webhook, each on its own --------------------


def body_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def test_each_channel_gets_the_alert_once_with_asset_partition_error_and_run(tmp_path):
    with smtp_server() as mailbox, webhook_server() as hook:
        json_channel = hook.url.replace("http://", "json://")
        sink = AlertSink(
            log_path=str(tmp_path / "alerts.jsonl"),
            channels=f"{mailbox.url()}  {json_channel}",
            ui_base_url=UI,
        )
        record = sink.send(ALERT)
        assert sink.send(ALERT) is None  # the dedup holds for every channel

    assert record["delivered"] is True and len(record["channels"]) == 2
    [mail] = mailbox.messages
    assert (mail["Subject"], mail["To"]) == (ALERT.title, "ops@example.com")
    [post] = hook.received
    for text in (body_of(mail), post["body"]["message"]):
        for part in ("raw/flights", DAY, ALERT.error, f"{UI}/runs/abc-123"):
            assert part in text, (part, text)
    assert post["body"]["title"] == ALERT.title
    assert sorted(name.split(":")[0] for name in logged(sink)[0]["deliveries"]) == [
        "json",
        "mailto",
    ]


def test_a_channel_that_is_down_is_retried_until_it_answers_and_the_other_sent_once(tmp_path):
    down = closed_port_url()  # the JSON webhook's port: nothing listens there yet
    with smtp_server() as mailbox:
        sink = AlertSink(
            log_path=str(tmp_path / "alerts.jsonl"),
            channels=f"{down.replace('http://', 'json://')} {mailbox.url()}",
        )
        first = sink.send(ALERT)
        assert first["delivered"] is False and len(mailbox.messages) == 1
        [failed] = [n for n, s in first["channels"].items() if not s["delivered"]]
        assert failed.startswith("json:") and first["delivery_error"].startswith(failed)
        sent = dt.datetime.fromisoformat(first["created_at"])
        again = sink.retry_undelivered(now=sent + dt.timedelta(seconds=31))
        assert [r["channel"] for r in again["failed"]] == [failed] and not again["delivered"]

        hook, release = Webhook(), threading.Event()  # the webhook comes back
        server = serve(hook, release, port=int(down.split(":")[2].split("/")[0]))
        try:
            back = sink.retry_undelivered(now=sent + dt.timedelta(seconds=92))
            assert [r["channel"] for r in back["delivered"]] == [failed]
            assert nothing_more_is_sent(sink, sent, (200, 10_000, 200_000))  # every channel took it
        finally:
            release.set()
            server.shutdown()
            server.server_close()

    assert len(hook.received) == 1 and len(mailbox.messages) == 1  # each exactly once
    [record] = sink.alerts()
    assert record["delivered"] is True
    assert {n: s["attempts"] for n, s in record["channels"].items()} == {
        failed: 3,
        next(n for n in record["channels"] if n != failed): 1,
    }


def test_no_url_token_or_password_of_a_channel_is_written_anywhere(tmp_path, caplog, capfd):
    port = closed_port_url().split(":")[2].split("/")[0]
    secrets = ("S3cretPassw0rd", "T0KEN-4f9a8b7c6d5e", "hunter2x")
    channels = (
        f"mailtos://etl:{secrets[0]}@127.0.0.1:{port}?from=etl@example.com&to=ops@example.com "
        f"json://127.0.0.1:{port}/hooks/{secrets[1]} "
        f"jsons://etl:{secrets[2]}@127.0.0.1:{port}/alerts"
    )
    sink = AlertSink(log_path=str(tmp_path / "alerts.jsonl"), channels=channels, expiry_hours=1)
    with caplog.at_level("DEBUG"):
        record = sink.send(ALERT)
        assert record["delivered"] is False and record["delivery_error"]
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
        assert len(sink.retry_undelivered(now=later)["failed"]) == 3
        alert_delivery_sensor(dg.build_sensor_context(resources={"alerts": sink}))
        expired = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
        assert len(sink.retry_undelivered(now=expired)["expired"]) == 3
    printed = capfd.readouterr()
    written = (tmp_path / "alerts.jsonl").read_text() + caplog.text + printed.out + printed.err
    for secret in (*secrets, *channels.split()):
        assert secret not in written, secret
    assert repr(Settings.from_env({"ETL_ALERT_CHANNELS": channels})).count("S3cret") == 0


def test_a_channel_apprise_cannot_send_to_is_refused_by_place_and_kind(monkeypatch):
    monkeypatch.setenv("ETL_ALERT_CHANNELS", "mailto://ops@example.com nosuch://T0KEN-secret")
    with pytest.raises(ValueError, match=r"channel 2 \(nosuch\) is not an address") as error:
        Settings.from_env()
    assert "T0KEN" not in str(error.value)


def test_a_log_written_before_channels_is_read_and_retried_as_the_webhook_s(tmp_path, webhook):
    """An alert logged by the previous sink (one webhook, no channel names) stays deduplicated,
    and its undelivered webhook post is tried again."""
    log = tmp_path / "alerts.jsonl"
    old = {
        **dataclasses.asdict(ALERT),
        "run_url": f"{UI}/runs/abc-123",
        "created_at": "2026-12-01T00:00:00+00:00",
        "webhook_delivered": False,
        "webhook_error": "URLError: refused",
    }
    again = {"dedup_key": ALERT.dedup_key, "delivery": "failed", "attempt": 2, "error": "refused"}
    log.write_text(json.dumps(old) + "\n" + json.dumps({**again, "at": old["created_at"]}) + "\n")
    sink = AlertSink(log_path=str(log), webhook_url=webhook.url, expiry_hours=10_000)

    assert sink.send(ALERT) is None
    [record] = sink.alerts()
    assert record["channels"]["webhook"]["attempts"] == 2 and record["delivered"] is False
    assert [r["channel"] for r in sink.retry_undelivered()["delivered"]] == ["webhook"]
    assert len(webhook.received) == 1 and sink.alerts()[0]["delivered"] is True


def test_an_error_keeps_no_piece_of_the_channel_url():
    url = "mailtos://etl:pw9@smtp.example.com:587?from=etl@example.com&to=ops@example.com"
    said = "Failed to send to mailtos://etl:pw9@smtp.example.com:587 as etl (password pw9)"
    hidden = channels.hide_secrets(said, url)
    assert all(piece not in hidden for piece in ("pw9", "smtp.example.com", "etl", url))
    assert hidden.startswith("Failed to send to mailtos://")
