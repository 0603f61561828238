"""DuckLake from the installed extension packages, offline, with a day replaced in one commit."""

from pathlib import Path

import duckdb
import pytest

from etl_assets.pipeline import backends
from etl_assets.pipeline.backends import LAKE


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
