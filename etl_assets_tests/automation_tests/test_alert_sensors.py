"""The alert sensors over real runs in a SQLite Dagster instance: which failures alert, once."""

import json
from pathlib import Path

import dagster as dg
import pytest

from etl_assets.automation.alert_sensors import build_alert_sensors, run_partition
from etl_assets.runtime.resources import build_alert_sink
from etl_assets.runtime.settings import Settings
from etl_assets_tests.support.alerting import DAY, UI, logged

run_failure_alert_sensor, check_failure_alert_sensor, _ = build_alert_sensors()

days = dg.DailyPartitionsDefinition(start_date="2013-01-01", end_date="2013-01-10")


def test_the_sensors_load_with_the_sink():
    defs = dg.Definitions(
        sensors=[run_failure_alert_sensor, check_failure_alert_sensor],
        resources={"alerts": build_alert_sink(Settings.from_env())},
    )
    dg.Definitions.validate_loadable(defs)


def test_a_run_names_its_partition_or_range():
    def run(**tags):
        return dg.DagsterRun(job_name="etl_job", tags=tags)

    assert run_partition(run(**{"dagster/partition": DAY})) == DAY
    assert run_partition(
        run(
            **{
                "dagster/asset_partition_range_start": "2013-01-01",
                "dagster/asset_partition_range_end": "2013-01-03",
            }
        )
    ) == ("2013-01-01...2013-01-03")
    assert run_partition(run()) is None


# --- failed runs ---------------------------------------------------------------------------


@pytest.fixture
def instance():
    """A SQLite instance like the project's (run-sharded event log), with run retries enabled."""
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 2}}) as i:
        yield i


@dg.asset(key_prefix="raw", partitions_def=days)
def flights() -> None:
    raise ValueError("flights_2013-01-02.csv is missing")


@dg.asset(key_prefix="clean", partitions_def=days, deps=[flights])
def clean_flights() -> None:
    pass


def fail_a_run(instance, tags=None) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [flights, clean_flights],
        partition_key=DAY,
        instance=instance,
        raise_on_error=False,
        tags=tags,
    )
    assert not result.success
    return result


def evaluate_run_sensor(instance, sink, result, run=None) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=run or instance.get_run_by_id(result.run_id),
        resources={"alerts": sink},
    )
    run_failure_alert_sensor(context)


def test_a_failed_run_alerts_once_naming_asset_partition_and_error(instance, sink, webhook):
    result = fail_a_run(instance)
    # Retries are on, so Dagster marks the run for retry, but a run executed in process has no
    # code location to be relaunched from: the daemon never retries it, so it must alert now.
    assert instance.get_run_by_id(result.run_id).tags["dagster/will_retry"] == "true"

    evaluate_run_sensor(instance, sink, result)
    evaluate_run_sensor(instance, sink, result)  # the same failure seen again: a restarted tick

    [alert] = logged(sink)
    assert alert["kind"] == "run_failure"
    assert alert["asset"] == "raw/flights"  # the failed step, not the skipped one downstream
    assert alert["partition"] == DAY
    assert alert["error"] == "ValueError: flights_2013-01-02.csv is missing"
    assert alert["run_url"] == f"{UI}/runs/{result.run_id}"
    assert len(webhook.received) == 1 and "raw/flights" in webhook.received[0]["body"]["text"]


# How a run launched from the UI or a schedule is stored: with the code location it came from,
# which is what lets the retry daemon relaunch it.
LAUNCHED_FROM_LOCATION = dg.deserialize_value(
    json.dumps(
        {
            "__class__": "ExternalPipelineOrigin",
            "external_repository_origin": {
                "__class__": "ExternalRepositoryOrigin",
                "repository_location_origin": {
                    "__class__": "RegisteredRepositoryLocationOrigin",
                    "location_name": "etl_assets",
                },
                "repository_name": "__repository__",
            },
            "pipeline_name": "__ephemeral_asset_job__",
        }
    )
)


@pytest.mark.parametrize(("max_retries", "alerts"), [("2", 0), ("0", 1)])
def test_a_launched_run_alerts_only_when_no_retry_is_left(instance, sink, max_retries, alerts):
    result = fail_a_run(instance, tags={"dagster/max_retries": max_retries})
    stored = instance.get_run_by_id(result.run_id)
    # Dagster itself decides whether the daemon will retry the failed run.
    assert stored.tags["dagster/will_retry"] == ("true" if alerts == 0 else "false")
    launched = dg.DagsterRun(
        job_name=stored.job_name,
        run_id=stored.run_id,
        status=stored.status,
        tags=stored.tags,
        remote_job_origin=LAUNCHED_FROM_LOCATION,
    )

    evaluate_run_sensor(instance, sink, result, run=launched)

    if alerts:
        [line] = logged(sink)
        assert line["dedup_key"] == f"run:{result.run_id}"
    else:
        assert not Path(sink.log_path).exists()


# --- failed checks -------------------------------------------------------------------------


OUTCOMES: dict[str, bool] = {}  # check name -> passed, set by each test
FAILS_TOO: dict[str, bool] = {"summary": False}


@dg.asset(
    key_prefix="clean",
    name="checked_flights",
    partitions_def=days,
    check_specs=[
        dg.AssetCheckSpec("key_is_unique", asset=["clean", "checked_flights"], blocking=True),
        dg.AssetCheckSpec("delay_in_range", asset=["clean", "checked_flights"]),
        dg.AssetCheckSpec("carrier_is_known", asset=["clean", "checked_flights"]),
    ],
)
def checked_flights():
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(
        check_name="key_is_unique",
        passed=OUTCOMES["key_is_unique"],
        description="3 duplicate keys (flight_id)",
    )
    yield dg.AssetCheckResult(
        check_name="delay_in_range",
        passed=OUTCOMES["delay_in_range"],
        description="2 delays above 24 hours",
    )
    yield dg.AssetCheckResult(
        check_name="carrier_is_known",
        passed=OUTCOMES["carrier_is_known"],
        severity=dg.AssetCheckSeverity.WARN,
        description="5 flights of unknown carriers",
    )


