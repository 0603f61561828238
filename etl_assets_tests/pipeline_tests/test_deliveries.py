import datetime as dt
import os

import pytest

from etl_assets.pipeline import deliveries

FIRST, LAST = dt.date(2013, 1, 1), dt.date(2013, 12, 31)


def put(landing, path, text="a,b\n1,2\n", mtime_s=None):
    file = landing / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)
    if mtime_s is not None:
        os.utime(file, ns=(mtime_s * 10**9, mtime_s * 10**9))
    return file


def test_files_are_handed_out_oldest_first_up_to_the_limit(tmp_path):
    for i, day in enumerate((5, 3, 4)):
        put(tmp_path, f"flights/2013-01-0{day}.csv", mtime_s=1000 + i)
    first = deliveries.scan(tmp_path, None, 2, FIRST, LAST)
    assert list(first.daily) == [dt.date(2013, 1, 5), dt.date(2013, 1, 3)]
    assert first.pending == 1
    second = deliveries.scan(tmp_path, first.mark, 2, FIRST, LAST)
    assert list(second.daily) == [dt.date(2013, 1, 4)] and second.pending == 0
    assert deliveries.scan(tmp_path, second.mark, 2, FIRST, LAST).daily == {}


def test_a_rewritten_file_is_new_again(tmp_path):
    put(tmp_path, "weather/2013-01-02.csv", mtime_s=1000)
    first = deliveries.scan(tmp_path, None, 10, FIRST, LAST)
    put(tmp_path, "weather/2013-01-02.csv", text="a,b\n1,2\n3,4\n", mtime_s=2000)
    again = deliveries.scan(tmp_path, first.mark, 10, FIRST, LAST)
    [before], [after] = first.daily[dt.date(2013, 1, 2)], again.daily[dt.date(2013, 1, 2)]
    assert before.identity != after.identity and after.size > before.size


def test_partial_and_hidden_files_are_not_deliveries(tmp_path):
    put(tmp_path, "flights/.2013-01-02.csv.x1y2.tmp")
    put(tmp_path, "flights/2013-01-02.csv.part")
    put(tmp_path, ".cache/2013-01-02.csv")
    assert deliveries.list_deliveries(tmp_path) == []


@pytest.mark.parametrize("path, why", [
    ("flights/2013-13-45.csv", "is not a date"),
    ("flights/notes.csv", "is not a date"),
    ("weather/2014-01-01.csv", "outside the partitions 2013-01-01..2013-12-31"),
    ("trains/2013-01-01.csv", "unknown feed folder 'trains'"),
    ("reference/carriers.csv", "unknown reference table 'carriers'"),
    ("2013-01-01.csv", "not in a feed folder"),
])
def test_a_file_that_maps_to_no_partition_says_why(tmp_path, path, why):
    put(tmp_path, path)
    found = deliveries.scan(tmp_path, None, 10, FIRST, LAST)
    [(delivery, reason)] = found.unmappable
    assert delivery.path == path and why in reason
    assert found.mark == delivery.mark  # the cursor moves past it


def test_an_open_range_takes_any_later_day(tmp_path):
    put(tmp_path, "flights/2026-11-22.csv")
    assert list(deliveries.scan(tmp_path, None, 10, FIRST, None).daily) == [dt.date(2026, 11, 22)]


def test_the_cursor_survives_a_round_trip():
    mark = (1_700_000_000_123_456_789, "flights/2013-01-02.csv")
    assert deliveries.decode_cursor(deliveries.encode_cursor(mark)) == mark
    assert deliveries.decode_cursor(None) is None
