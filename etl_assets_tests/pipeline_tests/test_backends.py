"""DuckLake from the installed extension packages, offline, with a day replaced in one commit."""

import datetime as dt
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import psycopg2
import pytest

from etl_assets.pipeline import backends, warehouse
from etl_assets.pipeline.backends import LAKE
from etl_assets.pipeline.tables import Column
from etl_assets_tests.support.servers import postgres_bin, postgres_server, wait_for


def test_the_extension_packages_are_built_for_the_pinned_duckdb():
    assert backends.extension_problems() == []


def test_a_duckdb_the_packages_are_not_built_for_is_named_with_what_to_do():
    problems = backends.extension_problems(duckdb_version="9.9.9")
    assert len(problems) == len(backends.EXTENSION_FILES)
    assert (
        "installed for DuckDB 1.4.4" in problems[0]
        and "not for the pinned DuckDB 9.9.9" in problems[0]
        and "pin duckdb and duckdb-ext-ducklake to the same release" in problems[0]
    )


@pytest.fixture
def lake(tmp_path):
    """A DuckLake with its catalog in a DuckDB file and its data under tmp_path/data."""
    conn = duckdb.connect()  # in memory: the lake is attached
    backends.attach_ducklake(conn, str(tmp_path / "catalog.ducklake"), str(tmp_path / "data"))
    yield conn
    conn.close()


def parquet_files(root: Path, day: str) -> set[str]:
    return {p.name for p in root.rglob("*.parquet") if f"day={day}" in str(p)}


def test_ducklake_loads_from_the_package_and_a_day_is_replaced_touching_only_its_files(tmp_path):
    data = tmp_path / "data"
    with backends.connect(backends.Lake(str(tmp_path / "catalog.ducklake"), str(data))) as lake:
        [(path,)] = lake.execute(
            "SELECT install_path FROM duckdb_extensions() "
            "WHERE extension_name = 'ducklake' AND loaded"
        ).fetchall()
        assert Path(path).is_relative_to(backends.extension_directory())  # not downloaded

        replace(
            lake,
            JAN1,
            JAN3,
            "SELECT DATE '2013-01-01' + (range % 2)::INT AS day, range AS n FROM range(4)",
        )
        first_day = parquet_files(data, "2013-01-01")
        replace(lake, JAN2, JAN3, "SELECT DATE '2013-01-02' AS day, 10 + range AS n FROM range(2)")

        assert lake.execute(
            "SELECT day::VARCHAR, count(*), sum(n) FROM clean.t GROUP BY 1 ORDER BY 1"
        ).fetchall() == [("2013-01-01", 2, 2), ("2013-01-02", 2, 21)]
        # partitioned by the day when created, and only then: altering a table again would
        # conflict with every concurrent writer of it
        altered = [
            c.get("tables_altered")
            for _, c in lake.execute(
                "SELECT snapshot_id, changes FROM lake.snapshots() ORDER BY 1"
            ).fetchall()
        ]
    assert len([a for a in altered if a]) == 1  # in the first write alone
    assert first_day and parquet_files(data, "2013-01-01") == first_day
    assert len(parquet_files(data, "2013-01-02")) == 2  # the first write's and the replacement


COLUMNS = (Column("day", "DATE", "The day."), Column("n", "BIGINT", "A number."))
JAN1, JAN2, JAN3 = dt.date(2013, 1, 1), dt.date(2013, 1, 2), dt.date(2013, 1, 3)


def replace(conn, start, end, select_sql):
    """The pipeline's write: clean.t's days start..end replaced, in one transaction."""
    with warehouse.transaction(conn, "clean.t", (start, end)):
        warehouse.ensure_table(conn, "clean", "t", COLUMNS, "day")
        warehouse.replace_rows(conn, "clean.t", COLUMNS, "day", start, end, select_sql)


def test_a_failed_replacement_leaves_the_day_as_it_was(lake):
    lake.execute(f"CREATE TABLE {LAKE}.t (day DATE, v INTEGER NOT NULL)")
    lake.execute(f"INSERT INTO {LAKE}.t VALUES ('2013-01-02', 3)")
    lake.execute("BEGIN")
    lake.execute(f"DELETE FROM {LAKE}.t WHERE day = DATE '2013-01-02'")
    with pytest.raises(duckdb.ConstraintException):
        lake.execute(f"INSERT INTO {LAKE}.t VALUES ('2013-01-02', NULL)")
    lake.execute("ROLLBACK")
    assert lake.execute(f"SELECT v FROM {LAKE}.t").fetchall() == [(3,)]


