"""Publishing the marts for readers: a whole copy, replaced in one rename, that a reader keeps."""

import datetime as dt

import duckdb
import pytest

from etl_assets.pipeline import readers
from etl_assets.pipeline.marts import MARTS


def warehouse_with_marts(path, days: int) -> None:
    """A warehouse whose marts hold `days` days from 2013-01-01 (one row a day each)."""
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA marts")
        for name in MARTS:
            conn.execute(
                f"CREATE TABLE marts.{name} AS SELECT DATE '2013-01-01' + i::INT AS flight_date, "
                f"i AS n FROM range({days}) t(i)"
            )


def test_the_copy_holds_every_mart_and_says_what_it_is(tmp_path):
    warehouse_with_marts(tmp_path / "w.duckdb", days=3)
    at = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        copy = readers.publish(conn, tmp_path / "out" / "marts.duckdb", "run-1", now=at)
    assert copy.rows == dict.fromkeys(MARTS, 3)
    assert (copy.first_day, copy.last_day) == (dt.date(2013, 1, 1), dt.date(2013, 1, 3))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["marts.duckdb"]  # no staging left
    with readers.open_published(tmp_path / "out" / "marts.duckdb") as reader:
        seen = readers.published(reader, tmp_path / "out" / "marts.duckdb")
    assert (seen.published_at, seen.run_id, seen.rows) == (at, "run-1", copy.rows)
    assert "run run-1 (2013-01-01..2013-01-03)" in seen.describe(now=at)
    assert "0 min 0 s ago" in seen.describe(now=at)


def test_a_reader_keeps_the_copy_it_opened_while_a_newer_one_is_published(tmp_path):
    published = tmp_path / "marts.duckdb"
    warehouse_with_marts(tmp_path / "w.duckdb", days=3)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        readers.publish(conn, published, "run-1")
    reader = readers.open_published(published)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("INSERT INTO marts.fct_flights VALUES (DATE '2013-01-04', 9)")
        readers.publish(conn, published, "run-2")  # while the reader has the first copy open
    assert reader.execute("SELECT count(*) FROM marts.fct_flights").fetchone() == (3,)
    reader.close()
    with readers.open_published(published) as again:
        assert again.execute("SELECT count(*) FROM marts.fct_flights").fetchone() == (4,)
        assert readers.published(again, published).run_id == "run-2"


def test_a_failed_copy_leaves_the_published_one_as_it_was_and_nothing_beside_it(tmp_path):
    published = tmp_path / "marts.duckdb"
    warehouse_with_marts(tmp_path / "w.duckdb", days=3)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        readers.publish(conn, published, "run-1")
        conn.execute("DROP TABLE marts.origin_daily_weather_delays")  # the copy fails midway
        with pytest.raises(duckdb.CatalogException, match="origin_daily_weather_delays"):
            readers.publish(conn, published, "run-2")
        assert conn.execute(
            "SELECT count(*) FROM duckdb_databases() WHERE database_name = 'staging'"
        ).fetchone() == (0,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marts.duckdb", "w.duckdb"]
    with readers.open_published(published) as reader:
        assert readers.published(reader, published).run_id == "run-1"


def test_nothing_published_yet_says_when_it_will_be(tmp_path):
    with pytest.raises(FileNotFoundError, match="after the first successful marts run"):
        readers.open_published(tmp_path / "marts.duckdb")


def test_covers_says_whether_the_published_copy_holds_a_day(tmp_path):
    published = tmp_path / "marts.duckdb"
    assert not readers.covers(published, dt.date(2013, 1, 2))  # nothing published yet
    warehouse_with_marts(tmp_path / "w.duckdb", days=3)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        readers.publish(conn, published, "run-1")
    assert readers.covers(published, dt.date(2013, 1, 3))
    assert not readers.covers(published, dt.date(2013, 1, 4))
