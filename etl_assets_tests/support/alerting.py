"""A Slack-like webhook and an SMTP server on loopback that record what they are sent, and the
alert the tests send."""

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from etl_assets.runtime.alerts import Alert, AlertSink

UI = "http://dagster.test:3000"
DAY = "2013-01-02"


@dataclass
class Webhook:
    """What the webhook answers (status, after delay seconds) and every POST it received."""

    url: str = ""
    status: int = 200
    delay: float = 0.0
    received: list[dict] = field(default_factory=list)

    @property
    def bodies(self) -> list[dict]:
        return [post["body"] for post in self.received]


def serve(hook: "Webhook", release: threading.Event, port: int = 0) -> ThreadingHTTPServer:
    """A Slack-like incoming webhook on 127.0.0.1 that records every POST it gets."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.received.append(
                {
                    "path": self.path,
                    "type": self.headers["Content-Type"],
                    "key": self.headers["Idempotency-Key"],
                    "body": json.loads(body),
                    "status": hook.status,
                }
            )
            release.wait(hook.delay)
            self.send_response(hook.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    # shutdown() waits up to one poll interval (0.5 s by default) for the loop to notice
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    ).start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/services/etl"
    return server


@contextmanager
def webhook_server() -> Iterator[Webhook]:
    """A webhook answering 200 until told otherwise (its status and delay can change)."""
    hook, release = Webhook(), threading.Event()
    server = serve(hook, release)
    try:
        yield hook
    finally:
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


def sink_for(tmp_path, webhook: Webhook) -> AlertSink:
    """A sink logging under tmp_path and posting to the webhook, with a short timeout."""
    return AlertSink(
        log_path=str(tmp_path / "alerts" / "alerts.jsonl"),
        webhook_url=webhook.url,
        ui_base_url=UI + "/",
        webhook_timeout_seconds=0.5,
    )


ALERT = Alert(
    dedup_key="run:abc",
    kind="run_failure",
    title="Run of etl_job failed: raw/flights",
    job="etl_job",
    asset="raw/flights",
    partition=DAY,
    error="ValueError: flights_2013-01-02.csv is missing",
    run_id="abc-123",
)


@dataclass
class Mailbox:
    """An SMTP server on 127.0.0.1 (aiosmtpd) and every message it was given."""

    port: int
    messages: list[email.message.EmailMessage] = field(default_factory=list)

    def url(self) -> str:
        """The apprise URL of an e-mail channel through this server (plain SMTP, no login)."""
        return f"mailto://127.0.0.1:{self.port}?from=etl@example.com&to=ops@example.com"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = Mailbox(port)

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802  aiosmtpd names it
            box.messages.append(
                email.message_from_bytes(envelope.content, policy=email.policy.default)
            )
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