# --- parallel writers on a PostgreSQL catalog ------------------------------------------------

WRITER = """
import sys, time
from pathlib import Path
import duckdb
from etl_assets.pipeline import backends
catalog, data, day, go = sys.argv[1:5]
conn = duckdb.connect()
backends.attach_ducklake(conn, catalog, data)
while not Path(go).exists():  # every writer starts at the same moment
    time.sleep(0.01)
for attempt in range(5):
    conn.execute("BEGIN")
    conn.execute("DELETE FROM lake.t WHERE day = $day", {"day": day})
    conn.execute("INSERT INTO lake.t SELECT $day::DATE, $attempt, range FROM range(100)",
                 {"day": day, "attempt": attempt})
    conn.execute("COMMIT")
print("done")
"""


@pytest.mark.e2e
@pytest.mark.skipif(
    postgres_bin() is None,
    reason="needs Debian's postgresql package (apt-get install -y postgresql); .ci/run installs it",
)
def test_four_processes_replace_their_own_days_at_once_and_each_day_holds_its_rows_once(tmp_path):
    days = ["2013-01-01", "2013-01-02", "2013-01-03", "2013-01-04"]
    with postgres_server() as pg:
        catalog = pg.ducklake_catalog
        data = str(tmp_path / "data")
        with duckdb.connect() as setup:
            backends.attach_ducklake(setup, catalog, data)
            setup.execute(f"CREATE TABLE {LAKE}.t (day DATE, attempt INTEGER, n BIGINT)")
            setup.execute(f"ALTER TABLE {LAKE}.t SET PARTITIONED BY (day)")
        go = tmp_path / "go"
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, catalog, data, day, str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for day in days
        ]
        go.touch()
        outcomes = [writer.communicate(timeout=300) for writer in writers]
        assert [w.returncode for w in writers] == [0] * 4, [err[-2000:] for _, err in outcomes]

        with duckdb.connect() as reader:
            backends.attach_ducklake(reader, catalog, data)
            held = reader.execute(
                f"SELECT day::VARCHAR, count(*), count(DISTINCT n), "
                f"min(attempt), max(attempt) FROM {LAKE}.t "
                "GROUP BY 1 ORDER BY 1"
            ).fetchall()
    # each day: the last replacement's 100 rows, once; nothing of another day's writer
    assert held == [(day, 100, 100, 4, 4) for day in days]


ATTACHER = """
import sys, time
from pathlib import Path
import duckdb
from etl_assets.pipeline import backends
catalog, data, go = sys.argv[1:4]
conn = duckdb.connect()
while not Path(go).exists():  # every process attaches at the same moment
    time.sleep(0.005)
backends.attach_ducklake(conn, catalog, data)
print(conn.execute("SELECT count(*) FROM duckdb_databases() WHERE type = 'ducklake'").fetchone()[0])
"""


@pytest.mark.e2e
@pytest.mark.skipif(
    postgres_bin() is None,
    reason="needs Debian's postgresql package (apt-get install -y postgresql); .ci/run installs it",
)
def test_processes_attaching_an_empty_postgres_catalog_at_once_all_get_the_lake(tmp_path):
    """The first ATTACH creates the catalog's tables: the others wait for it, not fail (two
    Celery workers' first steps on a new lake)."""
    with postgres_server() as pg:
        go = tmp_path / "go"
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    ATTACHER,
                    pg.ducklake_catalog,
                    str(tmp_path / "data"),
                    str(go),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        go.touch()
        outcomes = [p.communicate(timeout=120) for p in processes]
    assert [
        (p.returncode, out.strip()) for p, (out, _) in zip(processes, outcomes, strict=True)
    ] == [(0, "1")] * 4, [err[-1500:] for _, err in outcomes]


