"""The alert sink: where alerts go (a JSON-lines log, a Slack-compatible webhook, and any channel
apprise sends to: e-mail, Slack, Teams, PagerDuty, Discord, …), once each.

Each alert has a dedup key, and the sink sends nothing for a key already in its log. The log
outlives sensor cursors: a sensor whose cursor is reset, or whose tick died after sending, finds
the key and stays quiet. Each channel's delivery is recorded and retried on its own, so a channel
that is down never holds up or repeats another. Which failures become alerts is
`etl_assets/automation/alert_sensors.py`.
"""

import contextlib
import datetime as dt
import fcntl
import http.client
import json
import os
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import dagster as dg

from etl_assets.runtime.channels import channel_name, channel_urls, notify
from etl_assets.runtime.settings import check_webhook_url, default

RETRIES_PER_TICK = 20  # deliveries tried again per alert_delivery_sensor tick, at most
WEBHOOK = "webhook"  # the channel of ETL_ALERT_WEBHOOK_URL


@dataclass(frozen=True)
class Alert:
    """One failure, described for a person: what failed, where, and why."""

    dedup_key: str
    kind: str  # run_failure | check_failure | bad_delivery
    title: str
    job: str
    asset: str | None
    partition: str | None
    error: str
    run_id: str | None  # None for a delivery no run could take


class AlertSink(dg.ConfigurableResource):
    """Sends alerts to a JSON-lines log, and to every channel set: the Slack-compatible webhook
    (`webhook_url`) and the apprise URLs in `channels` (whitespace-separated).

    Each channel gets each alert at least once: a channel that did not take an alert is tried
    again with growing waits (`retry_undelivered`, from alert_delivery_sensor) until it takes it,
    or until the alert is `expiry_hours` old, when it is recorded as expired there and reported.
    The log holds one line per alert and one per later attempt of a channel (`"delivery"` lines);
    `alerts()` reads them back as one record per alert. A channel is named in the log by its kind
    and a digest of its URL (`mailto:3f2a9c1b`); URLs, tokens and passwords, all secrets, are
    never written anywhere.
    """

    log_path: str = str(default("alert_log"))  # build_resources makes it absolute, in the project
    webhook_url: str | None = None
    channels: str | None = None  # apprise URLs, separated by whitespace (ETL_ALERT_CHANNELS)
    ui_base_url: str = str(
        default("ui_base_url")
    )  # where people open the Dagster UI, for run links
    webhook_timeout_seconds: float = 5.0
    retry_seconds: float = 30.0  # the first wait before a channel is tried again; it doubles
    retry_max_seconds: float = 1800.0
    expiry_hours: float = 24.0

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_base_url.rstrip('/')}/runs/{run_id}"

    def destinations(self) -> dict[str, str]:
        """Every channel set, by the name the log gives it: {name: URL}."""
        found = {WEBHOOK: self.webhook_url} if self.webhook_url else {}
        return found | {channel_name(url): url for url in channel_urls(self.channels)}

    def _lines(self) -> list[dict]:
        path = Path(self.log_path)
        if not path.exists():
            return []
        lines = []
        for text in path.read_text(encoding="utf-8").splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue  # a line cut short by a crash must not stop alerting
            if isinstance(line, dict) and "dedup_key" in line:
                lines.append(line)
        return lines

    def alerts(self) -> list[dict]:
        """Every alert in the log, oldest first, with each channel's latest delivery
        (`channels`) and their sum: `delivered` (every channel took it; None without one),
        `delivery_error`, `delivery_attempts` and `delivery_expired`."""
        records: dict[str, dict] = {}
        for line in self._lines():
            if "delivery" not in line:
                if line["dedup_key"] not in records:
                    records[line["dedup_key"]] = {**line, "channels": _first_deliveries(line)}
                continue
            record = records.get(line["dedup_key"])
            channel = record and record["channels"].get(line.get("channel", WEBHOOK))
            if channel is None:
                continue
            channel["attempts"] = line.get("attempt", channel["attempts"])
            channel["delivered"] = line["delivery"] == "delivered"
            channel["error"] = line.get("error")
            channel["expired"] = line["delivery"] == "expired"
            channel["last_attempt_at"] = line["at"]
        return [_summed(record) for record in records.values()]

    def sent_keys(self) -> set[str]:
        """The dedup keys of every alert in the log."""
        return {line["dedup_key"] for line in self._lines() if "delivery" not in line}

    def send(self, alert: Alert) -> dict | None:
        """Log the alert and send it to every channel; None when its dedup key was already sent.

        The logged line says, per channel, the error of the first try (null: taken); a channel
        that did not take it is tried again by `retry_undelivered`.
        """
        with self._locked():
            if alert.dedup_key in self.sent_keys():
                return None
            record = {
                **asdict(alert),
                "run_url": self.run_url(alert.run_id) if alert.run_id else None,
                "created_at": _now().isoformat(timespec="seconds"),
            }
            record["deliveries"] = {
                name: self._deliver(name, url, record) for name, url in self.destinations().items()
            }
            self._append(record)
        return _summed({**record, "channels": _first_deliveries(record)})

    def retry_undelivered(
        self, now: dt.datetime | None = None, limit: int = RETRIES_PER_TICK
    ) -> dict[str, list[dict]]:
        """Send again, channel by channel, each alert a channel has not taken whose wait is over
        (at most `limit` deliveries).

        Returns the deliveries made now ("delivered"), those that failed again ("failed"), and
        those "expired": older than expiry_hours, no longer tried, to be reported by the caller;
        each is the alert's record with the `channel` and its `delivery_error`. The sends happen
        outside the log's lock, so a slow channel never holds up new alerts; one retrier runs at
        a time (its own lock), so no channel is sent an alert twice by two of them.
        """
        now = now or _now()
        outcome: dict[str, list[dict]] = {"delivered": [], "failed": [], "expired": []}
        channels = self.destinations()
        if not channels:
            return outcome
        with self._locked(".retry.lock"):
            due: list[tuple[dict, str]] = []
            lines: list[dict] = []
            for record in self.alerts():
                created = dt.datetime.fromisoformat(record["created_at"])
                for name, state in record["channels"].items():
                    if state["delivered"] or state["expired"] or name not in channels:
                        continue  # a channel no longer set is not tried; nor is a new one
                    if now - created > dt.timedelta(hours=self.expiry_hours):
                        outcome["expired"].append(_of_channel(record, name, state["error"]))
                        lines.append(_line(record, name, "expired", state["attempts"], now, state))
                        continue
                    last = dt.datetime.fromisoformat(
                        state["last_attempt_at"] or record["created_at"]
                    )
                    wait = min(
                        self.retry_seconds * 2 ** (state["attempts"] - 1), self.retry_max_seconds
                    )
                    if now - last >= dt.timedelta(seconds=wait) and len(due) < limit:
                        due.append((record, name))
            for record, name in due:
                state = record["channels"][name]
                error = self._deliver(name, channels[name], record)
                outcome["failed" if error else "delivered"].append(_of_channel(record, name, error))
                lines.append(
                    _line(
                        record,
                        name,
                        "failed" if error else "delivered",
                        state["attempts"] + 1,
                        now,
                        {"error": error},
                    )
                )
            with self._locked():
                for line in lines:
                    self._append(line)
        return outcome

    def _deliver(self, name: str, url: str, record: dict) -> str | None:
        """Send the alert to one channel; the error as text, secrets left out, or None."""
        return self._post(record) if name == WEBHOOK else notify(url, record)

    @contextlib.contextmanager
    def _locked(self, suffix: str = ".lock") -> Iterator[None]:
        """One holder at a time, across threads and processes (sensors, daemons): of the log
        (".lock"), or of the retry pass (".retry.lock")."""
        path = Path(self.log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + suffix), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _append(self, line: dict) -> None:
        with Path(self.log_path).open("a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")
            log.flush()
            os.fsync(log.fileno())

    def _post(self, record: dict) -> str | None:
        """POST the alert as JSON; the error as text (the URL left out) when not taken.

        The dedup key goes along as an `Idempotency-Key` header, so a receiver can drop the
        second copy of an alert whose answer was lost.
        """
        url = self.webhook_url
        if not url:
            return "no webhook is set"
        try:
            check_webhook_url(url)
        except ValueError as error:
            return str(error)
        request = urllib.request.Request(
            url,
            data=json.dumps(slack_message(record)).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": record["dedup_key"]},
        )
        try:
            # urlopen raises HTTPError (an OSError) for any answer outside 2xx.
            with urllib.request.urlopen(request, timeout=self.webhook_timeout_seconds):
                return None
        # Down, refusing, too slow, answering garbage or an error status: the alert is in the log
        # anyway, and the sensor must go on.
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return redact(f"{type(exc).__name__}: {exc}", url)


