"""`etl-assets soak`: the bundled year through the sensor path under `dagster dev`, with faults.

Like the demo (`etl_assets/operations/demo.py`) it delivers one day at a time into an empty
warehouse and a fresh instance, and stops by itself. On the way it injects what production brings:

- bad files: three days' flights files are cut short after delivery (their manifests then
  disagree), and delivered whole again once their runs have failed;
- a killed run: the worker process of a running run is sent SIGKILL; the daemon's run monitoring
  fails the run and its run retries re-execute it;
- a webhook outage: the alert webhook (a local server) is down until the first alert, then
  answers 500 to the next post, then recovers.

At the end it counts, from the warehouse, the manifests and the instance: files processed, runs,
failures, alerts sent and delivered, rows lost and duplicates. Both of the last must be 0.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb

from etl_assets.operations.demo import ACTIVE, caught_up, dagster_dev
from etl_assets.operations.instance import instance_at
from etl_assets.pipeline import backends, extract
from etl_assets.pipeline.contract import DAILY_FEEDS
from etl_assets.pipeline.landing import (
    daily_file,
    deliver,
    manifest_file,
    read_source,
    replay,
    split_by_day,
)
from etl_assets.runtime import dagster_adapter
from etl_assets.runtime.alerts import AlertSink


class Webhook:
    """An alert receiver on 127.0.0.1 whose answer the soak sets: down, an error, or 200."""

    def __init__(self, port: int):
        self.port, self.status = port, 200
        self.received: list[tuple[str, int]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/soak"

    @property
    def live(self) -> bool:
        return self._server is not None

    def up(self, status: int) -> None:
        self.status = status
        if self._server is None:
            hook = self

            class Handler(BaseHTTPRequestHandler):
                def do_POST(self):
                    self.rfile.read(int(self.headers["Content-Length"]))
                    hook.received.append((self.headers["Idempotency-Key"], hook.status))
                    self.send_response(hook.status)
                    self.end_headers()

                def log_message(self, *args):
                    pass

            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
            threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@dataclass
class Faults:
    """The faults of one soak: which days are cut short, which run is killed, the outage."""

    days: int
    bad: list[dt.date] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)  # run ids whose worker was killed

    @property
    def cut_at(self) -> set[int]:  # the numbers of the days cut short (1-based)
        return {max(1, round(self.days * share)) for share in (0.2, 0.5, 0.8)}

    @property
    def kill_at(self) -> int:
        return max(1, round(self.days * 0.35))


def run_soak(
    start: dt.date,
    end: dt.date,
    *,
    every: float,
    port: int,
    webhook_port: int,
    home: Path,
    warehouse: Path,
    published: Path,
    landing: Path,
    alert_log: Path,
    project: Path,
    timeout: float,
    echo: Callable[[str], None] = print,
) -> int:
    webhook = Webhook(webhook_port)  # down: nothing listens on its port yet
    faults = Faults(days=(end - start).days + 1)
    sink = AlertSink(log_path=str(alert_log))
    began = time.monotonic()

    def outage() -> None:
        """Down until the first alert is logged, then answering 500 until it has, then up."""
        if webhook.status == 200 and webhook.live:
            return
        if not webhook.live and sink.alerts():
            webhook.up(500)
            echo("  fault: the webhook is reachable again but answers 500")
        elif webhook.live and any(status == 500 for _key, status in webhook.received):
            webhook.up(200)
            echo("  the webhook is back")

    def inject(day: dt.date, number: int) -> None:
        if number in faults.cut_at:
            path = daily_file(landing, "flights", day)
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])  # the manifest says otherwise
            faults.bad.append(day)
            echo(f"  fault: {path.name} cut short after delivery")
        if number == faults.kill_at:
            killed = kill_a_running_worker(home, timeout=120)
            faults.killed += [killed] if killed else []
            echo(
                f"  fault: run {killed[:8]}'s worker killed"
                if killed
                else "  fault: no run was running to kill"
            )
        outage()

    def until(what: str, done: Callable[[], bool], deadline: float) -> bool:
        while not done():
            if time.monotonic() > deadline:
                echo(f"error: {what} not reached after {timeout:.0f}s; see {home}")
                return False
            outage()
            time.sleep(5)
        return True

    env = {**os.environ, "ETL_ALERT_WEBHOOK_URL": webhook.url}
    try:
        with (
            dagster_dev(project, port, home / "dagster_dev.log", env=env),
            instance_at(home) as instance,
        ):
            echo(f"dagster dev is up: open http://127.0.0.1:{port}")
            replay(landing, start, end, every=every, progress=echo, after_day=inject)
            deadline = time.monotonic() + timeout
            echo("all days delivered; waiting for the cut days' runs to fail")
            if until(
                "the cut days' failures", lambda: failed_days(instance) >= set(faults.bad), deadline
            ):
                for day in faults.bad:
                    redeliver_whole(landing, day)
                echo(f"  repair: {', '.join(map(str, faults.bad))} delivered whole again")
                echo("waiting for the pipeline and the alerts to catch up")
                until(
                    "catching up",
                    lambda: (
                        caught_up(warehouse, published, landing, end)
                        and not instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE))
                        and all(a["delivered"] for a in sink.alerts())
                    ),
                    deadline,
                )
            runs = instance.get_runs()
    finally:
        webhook.down()
    report = account(warehouse, landing, runs, sink, webhook, faults, time.monotonic() - began)
    echo(report.render())
    return 0 if report.ok else 1


def failed_days(instance: dg.DagsterInstance) -> set[dt.date]:
    """The days of failed daily runs."""
    return {
        dt.date.fromisoformat(r.tags["dagster/partition"])
        for r in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        if r.tags.get("dagster/partition")
    }


def redeliver_whole(landing: Path, day: dt.date) -> None:
    """The day's flights file delivered again, whole, from the bundled source."""
    rows = split_by_day(read_source("flights")).get(day)
    if rows is None:
        raise ValueError(f"the bundled flights hold no rows for {day}")
    deliver(daily_file(landing, "flights", day), rows)


