"""Files whose columns differ from the contract (`extract`'s schema drift policy): what loads,
what is refused by name, and that nothing else moves."""

import dataclasses
import datetime as dt
import shutil

import duckdb
import pandas as pd
import pytest

from etl_assets.pipeline import extract, quality, transform
from etl_assets.pipeline.contract import FLIGHTS, WEATHER
from etl_assets.pipeline.landing import daily_file, days, deliver
from etl_assets.pipeline.tables import Column, TableContract
from etl_assets_tests.support.warehouse import LOAD_COLUMNS

LOADED_AT = dt.datetime(2026, 12, 7, 6, 0, tzinfo=dt.timezone.utc)
JAN1, JAN2, END = dt.date(2013, 1, 1), dt.date(2013, 1, 2), dt.date(2013, 1, 4)
DAYS = days(JAN1, END - dt.timedelta(days=1))  # the bundled days the tests land
TABLES = ("raw.flights", "clean.flights", "quarantine.flights")
FILE = "flights/2013-01-02.csv"
GATE = Column("gate", "VARCHAR", "Departure gate.", source="gate")
WITH_GATE = dataclasses.replace(
    FLIGHTS,
    source_columns=(*FLIGHTS.source_columns, "gate"),
    columns=(*FLIGHTS.columns, GATE),
)


def load(landing, drift="warn", conn=None, contract=FLIGHTS):
    """Three days of flights through raw and clean, as the raw and clean steps load them."""
    conn = conn or duckdb.connect()
    files = extract.daily_deliveries(landing, contract, DAYS)
    extract.load_raw(conn, contract, files, LOADED_AT, JAN1, END, drift=drift)
    transform.load_clean(conn, contract, JAN1, END)
    return conn


def sums(conn, exclude=()):
    return {t: quality.table_checksum(conn, t, (*LOAD_COLUMNS, *exclude)) for t in TABLES}


@pytest.fixture
def baseline(landed_days):
    return load(landed_days)


@pytest.fixture
def redeliver(tmp_path, landed_days):
    """A copy of the landing zone whose 2 January flights file is re-delivered edited."""

    def edit(change) -> tuple[object, pd.DataFrame]:
        landing = tmp_path / "landing"
        shutil.copytree(landed_days, landing)
        path = daily_file(landing, "flights", JAN2)
        frame = change(pd.read_csv(path, dtype=str, keep_default_na=False))
        deliver(path, frame)
        return landing, frame

    return edit


def with_gate(frame):
    frame = frame.copy()
    frame.insert(5, "gate", [f"B{n % 40}" for n in range(len(frame))])
    return frame


def test_a_new_column_is_kept_in_raw_and_changes_nothing_else(baseline, redeliver):
    landing, delivered = redeliver(with_gate)

    conn = load(landing)

    kept = conn.execute(
        "SELECT _undeclared['gate'] AS gate FROM raw.flights WHERE delivery_date = $d "
        "ORDER BY rowid",
        {"d": JAN2},
    ).fetchdf()
    assert kept["gate"].tolist() == delivered["gate"].tolist()
    others = conn.execute("SELECT count(*) FROM raw.flights WHERE _undeclared IS NOT NULL")
    assert others.fetchone()[0] == len(delivered)  # the other days' files had no extra column
    assert sums(conn, exclude=("_undeclared",)) == sums(baseline, exclude=("_undeclared",))
    assert sums(conn)["clean.flights"] == sums(baseline)["clean.flights"]
    assert extract.drifted_files(conn, FLIGHTS, JAN1, END) == [(FILE, ["gate"], [])]


def test_refuse_refuses_a_new_column_by_name_and_keeps_the_tables(baseline, redeliver):
    landing, _ = redeliver(with_gate)
    before = sums(baseline)

    with pytest.raises(
        extract.DeliveryError, match=r"2013-01-02\.csv.*unexpected columns \['gate'\]"
    ):
        load(landing, drift="refuse", conn=baseline)

    assert sums(baseline) == before
    assert extract.drifted_files(baseline, FLIGHTS) == []


def test_a_missing_nullable_column_loads_as_null(baseline, redeliver):
    landing, delivered = redeliver(lambda f: f.drop(columns=["tailnum"]))

    conn = load(landing)

    tails = conn.execute(
        "SELECT count(*), count(tailnum) FROM clean.flights WHERE flight_date = $d", {"d": JAN2}
    ).fetchone()
    assert tails == (len(delivered), 0)
    assert sums(conn, exclude=("tailnum",)) == sums(baseline, exclude=("tailnum",))
    assert extract.drifted_files(conn, FLIGHTS) == [(FILE, [], ["tailnum"])]

    with pytest.raises(extract.DeliveryError, match=r"missing columns \['tailnum'\]"):
        load(landing, drift="refuse")


@pytest.mark.parametrize("drift", ["warn", "refuse"])
def test_a_missing_required_column_is_refused_by_name(baseline, redeliver, drift):
    landing, _ = redeliver(lambda f: f.drop(columns=["carrier"]))
    before = sums(baseline)

    with pytest.raises(
        extract.DeliveryError, match=r"2013-01-02\.csv.*missing required columns \['carrier'\]"
    ):
        load(landing, drift=drift, conn=baseline)

    assert sums(baseline) == before


