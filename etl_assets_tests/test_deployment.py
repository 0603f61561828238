"""The production deployment (deploy/): code server, webserver and daemon as separate processes,
started with the commands of their systemd units, on the PostgreSQL instance of a real server;
and nginx in front of the webserver, as deploy/nginx/ configures it, letting in only a login."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from etl_assets.definitions import defs
from etl_assets.operations.demo import ACTIVE, end_group
from etl_assets.operations.report import latest_check_outcomes
from etl_assets.pipeline import readers
from etl_assets.pipeline.landing import land
from etl_assets_tests.support.servers import (
    NGINX,
    free_port,
    graphql,
    nginx_proxy,
    postgres_bin,
    postgres_server,
    wait_for,
)

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        postgres_bin() is None,
        reason="needs Debian's postgresql package "
        "(apt-get install -y postgresql); .ci/run installs it",
    ),
]


def unit_command(unit: str, env: dict[str, str], port: int) -> list[str]:
    """A unit's ExecStart, with this checkout for /opt/etl-assets and the environment filled in."""
    text = (DEPLOY / "systemd" / f"etl-assets-{unit}.service").read_text()
    [line] = [each for each in text.splitlines() if each.startswith("ExecStart=")]
    command = line.removeprefix("ExecStart=").replace("/opt/etl-assets/.venv/bin", str(BIN))
    command = command.replace("/opt/etl-assets", str(REPO)).replace("-p 3000", f"-p {port}")
    return re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], command).split()


