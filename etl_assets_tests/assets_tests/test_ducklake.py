"""The same assets on a DuckLake warehouse, chosen by configuration: the same tables, row for
row."""

import dagster as dg
import pytest

from etl_assets.pipeline import backends
from etl_assets_tests.support.deployment import Deployment
from etl_assets_tests.support.warehouse import FIRST_DAYS, LOAD_COLUMNS, checksums


@pytest.mark.e2e  # a second whole-graph run on another backend: kept out of the fast loop
def test_three_days_on_ducklake_equal_the_embedded_warehouse_table_for_table(
    tmp_path, landed_days, loaded, monkeypatch
):
    lake = backends.Lake(str(tmp_path / "catalog.ducklake"), str(tmp_path / "lake"))
    monkeypatch.setenv("ETL_DUCKLAKE_CATALOG", lake.catalog)
    monkeypatch.setenv("ETL_DUCKLAKE_DATA_PATH", lake.data_path)
    deployment = Deployment(tmp_path / "on_ducklake", landed_days, monkeypatch)
    assert deployment.location == lake  # chosen by the settings alone

    summary = deployment.run(*FIRST_DAYS)

    assert summary.success, summary.render()
    embedded, _ = loaded
    on_lake = checksums(lake, LOAD_COLUMNS)
    assert on_lake == checksums(embedded.warehouse, LOAD_COLUMNS)
    assert on_lake["marts.fct_flights"][0] == 842 + 943 + 914
    assert {t.table: t.rows for t in summary.tables}["raw.flights"] == 842 + 943 + 914
    assert not (tmp_path / "on_ducklake" / "warehouse.duckdb").exists()  # nothing in the file
    parquet = {
        p.relative_to(lake.data_path).parts[:2] for p in (tmp_path / "lake").rglob("*.parquet")
    }
    assert ("clean", "flights") in parquet and ("marts", "fct_flights") in parquet

    # An analyst reads a day into pandas from the lake, as from the file (load_asset_value)
    key, day = dg.AssetKey(["marts", "carrier_daily_performance"]), "2013-01-02"
    frames = []
    for each in (deployment, embedded):
        each.use(monkeypatch)
        frames.append(
            each.definitions.load_asset_value(key, partition_key=day, instance=each.instance)
        )
    assert len(frames[0]) > 0 and {str(d.date()) for d in frames[0]["flight_date"]} == {day}
    assert (
        frames[0]
        .sort_values("carrier")
        .reset_index(drop=True)
        .equals(frames[1].sort_values("carrier").reset_index(drop=True))
    )
