import datetime as dt

import duckdb
import pytest

from etl_assets.pipeline import backends, warehouse
from etl_assets.pipeline.tables import Column

COLUMNS = (Column("day", "DATE", "day"), Column("n", "BIGINT", "n"))
JAN1, JAN2, JAN3 = dt.date(2013, 1, 1), dt.date(2013, 1, 2), dt.date(2013, 1, 3)


@pytest.fixture
def conn():
    conn = duckdb.connect()
    warehouse.ensure_table(conn, "t", "numbers", COLUMNS)
    with warehouse.transaction(conn):
        warehouse.replace_rows(
            conn,
            "t.numbers",
            COLUMNS,
            "day",
            JAN1,
            JAN3,
            "SELECT * FROM (VALUES (DATE '2013-01-01', 1), (DATE '2013-01-02', 2)) v(day, n)",
        )
    return conn


def rows(conn):
    return conn.execute("SELECT day, n FROM t.numbers ORDER BY day, n").fetchall()


def test_replacing_a_day_leaves_the_other_days(conn):
    with warehouse.transaction(conn):
        inserted = warehouse.replace_rows(
            conn,
            "t.numbers",
            COLUMNS,
            "day",
            JAN2,
            JAN3,
            "SELECT DATE '2013-01-02' AS day, 7 AS n UNION ALL SELECT DATE '2013-01-02', 8",
        )
    assert inserted == 2
    assert rows(conn) == [(JAN1, 1), (JAN2, 7), (JAN2, 8)]


def test_a_failed_insert_rolls_the_delete_back(conn):
    with pytest.raises(duckdb.Error):
        with warehouse.transaction(conn):
            warehouse.replace_rows(
                conn,
                "t.numbers",
                COLUMNS,
                "day",
                JAN1,
                JAN3,
                "SELECT DATE '2013-01-01' AS day, 'not a number' AS n",
            )
    assert rows(conn) == [(JAN1, 1), (JAN2, 2)]


def test_columns_go_in_by_name_whatever_the_select_order(conn):
    with warehouse.transaction(conn):
        warehouse.replace_rows(
            conn, "t.numbers", COLUMNS, "day", JAN1, JAN2, "SELECT 5 AS n, DATE '2013-01-01' AS day"
        )
    assert rows(conn) == [(JAN1, 5), (JAN2, 2)]


def test_an_empty_first_write_still_creates_the_declared_table():
    conn = duckdb.connect()
    warehouse.ensure_table(conn, "q", "empty", COLUMNS)
    types = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'q' ORDER BY ordinal_position"
    ).fetchall()
    assert types == [("day", "DATE"), ("n", "BIGINT")]


@pytest.mark.parametrize("partitioned", [False, True], ids=["duckdb", "ducklake"])
def test_a_declared_column_a_table_lacks_is_added_and_its_rows_kept(tmp_path, partitioned):
    conn = duckdb.connect()
    if partitioned:  # a DuckLake table, partitioned by day, as the daily layers are
        backends.attach_ducklake(conn, str(tmp_path / "c.ducklake"), str(tmp_path / "data"))
    warehouse.ensure_table(conn, "t", "numbers", COLUMNS, "day" if partitioned else None)
    conn.execute("INSERT INTO t.numbers VALUES (DATE '2013-01-01', 1)")
    adopted = (*COLUMNS, Column("gate", "VARCHAR", "gate"))

    warehouse.ensure_table(conn, "t", "numbers", adopted, "day" if partitioned else None)
    warehouse.ensure_table(conn, "t", "numbers", adopted, "day" if partitioned else None)

    assert conn.execute("SELECT day, n, gate FROM t.numbers").fetchall() == [(JAN1, 1, None)]
