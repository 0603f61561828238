"""The landing-zone scan: what is new or changed since the cursor, oldest first, and what is not."""

import datetime as dt
import os
import time

import pytest

from etl_assets.pipeline import deliveries
from etl_assets.pipeline.deliveries import Cursor, Days, FileState

BUNDLED = Days(first=dt.date(2013, 1, 1), last=dt.date(2013, 12, 31))
_last_change = [0]


@pytest.fixture(autouse=True)
def no_settling(monkeypatch):
    """Scan files the moment they are written (the settle window has its own test)."""
    monkeypatch.setattr(deliveries, "SETTLE_NS", 0)


def deliver(landing, path, text="a,b\n1,2\n", mtime_s=None):
    """Write a file whose change time is later than every file written before it."""
    file = landing / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)
    while True:
        if mtime_s is not None:
            os.utime(file, ns=(mtime_s * 10**9, mtime_s * 10**9))  # also sets the change time
        if file.stat().st_ctime_ns > _last_change[0]:
            break
        time.sleep(0.002)  # a coarse clock: wait for it to tick, then set the times again
        mtime_s = mtime_s if mtime_s is not None else file.stat().st_mtime_ns // 10**9
    _last_change[0] = file.stat().st_ctime_ns
    return file


def days_of(found):
    return [str(day) for day in found.daily]


def test_files_come_oldest_first_up_to_the_limit_and_the_rest_on_later_scans(tmp_path):
    for day in ("05", "03", "04"):
        deliver(tmp_path, f"flights/2013-01-{day}.csv")
    first = deliveries.scan(tmp_path, Cursor(), BUNDLED, limit=2)
    assert days_of(first) == ["2013-01-05", "2013-01-03"] and first.backlog == 1
    second = deliveries.scan(tmp_path, first.cursor, BUNDLED, limit=2)
    assert days_of(second) == ["2013-01-04"] and second.backlog == 0
    assert days_of(deliveries.scan(tmp_path, second.cursor, BUNDLED, limit=2)) == []


def test_a_file_moved_in_with_an_old_modified_time_is_still_new(tmp_path):
    landing, staging = tmp_path / "landing", tmp_path / "staging"
    deliver(landing, "flights/2013-01-02.csv", mtime_s=2_000_000_000)
    first = deliveries.scan(landing, Cursor(), BUNDLED)
    # Written long ago, then renamed into place (mv, or an atomic writer's os.replace).
    old = deliver(staging, "2013-01-01.csv", mtime_s=1_000_000_000)
    os.replace(old, landing / "flights" / "2013-01-01.csv")
    assert days_of(deliveries.scan(landing, first.cursor, BUNDLED)) == ["2013-01-01"]


def test_a_rewritten_file_is_a_new_delivery_with_a_new_identity(tmp_path):
    deliver(tmp_path, "weather/2013-01-02.csv", mtime_s=1_000_000_000)
    first = deliveries.scan(tmp_path, Cursor(), BUNDLED)
    assert deliveries.scan(tmp_path, first.cursor, BUNDLED).daily == {}
    deliver(tmp_path, "weather/2013-01-02.csv", text="a,b\n1,2\n3,4\n", mtime_s=1_000_000_001)
    again = deliveries.scan(tmp_path, first.cursor, BUNDLED)
    [before], [after] = first.daily[dt.date(2013, 1, 2)], again.daily[dt.date(2013, 1, 2)]
    assert before.file.identity != after.file.identity
    assert after.file.size > before.file.size and after.feed == "weather"


def test_a_change_in_the_marks_own_instant_is_not_missed():
    cursor = Cursor(changed_ns=500, at_mark=frozenset({"flights/2013-01-02.csv:10:7"}))
    seen = FileState("flights/2013-01-02.csv", size=10, mtime_ns=7, changed_ns=500)
    rewritten = FileState("flights/2013-01-02.csv", size=12, mtime_ns=8, changed_ns=500)
    other = FileState("flights/2013-01-01.csv", size=10, mtime_ns=7, changed_ns=500)
    older = FileState("flights/2013-01-03.csv", size=10, mtime_ns=7, changed_ns=499)
    assert [cursor.is_behind(s) for s in (seen, rewritten, other, older)] == [
        False,
        True,
        True,
        False,
    ]


