"""The alert sink: where alerts go (a JSON-lines log, and a Slack-compatible webhook), once each.

Each alert has a dedup key, and the sink sends nothing for a key already in its log. The log
outlives sensor cursors: a sensor whose cursor is reset, or whose tick died after sending, finds
the key and stays quiet. Which failures become alerts is `etl_assets/automation/alert_sensors.py`.
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

from etl_assets.runtime.settings import check_webhook_url, default

RETRIES_PER_TICK = 20  # alerts posted again per alert_delivery_sensor tick, at most


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
    """Sends alerts to a JSON-lines log, and to a Slack-compatible webhook when one is set.

    The webhook gets each alert at least once: an alert it did not take is tried again with
    growing waits (`retry_undelivered`, from alert_delivery_sensor) until it takes it, or until
    the alert is `webhook_expiry_hours` old, when it is recorded as expired and reported. The log
    holds one line per alert and one per later delivery attempt (`"delivery"` lines); `alerts()`
    reads them back as one record per alert. The URL, a secret, is never written anywhere.
    """

    log_path: str = str(default("alert_log"))  # build_resources makes it absolute, in the project
    webhook_url: str | None = None
    ui_base_url: str = str(
        default("ui_base_url")
    )  # where people open the Dagster UI, for run links
    webhook_timeout_seconds: float = 5.0
    webhook_retry_seconds: float = 30.0  # the first wait before trying again; it doubles
    webhook_retry_max_seconds: float = 1800.0
    webhook_expiry_hours: float = 24.0

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_base_url.rstrip('/')}/runs/{run_id}"

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
        """Every alert in the log, oldest first, with the outcome of its latest delivery."""
        records: dict[str, dict] = {}
        for line in self._lines():
            if "delivery" not in line:
                records.setdefault(line["dedup_key"], {**line, "webhook_attempts": 1})
            elif line["dedup_key"] in records:
                record = records[line["dedup_key"]]
                record["webhook_attempts"] = line.get("attempt", record["webhook_attempts"])
                record["webhook_delivered"] = line["delivery"] == "delivered"
                record["webhook_error"] = line.get("error")
                record["webhook_expired"] = line["delivery"] == "expired"
                record["last_attempt_at"] = line["at"]
        return list(records.values())

    def sent_keys(self) -> set[str]:
        """The dedup keys of every alert in the log."""
        return {line["dedup_key"] for line in self._lines() if "delivery" not in line}

    def send(self, alert: Alert) -> dict | None:
        """Log the alert and post it to the webhook; None when its dedup key was already sent.

        `webhook_delivered` in the log line is null without a webhook, else whether it took it
        the first time; one it did not take is tried again by `retry_undelivered`.
        """
        with self._locked():
            if alert.dedup_key in self.sent_keys():
                return None
            record = {
                **asdict(alert),
                "run_url": self.run_url(alert.run_id) if alert.run_id else None,
                "created_at": _now().isoformat(timespec="seconds"),
                "webhook_delivered": None,
                "webhook_error": None,
            }
            if self.webhook_url:
                record["webhook_error"] = self._post(record)
                record["webhook_delivered"] = record["webhook_error"] is None
            self._append(record)
        return record

    def retry_undelivered(
        self, now: dt.datetime | None = None, limit: int = RETRIES_PER_TICK
    ) -> dict[str, list[dict]]:
        """Post again each alert the webhook has not taken whose wait is over (at most `limit`).

        Returns the alerts "delivered" now, those "failed" again, and those "expired": older
        than webhook_expiry_hours, no longer tried, and to be reported by the caller. The posts
        happen outside the log's lock, so a slow webhook never holds up new alerts; one retrier
        runs at a time (its own lock), so no alert is posted twice by two of them.
        """
        now = now or _now()
        outcome: dict[str, list[dict]] = {"delivered": [], "failed": [], "expired": []}
        if not self.webhook_url:
            return outcome
        with self._locked(".retry.lock"):
            due: list[dict] = []
            for record in self.alerts():
                if record["webhook_delivered"] is not False or record.get("webhook_expired"):
                    continue
                created = dt.datetime.fromisoformat(record["created_at"])
                if now - created > dt.timedelta(hours=self.webhook_expiry_hours):
                    outcome["expired"].append(record)
                    continue
                last = dt.datetime.fromisoformat(
                    record.get("last_attempt_at") or record["created_at"]
                )
                wait = min(
                    self.webhook_retry_seconds * 2 ** (record["webhook_attempts"] - 1),
                    self.webhook_retry_max_seconds,
                )
                if now - last >= dt.timedelta(seconds=wait) and len(due) < limit:
                    due.append(record)
            lines = [
                {
                    "dedup_key": r["dedup_key"],
                    "delivery": "expired",
                    "attempt": r["webhook_attempts"],
                    "at": now.isoformat(timespec="seconds"),
                    "error": r["webhook_error"],
                }
                for r in outcome["expired"]
            ]
            for record in due:
                error = self._post(record)
                lines.append(
                    {
                        "dedup_key": record["dedup_key"],
                        "delivery": "failed" if error else "delivered",
                        "attempt": record["webhook_attempts"] + 1,
                        "at": now.isoformat(timespec="seconds"),
                        "error": error,
                    }
                )
                outcome["failed" if error else "delivered"].append(
                    {**record, "webhook_error": error}
                )
            with self._locked():
                for line in lines:
                    self._append(line)
        return outcome

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
