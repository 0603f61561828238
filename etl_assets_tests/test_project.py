import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from etl_assets.runtime.paths import project_dir
from etl_assets.runtime.resources import build_resources

CHECKOUT = Path(__file__).resolve().parents[1]


def test_the_project_is_the_checkout_that_holds_the_package(monkeypatch):
    monkeypatch.delenv("ETL_PROJECT_DIR", raising=False)
    assert project_dir() == CHECKOUT


def test_relative_paths_resolve_against_the_project_not_the_working_directory(
        monkeypatch, tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("ETL_PROJECT_DIR", str(project))
    monkeypatch.setenv("ETL_WAREHOUSE_PATH", "w/warehouse.duckdb")
    monkeypatch.delenv("ETL_LANDING_DIR", raising=False)
    monkeypatch.setenv("ETL_ALERT_LOG", str(tmp_path / "alerts.jsonl"))
    resources = build_resources()
    assert resources["warehouse"].database == str(project / "w/warehouse.duckdb")
    assert resources["io_manager"].database == str(project / "w/warehouse.duckdb")
    assert resources["landing"].path == str(project / "data/landing")
    # an absolute value stays the environment variable, so the UI says where it came from
    assert isinstance(resources["alerts"].log_path, dg.EnvVar)


def test_a_relative_project_folder_is_refused(monkeypatch):
    monkeypatch.setenv("ETL_PROJECT_DIR", "somewhere")
    with pytest.raises(ValueError, match="ETL_PROJECT_DIR must be an absolute path"):
        build_resources()


@pytest.mark.e2e
def test_the_cli_lands_into_the_project_from_any_folder(tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    done = subprocess.run(
        [sys.executable, "-m", "etl_assets.operations.cli", "land", "--start", "2013-01-01",
         "--end", "2013-01-01"], cwd=elsewhere, capture_output=True, text=True, timeout=120,
        env={**env, "ETL_PROJECT_DIR": str(project)})
    assert done.returncode == 0, done.stderr
    assert (project / "data/landing/flights/2013-01-01.csv").exists()
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("database", [":memory:", "md:analytics"])
def test_a_database_that_is_no_file_is_left_as_given(monkeypatch, database):
    monkeypatch.setenv("ETL_WAREHOUSE_PATH", database)
    assert build_resources()["warehouse"].database == dg.EnvVar("ETL_WAREHOUSE_PATH")
