"""Alert channels other than the webhook: apprise URLs (ETL_ALERT_CHANNELS), how the log names
them, and sending one alert to one of them. apprise does the sending, for e-mail, Slack, Teams,
PagerDuty, Discord, a JSON webhook and the rest; the retries and the dedup are the sink's
(`alerts.py`). A channel's URL holds its tokens and passwords: it is never logged, and the
libraries' own logs, which name it, are kept from every handler while a channel is used.

Plain Python: no Dagster import (the settings check channels with it).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import urllib.parse
from collections.abc import Iterator


def channel_urls(channels: str | None) -> list[str]:
    """The apprise URLs of ETL_ALERT_CHANNELS, which whitespace separates (a URL may hold
    commas: `mailto://…?to=a@example.com,b@example.com`)."""
    return (channels or "").split()


def check_alert_channels(channels: str) -> None:
    """Each URL one apprise can send to; the message names the channel by its place and kind,
    never the URL (it carries tokens and passwords)."""
    import apprise  # only when channels are set

    for number, url in enumerate(channel_urls(channels), 1):
        with libraries_quiet():
            taken = apprise.Apprise().add(url)
        if not taken:
            kind = url.split("://", 1)[0] if "://" in url else "scheme-less"
            raise ValueError(
                f"ETL_ALERT_CHANNELS: channel {number} ({kind}) is not an address apprise can "
                "send to (https://github.com/caronc/apprise/wiki lists them)"
            )


def channel_name(url: str) -> str:
    """How the log names an apprise channel: its kind and a digest of its URL, never the URL."""
    kind = url.split("://", 1)[0].lower()
    return f"{kind}:{hashlib.sha256(url.encode()).hexdigest()[:8]}"


def notify(url: str, record: dict) -> str | None:
    """Send the alert through apprise to one channel; the error as text (secrets left out) when
    it did not take it. apprise does the sending; the retries and the dedup are the sink's."""
    import apprise  # only where a channel is set

    with libraries_quiet(), apprise.LogCapture(level=logging.WARNING) as said:
        sender = apprise.Apprise()
        if not sender.add(url):
            return f"{url.split('://', 1)[0]}: not an address apprise can send to"
        try:
            taken = bool(
                sender.notify(
                    title=record["title"],
                    body=plain_message(record),
                    body_format=apprise.NotifyFormat.TEXT,
                )
            )
        except Exception as error:  # a plugin's bug must not stop the sensor
            said.write(f"{type(error).__name__}: {error}")
            taken = False
        told = said.getvalue()
    if taken:
        return None
    last = [line for line in told.splitlines() if line.strip()]
    return hide_secrets(last[-1].split(" - ", 2)[-1] if last else "not sent", url)


@contextlib.contextmanager
def libraries_quiet() -> Iterator[None]:
    """While a channel is sent to, apprise's log (which names the URL it loads) and urllib3's
    (which names the path it posts to, a token) reach no handler but the sink's capture."""
    loggers = [logging.getLogger(name) for name in ("apprise", "urllib3")]
    kept = [(each, each.propagate, logging.NullHandler()) for each in loggers]
    for each, _propagate, null in kept:
        each.propagate = False
        each.addHandler(null)
    try:
        yield
    finally:
        for each, propagate, null in kept:
            each.removeHandler(null)
            each.propagate = propagate


def hide_secrets(text: str, url: str) -> str:
    """The text without any part of the URL that may be secret: every piece between its
    delimiters of three characters or more, but its kind (hosts and names too, more than
    needed; a piece of one or two characters is left, or no text would survive)."""
    kind = url.split("://", 1)[0]
    pieces = {urllib.parse.unquote(p) for p in re.split(r"[:/@?&=#,;+]", url)} | {url}
    for piece in sorted(pieces, key=len, reverse=True):
        if len(piece) >= 3 and piece != kind:
            text = text.replace(piece, "<secret>")
    return text


def plain_message(record: dict) -> str:
    """The alert as lines of text, for e-mail and the channels apprise sends to."""
    lines = [
        f"Asset: {record['asset'] or '-'}",
        f"Partition: {record['partition'] or '-'}",
        f"Error: {record['error']}",
    ]
    if record["run_id"]:
        lines.append(f"Run: {record['run_url']} ({record['job']})")
    return "\n".join(lines)