def kill_a_running_worker(home: Path, timeout: float) -> str | None:
    """SIGKILL the worker process of a run that is running now; its run id, or None."""
    deadline = time.monotonic() + timeout
    with instance_at(home) as instance:
        while time.monotonic() < deadline:
            for run in instance.get_runs(
                filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
            ):
                pid = dagster_adapter.run_worker_pid(instance, run.run_id)
                if pid is None or pid == os.getpid():
                    continue
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:  # it has just finished
                    continue
                return run.run_id
            time.sleep(0.2)
    return None


@dataclass
class Report:
    seconds: float
    faults: Faults
    files: int
    files_loaded: int
    runs: int
    failed_runs: int
    retried_runs: int
    alerts: int
    alerts_delivered: int
    webhook_posts: dict[int, int]
    duplicate_deliveries: int
    rows_expected: int
    rows_lost: int
    duplicates: int

    @property
    def ok(self) -> bool:
        return (
            self.rows_lost == 0
            and self.duplicates == 0
            and self.files_loaded == self.files
            and self.alerts_delivered == self.alerts
            and self.duplicate_deliveries == 0
        )

    def render(self) -> str:
        posts = ", ".join(
            f"{n} answered {status}" for status, n in sorted(self.webhook_posts.items())
        )
        return "\n".join(
            [
                f"soak {'passed' if self.ok else 'FAILED'} in {self.seconds / 60:.1f} min",
                f"  faults              {len(self.faults.bad)} day(s) cut short "
                f"({', '.join(map(str, self.faults.bad))}), {len(self.faults.killed)} run "
                f"worker(s) killed, the webhook down then answering 500",
                f"  files processed     {self.files_loaded:,} of {self.files:,} delivered",
                f"  runs                {self.runs:,} ({self.retried_runs} re-executions)",
                f"  failed runs         {self.failed_runs:,}",
                f"  alerts sent         {self.alerts:,}, {self.alerts_delivered:,} taken by the "
                f"webhook ({posts or 'no posts'}; {self.duplicate_deliveries} taken twice)",
                f"  rows                {self.rows_expected:,} delivered (manifests)",
                f"  rows lost           {self.rows_lost:,}",
                f"  duplicates          {self.duplicates:,}",
            ]
        )


def account(
    warehouse: Path,
    landing: Path,
    runs: Sequence[dg.DagsterRun],
    sink: AlertSink,
    webhook: Webhook,
    faults: Faults,
    seconds: float,
) -> Report:
    """What the warehouse holds against what was delivered, with the instance's and alerts'."""
    manifests = {}
    for contract in DAILY_FEEDS:
        for path in sorted((landing / contract.name).glob("*.csv")):
            manifests[(contract.name, dt.date.fromisoformat(path.stem))] = json.loads(
                manifest_file(path).read_text()
            )["rows"]
    files = [p for p in landing.rglob("*.csv") if not p.name.startswith(".")]
    loaded = extract.loaded_identities(
        warehouse, [extract.delivered(landing, p, None).identity for p in files]
    )
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        lost = duplicates = 0
        for contract in DAILY_FEEDS:
            raw = dict(
                conn.execute(
                    f"SELECT delivery_date, count(*) FROM raw.{contract.name} GROUP BY 1"
                ).fetchall()
            )
            split = dict(
                conn.execute(
                    f"SELECT d, sum(n) FROM (SELECT {contract.partition_column} AS d, "
                    f"count(*) AS n FROM clean.{contract.name} GROUP BY 1 UNION ALL "
                    f"SELECT delivery_date, count(*) FROM quarantine.{contract.name} GROUP BY 1) "
                    f"GROUP BY 1"
                ).fetchall()
            )
            for (feed, day), expected in manifests.items():
                if feed != contract.name:
                    continue
                # against the manifest: rows that did not reach raw, or clean + quarantine;
                # and rows that are there more often than delivered
                got, cleaned = raw.get(day, 0), split.get(day, 0)
                lost += max(expected - min(got, cleaned), 0)
                duplicates += max(max(got, cleaned) - expected, 0)
            keys = ", ".join(contract.key)
            duplicates += backends.one_row(
                conn.execute(
                    f"SELECT count(*) - count(DISTINCT ({keys})) FROM clean.{contract.name}"
                )
            )[0]
    taken = [key for key, status in webhook.received if 200 <= status < 300]
    posts: dict[int, int] = {}
    for _key, status in webhook.received:
        posts[status] = posts.get(status, 0) + 1
    alerts = sink.alerts()
    return Report(
        seconds=seconds,
        files=len(files),
        files_loaded=len(loaded),
        faults=faults,
        runs=len(runs),
        failed_runs=sum(r.status == dg.DagsterRunStatus.FAILURE for r in runs),
        retried_runs=sum(r.parent_run_id is not None for r in runs),
        alerts=len(alerts),
        alerts_delivered=sum(bool(a["delivered"]) for a in alerts),
        webhook_posts=posts,
        duplicate_deliveries=len(taken) - len(set(taken)),
        rows_expected=sum(manifests.values()),
        rows_lost=lost,
        duplicates=duplicates,
    )
