"""The marts analysts read: published whole after each run, readable while the next one loads."""

import base64
import datetime as dt
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from etl_assets.operations.cli import main
from etl_assets.pipeline import backends, charts, quality, readers
from etl_assets.pipeline.landing import land
from etl_assets.pipeline.marts import MARTS

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_a_run_publishes_its_marts_whole_beside_the_warehouse(loaded):
    deployment, summary = loaded
    path = deployment.settings.published_marts
    assert path == Path(deployment.warehouse).with_name("warehouse.marts.duckdb")
    with readers.open_published(path) as reader:
        copy = readers.published(reader, path)
        copied = {m: quality.table_checksum(reader, f"marts.{m}", digits=None) for m in MARTS}
    with backends.connect(deployment.warehouse, read_only=True) as conn:
        source = {m: quality.table_checksum(conn, f"marts.{m}", digits=None) for m in MARTS}
    assert copied == source  # every mart, bit for bit
    assert copy.rows["fct_flights"] == 842 + 943 + 914
    assert (copy.first_day, copy.last_day) == (dt.date(2013, 1, 1), dt.date(2013, 1, 3))
    assert copy.run_id == summary.run_id


def test_query_prints_the_published_marts_and_their_age(loaded, monkeypatch, capsys):
    loaded[0].use(monkeypatch)
    assert main(["query", "SELECT count(*) AS flights FROM marts.fct_flights"]) == 0
    out = capsys.readouterr().out
    assert "(2013-01-01..2013-01-03), published" in out and " ago" in out
    assert out.split("\n")[-2].strip() == "2699"
    assert main(["query", "--file", str(REPO / "analysis" / "on_time_by_carrier.sql")]) == 0
    rows = capsys.readouterr().out.splitlines()[3:]
    with backends.connect(loaded[0].warehouse, read_only=True) as conn:
        carriers = conn.execute(
            "SELECT count(DISTINCT carrier) FROM marts.carrier_daily_performance"
        ).fetchone()[0]
    assert len(rows) == carriers > 10  # a row per carrier for the one month loaded
    assert main(["query", "SELECT * FROM marts.no_such_mart"]) == 1
    assert "no_such_mart" in capsys.readouterr().err


def test_each_marts_page_shows_its_whole_daily_series_as_a_chart(loaded):
    deployment, _summary = loaded
    for mart in MARTS:
        key = dg.AssetKey(["marts", mart])
        record = deployment.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=["2013-01-03"]), limit=1
        ).records[0]  # the newest day of the run carries the run-wide metadata
        text = record.asset_materialization.metadata["daily_series"].value
        encoded = re.fullmatch(r"!\[[^\]]+\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
        assert encoded, text[:80]
        image = Image.open(io.BytesIO(base64.b64decode(encoded.group(1))))
        assert (image.format, image.size) == ("PNG", (720, 288))
    with backends.connect(deployment.warehouse, read_only=True) as conn:
        carriers = charts.series(conn, "carrier_daily_performance")
    assert len(carriers.columns) == 6 and len(carriers) == 3  # six carriers over three days


def test_chart_draws_the_published_marts_for_analysts(loaded, monkeypatch, capsys, tmp_path):
    loaded[0].use(monkeypatch)
    assert main(["chart", "--out", str(tmp_path / "charts")]) == 0
    drawn = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert drawn == sorted(f"{mart}.png" for mart in MARTS)
    for name in drawn:
        assert Image.open(tmp_path / "charts" / name).size == (720, 288)
    assert "(2013-01-01..2013-01-03), published" in capsys.readouterr().out


@pytest.mark.e2e
def test_a_reader_polling_during_a_load_never_fails_nor_sees_half_a_run(tmp_path):
    """A notebook refreshing every 50 ms while `etl-assets run` loads the rest of the year
    (362 days, one run holding the warehouse's lock for most of it): every open succeeds, each
    copy it reads adds up, and a reader holding a copy open does not stop the load."""
    land(tmp_path / "landing", dt.date(2013, 1, 1), dt.date(2013, 12, 31))
    env = {
        **os.environ,
        "ETL_PROJECT_DIR": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path / "home"),
        "ETL_LANDING_DIR": str(tmp_path / "landing"),
        "ETL_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
    }
    first = subprocess.run(
        [str(BIN / "etl-assets"), "run", "--start", "2013-01-01", "--end", "2013-01-03"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    path = tmp_path / "warehouse.marts.duckdb"
    held = readers.open_published(path)  # a reader that keeps its copy open all along
    load = subprocess.Popen(
        [str(BIN / "etl-assets"), "run", "--start", "2013-01-04", "--end", "2013-12-31"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    opens, failures, seen = 0, [], set()
    began = time.monotonic()
    deadline = began + 600
    while load.poll() is None and time.monotonic() < deadline:
        opens += 1
        try:
            with readers.open_published(path) as reader:
                copy = readers.published(reader, path)
                off = reader.execute(
                    "SELECT count(*) FROM (SELECT flight_date, count(*) AS n FROM "
                    "marts.fct_flights GROUP BY 1) f FULL JOIN (SELECT flight_date, "
                    "sum(flights) AS n FROM marts.carrier_daily_performance GROUP BY 1) c "
                    "USING (flight_date) WHERE f.n IS DISTINCT FROM c.n"
                ).fetchone()[0]
                days = reader.execute(
                    "SELECT count(DISTINCT flight_date) FROM marts.fct_flights"
                ).fetchone()[0]
            assert off == 0, f"{off} day(s) where the marts do not add up"
            assert days == (copy.last_day - copy.first_day).days + 1
            seen.add(copy.last_day)
        except Exception as error:
            failures.append(f"{type(error).__name__}: {error}")
        time.sleep(0.05)
    output = load.communicate(timeout=60)[0]
    took = time.monotonic() - began
    assert load.returncode == 0, output[-3000:]
    assert held.execute("SELECT count(*) FROM marts.fct_flights").fetchone() == (2699,)
    held.close()
    with readers.open_published(path) as reader:
        seen.add(readers.published(reader, path).last_day)
    print(f"\n{opens} opens during the {took:.0f} s load, {len(failures)} failed")
    assert failures == []
    assert opens >= 100
    assert seen == {dt.date(2013, 1, 3), dt.date(2013, 12, 31)}
