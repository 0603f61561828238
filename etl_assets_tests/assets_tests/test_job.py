"""The whole graph, materialized for three real days into a warehouse of its own."""

import datetime as dt

import dagster as dg
import duckdb
import pandas as pd

from etl_assets.pipeline.landing import read_source
from etl_assets_tests.support.deployment import Deployment
from etl_assets_tests.support.warehouse import FIRST_DAYS, LOAD_COLUMNS, checksums

START, END = dt.date(2013, 1, 1), dt.date(2013, 1, 3)
UNKNOWN_AIRPORTS = {"BQN", "PSE", "SJU", "STT"}  # destinations the source's airports lack


def query(deployment, sql, params=None) -> pd.DataFrame:
    with duckdb.connect(deployment.warehouse, read_only=True) as conn:
        return conn.execute(sql, params or {}).fetchdf()


def source_flights() -> pd.DataFrame:
    source = read_source("flights")
    return source[(source.month == "1") & source.day.isin(["1", "2", "3"])]


def test_every_check_runs_and_only_the_sources_known_gaps_warn(loaded):
    _, summary = loaded
    outcomes = {(c.table, c.check): c.outcome for c in summary.checks}
    assert len(outcomes) == 90
    assert {key for key, outcome in outcomes.items() if outcome != "passed"} == {
        ("clean.weather", "every_airport_reports_every_hour"),
        ("marts.fct_flights", "flights_have_known_destination"),
        ("marts.fct_flights", "flights_have_known_plane"),
    }
    assert set(outcomes.values()) == {"passed", "WARN"}
    assert outcomes[("clean.flights", "raw_equals_clean_plus_quarantine")] == "passed"
    assert outcomes[("marts.fct_flights", "freshness_check")] == "passed"
    rendered = summary.render()
    assert "90 checks: 3 WARN, 87 passed" in rendered
    assert "SJU" in rendered  # the warning says which destinations are unknown


def test_the_summary_lists_every_table(loaded):
    _, summary = loaded
    rows = {t.table: t.rows for t in summary.tables}
    assert rows["raw.flights"] == rows["marts.fct_flights"] == len(source_flights())
    assert "marts.carrier_daily_performance" in summary.render()


def test_raw_equals_clean_plus_quarantine_for_every_day(loaded):
    deployment, _ = loaded
    counts = query(
        deployment,
        """
        SELECT r.delivery_date, r.n AS raw, coalesce(c.n, 0) AS clean,
               coalesce(q.n, 0) AS quarantined
        FROM (SELECT delivery_date, count(*) n FROM raw.weather GROUP BY 1) r
        LEFT JOIN (SELECT observation_date AS delivery_date, count(*) n FROM clean.weather
                   GROUP BY 1) c USING (delivery_date)
        LEFT JOIN (SELECT delivery_date, count(*) n FROM quarantine.weather GROUP BY 1) q
                   USING (delivery_date)""",
    )
    assert len(counts) == 3
    assert (counts["raw"] == counts["clean"] + counts["quarantined"]).all()


def test_fact_table_holds_every_flight_with_status_and_filled_joins(loaded):
    deployment, _ = loaded
    fct = query(deployment, "SELECT * FROM marts.fct_flights")
    source = source_flights()
    assert fct["status"].value_counts().to_dict() == {
        "arrived": int(((source.dep_time != "NA") & (source.arr_delay != "NA")).sum()),
        "cancelled": int((source.dep_time == "NA").sum()),
        "diverted": int(((source.dep_time != "NA") & (source.arr_delay == "NA")).sum()),
    }
    assert fct["carrier_name"].notna().all()
    assert set(fct.loc[fct["dest_name"].isna(), "dest"]) <= UNKNOWN_AIRPORTS
    assert fct["origin_temp"].notna().mean() > 0.95
    assert fct["plane_model"].notna().mean() > 0.8
    assert not fct.duplicated(["carrier", "flight", "scheduled_departure", "time_hour"]).any()


def test_carrier_daily_performance_has_one_row_per_carrier_and_day(loaded):
    deployment, _ = loaded
    perf = query(deployment, "SELECT * FROM marts.carrier_daily_performance")
    fct = query(
        deployment, "SELECT carrier, flight_date, count(*) AS n FROM marts.fct_flights GROUP BY ALL"
    )
    assert not perf.duplicated(["carrier", "flight_date"]).any()
    assert len(perf) == len(fct)
    merged = perf.merge(fct, on=["carrier", "flight_date"])
    assert (merged["flights"] == merged["n"]).all()
    assert perf["on_time_rate"].between(0, 1).all()


def test_an_empty_quarantine_still_creates_its_table_with_declared_types(loaded):
    deployment, _ = loaded
    columns = query(deployment, "DESCRIBE quarantine.airlines").set_index("column_name")
    assert query(deployment, "SELECT count(*) AS n FROM quarantine.airlines")["n"][0] == 0
    assert columns.loc["_reason", "column_type"] == "VARCHAR"
    assert (
        query(deployment, "DESCRIBE clean.flights")
        .set_index("column_name")
        .loc["flight_date", "column_type"]
        == "DATE"
    )


