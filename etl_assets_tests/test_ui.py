"""The Dagster UI as a person uses it: headless Chromium, driven by Playwright, on `dagster dev`.

Two days are loaded first (`etl-assets land` and `run`, as `make run` does); then the test opens
the UI, skips the first-visit dialog, reads the lineage, materializes one partition of a mart from
its page with the Materialize button, waits for the run, and finds the new materialization, its
metadata (that day's own figures) and the chart of its daily series, its checks and its plots.
Screenshots go to data/test-artifacts/ui/.

Needs Debian's `chromium` (Playwright's own browser download does not work on these machines) and
the `playwright` package; without them it skips, which `.ci/run` turns into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from etl_assets.operations.instance import instance_at
from etl_assets_tests.support.servers import dagster_dev, wait_for

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "data" / "test-artifacts" / "ui"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MART, DAY = "marts/carrier_daily_performance", "2013-01-02"
# As the machine's probe starts it: no sandbox as root, and no calls to Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.e2e


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
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ETL_WAREHOUSE_PATH": str(root / "warehouse.duckdb"),
        "ETL_LANDING_DIR": str(root / "landing"),
        "ETL_ALERT_LOG": str(root / "alerts.jsonl"),
    }
    cli = str(Path(sys.executable).parent / "etl-assets")
    for command in (["land"], ["run"]):
        done = subprocess.run(
            [cli, *command, "--start", "2013-01-01", "--end", DAY],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with dagster_dev(REPO, env, root / "dagster_dev.log") as server:
        yield server, home


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


def displayed_asset_names(page) -> list[str]:
    """The names the lineage graph shows on its asset nodes (long ones cut in the middle)."""
    return page.locator("[class*='AssetNode_assetName']").all_inner_texts()


def test_a_person_reads_the_lineage_and_materializes_a_partition_from_the_ui(ui, browser):
    server, home = ui
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.set_default_timeout(60_000)

    # 1. The lineage: the three layers, and each layer's assets, told apart by name.
    page.goto(f"{server.url}/asset-groups")
    skip_first_visit_dialog(page)
    page.get_by_text("Materialize all").wait_for()
    for group in ("raw", "clean", "marts"):
        page.locator("button", has_text=group).first.wait_for()
    page.set_viewport_size({"width": 1600, "height": 2000})  # the whole graph in one picture
    page.keyboard.press("Alt+e")  # the graph's "Expand all groups"
    page.get_by_text("fct_flights", exact=True).wait_for()
    names = displayed_asset_names(page)
    assert names.count("flights") == 2  # raw/flights and clean/flights, in their groups' boxes
    assert "fct_flights" in names and "planes" in names
    quarantine = [n for n in names if n.startswith("quarantin") and n.endswith("_flights")]
    assert len(quarantine) == 1, names  # quarantine/quarantined_flights, not a third "flights"
    shot(page, "lineage")
    page.set_viewport_size({"width": 1600, "height": 1000})

    # 2. One partition of a mart, from its page: Materialize, choose the day, launch.
    page.goto(f"{server.url}/assets/{MART}")
    page.locator("button", has_text="Materialize").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_placeholder(re.compile("ex: 2013-01-01")).fill(DAY)
    dialog.get_by_placeholder(re.compile("ex: 2013-01-01")).press("Enter")
    dialog.get_by_text("1 partition", exact=True).wait_for()
    shot(page, "materialize-dialog")
    launch = dialog.locator("button", has_text=re.compile("^Launch"))
    launch.click()
    dialog.wait_for(state="hidden")

    # 3. The daemon runs it; bounded wait for its success in the instance.
    def succeeded():
        with instance_at(home) as instance:
            runs = [
                r
                for r in instance.get_runs()
                if r.tags.get("dagster/partition") == DAY
                or (
                    r.tags.get("dagster/asset_partition_range_start") == DAY
                    and r.job_name != "etl_job"
                )
            ]
            failed = [
                r
                for r in runs
                if r.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
            ]
            assert not failed, f"the UI's run failed: {server.log_tail()}"
            done = [r for r in runs if r.status == dg.DagsterRunStatus.SUCCESS]
            return done[0] if done else None

    run = wait_for("the launched partition's run to succeed", succeeded, timeout=300)

    # 4. The asset's page shows the new materialization, its metadata, its checks and its plot.
    page.goto(f"{server.url}/assets/{MART}?view=events")
    page.get_by_text(run.run_id[:8]).first.wait_for()  # the newest event is the UI's run
    for entry in ("flights", "carriers", "on_time_rate"):
        page.get_by_text(entry, exact=True).first.wait_for()
    with duckdb.connect(str(home.parent / "warehouse.duckdb"), read_only=True) as conn:
        flights, carriers = conn.execute(
            "SELECT sum(flights), count(*) FROM marts.carrier_daily_performance "
            "WHERE flight_date = $day",
            {"day": DAY},
        ).fetchone()
    metadata = page.locator("table").first.inner_text()
    # The partition's own figures, not the run's totals over both days.
    assert re.search(rf"\bflights\s+{flights}\b", metadata), metadata
    assert re.search(rf"\bcarriers\s+{carriers}\b", metadata), metadata
    shot(page, "asset-events")
    # The mart's daily series, drawn by the run, as the browser shows it: a decoded PNG.
    page.locator("tr", has_text="daily_series").first.get_by_text("Show Markdown").click()
    chart = page.locator("img[src^='data:image/png']").first
    chart.wait_for(state="visible")
    size = chart.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert size == [True, 720, 288], size
    shot(page, "daily-series")
    page.keyboard.press("Escape")
    page.goto(f"{server.url}/assets/{MART}?view=checks")
    for check in ("adds_up_to_fct_flights", "key_is_unique", "values_within_contract"):
        page.get_by_text(check, exact=True).first.wait_for()
    shot(page, "asset-checks")
    page.goto(f"{server.url}/assets/{MART}")
    page.get_by_role("button", name="Plots").click()  # the Metadata section's plots
    # By event: Dagster 1.13.27 plots "by partition" over the last partition keys counted back
    # from today, not from the range's end (TimeWindowPartitionsDefinition.
    # get_paginated_partition_keys), so a range that ended in 2013 shows an empty plot there.
    page.get_by_role("button", name="Events").click()
    plot = page.locator("canvas").first
    plot.wait_for()
    for series in ("on_time_rate", "flights", "dagster/partition_row_count"):
        page.get_by_text(series, exact=True).first.wait_for()
    plot.scroll_into_view_if_needed()
    shot(page, "asset-plots")
