"""The extract/transform/load functions stay plain Python: importing pipeline/ loads no Dagster."""

import json
import pkgutil
import subprocess
import sys

import etl_assets.pipeline

MODULES = sorted(
    f"etl_assets.pipeline.{m.name}" for m in pkgutil.iter_modules(etl_assets.pipeline.__path__)
)
# What importing the modules may not bring in, directly or through another etl_assets module.
FORBIDDEN = ("dagster", "dagster_duckdb", "dagster_duckdb_pandas", "dagster_webserver")


def loaded_after_importing(modules: list[str]) -> list[str]:
    """Every module a fresh interpreter holds after importing these."""
    script = (
        f"import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout)


def test_no_pipeline_module_loads_dagster():
    assert len(MODULES) >= 10, MODULES  # the package was found and walked
    loaded = loaded_after_importing(MODULES)
    assert set(MODULES) <= set(loaded)
    assert [m for m in loaded if m.split(".")[0] in FORBIDDEN] == []


def test_the_check_would_see_a_pipeline_module_that_reached_dagster_through_the_package():
    """A pipeline module importing, say, etl_assets.runtime.resources would load Dagster: so must
    this."""
    loaded = loaded_after_importing(
        ["etl_assets.pipeline.contract", "etl_assets.runtime.resources"]
    )
    assert "dagster" in loaded


def test_the_pure_tests_load_no_dagster():
    """`make test-unit` stays fast: the root conftest and the helpers the pipeline tests use
    import no Dagster (the fixtures that need a deployment import it when used)."""
    helpers = [
        "etl_assets_tests.conftest",
        "etl_assets_tests.support.warehouse",
        "etl_assets_tests.support.contract_rows",
    ]
    loaded = loaded_after_importing(helpers)
    assert set(helpers) <= set(loaded)
    assert [m for m in loaded if m.split(".")[0] in FORBIDDEN] == []
