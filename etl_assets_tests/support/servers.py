"""Real servers for tests and benchmarks, on loopback: PostgreSQL, Redis, Celery workers,
`dagster dev` and nginx.

Debian's `postgresql` package provides the binaries; initdb and postgres refuse to run as root, so
as root they run as the `postgres` user the package creates, on a folder it owns. Debian's
`redis-server` package provides Redis, `nginx` nginx and `apache2-utils` its `htpasswd`. `.ci/run`
installs them when they are missing.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries, the newest version, if installed."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
    )
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def libpq(self) -> str:
        """The server as a libpq connection string."""
        return (
            f"dbname={self.database} host={self.host} port={self.port} user={self.user} "
            f"password={self.password}"
        )

    @property
    def ducklake_catalog(self) -> str:
        """The server as a DuckLake catalog (ETL_DUCKLAKE_CATALOG)."""
        return f"postgres:{self.libpq}"

    def create_database(self, name: str) -> Postgres:
        """A new, empty database on the same server."""
        import psycopg2

        conn = psycopg2.connect(self.libpq)
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return Postgres(self.host, self.port, self.user, self.password, name)

    @property
    def env(self) -> dict[str, str]:
        """The variables deploy/postgres/dagster.yaml reads."""
        return {
            "ETL_PG_HOST": self.host,
            "ETL_PG_PORT": str(self.port),
            "ETL_PG_USER": self.user,
            "ETL_PG_PASSWORD": self.password,
            "ETL_PG_DB": self.database,
        }


def _as_postgres(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        argv = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(_quote(a) for a in argv)]
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


@contextlib.contextmanager
def postgres_server(timeout: float = 60.0) -> Iterator[Postgres]:
    """Start a PostgreSQL server in a temporary folder, yield how to reach it, then remove it all.

    The folder is directly under the system's temporary directory, where the `postgres` user can
    reach it (a pytest tmp_path sits below folders only root may enter).
    """
    binaries = postgres_bin()
    if binaries is None:
        raise FileNotFoundError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql "
            "(apt-get install -y postgresql)"
        )
    root = Path(tempfile.mkdtemp(prefix="etl-postgres-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        root.chmod(0o755)
    password = "etl-test"
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres")
    init = _as_postgres(
        [
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "etl",
            "-A",
            "scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
        ],
        timeout=timeout,
    )
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed: {init.stderr or init.stdout}")
    port = free_port()
    log = root / "postgres.log"
    start = _as_postgres(
        [
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            str(int(timeout)),
            "-o",
            f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off -c max_connections=200",
            "start",
        ],
        timeout=timeout + 10,
    )
    if start.returncode != 0:
        raise RuntimeError(
            f"postgres did not start: {start.stderr or start.stdout}\n"
            f"{log.read_text() if log.exists() else ''}"
        )
    try:
        server = Postgres("127.0.0.1", port, "etl", password, "dagster")
        env = {**os.environ, "PGPASSWORD": password}
        deadline = time.monotonic() + timeout
        while True:
            created = subprocess.run(
                [
                    str(binaries / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "etl",
                    server.database,
                ],
                capture_output=True,
                text=True,
                env=env,
            )
            if created.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"createdb failed: {created.stderr}")
            time.sleep(0.2)
        yield server
    finally:
        _as_postgres(
            [str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], timeout=timeout
        )
        shutil.rmtree(root, ignore_errors=True)


def redis_bin() -> Path | None:
    """Debian's redis-server, if installed."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    return Path(found) if found else None