@contextlib.contextmanager
def service(unit: str, env: dict[str, str], log_dir: Path, port: int = 0):
    with open(log_dir / f"{unit}.log", "a") as log:
        process = subprocess.Popen(
            unit_command(unit, env, port),
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        end_group(process)


DAEMONS = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"


def serving(env: dict[str, str]) -> bool:
    """Whether the code server answers Dagster's own health check."""
    checked = subprocess.run(
        [str(BIN / "dagster"), "api", "grpc-health-check", "--port", env["ETL_CODE_SERVER_PORT"]],
        env=env,
        capture_output=True,
        timeout=60,
    )
    return checked.returncode == 0


def daemons_healthy(port: int) -> bool:
    try:
        statuses = graphql(port, DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
    except OSError:
        return False
    return bool(statuses) and all(s["healthy"] for s in statuses)


@contextlib.contextmanager
def server_instance(tmp_path: Path, monkeypatch):
    """A real PostgreSQL server and the deployment's instance on it: the services' environment
    (this checkout's warehouse and landing zone under tmp_path) and DAGSTER_HOME."""
    with postgres_server() as postgres:
        for name, value in postgres.env.items():  # this process reads the instance too
            monkeypatch.setenv(name, value)
        home = tmp_path / "home"
        home.mkdir()
        shutil.copy(DEPLOY / "postgres" / "dagster.yaml", home / "dagster.yaml")
        yield (
            {
                **os.environ,
                **postgres.env,
                "DAGSTER_HOME": str(home),
                "ETL_CODE_SERVER_HOST": "127.0.0.1",
                "ETL_CODE_SERVER_PORT": str(free_port()),
                "ETL_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
                "ETL_LANDING_DIR": str(tmp_path / "landing"),
                "ETL_ALERT_LOG": str(tmp_path / "alerts.jsonl"),
            },
            home,
        )


def test_the_three_services_on_postgres_survive_a_daemon_restart(tmp_path, monkeypatch):
    with server_instance(tmp_path, monkeypatch) as (env, home):
        first, second = dt.date(2013, 1, 1), dt.date(2013, 1, 2)
        land(tmp_path / "landing", first, first)
        loaded = subprocess.run(
            [str(BIN / "etl-assets"), "run", "--start", str(first), "--end", str(first)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert loaded.returncode == 0, loaded.stdout[-2000:] + loaded.stderr[-2000:]
        port = free_port()
        with service("code-server", env, tmp_path), service("webserver", env, tmp_path, port):
            with service("daemon", env, tmp_path):
                wait_for("healthy daemons", lambda: daemons_healthy(port), timeout=240)
            # The daemon is gone; a new one starts on the same instance.
            with service("daemon", env, tmp_path):
                wait_for("healthy daemons again", lambda: daemons_healthy(port), timeout=240)
                land(tmp_path / "landing", second, second)  # the restarted daemon's sensor

                def loaded_by_the_daemon():
                    with dg.DagsterInstance.from_config(str(home)) as instance:
                        runs = instance.get_runs(
                            filters=dg.RunsFilter(tags={"dagster/partition": str(second)})
                        )
                        assert not [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
                        return any(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)

                wait_for("the restarted daemon's sensor run", loaded_by_the_daemon, timeout=300)

                def marts_done_and_idle():
                    # The marts automation follows the ingest run; stopping the daemon while
                    # its run is queued would leave that run's checks planned, never evaluated.
                    with dg.DagsterInstance.from_config(str(home)) as instance:
                        active = instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE))
                        return not active and bool(
                            instance.fetch_materializations(
                                dg.AssetRecordsFilter(
                                    asset_key=dg.AssetKey(["marts", "fct_flights"]),
                                    asset_partitions=[str(second)],
                                ),
                                limit=1,
                            ).records
                        )

                wait_for(
                    "the daemon's day published",
                    lambda: readers.covers(tmp_path / "warehouse.marts.duckdb", second),
                    timeout=300,
                )
                wait_for(
                    "the marts of the daemon's day, no run active", marts_done_and_idle, timeout=300
                )

        # Everything the first run recorded is still there, next to the daemon's run.
        with dg.DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs()
            assert {r.job_name for r in runs} >= {"etl_job", "daily_ingest_job"}
            assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}, [
                (r.job_name, r.status) for r in runs
            ]
            assert {(r.job_name, r.status) for r in runs} >= {
                ("etl_job", dg.DagsterRunStatus.SUCCESS),
                ("daily_ingest_job", dg.DagsterRunStatus.SUCCESS),
            }
            for day in (first, second):  # one by the CLI run, one by the daemon's run
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(
                        asset_key=dg.AssetKey(["raw", "flights"]), asset_partitions=[str(day)]
                    ),
                    limit=5,
                ).records
                assert len(records) == 1, (day, records)
            for day in (first, second):  # the CLI run's marts, then the automation's
                assert instance.fetch_materializations(
                    dg.AssetRecordsFilter(
                        asset_key=dg.AssetKey(["marts", "fct_flights"]), asset_partitions=[str(day)]
                    ),
                    limit=1,
                ).records, day
            outcomes = latest_check_outcomes(defs(), instance)
            assert len(outcomes) == 90 and {o.outcome for o in outcomes} <= {"passed", "WARN"}


# --- who can reach the UI: deploy/nginx/ in front of the webserver on loopback ----------------

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
AIRLINES_RUN = {  # one unpartitioned asset of the project's job: a run that needs no day
    "selector": {
        "repositoryLocationName": "etl_assets",
        "repositoryName": "__repository__",
        "jobName": "etl_job",
        "assetSelection": [{"path": ["raw", "airlines"]}],
    },
    "mode": "default",
    "executionMetadata": {"tags": [{"key": "launched_through", "value": "the proxy"}]},
}


def through(proxy, method: str, path: str, login: tuple[str, str] | None, body: dict | None = None):
    """A request to the proxy over TLS (its certificate trusted), with a login or none."""
    context = ssl.create_default_context(cafile=str(proxy.certificate))
    connection = http.client.HTTPSConnection("127.0.0.1", proxy.https_port, context=context)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if login:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(login).encode()).decode()
    try:
        connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def listeners(port: int) -> set[str]:
    """The local addresses of the sockets listening on the port (the kernel's tables)."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    raw = bytes.fromhex(address)
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                    found.add(socket.inet_ntop(family, words))
    return found


def other_addresses() -> set[str]:
    """This machine's IPv4 addresses other than loopback."""
    found = set()
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(info[4][0])
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: the route's source address
        found.add(probe.getsockname()[0])
    return {a for a in found if not a.startswith("127.")}