@dg.asset(key_prefix="marts", partitions_def=days, deps=[checked_flights])
def daily_delays() -> None:
    pass


@dg.asset(key_prefix="marts", partitions_def=days)
def airport_summary() -> None:
    if FAILS_TOO["summary"]:
        raise RuntimeError("airports table is locked")


def run_checks(instance, **passed) -> dg.ExecuteInProcessResult:
    OUTCOMES.update(
        {"key_is_unique": True, "delay_in_range": True, "carrier_is_known": True}, **passed
    )
    return dg.materialize(
        [checked_flights, daily_delays, airport_summary],
        partition_key=DAY,
        instance=instance,
        raise_on_error=False,
    )


def evaluate_check_sensor(instance, sink, cursor) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"alerts": sink})
    return check_failure_alert_sensor(context)


def test_a_failed_error_check_alerts_once_and_a_failed_warn_check_never(instance, sink, webhook):
    run_checks(instance, delay_in_range=False)  # before the sensor started: history, not news
    started = evaluate_check_sensor(instance, sink, None)
    assert started.skip_reason is not None

    result = run_checks(instance, delay_in_range=False, carrier_is_known=False)
    assert result.success  # a non-blocking check does not fail its run
    first = evaluate_check_sensor(instance, sink, started.cursor)
    second = evaluate_check_sensor(instance, sink, first.cursor)
    evaluate_check_sensor(instance, sink, started.cursor)  # a lost cursor: the log still knows

    [alert] = logged(sink)
    assert alert["kind"] == "check_failure" and alert["run_id"] == result.run_id
    assert "delay_in_range" in alert["title"]  # the ERROR check; the WARN one is not alerted
    assert (alert["asset"], alert["partition"]) == ("clean/checked_flights", DAY)
    assert alert["error"] == "2 delays above 24 hours"
    assert int(first.cursor) > int(started.cursor) and second.cursor == first.cursor
    assert second.skip_reason is not None
    assert "delay_in_range" in webhook.received[0]["body"]["text"] and len(webhook.received) == 1


def test_only_warn_checks_failing_sends_nothing(instance, sink):
    cursor = evaluate_check_sensor(instance, sink, None).cursor
    run_checks(instance, carrier_is_known=False)
    evaluate_check_sensor(instance, sink, cursor)
    assert not Path(sink.log_path).exists()


def test_a_failing_blocking_check_alerts_exactly_once_across_both_sensors(instance, sink):
    cursor = evaluate_check_sensor(instance, sink, None).cursor
    result = run_checks(instance, key_is_unique=False)

    # In 1.13 a failed blocking ERROR check fails its step, so the run fails and stops downstream.
    assert result.dagster_run.status == dg.DagsterRunStatus.FAILURE
    assert not result.asset_materializations_for_node("marts__daily_delays")
    evaluate_run_sensor(instance, sink, result)
    evaluate_check_sensor(instance, sink, cursor)

    [alert] = logged(sink)
    assert alert["kind"] == "check_failure" and "key_is_unique" in alert["title"]
    assert "blocking" in alert["title"]
    assert alert["error"] == "3 duplicate keys (flight_id)"


def test_a_run_failing_on_a_check_and_on_an_error_alerts_each_once(instance, sink, monkeypatch):
    monkeypatch.setitem(FAILS_TOO, "summary", True)
    cursor = evaluate_check_sensor(instance, sink, None).cursor
    result = run_checks(instance, key_is_unique=False)

    evaluate_run_sensor(instance, sink, result)
    evaluate_check_sensor(instance, sink, cursor)

    alerts = {a["kind"]: a for a in logged(sink)}
    assert len(logged(sink)) == 2 and alerts.keys() == {"run_failure", "check_failure"}
    assert alerts["run_failure"]["asset"] == "marts/airport_summary"  # not the checked asset
    assert alerts["run_failure"]["error"] == "RuntimeError: airports table is locked"
    assert "key_is_unique" in alerts["check_failure"]["title"]


checks_defs = dg.Definitions(
    assets=[checked_flights, daily_delays, airport_summary],
    jobs=[dg.define_asset_job("checks_job", executor_def=dg.in_process_executor)],
)


def checks_job() -> dg.JobDefinition:
    return checks_defs.resolve_job_def("checks_job")


def test_a_retry_that_fails_the_same_check_again_does_not_alert_again(instance, sink):
    cursor = evaluate_check_sensor(instance, sink, None).cursor
    OUTCOMES.update(key_is_unique=False, delay_in_range=True, carrier_is_known=True)
    job = dg.reconstructable(checks_job)
    with dg.execute_job(job, instance, tags={"dagster/partition": DAY}) as first:
        assert not first.success
    # What the retry daemon launches: the same run group, re-executing the failed step.
    options = dg.ReexecutionOptions.from_failure(first.run_id, instance)
    with dg.execute_job(job, instance, reexecution_options=options) as retry:
        assert not retry.success
        assert retry.dagster_run.root_run_id == first.run_id

    evaluate_check_sensor(instance, sink, cursor)

    [alert] = logged(sink)
    assert alert["run_id"] == first.run_id and "key_is_unique" in alert["title"]
