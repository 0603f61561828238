"""What a run did, as a person reads it: aligned columns, problems first, nothing cut silently."""

import datetime as dt

from etl_assets.operations.report import (
    CheckOutcome,
    RunPart,
    RunSummary,
    render_checks,
    table_text,
)
from etl_assets.pipeline.readiness import Block


def test_columns_line_up_and_a_long_last_column_is_cut_with_an_ellipsis():
    lines = table_text(("table", "detail"), [("raw.flights", "x" * 30), ("a", "short")], width=10)
    assert lines == [
        "table        detail",
        "-----------  ----------",
        "raw.flights  xxxxxxxxx…",
        "a            short",
    ]


def test_checks_are_listed_by_table_with_the_worst_first_and_counted():
    outcomes = [
        CheckOutcome("clean.flights", "key_is_unique", "passed"),
        CheckOutcome("clean.flights", "values_within_contract", "FAILED", "2 rows"),
        CheckOutcome("clean.flights", "column_schema_change", "WARN"),
        CheckOutcome("clean.airlines", "key_is_unique", "not run"),
    ]
    lines = render_checks(outcomes)
    assert lines[0] == "4 checks: 1 FAILED, 1 WARN, 1 not run, 1 passed"
    assert [line.split()[:3] for line in lines[3:]] == [
        ["clean.airlines", "key_is_unique", "not"],
        ["clean.flights", "values_within_contract", "FAILED"],
        ["clean.flights", "column_schema_change", "WARN"],
        ["clean.flights", "key_is_unique", "passed"],
    ]


def test_a_range_with_a_held_day_says_which_runs_failed_and_how_to_load_the_day():
    jan1, jan2 = dt.date(2013, 1, 1), dt.date(2013, 1, 2)
    held = Block(jan2, jan2, {"flights": ["2013-01-02.csv: 476 rows, but its manifest says 943"]})
    summary = RunSummary(
        runs=[RunPart(Block(jan1, jan1), "run-1", True), RunPart(held, "run-2", False)],
        seconds=3.0,
        tables=[],
        failures=["raw__flights: 476 rows"],
    )
    text = summary.render()
    assert not summary.success and summary.held == [held]
    assert "2 runs FAILED in 3.0s:" in text
    assert "  2013-01-02: run run-2 FAILED (held back)" in text
    assert "not loaded: 2013-01-02" in text
    assert "etl-assets run --start 2013-01-02 --end 2013-01-02" in text
