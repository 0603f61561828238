"""Steps retry what is transient and fail at once on what retrying cannot mend."""

import datetime as dt

import dagster as dg
import duckdb
import pytest

from etl_assets.assets.retries import is_transient
from etl_assets.pipeline import extract
from etl_assets.pipeline.landing import daily_file
from etl_assets.runtime import dagster_adapter
from etl_assets_tests.support.deployment import Deployment

JAN1 = dt.date(2013, 1, 1)


@pytest.fixture
def deployment(tmp_path, landed_days, monkeypatch):
    return Deployment(tmp_path, landed_days, monkeypatch)


def step_events(deployment, run_id, event_type) -> list[str]:
    return [
        e.dagster_event.step_key
        for e in dagster_adapter.run_events(deployment.instance, run_id, event_type)[0]
    ]


def test_a_transient_read_error_is_retried_and_the_run_succeeds(deployment, monkeypatch):
    real, calls = extract.load_raw, []

    def flaky(*args, **kwargs):
        calls.append(args[1].name)
        if calls.count("planes") == 1 and args[1].name == "planes":
            raise OSError("Resource temporarily unavailable: reference/planes.csv")
        return real(*args, **kwargs)

    monkeypatch.setattr(extract, "load_raw", flaky)
    summary = deployment.run(JAN1, JAN1)

    assert summary.success, summary.render()
    assert calls.count("planes") == 2
    assert step_events(deployment, summary.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY) == [
        "raw__planes"
    ]
    assert {t.table: t.rows for t in summary.tables}["raw.planes"] == 3322


def test_a_missing_delivery_fails_without_retrying(deployment):
    daily_file(deployment.landing, "weather", JAN1).unlink()
    summary = deployment.run(JAN1, JAN1)

    assert not summary.success
    assert any(f.startswith("raw__weather: 1 weather file(s) missing") for f in summary.failures)
    assert step_events(deployment, summary.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []


def test_a_deterministic_error_fails_at_once_with_its_message(deployment, monkeypatch):
    from etl_assets.pipeline import transform

    calls = []

    def broken(conn, contract, *args, **kwargs):
        calls.append(contract.name)
        raise ValueError(f"a bug in the {contract.name} rules")

    monkeypatch.setattr(transform, "load_clean", broken)
    summary = deployment.run(JAN1, JAN1)

    assert not summary.success
    assert "clean_weather: ValueError: a bug in the weather rules" in summary.failures
    assert calls.count("weather") == 1
    assert step_events(deployment, summary.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OSError(5, "Input/output error"), True),
        (TimeoutError("timed out"), True),
        (extract.WarehouseBusy("locked"), True),
        (duckdb.IOException("Could not set lock on file"), True),
        (duckdb.TransactionException("conflict"), True),
        (FileNotFoundError(2, "No such file"), False),
        (PermissionError(13, "Permission denied"), False),
        (IsADirectoryError(21, "Is a directory"), False),
        (ValueError("bad value"), False),
        (duckdb.BinderException("no such column"), False),
        (KeyError("x"), False),
    ],
)
def test_only_transient_errors_are_retried(error, transient):
    assert is_transient(error) is transient
