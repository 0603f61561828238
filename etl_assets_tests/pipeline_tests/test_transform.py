import datetime as dt

import duckdb
import pandas as pd
import pytest

from etl_assets.pipeline import feed_rules
from etl_assets.pipeline.contract import AIRLINES, FLIGHTS, PLANES, WEATHER
from etl_assets_tests.support.contract_rows import clean, flight, weather


def clean_flights(*rows, delivery_date=dt.date(2013, 1, 1)):
    return clean(FLIGHTS, list(rows), delivery_date)


def only_reason(result) -> str:
    assert len(result.quarantine) == 1 and result.clean.empty
    return result.quarantine.loc[0, "_reason"]


def test_a_good_flight_is_typed_and_timestamped():
    result = clean_flights(flight())
    row = result.clean.iloc[0]
    assert result.quarantine.empty
    assert row["flight_date"] == pd.Timestamp("2013-01-01")
    assert row["scheduled_departure"] == pd.Timestamp("2013-01-01 05:15")
    assert row["actual_departure"] == pd.Timestamp("2013-01-01 05:17")
    assert row["dep_delay"] == 2.0 and row["flight"] == 1545
    assert row["status"] == "arrived"
    assert list(result.clean.columns) == FLIGHTS.column_names


def test_na_text_is_missing_and_a_cancelled_flight_is_a_valid_row():
    cancelled = flight(
        dep_time="NA", dep_delay="NA", arr_time="NA", arr_delay="NA", air_time="NA", tailnum="NA"
    )
    result = clean_flights(cancelled)
    assert result.quarantine.empty
    row = result.clean.iloc[0]
    assert row["status"] == "cancelled"
    assert pd.isna(row["dep_time"]) and pd.isna(row["tailnum"]) and pd.isna(row["actual_departure"])


def test_departed_without_arrival_delay_is_diverted():
    result = clean_flights(flight(arr_time="NA", arr_delay="NA", air_time="NA"))
    assert result.clean.iloc[0]["status"] == "diverted"


def test_2400_is_midnight_and_the_departure_lands_on_the_next_day():
    # Scheduled 23:59, left one minute late: the source writes the departure as 2400.
    late = flight(
        sched_dep_time="2359",
        hour="23",
        minute="59",
        dep_time="2400",
        dep_delay="1",
        time_hour="2013-01-02T04:00:00Z",
    )
    result = clean_flights(late)
    assert result.quarantine.empty, result.quarantine["_reason"].tolist()
    assert result.clean.iloc[0]["actual_departure"] == pd.Timestamp("2013-01-02 00:00")
    minutes = duckdb.sql(
        f"SELECT t, {feed_rules.hhmm_minutes('t')} FROM (VALUES (2400), (0), (1305)) AS v(t)"
    ).fetchall()
    assert dict(minutes) == {2400: 0, 0: 0, 1305: 785}


def test_time_hour_is_utc_and_a_local_time_hour_is_quarantined():
    # 05:15 in New York in January is 10:00 UTC; a feed that sent local time is caught.
    reason = only_reason(clean_flights(flight(time_hour="2013-01-01T05:00:00Z")))
    assert reason == "time_hour is not the scheduled hour in UTC"


def test_unparseable_and_fractional_values_are_quarantined_with_the_text():
    reason = only_reason(clean_flights(flight(dep_delay="abc", flight="15.5")))
    assert "flight '15.5' is not a whole number" in reason
    assert "dep_delay 'abc' is not a finite number" in reason


def test_out_of_range_and_unknown_values_name_the_rule_and_value():
    result = clean_flights(flight(distance="-5", origin="BOS", carrier="united"))
    reason = only_reason(result)
    assert "distance -5 outside [10, 6000]" in reason
    assert "origin 'BOS' not one of EWR/JFK/LGA" in reason
    assert "carrier 'united' does not match" in reason
    assert result.rule_counts["distance outside [10, 6000]"] == 1


def test_a_missing_required_value_is_quarantined():
    assert "carrier is missing" in only_reason(clean_flights(flight(carrier="NA")))


def test_a_row_dated_outside_its_file_is_quarantined():
    reason = only_reason(clean_flights(flight(), delivery_date=dt.date(2013, 1, 2)))
    assert reason == "dated 2013-01-01 but delivered in the file for 2013-01-02"


def test_departure_that_disagrees_with_its_delay_is_quarantined():
    reason = only_reason(clean_flights(flight(dep_time="530")))
    assert reason == "dep_time disagrees with sched_dep_time + dep_delay"


def test_duplicates_keep_the_first_row_and_quarantine_the_rest():
    result = clean_flights(flight(), flight(dep_delay="3", dep_time="518"), flight(flight="1"))
    assert len(result.clean) == 2
    assert result.quarantine["_reason"].tolist() == [
        "duplicate key (carrier, flight, scheduled_departure, time_hour)"
    ]
    assert result.quarantine.loc[0, "dep_delay"] == 3.0
    assert result.quarantine.loc[0, "_source_file"] == "test.csv"


def test_every_row_is_clean_or_quarantined_never_both():
    rows = [flight(flight=str(n)) for n in range(1, 40)] + [flight(flight="1", distance="x")]
    result = clean_flights(*rows)
    assert len(result.clean) + len(result.quarantine) == len(rows)
    assert len(result.quarantine) == 1


