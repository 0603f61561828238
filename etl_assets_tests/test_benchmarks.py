"""The benchmark's own scripts stay true to the pipeline: on the bundled days, the plain pandas
script and the pipeline's DuckDB path alone build what a real run builds (`make bench` compares
them on the year; this keeps them from breaking between benchmarks)."""

import warnings

import pytest

from benchmarks import duckdb_script, outputs, pandas_script
from etl_assets_tests.support.warehouse import FIRST_DAYS


@pytest.mark.parametrize("script", [pandas_script, duckdb_script], ids=["pandas", "duckdb"])
def test_a_benchmark_script_builds_what_the_pipeline_builds(script, loaded, landed_days, tmp_path):
    warehouse = str(tmp_path / "warehouse.duckdb")
    start, end = (day.isoformat() for day in FIRST_DAYS)
    with warnings.catch_warnings():  # pandas' own deprecations in the plain script
        warnings.simplefilter("ignore", FutureWarning)
        script.main(
            [
                "--landing",
                str(landed_days),
                "--warehouse",
                warehouse,
                "--start",
                start,
                "--end",
                end,
            ]
        )

    built, pipeline = outputs.outputs(warehouse), outputs.outputs(loaded[0].warehouse)

    assert built["rows"] == pipeline["rows"]
    assert built["checksums"] == pipeline["checksums"]