def _first_deliveries(line: dict) -> dict[str, dict]:
    """Each channel's state after the first try, from an alert's logged line (a line written
    before channels existed records the webhook's outcome alone)."""
    first = line.get("deliveries")
    if first is None:
        first = {} if line.get("webhook_delivered") is None else {WEBHOOK: line["webhook_error"]}
    return {
        name: {
            "delivered": error is None,
            "error": error,
            "attempts": 1,
            "expired": False,
            "last_attempt_at": None,
        }
        for name, error in first.items()
    }


def _summed(record: dict) -> dict:
    states = record["channels"]
    undelivered = {n: s for n, s in states.items() if not s["delivered"]}
    return {
        **record,
        "delivered": not undelivered if states else None,
        "delivery_error": "; ".join(f"{n}: {s['error']}" for n, s in undelivered.items()) or None,
        "delivery_attempts": max((s["attempts"] for s in states.values()), default=0),
        "delivery_expired": any(s["expired"] for s in states.values()),
    }


def _of_channel(record: dict, name: str, error: str | None) -> dict:
    return {**record, "channel": name, "delivery_error": error}


def _line(
    record: dict, name: str, delivery: str, attempt: int, now: dt.datetime, state: dict
) -> dict:
    return {
        "dedup_key": record["dedup_key"],
        "channel": name,
        "delivery": delivery,
        "attempt": attempt,
        "at": now.isoformat(timespec="seconds"),
        "error": state["error"],
    }


def redact(text: str, url: str) -> str:
    """The text with the webhook URL, and its secret path and query, left out."""
    parts = urllib.parse.urlsplit(url)
    for secret in (
        url,
        parts.path + (f"?{parts.query}" if parts.query else ""),
        parts.query,
        parts.netloc if "@" in parts.netloc else "",
    ):
        if secret and secret != "/":
            text = text.replace(secret, "<webhook>")
    return text


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def slack_message(record: dict) -> dict:
    """A Slack incoming-webhook body (mrkdwn text) for a logged alert."""

    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    lines = [
        f"*{esc(record['title'])}*",
        f"*Asset:* {esc(record['asset'] or '-')}",
        f"*Partition:* {esc(record['partition'] or '-')}",
        f"*Error:*\n```{esc(record['error'])}```",
    ]
    if record["run_id"]:
        lines.append(f"*Run:* <{record['run_url']}|{record['run_id'][:8]}> ({esc(record['job'])})")
    return {"text": "\n".join(lines)}
