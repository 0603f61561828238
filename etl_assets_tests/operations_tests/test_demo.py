"""`etl-assets demo`: a short replay under the real `dagster dev`, which catches up and stops."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from etl_assets_tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def processes_with(variable: str) -> list[int]:
    """Processes whose environment holds this NAME=value: what the demo started, to the last."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if variable.encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def test_the_demo_replays_days_into_an_empty_warehouse_and_stops_by_itself(tmp_path):
    root, port = tmp_path / "demo", free_port()
    (root / "stale.txt").parent.mkdir()
    (root / "stale.txt").write_text("from an earlier demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "etl-assets"),
            "demo",
            "--start",
            "2013-01-01",
            "--end",
            "2013-01-02",
            "--every",
            "1",
            "--port",
            str(port),
            "--root",
            str(root),
            "--timeout",
            "400",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "delivered 2013-01-02 (2/2)" in done.stdout
    assert ", 0 failed; stopping dagster dev" in done.stdout
    assert not (root / "stale.txt").exists()  # an empty warehouse and instance each time
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        days = conn.execute(
            "SELECT flight_date, sum(flights) FROM "
            "marts.carrier_daily_performance GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert days == [(dt.date(2013, 1, 1), 842), (dt.date(2013, 1, 2), 943)]
    # The webserver, the daemon, the code servers and the runs all ended with it.
    assert processes_with(f"DAGSTER_HOME={root / 'home'}") == []
