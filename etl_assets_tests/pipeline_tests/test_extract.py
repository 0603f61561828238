import datetime as dt

import duckdb
import pandas as pd
import pytest

from etl_assets.pipeline import extract
from etl_assets.pipeline.contract import AIRLINES, FLIGHTS
from etl_assets.pipeline.landing import daily_file, reference_file
from etl_assets.pipeline.tables import raw_columns

LOADED_AT = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)
DAYS = [dt.date(2013, 1, 1), dt.date(2013, 1, 2)]
JAN1, JAN3 = dt.date(2013, 1, 1), dt.date(2013, 1, 3)


def load_daily(landing, days=DAYS, conn=None):
    conn = conn or duckdb.connect()
    files = extract.daily_deliveries(landing, FLIGHTS, days)
    counts = extract.load_raw(
        conn, FLIGHTS, files, LOADED_AT, days[0], days[-1] + dt.timedelta(days=1)
    )
    return conn, counts


def load_reference(landing):
    conn = duckdb.connect()
    extract.load_raw(conn, AIRLINES, [extract.reference_delivery(landing, AIRLINES)], LOADED_AT)
    return conn.execute("SELECT * FROM raw.airlines").fetchdf()


def test_daily_files_are_read_as_text_with_lineage(landed_days):
    conn, counts = load_daily(landed_days)
    frame = conn.execute("SELECT * FROM raw.flights").fetchdf()

    assert list(frame.columns) == [c.name for c in raw_columns(FLIGHTS)]
    assert counts == {DAYS[0]: 842, DAYS[1]: 943}  # the source's flights on Jan 1 and Jan 2
    assert frame["dep_time"].dropna().map(type).eq(str).all()  # as delivered: text
    assert (frame["dep_time"] == "NA").sum() > 0  # 'NA' kept as delivered
    by_file = frame.groupby("_source_file")["delivery_date"].first()
    assert by_file.to_dict() == {
        "flights/2013-01-01.csv": pd.Timestamp("2013-01-01"),
        "flights/2013-01-02.csv": pd.Timestamp("2013-01-02"),
    }
    path = daily_file(landed_days, "flights", DAYS[0])
    stat = path.stat()
    identities = set(
        frame.loc[frame["_source_file"] == "flights/2013-01-01.csv", "_source_identity"]
    )
    assert identities == {f"flights/2013-01-01.csv:{stat.st_size}:{stat.st_mtime_ns}"}
    assert (frame["_loaded_at"] == pd.Timestamp(LOADED_AT)).all()


def test_reloading_a_day_replaces_only_that_day(landed_days):
    conn, _ = load_daily(landed_days, [JAN1, dt.date(2013, 1, 2), JAN3])
    _, counts = load_daily(landed_days, [JAN1], conn)
    assert counts == {JAN1: 842}
    per_day = dict(
        conn.execute("SELECT delivery_date, count(*) FROM raw.flights GROUP BY 1").fetchall()
    )
    assert per_day[JAN1] == 842 and per_day[JAN3] > 0 and len(per_day) == 3


def test_missing_daily_files_are_named_with_the_command_to_land_them(landed_days):
    wanted = [dt.date(2013, 1, 3), dt.date(2013, 1, 4), dt.date(2013, 1, 5)]
    with pytest.raises(extract.DeliveryError) as error:
        extract.daily_deliveries(landed_days, FLIGHTS, wanted)
    message = str(error.value)
    assert "2 flights file(s) missing" in message
    assert "flights/2013-01-04.csv" in message and "flights/2013-01-05.csv" in message
    assert "etl-assets land --start 2013-01-04 --end 2013-01-05" in message


def test_a_file_with_another_header_is_refused_and_the_table_kept(tmp_path, landed_days):
    conn, _ = load_daily(landed_days, [JAN1])
    path = daily_file(tmp_path, "flights", JAN1)
    path.parent.mkdir(parents=True)
    path.write_text("year,month,day,carrier,surprise\n2013,1,1,UA,x\n")
    with pytest.raises(
        extract.DeliveryError,
        match=r"missing required columns \['dep_time'.*"
        r"unexpected columns \['surprise'\]",
    ):
        load_daily(tmp_path, [JAN1], conn)
    assert conn.execute("SELECT count(*) FROM raw.flights").fetchone()[0] == 842


def test_an_empty_file_is_refused(tmp_path):
    path = reference_file(tmp_path, "airlines")
    path.parent.mkdir(parents=True)
    path.write_text("")
    with pytest.raises(extract.DeliveryError, match="file is empty"):
        load_reference(tmp_path)


