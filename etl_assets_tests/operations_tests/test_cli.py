"""`etl-assets` as a user runs it: its arguments in process, its runs as separate processes, each
with its own landing zone and instance."""

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from etl_assets.operations.cli import main

REPO = Path(__file__).resolve().parents[2]


def etl_assets(*args, cwd: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "etl_assets.operations.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(cwd / "home"), "ETL_PROJECT_DIR": str(cwd), **env},
        timeout=300,
    )


@dataclass
class Called:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """`etl-assets` called in this process (argument handling needs no process of its own), in a
    project of its own: tmp_path, with its instance in tmp_path/home."""
    monkeypatch.setenv("ETL_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    for name in ("ETL_LANDING_DIR", "ETL_WAREHOUSE_PATH", "ETL_LAST_DAY"):
        monkeypatch.delenv(name, raising=False)

    def call(*args: str, **env: str) -> Called:
        with monkeypatch.context() as scoped:
            for name, value in env.items():
                scoped.setenv(name, value)
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse's errors
                code = exit_.code
        out, err = capsys.readouterr()
        return Called(code, out, err)

    return call


def test_land_twice_writes_then_skips(tmp_path, cli):
    first = cli("land", "--start", "2013-03-01", "--end", "2013-03-02")
    assert first.returncode == 0, first.stderr
    assert "7 file(s) written, 0 already there" in first.stdout
    assert (tmp_path / "data/landing/flights/2013-03-02.csv").exists()

    again = cli("land", "--start", "2013-03-01", "--end", "2013-03-02")
    assert "0 file(s) written, 7 already there" in again.stdout


def test_bad_dates_are_refused_before_anything_runs(tmp_path, cli):
    outside = cli("land", "--start", "2012-12-31")
    assert outside.returncode == 2 and "outside the bundled feed" in outside.stderr
    reversed_ = cli("run", "--start", "2013-01-02", "--end", "2013-01-01")
    assert reversed_.returncode == 2 and "before --start" in reversed_.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.e2e
def test_run_with_a_missing_landing_file_holds_back_its_day_naming_the_file(tmp_path):
    landing = tmp_path / "landing"
    landed = etl_assets(
        "land",
        "--start",
        "2013-01-01",
        "--end",
        "2013-01-01",
        cwd=tmp_path,
        ETL_LANDING_DIR=str(landing),
    )
    assert landed.returncode == 0, landed.stderr

    result = etl_assets(
        "run",
        "--start",
        "2013-01-01",
        "--end",
        "2013-01-02",
        cwd=tmp_path,
        ETL_LANDING_DIR=str(landing),
    )

    assert result.returncode == 1
    assert "raw__flights: 1 flights file(s) missing from the landing zone" in result.stdout
    assert str(landing / "flights/2013-01-02.csv") in result.stdout
    assert "etl-assets land --start 2013-01-02 --end 2013-01-02" in result.stdout
    assert "the run failed" in result.stderr
    # The complete day ran through the marts; the day without its files ran only its raw steps.
    assert "holding back 2013-01-02: " in result.stdout
    assert result.stdout.count("✔ marts__fct_flights") == 1
    assert "not loaded: 2013-01-02" in result.stdout

    status = etl_assets("status", cwd=tmp_path, ETL_LANDING_DIR=str(landing))
    assert status.returncode == 0, status.stderr  # nothing FAILED: the failure was a step's
    lines = status.stdout.splitlines()
    assert any(line.startswith("90 checks: ") for line in lines), status.stdout
    assert _status_line(lines, "marts.fct_flights", "key_is_unique")[2] == "passed"


def _status_line(lines: list[str], table: str, check: str) -> list[str]:
    return next(line.split() for line in lines if line.split()[:2] == [table, check])


@pytest.mark.e2e
def test_dagster_validates_the_workspace():
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_the_partition_range_follows_etl_last_day(cli):
    short = cli("run", "--end", "2013-02-02", ETL_LAST_DAY="2013-01-31")
    assert short.returncode == 2 and "outside the partitions 2013-01-01..2013-01-31" in short.stderr
    bad = cli("run", ETL_LAST_DAY="someday")
    assert (
        bad.returncode == 2 and "ETL_LAST_DAY must be a date (YYYY-MM-DD) or 'open'" in bad.stderr
    )


@pytest.mark.e2e
def test_a_run_killed_mid_step_does_not_block_the_next_one(tmp_path):
    """A killed run keeps its slot in the warehouse pool (limit 1); the next run releases it."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    assert (
        etl_assets("land", "--start", "2013-01-01", "--end", "2013-01-01", cwd=tmp_path).returncode
        == 0
    )
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etl_assets.operations.cli",
            "run",
            "--start",
            "2013-01-01",
            "--end",
            "2013-01-01",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(home), "ETL_PROJECT_DIR": str(tmp_path)},
    )
    for line in first.stdout:  # kill it inside a step that holds the pool's one slot
        if line.strip().startswith("▶ raw__flights"):
            break
    first.send_signal(signal.SIGKILL)
    first.wait()

    second = etl_assets("run", "--start", "2013-01-01", "--end", "2013-01-01", cwd=tmp_path)

    assert second.returncode == 0, second.stdout + second.stderr
    assert (
        f"abandoned by process {first.pid}: marked failed, 1 pool slot(s) freed" in second.stdout
    ), second.stdout
