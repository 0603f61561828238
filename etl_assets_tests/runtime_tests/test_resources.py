from pathlib import Path

import dagster as dg
import duckdb
import pytest

from etl_assets.runtime.resources import WarehouseResource, build_resources
from etl_assets.runtime.settings import Settings


def test_the_warehouse_folder_is_created_on_first_use(tmp_path):
    path = tmp_path / "not" / "yet" / "w.duckdb"

    @dg.asset
    def numbers(warehouse: WarehouseResource) -> None:
        with warehouse.get_connection() as conn:
            conn.execute("CREATE TABLE n AS SELECT 42 AS v")

    assert dg.materialize(
        [numbers], resources={"warehouse": WarehouseResource(database=str(path))}
    ).success
    with duckdb.connect(str(path), read_only=True) as conn:
        assert conn.execute("SELECT v FROM n").fetchone() == (42,)


def test_resources_name_the_environment_variables_they_read(monkeypatch, tmp_path):
    monkeypatch.setenv("ETL_WAREHOUSE_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.delenv("ETL_LANDING_DIR", raising=False)
    monkeypatch.delenv("ETL_DUCKDB_MEMORY_LIMIT", raising=False)
    resources = build_resources(Settings.from_env())
    assert isinstance(resources["warehouse"].database, dg.EnvVar)
    assert resources["warehouse"].database.env_var_name == "ETL_WAREHOUSE_PATH"
    assert resources["io_manager"].database == resources["warehouse"].database
    # the default when the variable is unset, inside the project whatever the working directory
    assert resources["landing"].path == str(Path(__file__).resolve().parents[2] / "data/landing")
    assert resources["warehouse"].connection_config == {
        "memory_limit": "400MB",
        "preserve_insertion_order": False,
        "partitioned_write_flush_threshold": 10_000,
    }
    monkeypatch.setenv("ETL_DUCKDB_MEMORY_LIMIT", "1GB")
    assert (
        build_resources(Settings.from_env())["warehouse"].connection_config["memory_limit"] == "1GB"
    )


def test_a_connection_is_closed_when_its_block_fails(tmp_path):
    warehouse = WarehouseResource(
        database=str(tmp_path / "w.duckdb"), connection_config={"memory_limit": "300MB"}
    )

    def write_then_fail():
        with warehouse.get_connection() as conn:
            conn.execute("CREATE TABLE t AS SELECT 1 AS v")
            raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        write_then_fail()
    # another connection, with other settings, opens at once: none is left holding the file
    with duckdb.connect(warehouse.database, read_only=True) as conn:
        assert conn.execute("SELECT v FROM t").fetchone() == (1,)