def test_columns_in_another_order_are_read_by_name(tmp_path):
    path = reference_file(tmp_path, "airlines")
    path.parent.mkdir(parents=True)
    path.write_text('name,carrier\n"United Air Lines, Inc.",UA\n')
    frame = load_reference(tmp_path)
    assert frame[["carrier", "name"]].values.tolist() == [["UA", "United Air Lines, Inc."]]
    assert pd.isna(frame.loc[0, "delivery_date"])


def test_a_file_that_is_not_utf8_is_refused_naming_it(tmp_path):
    path = reference_file(tmp_path, "airlines")
    path.parent.mkdir(parents=True)
    path.write_bytes("carrier,name\nUA,Caf\xe9 Air\n".encode("latin-1"))
    with pytest.raises(extract.DeliveryError, match=r"airlines\.csv: not a readable UTF-8 CSV"):
        load_reference(tmp_path)


def test_a_line_with_too_many_fields_is_refused_naming_the_file(tmp_path):
    path = reference_file(tmp_path, "airlines")
    path.parent.mkdir(parents=True)
    path.write_text("carrier,name\nUA,United,extra\n")
    with pytest.raises(extract.DeliveryError, match=r"reference/airlines\.csv"):
        load_reference(tmp_path)


def ledger(conn) -> list[tuple]:
    return conn.execute(
        "SELECT feed, delivery_date, source_file, rows FROM raw.delivered_files "
        "ORDER BY feed, delivery_date"
    ).fetchall()


def test_the_ledger_holds_each_loaded_file_once_with_its_rows(landed_days):
    conn, _ = load_daily(landed_days, [JAN1, dt.date(2013, 1, 2), JAN3])
    _, counts = load_daily(landed_days, [JAN1], conn)  # a day again: replaced, not added
    extract.load_raw(conn, AIRLINES, [extract.reference_delivery(landed_days, AIRLINES)], LOADED_AT)
    raw = dict(conn.execute("SELECT _source_file, count(*) FROM raw.flights GROUP BY 1").fetchall())
    assert ledger(conn) == [
        ("airlines", None, "reference/airlines.csv", 16),
        ("flights", JAN1, "flights/2013-01-01.csv", raw["flights/2013-01-01.csv"]),
        ("flights", dt.date(2013, 1, 2), "flights/2013-01-02.csv", raw["flights/2013-01-02.csv"]),
        ("flights", JAN3, "flights/2013-01-03.csv", raw["flights/2013-01-03.csv"]),
    ]
    assert counts == {JAN1: raw["flights/2013-01-01.csv"]}


def test_a_file_with_a_header_and_no_rows_is_in_the_ledger_with_zero_rows(tmp_path):
    path = daily_file(tmp_path, "flights", JAN1)
    path.parent.mkdir(parents=True)
    path.write_text(",".join(FLIGHTS.source_columns) + "\n")
    conn, counts = load_daily(tmp_path, [JAN1])
    assert counts == {} and ledger(conn) == [("flights", JAN1, "flights/2013-01-01.csv", 0)]


def test_a_refused_file_leaves_the_ledger_as_it_was(tmp_path, landed_days):
    conn, _ = load_daily(landed_days, [JAN1])
    before = ledger(conn)
    broken = tmp_path / "landing"
    path = daily_file(broken, "flights", JAN1)
    path.parent.mkdir(parents=True)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(extract.DeliveryError):
        load_daily(broken, [JAN1], conn)
    assert ledger(conn) == before


def test_loaded_identities_are_the_ones_the_warehouse_holds(tmp_path, landed_days):
    warehouse = tmp_path / "warehouse.duckdb"
    assert extract.loaded_identities(warehouse, ["x"]) == set()  # no warehouse yet
    conn = duckdb.connect(str(warehouse))
    conn.execute("CREATE SCHEMA raw")
    conn.close()
    assert extract.loaded_identities(warehouse, ["x"]) == set()  # no ledger yet
    conn = duckdb.connect(str(warehouse))
    [loaded] = extract.daily_deliveries(landed_days, FLIGHTS, [JAN1])
    extract.load_raw(conn, FLIGHTS, [loaded], LOADED_AT, JAN1, JAN1 + dt.timedelta(days=1))
    conn.close()
    other = "flights/2013-01-01.csv:1:2"  # the same file as another delivery
    assert extract.loaded_identities(warehouse, [loaded.identity, other]) == {loaded.identity}