LOCKED_WRITER = """
import datetime as dt, sys, time
from pathlib import Path
from etl_assets.pipeline import backends, warehouse
from etl_assets_tests.pipeline_tests.test_backends import COLUMNS
catalog, data, day, value, inside, release = sys.argv[1:7]
day = dt.date.fromisoformat(day)
with backends.connect(backends.Lake(catalog, data)) as conn:
    with warehouse.transaction(conn, "clean.t", (day, day + dt.timedelta(days=1))):
        warehouse.replace_rows(conn, "clean.t", COLUMNS, "day", day, day + dt.timedelta(days=1),
                               f"SELECT DATE '{day}' AS day, {value} * 1000 + range AS n "
                               "FROM range(100)")
        if inside != "-":  # hold the day, uncommitted, until the test says
            Path(inside).touch()
            deadline = time.monotonic() + 120
            while not Path(release).exists() and time.monotonic() < deadline:
                time.sleep(0.01)
print("done")
"""


@pytest.mark.e2e
@pytest.mark.skipif(
    postgres_bin() is None,
    reason="needs Debian's postgresql package (apt-get install -y postgresql); .ci/run installs it",
)
def test_a_second_writer_of_the_same_day_waits_for_the_first_and_other_days_do_not(tmp_path):
    """Two transactions replacing a day that is still empty would both commit on DuckLake (it
    sees no file deleted by both) and the day would hold both sets of rows: the write lock."""
    with postgres_server() as pg:
        data = str(tmp_path / "data")
        with backends.connect(backends.Lake(pg.ducklake_catalog, data)) as setup:
            replace(
                setup,
                dt.date(2013, 1, 9),
                dt.date(2013, 1, 10),
                "SELECT DATE '2013-01-09' AS day, 1 AS n",
            )  # the table, partitioned

        def writer(day, value, inside="-", release="-"):
            return subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    LOCKED_WRITER,
                    pg.ducklake_catalog,
                    data,
                    day,
                    str(value),
                    inside,
                    release,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

        inside, release = tmp_path / "inside", tmp_path / "release"
        first = writer("2013-01-01", 1, str(inside), str(release))
        try:
            wait_for(
                "the first writer inside its transaction",
                lambda: inside.exists() or first.poll() is not None,
                60,
                every=0.05,
            )
            assert first.poll() is None, first.communicate()
            second = writer("2013-01-01", 2)
            with psycopg2.connect(pg.libpq) as watch, watch.cursor() as cursor:

                def waiting():
                    cursor.execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    )
                    return cursor.fetchone()[0] == 1

                wait_for(
                    "the second writer of the day to wait for the first", waiting, 60, every=0.05
                )
            other_day = writer("2013-01-02", 3)
            assert other_day.wait(timeout=60) == 0, other_day.communicate()
            assert first.poll() is None and second.poll() is None  # both still at it
        finally:
            release.touch()
        for process in (first, second):
            _out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err[-2000:]

        with backends.connect(backends.Lake(pg.ducklake_catalog, data), read_only=True) as lake:
            held = lake.execute(
                "SELECT day::VARCHAR, count(*), count(DISTINCT n), "
                "min(n // 1000), max(n // 1000) FROM clean.t "
                "GROUP BY 1 ORDER BY 1"
            ).fetchall()
    # the second writer began after the first had committed, and replaced its rows
    assert held == [
        ("2013-01-01", 100, 100, 2, 2),
        ("2013-01-02", 100, 100, 3, 3),
        ("2013-01-09", 1, 1, 0, 0),
    ]


HOLDER = """
import datetime as dt, sys, time
from pathlib import Path
from etl_assets.pipeline import backends
where, first, last, inside = sys.argv[1:5]
warehouse = backends.Lake(where, "unused") if where.startswith("postgres:") else where
with backends.hold_days(warehouse, dt.date.fromisoformat(first), dt.date.fromisoformat(last),
                       on_wait=print):
    Path(inside).touch()
    time.sleep(600)  # until the test kills it
"""


def assert_a_run_of_the_same_days_waits_and_others_do_not(warehouse, where: str, tmp_path):
    """A process holds 01-01..01-03 and is then killed; 01-04..01-05 go at once meanwhile, and
    01-03..01-04 wait for it."""
    inside = tmp_path / "inside"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, where, "2013-01-01", "2013-01-03", str(inside)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            "the first run to hold its days",
            lambda: inside.exists() or holder.poll() is not None,
            60,
            every=0.05,
        )
        assert holder.poll() is None, holder.communicate()

        def hold(first, last):
            told, entered = [], threading.Event()

            def run():
                with backends.hold_days(warehouse, first, last, on_wait=told.append):
                    entered.set()

            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            return thread, told, entered

        other, told, entered = hold(dt.date(2013, 1, 4), dt.date(2013, 1, 5))
        assert entered.wait(30) and told == []  # other days do not wait
        other.join(30)

        waiter, told, entered = hold(dt.date(2013, 1, 3), dt.date(2013, 1, 4))
        wait_for("the second run of 01-03 to say it waits", lambda: told, 30, every=0.02)
        assert not entered.is_set()  # it waits, and was told why
        assert "another run is loading" in told[0] and "2013-01-03" in told[0]
    finally:
        holder.kill()  # SIGKILL: the lock goes with the process, however it ends
        holder.wait(30)
    assert entered.wait(30), "the days stayed held after the holder died"
    waiter.join(30)