@pytest.mark.parametrize("drift", ["warn", "refuse"])
def test_a_column_whose_type_changed_is_refused_by_name(baseline, redeliver, drift):
    landing, _ = redeliver(lambda f: f.assign(flight=f["carrier"] + f["flight"]))  # B6707
    before = sums(baseline)

    with pytest.raises(
        extract.DeliveryError,
        match=r"2013-01-02\.csv: column flight is no longer BIGINT: none of its 943 values is "
        r"one \(the first: 'B6707'\)",
    ):
        load(landing, drift=drift, conn=baseline)

    assert sums(baseline) == before


def test_a_few_values_that_do_not_parse_are_quarantined_not_refused(baseline, redeliver):
    landing, _ = redeliver(lambda f: f.assign(flight=["x9", *f["flight"][1:]]))

    conn = load(landing)

    reasons = conn.execute("SELECT _reason FROM quarantine.flights").fetchall()
    assert reasons == [("flight 'x9' is not a whole number",)]


def test_a_column_name_is_data_never_sql(baseline, redeliver):
    hostile = "x']); DROP TABLE raw.flights; --"
    landing, _ = redeliver(lambda f: f.assign(**{hostile: "1"}))

    conn = load(landing)

    held = conn.execute(
        "SELECT DISTINCT map_keys(_undeclared) FROM raw.flights WHERE _undeclared IS NOT NULL"
    )
    assert held.fetchall() == [([hostile],)]
    assert sums(conn)["clean.flights"] == sums(baseline)["clean.flights"]


def test_a_column_named_twice_in_another_case_is_refused(redeliver):
    landing, _ = redeliver(lambda f: f.assign(CARRIER=f["carrier"]))

    with pytest.raises(extract.DeliveryError, match="a column appears twice"):
        load(landing)


def test_adopting_a_column_is_one_declaration_and_a_reload(baseline, redeliver):
    landing, delivered = redeliver(with_gate)
    conn = load(landing)  # the contract does not know gate yet: kept in raw only

    load(landing, conn=conn, contract=WITH_GATE)  # declared, and the days loaded again

    gates = conn.execute(
        "SELECT flight_date, count(gate) FROM clean.flights GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert gates == [(JAN1, 0), (JAN2, len(delivered)), (dt.date(2013, 1, 3), 0)]
    assert sums(conn, exclude=("gate", "_undeclared")) == sums(
        baseline, exclude=("gate", "_undeclared")
    )
    assert extract.drifted_files(conn, WITH_GATE) == [
        ("flights/2013-01-01.csv", [], ["gate"]),
        ("flights/2013-01-03.csv", [], ["gate"]),
    ]


EDGES = ["12", "12.5", "-3", "1e3", "1_000", "0x10", "nan", "inf", "-inf", "", "5.", ".5"]
EDGES += ["2013-01-01T10:00:00Z", "2013-01-01 10:00:00+05:30", "2013-01-01T10:00:00", "x"]
EDGES += ["2013-01-01T10:00:00-05", "2013-13-01T10:00:00Z", "10:00Z", "2013-01-01Z"]


def test_a_changed_type_is_told_by_the_rule_cleaning_types_values_with(landed_days):
    """The file check (`extract.is_of_type`) and cleaning's SQL agree on every value of the
    bundled days' typed columns, and on edge cases, for each type they test."""
    conn = load(landed_days)
    typed = [
        (contract, c)
        for contract in (FLIGHTS, WEATHER)
        for c in contract.parsed_columns
        if c.dtype != "VARCHAR"
    ]
    extract.load_raw(
        conn,
        WEATHER,
        extract.daily_deliveries(landed_days, WEATHER, DAYS),
        LOADED_AT,
        JAN1,
        END,
    )
    compared = 0
    for contract, column in typed:
        values = [
            v
            for (v,) in conn.execute(
                f"SELECT DISTINCT trim({column.source}) FROM raw.{contract.name} "
                f"WHERE trim({column.source}) NOT IN ('', 'NA')"
            ).fetchall()
        ] + [v for v in EDGES if v]
        probe = TableContract(
            "probe", "", ("v",), (Column("v", column.dtype, "", source="v"),), ("v",)
        )
        conn.execute(
            "CREATE OR REPLACE TABLE raw.probe "
            "(v VARCHAR, delivery_date DATE, _source_file VARCHAR)"
        )
        conn.execute("INSERT INTO raw.probe SELECT unnest($v), NULL, 'f'", {"v": values})
        typed_sql = transform.typed_select_sql(probe, "raw.probe", by_delivery_date=False)
        sql = dict(
            conn.execute(
                f"SELECT p.v, t.v IS NOT NULL FROM raw.probe p, ({typed_sql}) t "
                "WHERE p.rowid = t._row"
            ).fetchall()
        )
        python = {v: extract.is_of_type(column.dtype, v) for v in values}
        assert python == sql, f"{contract.name}.{column.name}"
        compared += len(values)
    assert compared > 1000


def test_a_header_alone_without_a_line_end_is_a_file_without_rows(tmp_path):
    path = tmp_path / "flights.csv"
    path.write_text(",".join(FLIGHTS.source_columns))  # no newline: no record, no value to type

    verified = extract.verify_delivery(path, FLIGHTS)

    assert (verified.rows, verified.undeclared, verified.missing) == (0, (), ())
