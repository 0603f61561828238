"""The project's folder: the CLI writes inside it whatever the working directory."""

import os
import subprocess
import sys

import pytest


@pytest.mark.e2e
def test_the_cli_lands_into_the_project_from_any_folder(tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "etl_assets.operations.cli",
            "land",
            "--start",
            "2013-01-01",
            "--end",
            "2013-01-01",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "ETL_PROJECT_DIR": str(project)},
    )
    assert done.returncode == 0, done.stderr
    assert (project / "data/landing/flights/2013-01-01.csv").exists()
    assert list(elsewhere.iterdir()) == []