def test_partial_temporary_and_hidden_files_are_not_deliveries(tmp_path):
    for path in (
        "flights/.2013-01-02.csv.x1y2.tmp",
        "flights/2013-01-02.csv.tmp",
        "flights/2013-01-02.csv.part",
        "flights/readme.txt",
        ".cache/2013-01-02.csv",
        "flights/.hidden/2013-01-02.csv",
    ):
        deliver(tmp_path, path)
    found = deliveries.scan(tmp_path, Cursor(), BUNDLED)
    assert (found.daily, found.reference, found.unmappable) == ({}, [], [])


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("flights/2013-13-45.csv", "'2013-13-45.csv' is not a date"),
        ("flights/notes.csv", "'notes.csv' is not a date"),
        ("flights/20130101.csv", "'20130101.csv' is not a date"),
        ("flights/2013-01-01.CSV", "expected flights/YYYY-MM-DD.csv"),
        ("weather/2014-01-01.csv", "2014-01-01 is after the last partition, 2013-12-31"),
        ("weather/2012-12-31.csv", "2012-12-31 is before the first partition, 2013-01-01"),
        ("trains/2013-01-01.csv", "not a feed's file"),
        ("reference/carriers.csv", "not a feed's file"),
        ("2013-01-01.csv", "not a feed's file"),
        ("flights/2013/2013-01-01.csv", "not a feed's file"),
    ],
)
def test_a_file_that_maps_to_no_partition_is_reported_once_with_why(tmp_path, path, why):
    deliver(tmp_path, path)
    deliver(tmp_path, "flights/2013-01-07.csv")  # later, and still loaded
    found = deliveries.scan(tmp_path, Cursor(), BUNDLED)
    [bad] = found.unmappable
    assert bad.path == path and why in bad.reason
    assert days_of(found) == ["2013-01-07"]
    later = deliveries.scan(tmp_path, found.cursor, BUNDLED)  # the cursor moved past it
    assert (later.unmappable, later.daily) == ([], {})


def test_reference_files_are_their_feeds(tmp_path):
    deliver(tmp_path, "reference/planes.csv")
    deliver(tmp_path, "reference/airlines.csv")
    found = deliveries.scan(tmp_path, Cursor(), BUNDLED)
    assert [(d.feed, d.day) for d in found.reference] == [("planes", None), ("airlines", None)]


def test_in_an_open_range_an_early_file_waits_for_its_day(tmp_path):
    yesterday = Days(first=dt.date(2013, 1, 1), last=dt.date(2026, 11, 22), open_ended=True)
    deliver(tmp_path, "flights/2026-11-22.csv")
    deliver(tmp_path, "flights/2026-11-23.csv")  # today's file: no partition until tomorrow
    deliver(tmp_path, "flights/2026-12-25.csv")  # far ahead: a bad name, not a wait
    first = deliveries.scan(tmp_path, Cursor(), yesterday)
    assert days_of(first) == ["2026-11-22"] and first.waiting == {
        "flights/2026-11-23.csv": "waits: its day has no partition yet"
    }
    assert [bad.path for bad in first.unmappable] == ["flights/2026-12-25.csv"]
    assert days_of(deliveries.scan(tmp_path, first.cursor, yesterday)) == []  # still waiting
    today = Days(first=yesterday.first, last=dt.date(2026, 11, 23), open_ended=True)
    second = deliveries.scan(tmp_path, first.cursor, today)
    assert days_of(second) == ["2026-11-23"] and second.cursor.waiting == frozenset()


def test_a_waiting_file_that_is_removed_is_forgotten(tmp_path):
    open_days = Days(first=dt.date(2013, 1, 1), last=dt.date(2013, 1, 9), open_ended=True)
    early = deliver(tmp_path, "flights/2013-01-10.csv")
    first = deliveries.scan(tmp_path, Cursor(), open_days)
    early.unlink()
    assert deliveries.scan(tmp_path, first.cursor, open_days).cursor.waiting == frozenset()


def test_a_missing_landing_zone_is_an_empty_one(tmp_path):
    found = deliveries.scan(tmp_path / "nowhere", Cursor(), BUNDLED)
    assert (found.daily, found.cursor) == ({}, Cursor())


def test_the_run_key_is_the_identities_of_the_files_it_loads(tmp_path):
    deliver(tmp_path, "weather/2013-01-02.csv", mtime_s=1_000_000_002)
    deliver(tmp_path, "flights/2013-01-02.csv", text="a\n1\n", mtime_s=1_000_000_001)
    [(_, files)] = deliveries.scan(tmp_path, Cursor(), BUNDLED).daily.items()
    assert deliveries.run_key(files) == (
        "flights/2013-01-02.csv:4:1000000001000000000|weather/2013-01-02.csv:8:1000000002000000000"
    )


def test_the_cursor_survives_a_round_trip_and_a_foreign_one_is_refused():
    cursor = Cursor(changed_ns=17, at_mark=frozenset({"a:1:2"}), waiting=frozenset({"b"}))
    assert Cursor.load(cursor.dump()) == cursor and Cursor.load(None) == Cursor()
    with pytest.raises(ValueError, match="reset the sensor's cursor"):
        Cursor.load('[1700000000, "flights/2013-01-02.csv"]')


