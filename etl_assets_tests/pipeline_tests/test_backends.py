"""DuckLake from the installed extension packages, offline, with a day replaced in one commit."""

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from etl_assets.pipeline import backends
from etl_assets.pipeline.backends import LAKE
from etl_assets_tests.servers import postgres_bin, postgres_server


def test_the_extension_packages_are_built_for_the_pinned_duckdb():
    assert backends.extension_problems() == []


def test_a_duckdb_the_packages_are_not_built_for_is_named_with_what_to_do():
    problems = backends.extension_problems(duckdb_version="9.9.9")
    assert len(problems) == len(backends.EXTENSION_FILES)
    assert "installed for DuckDB 1.4.4" in problems[0] and "not for the pinned DuckDB 9.9.9" in \
        problems[0] and "pin duckdb and duckdb-ext-ducklake to the same release" in problems[0]


@pytest.fixture
def lake(tmp_path):
    """A DuckLake with its catalog in a DuckDB file and its data under tmp_path/data."""
    conn = duckdb.connect()  # in memory: the lake is attached
    backends.attach_ducklake(conn, str(tmp_path / "catalog.ducklake"), str(tmp_path / "data"))
    yield conn
    conn.close()


def parquet_files(root: Path, day: str) -> set[str]:
    return {p.name for p in root.rglob("*.parquet") if f"day={day}" in str(p)}


def test_ducklake_loads_from_the_package_and_a_day_is_replaced_touching_only_its_files(
        lake, tmp_path):
    [(path,)] = lake.execute("SELECT install_path FROM duckdb_extensions() "
                             "WHERE extension_name = 'ducklake' AND loaded").fetchall()
    assert Path(path).is_relative_to(backends.extension_directory())  # not downloaded

    lake.execute(f"CREATE SCHEMA {LAKE}.clean")
    lake.execute(f"CREATE TABLE {LAKE}.clean.t (day DATE, v INTEGER)")
    lake.execute(f"ALTER TABLE {LAKE}.clean.t SET PARTITIONED BY (day)")
    lake.execute(f"INSERT INTO {LAKE}.clean.t VALUES "
                 "('2013-01-01', 1), ('2013-01-01', 2), ('2013-01-02', 3)")
    data = tmp_path / "data"
    first_day = parquet_files(data, "2013-01-01")

    lake.execute("BEGIN")
    lake.execute(f"DELETE FROM {LAKE}.clean.t WHERE day = DATE '2013-01-02'")
    lake.execute(f"INSERT INTO {LAKE}.clean.t VALUES ('2013-01-02', 4), ('2013-01-02', 5)")
    lake.execute("COMMIT")

    assert lake.execute(f"SELECT day::VARCHAR, count(*), sum(v) FROM {LAKE}.clean.t "
                        "GROUP BY 1 ORDER BY 1").fetchall() == [
        ("2013-01-01", 2, 3), ("2013-01-02", 2, 9)]
    assert first_day and parquet_files(data, "2013-01-01") == first_day


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
@pytest.mark.skipif(postgres_bin() is None, reason="needs Debian's postgresql package "
                    "(apt-get install -y postgresql); .ci/run installs it")
def test_four_processes_replace_their_own_days_at_once_and_each_day_holds_its_rows_once(
        tmp_path):
    days = ["2013-01-01", "2013-01-02", "2013-01-03", "2013-01-04"]
    with postgres_server() as pg:
        catalog = (f"postgres:dbname={pg.database} host={pg.host} port={pg.port} "
                   f"user={pg.user} password={pg.password}")
        data = str(tmp_path / "data")
        with duckdb.connect() as setup:
            backends.attach_ducklake(setup, catalog, data)
            setup.execute(f"CREATE TABLE {LAKE}.t (day DATE, attempt INTEGER, n BIGINT)")
            setup.execute(f"ALTER TABLE {LAKE}.t SET PARTITIONED BY (day)")
        go = tmp_path / "go"
        writers = [subprocess.Popen([sys.executable, "-c", WRITER, catalog, data, day, str(go)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for day in days]
        go.touch()
        outcomes = [writer.communicate(timeout=300) for writer in writers]
        assert [w.returncode for w in writers] == [0] * 4, [err[-2000:] for _, err in outcomes]

        with duckdb.connect() as reader:
            backends.attach_ducklake(reader, catalog, data)
            held = reader.execute(f"SELECT day::VARCHAR, count(*), count(DISTINCT n), "
                                  f"min(attempt), max(attempt) FROM {LAKE}.t "
                                  "GROUP BY 1 ORDER BY 1").fetchall()
    # each day: the last replacement's 100 rows, once; nothing of another day's writer
    assert held == [(day, 100, 100, 4, 4) for day in days]


def test_the_folders_a_warehouse_writes_into_are_created_for_files_only(tmp_path):
    lake = backends.Lake(str(tmp_path / "c" / "catalog.ducklake"), str(tmp_path / "data"))
    assert backends.local_folders(lake) == [tmp_path / "data", tmp_path / "c"]
    on_postgres = backends.Lake("postgres:dbname=lake host=127.0.0.1", str(tmp_path / "data"))
    assert backends.local_folders(on_postgres) == [tmp_path / "data"]
    assert backends.local_folders(str(tmp_path / "w" / "warehouse.duckdb")) == [tmp_path / "w"]
    assert backends.local_folders(":memory:") == backends.local_folders("md:analytics") == []
