import datetime as dt

from etl_assets.assets.partitions import build_daily_partitions, last_partition_day
from etl_assets.runtime.settings import Settings


def test_the_bundled_feed_is_the_default_range(monkeypatch):
    monkeypatch.delenv("ETL_LAST_DAY", raising=False)
    partitions = build_daily_partitions(Settings.from_env().last_day)
    keys = partitions.get_partition_keys()
    assert (keys[0], keys[-1], len(keys)) == ("2013-01-01", "2013-12-31", 365)
    assert partitions.timezone == "America/New_York"


def test_the_last_day_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("ETL_LAST_DAY", "2013-03-31")
    assert last_partition_day(build_daily_partitions(Settings.from_env().last_day)) == dt.date(
        2013, 3, 31
    )


def test_an_open_range_ends_with_the_last_complete_local_day(monkeypatch):
    monkeypatch.setenv("ETL_LAST_DAY", "open")
    partitions = build_daily_partitions(Settings.from_env().last_day)
    assert partitions.end is None
    yesterday = dt.date.today() - dt.timedelta(days=1)
    assert abs((last_partition_day(partitions) - yesterday).days) <= 1  # New York vs UTC