def test_a_run_of_days_another_process_holds_waits_for_it_on_a_duckdb_file(tmp_path):
    warehouse = str(tmp_path / "w" / "warehouse.duckdb")
    assert_a_run_of_the_same_days_waits_and_others_do_not(warehouse, warehouse, tmp_path)
    assert (tmp_path / "w" / "warehouse.duckdb.days.lock").exists()
    assert not (tmp_path / "w" / "warehouse.duckdb").exists()  # the warehouse is not touched


@pytest.mark.e2e
@pytest.mark.skipif(
    postgres_bin() is None,
    reason="needs Debian's postgresql package (apt-get install -y postgresql); .ci/run installs it",
)
def test_a_run_of_days_another_process_holds_waits_for_it_on_a_postgres_catalog(tmp_path):
    with postgres_server() as pg:
        lake = backends.Lake(pg.ducklake_catalog, str(tmp_path / "data"))
        assert_a_run_of_the_same_days_waits_and_others_do_not(lake, pg.ducklake_catalog, tmp_path)
        with psycopg2.connect(pg.libpq) as watch, watch.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            assert cursor.fetchone()[0] == 0  # every session's days went with it


@pytest.mark.e2e
@pytest.mark.skipif(
    postgres_bin() is None,
    reason="needs Debian's postgresql package (apt-get install -y postgresql); .ci/run installs it",
)
def test_a_lake_on_postgres_is_attached_once_per_process_and_sees_other_processes_commits(tmp_path):
    with postgres_server() as pg:
        lake = backends.Lake(pg.ducklake_catalog, str(tmp_path / "data"))
        with backends.connect(lake) as conn:
            conn.execute("CREATE SCHEMA s")
            conn.execute("CREATE TABLE s.t AS SELECT 1 AS n")
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from etl_assets.pipeline import backends\n"
                "with backends.connect(backends.Lake(sys.argv[1], sys.argv[2])) as conn:\n"
                "    conn.execute('INSERT INTO s.t VALUES (2)')",
                lake.catalog,
                lake.data_path,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert other.returncode == 0, other.stderr
        with psycopg2.connect(pg.libpq) as watch, watch.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = 'lake'")
            sessions = cursor.fetchone()[0]
        with backends.connect(lake) as conn, backends.connect(lake) as again:
            assert conn.execute("SELECT sum(n) FROM s.t").fetchone()[0] == 3  # the other's row
            assert again.execute("SELECT sum(n) FROM s.t").fetchone()[0] == 3
        with psycopg2.connect(pg.libpq) as watch, watch.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = 'lake'")
            assert cursor.fetchone()[0] == sessions  # the same attachment: no new session
        with pytest.raises(duckdb.Error), backends.connect(lake) as conn:
            conn.execute("SELECT * FROM s.missing")
        with backends.connect(lake) as conn:  # attached anew after an error, and still right
            assert conn.execute("SELECT sum(n) FROM s.t").fetchone()[0] == 3


def test_the_folders_a_warehouse_writes_into_are_created_for_files_only(tmp_path):
    lake = backends.Lake(str(tmp_path / "c" / "catalog.ducklake"), str(tmp_path / "data"))
    assert backends.local_folders(lake) == [tmp_path / "data", tmp_path / "c"]
    on_postgres = backends.Lake("postgres:dbname=lake host=127.0.0.1", str(tmp_path / "data"))
    assert backends.local_folders(on_postgres) == [tmp_path / "data"]
    assert backends.local_folders(str(tmp_path / "w" / "warehouse.duckdb")) == [tmp_path / "w"]
    assert backends.local_folders(":memory:") == backends.local_folders("md:analytics") == []
