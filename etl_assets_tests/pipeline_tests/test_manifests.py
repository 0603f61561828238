"""Delivery manifests: a file that is not what its manifest says is refused, never half-loaded."""

import datetime as dt
import hashlib
import json
import os
import shutil

import duckdb
import pytest

from etl_assets.pipeline import extract, quality
from etl_assets.pipeline.contract import AIRLINES, FLIGHTS
from etl_assets.pipeline.landing import daily_file, manifest_file, reference_file

LOADED_AT = dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)
JAN1, JAN2 = dt.date(2013, 1, 1), dt.date(2013, 1, 2)


@pytest.fixture
def landing(tmp_path, landed_days):
    shutil.copytree(landed_days, tmp_path / "landing")
    return tmp_path / "landing"


def load(conn, landing, days, policy="warn"):
    files = extract.daily_deliveries(landing, FLIGHTS, days)
    return extract.load_raw(
        conn,
        FLIGHTS,
        files,
        LOADED_AT,
        days[0],
        days[-1] + dt.timedelta(days=1),
        manifest_policy=policy,
    )


def test_a_file_cut_in_the_middle_is_refused_naming_it_and_both_counts(landing):
    conn = duckdb.connect()
    load(conn, landing, [JAN1, JAN2])
    before = quality.table_checksum(conn, "raw.flights")
    path = daily_file(landing, "flights", JAN2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # cut mid-line, as a broken transfer would

    with pytest.raises(extract.DeliveryError) as error:
        load(conn, landing, [JAN1, JAN2])

    assert str(error.value).startswith(f"{path}: 476 rows, but its manifest says 943: ")
    assert quality.table_checksum(conn, "raw.flights") == before


def test_a_file_changed_but_not_shortened_is_refused_by_its_checksum(landing):
    path = daily_file(landing, "flights", JAN1)
    path.write_bytes(path.read_bytes().replace(b",UA,", b",AA,", 1))
    with pytest.raises(
        extract.DeliveryError, match="842 rows as its manifest says, but its SHA-256 differs"
    ):
        extract.verify_delivery(path, FLIGHTS)


def test_a_file_without_a_manifest_follows_the_policy(landing):
    path = daily_file(landing, "flights", JAN1)
    manifest_file(path).unlink()
    assert extract.verify_delivery(path, FLIGHTS, "warn") == extract.Verified(
        header=FLIGHTS.source_columns, rows=842, manifest=False
    )
    with pytest.raises(
        extract.ManifestMissing, match=r"waits for its manifest, 2013-01-01\.csv\.manifest\.json"
    ):
        extract.verify_delivery(path, FLIGHTS, "require")
    with pytest.raises(ValueError, match="manifest policy must be one of"):
        extract.verify_delivery(path, FLIGHTS, "maybe")


def test_a_whole_file_with_its_manifest_is_verified(landing):
    verified = extract.verify_delivery(reference_file(landing, "airlines"), AIRLINES, "require")
    assert verified == extract.Verified(header=AIRLINES.source_columns, rows=16, manifest=True)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"rows": "943", "sha256": "' + "0" * 64 + '"}',
        '{"rows": 943}',
        '{"rows": -1, "sha256": "' + "0" * 64 + '"}',
        "[943]",
    ],
)
def test_a_malformed_manifest_is_refused_naming_it(landing, text):
    path = daily_file(landing, "flights", JAN1)
    manifest_file(path).write_text(text)
    with pytest.raises(extract.DeliveryError, match=str(manifest_file(path))):
        extract.verify_delivery(path, FLIGHTS)


def write_delivery(path, data: bytes, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    manifest_file(path).write_text(
        json.dumps({"file": path.name, "rows": rows, "sha256": hashlib.sha256(data).hexdigest()})
    )


@pytest.mark.parametrize(
    "data",
    [
        b"carrier,name\r\n9E,Endeavor Air Inc.\r\nAA,American Airlines Inc.\r\n",  # CRLF
        b"\xef\xbb\xbfcarrier,name\n9E,Endeavor Air Inc.\nAA,American Airlines Inc.\n",  # a BOM
        b'"name","carrier"\n"Endeavor\nAir Inc.","9E"\n"American Airlines Inc.","AA"',  # quoted
        b"carrier,name\n9E,Endeavor Air Inc.\n\nAA,American Airlines Inc.\n\n",  # blank lines
    ],
)
def test_records_are_counted_as_a_csv_reader_sees_them(tmp_path, data):
    path = reference_file(tmp_path, "airlines")
    write_delivery(path, data, rows=2)
    assert extract.verify_delivery(path, AIRLINES, "require").rows == 2
    conn = duckdb.connect()
    extract.load_raw(
        conn,
        AIRLINES,
        [extract.reference_delivery(tmp_path, AIRLINES)],
        LOADED_AT,
        manifest_policy="require",
    )
    assert conn.execute("SELECT carrier FROM raw.airlines ORDER BY 1").fetchall() == [
        ("9E",),
        ("AA",),
    ]


@pytest.mark.parametrize("kind", ["fifo", "link", "huge"])
def test_a_manifest_that_is_no_small_regular_file_is_refused_at_once(landing, kind):
    path = daily_file(landing, "flights", JAN1)
    manifest = manifest_file(path)
    manifest.unlink()
    if kind == "fifo":
        os.mkfifo(manifest)  # reading it would wait for ever
    elif kind == "link":
        manifest.symlink_to("/dev/zero")  # reading it would never end
    else:
        manifest.write_text(" " * (extract.MANIFEST_MAX_BYTES + 1))
    with pytest.raises(
        extract.DeliveryError, match="a manifest must be a regular file of at most 65,536 bytes"
    ):
        extract.verify_delivery(path, FLIGHTS)


def test_a_file_that_changes_between_its_check_and_its_read_is_refused(landing, monkeypatch):
    conn = duckdb.connect()
    load(conn, landing, [JAN1, JAN2])
    before = quality.table_checksum(conn, "raw.flights")
    path = daily_file(landing, "flights", JAN2)
    real = extract.verify_delivery

    def then_cut(file, contract, *policies):  # the upstream rewrites it just after
        verified = real(file, contract, *policies)
        if file == path:
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        return verified

    monkeypatch.setattr(extract, "verify_delivery", then_cut)
    with pytest.raises(extract.DeliveryError, match="the file changed while it was loaded"):
        load(conn, landing, [JAN1, JAN2])
    assert quality.table_checksum(conn, "raw.flights") == before


def test_a_feed_folder_linked_out_of_the_landing_zone_is_refused(landing, tmp_path):
    shutil.move(landing / "flights", tmp_path / "elsewhere")
    (landing / "flights").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(extract.DeliveryError, match="resolves outside the landing zone"):
        extract.daily_deliveries(landing, FLIGHTS, [JAN1])


def test_form_feeds_and_other_line_separators_inside_a_field_are_no_record_ends(tmp_path):
    path = reference_file(tmp_path, "airlines")
    data = "carrier,name\n9E,Endeavor\x0cAir\x1cInc.\u2028\nAA,American\x85Airlines\n".encode()
    write_delivery(path, data, rows=2)
    assert extract.verify_delivery(path, AIRLINES, "require").rows == 2