@pytest.mark.skipif(
    not NGINX.exists() or shutil.which("htpasswd") is None,
    reason="needs Debian's nginx and apache2-utils (apt-get install -y nginx apache2-utils); "
    ".ci/run installs them",
)
def test_only_people_with_a_login_reach_the_ui_and_its_api(tmp_path, monkeypatch):
    password = secrets.token_urlsafe(16)
    with server_instance(tmp_path, monkeypatch) as (env, home):
        land(tmp_path / "landing", dt.date(2013, 1, 1), dt.date(2013, 1, 1))
        port = free_port()
        with service("code-server", env, tmp_path):
            # The webserver keeps a location it could not load: start it once the code serves.
            wait_for("the code server", lambda: serving(env), timeout=240)
            with (
                service("webserver", env, tmp_path, port),
                service("daemon", env, tmp_path),
                nginx_proxy(
                    DEPLOY / "nginx" / "etl-assets.conf",
                    tmp_path / "nginx",
                    port,
                    {"operator": password},
                ) as proxy,
            ):
                wait_for("healthy daemons", lambda: daemons_healthy(port), timeout=240)

                def runs() -> list:  # the test's launches (the daemon's automation runs too)
                    with dg.DagsterInstance.from_config(str(home)) as instance:
                        return instance.get_runs(
                            filters=dg.RunsFilter(tags={"launched_through": "the proxy"})
                        )

                # Without a login, or with a wrong one: 401 for the page and for a launch, no run.
                for login in (None, ("operator", "not-" + password), ("intruder", password)):
                    status, _ = through(proxy, "GET", "/", login)
                    assert status == 401, login
                    launch = {"query": LAUNCH, "variables": {"params": AIRLINES_RUN}}
                    status, _ = through(proxy, "POST", "/graphql", login, launch)
                    assert status == 401, login
                assert runs() == []
                with contextlib.closing(
                    http.client.HTTPConnection("127.0.0.1", proxy.http_port)
                ) as plain:
                    plain.request("GET", "/graphql")
                    assert plain.getresponse().status == 301  # plain HTTP only points to HTTPS

                # With it: the UI's page, and a launched run that succeeds.
                status, page = through(proxy, "GET", "/", ("operator", password))
                assert status == 200 and re.search(r"<title[^>]*>Dagster</title>", page), page[:300]
                scripts = re.findall(r'<script src="(/[^"]+\.js)"', page)  # the UI's code
                assert scripts, page[:300]
                status, code = through(proxy, "GET", scripts[0], ("operator", password))
                assert status == 200 and len(code) > 1000
                assert through(proxy, "GET", scripts[0], None)[0] == 401
                launch = {"query": LAUNCH, "variables": {"params": AIRLINES_RUN}}
                status, answer = through(proxy, "POST", "/graphql", ("operator", password), launch)
                assert status == 200, answer
                launched = json.loads(answer)["data"]["launchRun"]
                assert launched["__typename"] == "LaunchRunSuccess", launched
                run_id = launched["run"]["runId"]

                def finished():
                    [run] = [r for r in runs() if r.run_id == run_id]
                    return run.status if run.is_finished else None

                assert wait_for("the launched run", finished, timeout=300) == (
                    dg.DagsterRunStatus.SUCCESS
                )

                # A password rotated, then a user removed, as the README says: from the next
                # request on, without a reload of nginx.
                rotated = secrets.token_urlsafe(16)
                subprocess.run(
                    ["htpasswd", "-B", "-i", str(proxy.passwords), "operator"],
                    input=rotated,
                    text=True,
                    check=True,
                )
                assert through(proxy, "GET", "/", ("operator", password))[0] == 401
                assert through(proxy, "GET", "/", ("operator", rotated))[0] == 200
                subprocess.run(["htpasswd", "-D", str(proxy.passwords), "operator"], check=True)
                assert through(proxy, "GET", "/", ("operator", rotated))[0] == 401

                # The webserver itself answers on loopback alone.
                assert listeners(port) == {"127.0.0.1"}
                for address in other_addresses():
                    with socket.socket() as sock:
                        sock.settimeout(5)
                        assert sock.connect_ex((address, port)) != 0, address