@contextlib.contextmanager
def redis_server(timeout: float = 30.0) -> Iterator[str]:
    """A Redis server on a free loopback port, without persistence; yields its URL, then ends it."""
    binary = redis_bin()
    if binary is None:
        raise FileNotFoundError("redis-server not found (apt-get install -y redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [
            str(binary),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server ended: {process.stdout.read()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_for("redis-server to answer", answers, timeout, every=0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        from etl_assets.operations.demo import end_group

        end_group(process)


@contextlib.contextmanager
def celery_worker(
    name: str, env: dict[str, str], log: Path, timeout: float = 120.0
) -> Iterator[subprocess.Popen]:
    """A dagster-celery worker (one step at a time) taking tasks, then ended with its whole
    process group. env must hold DAGSTER_HOME and ETL_CELERY_BROKER; the worker reads the
    settings file the runs read (ETL_CELERY_SETTINGS in env, else the project's)."""
    import sys

    from etl_assets.operations.demo import end_group
    from etl_assets.runtime.settings import Settings

    bin_dir = str(Path(sys.executable).parent)  # dagster-celery starts `celery` from PATH
    env = {**env, "PATH": bin_dir + os.pathsep + env.get("PATH", "")}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                str(Path(bin_dir) / "dagster-celery"),
                "worker",
                "start",
                "-A",
                "dagster_celery.app",
                "-y",
                str(Settings.from_env(env).celery_settings),
                "-n",
                name,
                "--",
                "--concurrency",
                "1",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"worker {name} ended:\n{log.read_text()[-3000:]}")
            return " ready." in log.read_text()

        wait_for(f"celery worker {name} to be ready", ready, timeout, every=0.2)
        yield process
    finally:
        end_group(process)


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    """The data of a query to the Dagster webserver on 127.0.0.1:port (errors fail the test)."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    assert "errors" not in answer, answer
    return answer["data"]


def wait_for(what: str, condition, timeout: float, every: float = 1.0):
    """condition()'s first true value, asked every `every` seconds; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass(frozen=True)
class DagsterDev:
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text()[-chars:] if self.log.exists() else ""


@contextlib.contextmanager
def dagster_dev(
    cwd: Path, env: dict[str, str], log: Path, port: int | None = None, timeout: float = 180.0
) -> Iterator[DagsterDev]:
    """`dagster dev -w workspace.yaml` on a free loopback port, answering, then gone whole
    (etl_assets.operations.demo.dagster_dev, which ends its process group)."""
    from etl_assets.operations.demo import dagster_dev as start

    port = port or free_port()
    with start(cwd, port, log, env=env, timeout=timeout) as process:
        yield DagsterDev(port, process, log)


NGINX = Path("/usr/sbin/nginx")


@dataclass(frozen=True)
class Proxy:
    http_port: int
    https_port: int
    certificate: Path  # self-signed, for 127.0.0.1: what a client trusts to reach it
    passwords: Path  # the htpasswd file it reads
    log: Path


@contextlib.contextmanager
def nginx_proxy(
    site: Path, root: Path, upstream_port: int, users: dict[str, str], timeout: float = 30.0
) -> Iterator[Proxy]:
    """nginx serving a site configuration (deploy/nginx/) on loopback, as it is installed but for
    its files and ports: a self-signed certificate for 127.0.0.1, a password file of `users`
    (bcrypt, made by htpasswd), and the webserver it forwards to on `upstream_port`."""
    root.mkdir(parents=True, exist_ok=True)
    certificate, key, passwords = root / "fullchain.pem", root / "privkey.pem", root / "htpasswd"
    subprocess.run(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
        f"-addext subjectAltName=IP:127.0.0.1 -keyout {key} -out {certificate}".split(),
        check=True,
        capture_output=True,
    )
    for number, (user, password) in enumerate(users.items()):
        subprocess.run(
            ["htpasswd", "-B", "-i", *(["-c"] if number == 0 else []), str(passwords), user],
            input=password,
            text=True,
            check=True,
            capture_output=True,
        )
    http_port, https_port = free_port(), free_port()
    text = site.read_text()
    for installed, here in {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "/etc/etl-assets/tls/fullchain.pem": str(certificate),
        "/etc/etl-assets/tls/privkey.pem": str(key),
        "/etc/etl-assets/htpasswd": str(passwords),
        "http://127.0.0.1:3000": f"http://127.0.0.1:{upstream_port}",
    }.items():
        assert installed in text, installed  # the file as the docs install it
        text = text.replace(installed, here)
    text = "\n".join(line for line in text.splitlines() if "listen [::]" not in line)
    (root / "site.conf").write_text(text)
    temp = {name: root / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for folder in temp.values():
        folder.mkdir(exist_ok=True)
    (root / "nginx.conf").write_text(
        f"""user root;  # the test's files are root's; installed, the workers are www-data
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
daemon off;
events {{}}
http {{
    access_log {root}/access.log;
"""
        + "".join(f"    {name}_temp_path {path};\n" for name, path in temp.items()).replace(
            "body_temp_path", "client_body_temp_path"
        )
        + f"""    include {root}/site.conf;
}}
"""
    )
    command = [
        str(NGINX),
        "-p",
        str(root),
        "-c",
        str(root / "nginx.conf"),
        "-e",
        str(root / "error.log"),
    ]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", https_port)) == 0

        wait_for("nginx to listen", listening, timeout, every=0.2)
        yield Proxy(http_port, https_port, certificate, passwords, root / "error.log")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