def test_a_file_changed_in_the_last_moments_waits_for_the_next_scan(tmp_path, monkeypatch):
    monkeypatch.setattr(deliveries, "SETTLE_NS", 60 * 10**9)
    deliver(tmp_path, "flights/2013-01-05.csv")
    fresh = deliveries.scan(tmp_path, Cursor(), BUNDLED)
    assert fresh.daily == {} and fresh.backlog == 1 and fresh.cursor == Cursor()
    monkeypatch.setattr(deliveries, "SETTLE_NS", 0)
    assert days_of(deliveries.scan(tmp_path, fresh.cursor, BUNDLED)) == ["2013-01-05"]


def test_links_are_never_followed_and_a_loop_of_links_does_not_break_the_scan(tmp_path):
    landing, outside = tmp_path / "landing", tmp_path / "outside"
    deliver(outside, "secret.csv")
    deliver(landing, "flights/2013-01-02.csv")
    (landing / "flights/2013-01-03.csv").symlink_to(outside / "secret.csv")  # leaves the zone
    (landing / "flights/loop").symlink_to(landing / "flights")  # a loop
    (landing / "weather").mkdir()
    (landing / "weather/up").symlink_to(landing)  # another loop, through the zone's root
    (landing / "flights/2013-01-04.csv").symlink_to(landing / "flights/2013-01-02.csv")

    found = deliveries.scan(landing, Cursor(), BUNDLED)

    assert days_of(found) == ["2013-01-02"]
    assert sorted((u.path, u.reason) for u in found.unmappable) == [
        ("flights/2013-01-03.csv", "a symbolic link: a delivery must be a regular file"),
        ("flights/2013-01-04.csv", "a symbolic link: a delivery must be a regular file"),
        ("flights/loop", "a symbolic link: the landing zone's scan does not follow links"),
        ("weather/up", "a symbolic link: the landing zone's scan does not follow links"),
    ]
    later = deliveries.scan(landing, found.cursor, BUNDLED)  # reported once
    assert (later.unmappable, later.daily) == ([], {})


def test_a_folder_named_like_a_delivery_is_reported_not_entered_as_a_day(tmp_path):
    (tmp_path / "flights/2013-01-05.csv").mkdir(parents=True)
    deliver(tmp_path, "flights/2013-01-05.csv/2013-01-06.csv")  # inside it: no feed's path
    found = deliveries.scan(tmp_path, Cursor(), BUNDLED)
    assert days_of(found) == []
    assert sorted((u.path, u.reason.split(":")[0]) for u in found.unmappable) == [
        ("flights/2013-01-05.csv", "a folder"),
        ("flights/2013-01-05.csv/2013-01-06.csv", "not a feed's file"),
    ]


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path, monkeypatch):
    deliver(tmp_path, "weather/2013-01-02.csv")
    deliver(tmp_path, "flights/2013-01-02.csv")
    real = os.scandir

    def scandir(path):  # as chmod 0 would for any user but root, who runs CI
        if os.path.basename(path) == "weather":
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(deliveries.os, "scandir", scandir)
    found = deliveries.scan(tmp_path, Cursor(), BUNDLED)
    assert [(u.path, u.reason) for u in found.unmappable] == [
        ("weather", "folder cannot be listed: Permission denied")
    ]
    assert days_of(found) == ["2013-01-02"]


def test_where_manifests_are_required_a_file_waits_for_its_manifest(tmp_path):
    deliver(tmp_path, "flights/2013-01-02.csv")
    deliver(tmp_path, "flights/2013-01-03.csv")
    (tmp_path / "flights/2013-01-03.csv.manifest.json").write_text("{}")  # shape: raw's concern
    first = deliveries.scan(tmp_path, Cursor(), BUNDLED, manifests_required=True)
    assert days_of(first) == ["2013-01-03"]
    assert first.waiting == {
        "flights/2013-01-02.csv": "waits for its manifest, 2013-01-02.csv.manifest.json"
    }
    assert (
        days_of(deliveries.scan(tmp_path, first.cursor, BUNDLED, manifests_required=True)) == []
    )  # still waiting, and the manifest file is no delivery of its own
    (tmp_path / "flights/2013-01-02.csv.manifest.json").write_text("{}")
    second = deliveries.scan(tmp_path, first.cursor, BUNDLED, manifests_required=True)
    assert days_of(second) == ["2013-01-02"] and second.cursor.waiting == frozenset()
    # without the requirement the file is a delivery at once
    assert days_of(deliveries.scan(tmp_path, Cursor(), BUNDLED)) == ["2013-01-02", "2013-01-03"]


def test_folders_nested_deeper_than_any_feed_are_reported_not_walked(tmp_path):
    deep = tmp_path / "flights" / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    (deep / "2013-01-02.csv").write_text("x")
    deliver(tmp_path, "flights/2013-01-03.csv")
    found = deliveries.scan(tmp_path, Cursor(), BUNDLED)
    assert [(u.path, u.reason.split(":")[0]) for u in found.unmappable] == [
        ("flights/a/b", "a folder nested too deep")
    ]
    assert days_of(found) == ["2013-01-03"]
