"""Real runs over landing files corrupted the way an upstream system gets things wrong."""

import datetime as dt

import dagster as dg
import duckdb
import pandas as pd
import pytest

from etl_assets.operations.report import latest_check_outcomes
from etl_assets.pipeline import transform
from etl_assets.pipeline.landing import daily_file, deliver
from etl_assets.runtime import dagster_adapter
from etl_assets.runtime.dagster_adapter import BLOCKING_CHECK_ERROR
from etl_assets_tests.support.deployment import Deployment

JAN1, JAN2, JAN3 = dt.date(2013, 1, 1), dt.date(2013, 1, 2), dt.date(2013, 1, 3)


@pytest.fixture
def deployment(tmp_path, landed_days, monkeypatch):
    return Deployment(tmp_path, landed_days, monkeypatch)


def query(deployment, sql) -> pd.DataFrame:
    with duckdb.connect(deployment.warehouse, read_only=True) as conn:
        return conn.execute(sql).fetchdf()


def edit_flights(deployment, day, edit) -> pd.DataFrame:
    path = daily_file(deployment.landing, "flights", day)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = edit(frame)
    deliver(path, frame)  # re-delivered whole, with its manifest
    return frame


def corrupt(frame: pd.DataFrame) -> pd.DataFrame:
    """One unreadable distance, one row delivered twice, one row dated another day."""
    frame = frame.copy()
    frame.loc[0, "distance"] = "far"
    frame.loc[1, "day"] = "5"
    return pd.concat([frame, frame.iloc[[2]]], ignore_index=True)


def test_bad_rows_go_to_quarantine_with_reasons_and_stay_out_of_the_marts(deployment):
    delivered = edit_flights(deployment, JAN2, corrupt)

    summary = deployment.run(JAN1, JAN3)

    assert summary.success, summary.render()
    reasons = sorted(query(deployment, "SELECT _reason FROM quarantine.flights")["_reason"])
    assert reasons == [
        "dated 2013-01-05 but delivered in the file for 2013-01-02; "
        "time_hour is not the scheduled hour in UTC",
        "distance 'far' is not a finite number",
        "duplicate key (carrier, flight, scheduled_departure, time_hour)",
    ]
    day2 = query(
        deployment,
        "SELECT count(*) AS n FROM marts.fct_flights WHERE flight_date = DATE '2013-01-02'",
    )["n"][0]
    assert day2 == len(delivered) - 3
    assert {t.table: t.quarantined for t in summary.tables}["clean.flights"] == 3


def test_rerunning_a_redelivered_day_replaces_that_day_only(loaded_copy):
    deployment = loaded_copy
    before = query(
        deployment, "SELECT flight_date, count(*) AS n FROM marts.fct_flights GROUP BY 1 ORDER BY 1"
    )["n"].tolist()
    redelivered = edit_flights(deployment, JAN2, lambda f: corrupt(f.iloc[10:]))

    summary = deployment.run(JAN2, JAN2)

    assert summary.success, summary.render()
    after = query(
        deployment, "SELECT flight_date, count(*) AS n FROM marts.fct_flights GROUP BY 1 ORDER BY 1"
    )["n"].tolist()
    assert after == [before[0], len(redelivered) - 3, before[2]]
    assert query(deployment, "SELECT count(*) AS n FROM quarantine.flights")["n"][0] == 3
    raw = query(
        deployment, "SELECT delivery_date, count(*) AS n FROM raw.flights GROUP BY 1 ORDER BY 1"
    )["n"].tolist()
    assert raw[1] == len(redelivered)


def test_a_blocking_check_stops_the_marts_when_cleaning_lets_a_duplicate_through(
    deployment, monkeypatch
):
    edit_flights(deployment, JAN2, lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True))
    # Simulate a bug in the cleaning code: duplicates are no longer caught.
    monkeypatch.setattr(transform, "duplicate_sql", lambda contract: "false")

    summary = deployment.run(JAN1, JAN3)

    assert not summary.success
    assert any(
        f.startswith("check clean.flights:key_is_unique failed: 1 key(s)") for f in summary.failures
    ), summary.failures
    checks = {(c.table, c.check): c.outcome for c in summary.checks}
    assert checks[("clean.flights", "key_is_unique")] == "FAILED"
    assert checks[("marts.fct_flights", "every_clean_flight_present")] == "not run"
    marts = {t.table: t.rows for t in summary.tables if t.table.startswith("marts.")}
    assert marts["marts.fct_flights"] is None  # never written: the check blocked it
    # The alert sensor tells a blocked step by its error class (dagster_adapter pins the name).
    failures, _ = dagster_adapter.run_events(
        deployment.instance, summary.run_id, dg.DagsterEventType.STEP_FAILURE
    )
    assert [f.dagster_event.event_specific_data.error.cls_name for f in failures] == [
        BLOCKING_CHECK_ERROR
    ]


def fct_day(deployment, day) -> pd.DataFrame:
    return query(
        deployment, f"SELECT * FROM marts.fct_flights WHERE flight_date = DATE '{day}' ORDER BY ALL"
    )


def test_a_mostly_bad_delivery_fails_loudly_and_the_marts_keep_that_day(loaded_copy):
    deployment = loaded_copy
    before = fct_day(deployment, JAN2)
    carriers_before = query(
        deployment, "SELECT * FROM marts.carrier_daily_performance ORDER BY ALL"
    )

    def bad_origin(frame):  # an upstream bug: every tenth flight from an unknown airport
        frame = frame.copy()
        frame.loc[frame.index % 10 == 0, "origin"] = "XXX"
        return frame

    delivered = edit_flights(deployment, JAN2, bad_origin)
    summary = deployment.run(JAN2, JAN2)

    assert not summary.success
    checks = {(c.table, c.check): c for c in summary.checks}
    limit = checks[("clean.flights", "quarantined_share_within_limit")]
    assert limit.outcome == "FAILED" and "over the 5% quarantine limit" in limit.detail
    assert checks[("marts.fct_flights", "every_clean_flight_present")].outcome == "not run"
    # The marts still hold the previous, good delivery of that day.
    pd.testing.assert_frame_equal(fct_day(deployment, JAN2), before)
    pd.testing.assert_frame_equal(
        query(deployment, "SELECT * FROM marts.carrier_daily_performance ORDER BY ALL"),
        carriers_before,
    )
    # The bad rows sit in quarantine with their reason; raw = clean + quarantined still holds.
    quarantined = query(
        deployment,
        "SELECT origin, _reason FROM quarantine.flights WHERE delivery_date = DATE '2013-01-02'",
    )
    assert len(quarantined) == (delivered["origin"] == "XXX").sum()
    assert (quarantined["_reason"] == "origin 'XXX' not one of EWR/JFK/LGA").all()
    assert checks[("clean.flights", "raw_equals_clean_plus_quarantine")].outcome == "passed"
    # `etl-assets status` reads the same outcome back from the instance.
    latest = {
        (o.table, o.check): o.outcome
        for o in latest_check_outcomes(deployment.definitions, deployment.instance)
    }
    assert latest[("clean.flights", "quarantined_share_within_limit")] == "FAILED"