def test_weather_out_of_range_wind_is_quarantined():
    # The bundled feed really holds a 1,048 mph wind at EWR on 2013-02-12.
    result = clean(
        WEATHER,
        [weather(), weather(hour="2", time_hour="2013-01-01T07:00:00Z", wind_speed="1048.36058")],
    )
    assert len(result.clean) == 1
    assert result.quarantine.loc[0, "_reason"] == "wind_speed 1048.36 outside [0, 150]"
    assert result.clean.loc[0, "observation_date"] == pd.Timestamp("2013-01-01")
    assert pd.isna(result.clean.loc[0, "wind_gust"])


def test_weather_time_hour_must_match_local_hour():
    result = clean(WEATHER, [weather(time_hour="2013-01-01T01:00:00Z")])
    assert only_reason(result) == "time_hour (UTC) is not the local date and hour"


def test_weather_repeated_local_hour_at_dst_end_is_two_valid_rows():
    # 2013-11-03 01:00 happens twice in New York; time_hour (UTC) tells them apart.
    rows = [
        weather(month="11", day="3", hour="1", time_hour="2013-11-03T05:00:00Z"),
        weather(month="11", day="3", hour="1", time_hour="2013-11-03T06:00:00Z"),
    ]
    result = clean(WEATHER, rows, dt.date(2013, 11, 3))
    assert result.quarantine.empty and len(result.clean) == 2


def test_reference_tables_check_keys_and_ranges():
    airlines = clean(
        AIRLINES, [{"carrier": "UA", "name": "United"}, {"carrier": "UA", "name": "Dup"}]
    )
    assert airlines.clean["name"].tolist() == ["United"]
    assert airlines.quarantine["_reason"].tolist() == ["duplicate key (carrier)"]

    plane = {
        "tailnum": "N10156",
        "year": "1800",
        "type": "Fixed wing multi engine",
        "manufacturer": "EMBRAER",
        "model": "EMB-145XR",
        "engines": "2",
        "seats": "55",
        "speed": "NA",
        "engine": "Turbo-fan",
    }
    planes = clean(PLANES, [plane])
    assert planes.quarantine["_reason"].tolist() == ["year 1800 outside [1940, 2014]"]


@pytest.mark.parametrize("contract", [FLIGHTS, WEATHER, AIRLINES])
def test_an_empty_delivery_gives_empty_frames_in_contract_columns(contract):
    result = clean(contract, [])
    assert result.clean.empty and result.quarantine.empty
    assert list(result.clean.columns) == contract.column_names
    assert list(result.quarantine.columns) == [
        *contract.column_names,
        "delivery_date",
        "_source_file",
        "_reason",
    ]


def test_impossible_or_missing_dates_are_quarantined_not_crashed_on():
    result = clean_flights(
        flight(month="2", day="30"), flight(flight="2", year="NA"), flight(flight="3", day="x")
    )
    reasons = result.quarantine.set_index("flight")["_reason"]
    assert result.clean.empty
    assert reasons[1545] == "year/month/day is not a date"
    assert reasons[2].startswith("year is missing")
    assert reasons[3].startswith("day 'x' is not a whole number")


def test_a_huge_number_in_a_whole_number_column_is_quarantined():
    reason = only_reason(clean_flights(flight(flight="1e20")))
    assert reason.startswith("flight '1e20' is not a whole number")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dep_delay", "inf"),
        ("dep_delay", "1e308"),
        ("dep_delay", "100000000000"),
        ("hour", "100000000000000"),
    ],
)
def test_absurd_numbers_are_quarantined_not_overflowed(field, value):
    reason = only_reason(clean_flights(flight(**{field: value})))
    assert reason.startswith(f"{field} ")


@pytest.mark.parametrize("text", ["nan", "NaN", "-inf"])
def test_non_finite_text_is_not_a_number(text):
    reason = only_reason(clean_flights(flight(arr_delay=text)))
    assert reason == f"arr_delay '{text}' is not a finite number"


def test_a_time_hour_without_an_offset_is_quarantined_whatever_the_session_zone():
    reason = only_reason(clean_flights(flight(time_hour="2013-01-01 10:00:00")))
    assert reason == "time_hour '2013-01-01 10:00:00' is not a timestamp with a UTC offset"


def test_the_repeated_hour_when_daylight_saving_ends_keeps_both_flights():
    # 01:30 on 2013-11-03 happened twice in New York: 05:30 UTC (EDT) and 06:30 UTC (EST).
    common = {
        "month": "11",
        "day": "3",
        "sched_dep_time": "130",
        "hour": "1",
        "minute": "30",
        "dep_time": "132",
        "dep_delay": "2",
    }
    rows = [
        flight(**common, time_hour="2013-11-03T05:00:00Z"),
        flight(**common, time_hour="2013-11-03T06:00:00Z"),
        flight(**common, flight="2", time_hour="2013-11-03T09:00:00Z"),
    ]
    result = clean_flights(*rows, delivery_date=dt.date(2013, 11, 3))
    assert len(result.clean) == 2
    assert result.quarantine["_reason"].tolist() == ["time_hour is not the scheduled hour in UTC"]
