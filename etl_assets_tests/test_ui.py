"""The Dagster UI as a person uses it: headless Chromium, driven by Playwright, on a real `dagster dev`.

Two days are loaded first (`etl-assets land` and `run`, as `make run` does), then the test opens the
UI, skips the first-visit dialog, reads the lineage, materializes one partition of a mart from its
page with the Materialize button, waits for the run, and finds the new materialization, its
metadata, its checks and its daily plot. Screenshots go to data/test-artifacts/ui/.

Needs Debian's `chromium` (Playwright's own browser download does not work on these machines) and
the `playwright` package; without them it skips, which `.ci/run` turns into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from etl_assets_tests.servers import dagster_dev

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "data" / "test-artifacts" / "ui"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MART, DAY = "marts/carrier_daily_performance", "2013-01-02"
# As the machine's probe starts it: no sandbox as root, and no calls to Google's hosts.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """Two loaded days in a temporary warehouse and instance, and `dagster dev` on them."""
    root = tmp_path_factory.mktemp("ui")
    home = root / "home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home),
           "ETL_WAREHOUSE_PATH": str(root / "warehouse.duckdb"),
           "ETL_LANDING_DIR": str(root / "landing"), "ETL_ALERT_LOG": str(root / "alerts.jsonl")}
    cli = str(Path(sys.executable).parent / "etl-assets")
    for command in (["land"], ["run"]):
        done = subprocess.run([cli, *command, "--start", "2013-01-01", "--end", DAY], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with dagster_dev(REPO, env, root / "dagster_dev.log") as server:
        yield server, home


def wait_for(what: str, condition, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def skip_first_visit_dialog(page) -> None:
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=15_000)
    except Exception:  # a visited instance shows no dialog
        return
    skip.click()
    skip.wait_for(state="hidden", timeout=10_000)