def test_rerunning_a_day_replaces_it_without_duplicates(loaded_copy):
    deployment = loaded_copy
    tables = [
        "clean.flights",
        "clean.weather",
        "marts.fct_flights",
        "marts.carrier_daily_performance",
        "marts.origin_daily_weather_delays",
    ]
    before = {t: query(deployment, f"SELECT * FROM {t} ORDER BY ALL") for t in tables}
    raw_before = query(deployment, "SELECT count(*) AS n FROM raw.flights")["n"][0]

    summary = deployment.run(dt.date(2013, 1, 2), dt.date(2013, 1, 2))

    assert summary.success, summary.render()
    for table in tables:
        pd.testing.assert_frame_equal(
            query(deployment, f"SELECT * FROM {table} ORDER BY ALL"), before[table], obj=table
        )
    assert query(deployment, "SELECT count(*) AS n FROM raw.flights")["n"][0] == raw_before


def test_two_loads_of_the_same_days_are_bit_identical(loaded, tmp_path, landed_days, monkeypatch):
    """Every column of every table, doubles at full precision; only when and from which path
    a file was loaded may differ."""
    again = Deployment(tmp_path, landed_days, monkeypatch)
    summary = again.run(*FIRST_DAYS)
    assert summary.success, summary.render()
    first = checksums(loaded[0].warehouse, LOAD_COLUMNS, digits=None)
    assert checksums(again.warehouse, LOAD_COLUMNS, digits=None) == first
    assert all(rows > 0 for table, (rows, _) in first.items() if not table.startswith("quar"))


def partition_metadata(deployment, key: list[str], day: dt.date) -> dict:
    records = deployment.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[day.isoformat()]),
        limit=1,
    ).records
    return records[0].asset_materialization.metadata


def test_each_partition_shows_its_own_days_figures(loaded):
    deployment, _ = loaded
    per_day = query(
        deployment,
        "SELECT flight_date, count(*) AS n, "
        "count(*) FILTER (WHERE status = 'cancelled') AS cancelled "
        "FROM marts.fct_flights GROUP BY 1 ORDER BY 1",
    )
    assert per_day["n"].nunique() == 3  # three different days, so copies would show
    for day, rows, cancelled in per_day.itertuples(index=False):
        fct = partition_metadata(deployment, ["marts", "fct_flights"], day.date())
        assert fct["dagster/partition_row_count"].value == fct["flights"].value == rows
        assert fct["cancelled"].value == cancelled
        clean = partition_metadata(deployment, ["clean", "flights"], day.date())
        assert clean["dagster/partition_row_count"].value == rows
        assert clean["quarantined_rows"].value == 0
    carriers = query(
        deployment,
        "SELECT count(*) AS n FROM marts.carrier_daily_performance "
        "WHERE flight_date = DATE '2013-01-02'",
    )["n"][0]
    assert (
        partition_metadata(
            deployment, ["marts", "carrier_daily_performance"], START + dt.timedelta(days=1)
        )["carriers"].value
        == carriers
    )


def test_the_newest_partition_carries_schema_lineage_and_the_runs_totals(loaded):
    deployment, _ = loaded
    newest = partition_metadata(deployment, ["clean", "flights"], END)
    older = partition_metadata(deployment, ["clean", "flights"], START)
    clean_rows = query(deployment, "SELECT count(*) AS n FROM clean.flights")["n"][0]
    assert newest["dagster/row_count"].value == newest["run_rows"].value == clean_rows
    assert newest["run_range"].value == f"{START}..{END}"
    assert 0 < newest["run_null_rate/dep_delay"].value < 0.05
    lineage = newest["dagster/column_lineage"].value
    assert lineage.deps_by_column["flight_date"][0].asset_key == dg.AssetKey(["raw", "flights"])
    assert "| flight_date" in newest["preview"].value
    assert "dagster/column_schema" in newest
    # The run's totals and the large definitions are not copied onto every day.
    assert not {
        "dagster/row_count",
        "dagster/column_lineage",
        "dagster/column_schema",
        "preview",
    } & set(older)

    fct = partition_metadata(deployment, ["marts", "fct_flights"], END)
    dep = fct["dagster/column_lineage"].value.deps_by_column["carrier_name"][0]
    assert (dep.asset_key, dep.column_name) == (dg.AssetKey(["clean", "airlines"]), "name")

    specs = {s.key: s for s in deployment.definitions.resolve_all_asset_specs()}
    schema = specs[dg.AssetKey(["clean", "flights"])].metadata["dagster/column_schema"]
    assert {c.name: c.type for c in schema.columns}["actual_departure"] == "TIMESTAMP"
    assert specs[dg.AssetKey(["marts", "fct_flights"])].group_name == "marts"


def test_an_analyst_loads_a_marts_day_into_pandas(loaded, monkeypatch):
    deployment, _ = loaded
    deployment.use(monkeypatch)
    frame = deployment.definitions.load_asset_value(
        dg.AssetKey(["marts", "carrier_daily_performance"]),
        partition_key="2013-01-02",
        instance=deployment.instance,
    )
    expected = query(
        deployment,
        "SELECT * FROM marts.carrier_daily_performance WHERE flight_date = DATE '2013-01-02'",
    )
    assert len(frame) == len(expected) > 0
    assert set(frame["flight_date"]) == {pd.Timestamp("2013-01-02")}
