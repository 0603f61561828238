from etl_assets.assets.metadata import column_lineage
from etl_assets.pipeline.contract import FLIGHTS


def test_derived_columns_trace_back_to_delivered_raw_columns():
    lineage = column_lineage(FLIGHTS, "raw").deps_by_column
    actual = {(d.asset_key.to_user_string(), d.column_name) for d in lineage["actual_departure"]}
    assert actual == {
        ("raw/flights", c) for c in ("year", "month", "day", "hour", "minute", "dep_delay")
    }
    raw_columns = set(FLIGHTS.source_columns)
    assert all(d.column_name in raw_columns for deps in lineage.values() for d in deps)
