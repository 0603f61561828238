import datetime as dt

import dagster as dg
import pytest

from etl_assets.definitions import defs


@pytest.fixture
def definitions(monkeypatch, request):
    monkeypatch.setenv("ETL_LAST_DAY", request.param)
    return defs()


def evaluate(definitions, name, when):
    schedule = definitions.resolve_schedule_def(name)
    with dg.build_schedule_context(
        scheduled_execution_time=when, repository_def=definitions.get_repository_def()
    ) as context:
        return schedule, list(schedule.evaluate_tick(context).run_requests or [])


NY = dt.timezone(dt.timedelta(hours=-5))


@pytest.mark.parametrize("definitions", ["2013-12-31"], indirect=True)
def test_daily_schedule_requests_the_day_that_just_ended(definitions):
    schedule, [request] = evaluate(
        definitions, "daily_ingest_schedule", dt.datetime(2013, 3, 5, 6, 0, tzinfo=NY)
    )
    assert request.partition_key == "2013-03-04"
    assert (schedule.cron_schedule, schedule.execution_timezone) == (
        "0 6 * * *",
        "America/New_York",
    )
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


@pytest.mark.parametrize("definitions", ["2013-12-31"], indirect=True)
def test_after_a_fixed_range_every_tick_asks_for_the_last_day_so_it_starts_stopped(definitions):
    schedule, [first] = evaluate(
        definitions, "daily_ingest_schedule", dt.datetime(2014, 1, 5, 6, 0, tzinfo=NY)
    )
    _, [later] = evaluate(
        definitions, "daily_ingest_schedule", dt.datetime(2026, 11, 23, 6, 0, tzinfo=NY)
    )
    # Each tick is a new scheduled time, which the daemon would launch again: hence stopped.
    assert first.partition_key == later.partition_key == "2013-12-31"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


@pytest.mark.parametrize("definitions", ["open"], indirect=True)
def test_with_an_open_range_each_tick_requests_yesterday_and_runs_by_default(definitions):
    schedule, [request] = evaluate(
        definitions, "daily_ingest_schedule", dt.datetime(2026, 11, 23, 6, 0, tzinfo=NY)
    )
    assert request.partition_key == "2026-11-22"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


@pytest.mark.parametrize("definitions", ["2013-12-31"], indirect=True)
def test_a_weekly_tick_reloads_every_reference_table_and_nothing_else(definitions):
    schedule, [request] = evaluate(
        definitions, "weekly_reference_schedule", dt.datetime(2013, 3, 4, 5, 0, tzinfo=NY)
    )
    job = definitions.resolve_job_def(request.job_name or schedule.job_name)
    graph = job.asset_layer.asset_graph
    loaded = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).is_executable}
    assert loaded == {
        f"{layer}/{prefix}{name}"
        for layer, prefix in (("raw", ""), ("clean", ""), ("quarantine", "quarantined_"))
        for name in ("airlines", "airports", "planes")
    }
    assert request.partition_key is None  # the reference tables are not partitioned


@pytest.mark.parametrize("definitions", ["2013-12-31"], indirect=True)
def test_the_ingest_cron_comes_from_the_environment_and_a_bad_one_fails_the_load(
    definitions, monkeypatch
):
    monkeypatch.setenv("ETL_INGEST_CRON", "*/5 * * * *")
    schedule, [request] = evaluate(
        defs(), "daily_ingest_schedule", dt.datetime(2013, 3, 5, 0, 5, tzinfo=NY)
    )
    assert (schedule.cron_schedule, request.partition_key) == ("*/5 * * * *", "2013-03-04")
    monkeypatch.setenv("ETL_INGEST_CRON", "every morning")
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="every morning"):
        defs()


@pytest.mark.parametrize("definitions", ["2013-12-31"], indirect=True)
def test_before_the_first_day_has_ended_the_tick_skips(definitions):
    schedule = definitions.resolve_schedule_def("daily_ingest_schedule")
    with dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2013, 1, 1, 6, tzinfo=NY),
        repository_def=definitions.get_repository_def(),
    ) as context:
        result = schedule.evaluate_tick(context)
    assert not result.run_requests and "no day has ended since 2013-01-01" in result.skip_message
