"""Jobs: the whole graph (etl_job), one day's feeds (daily_ingest_job), the reference tables."""

from collections.abc import Iterable

import dagster as dg

from etl_assets.assets.keys import table_key
from etl_assets.pipeline.contract import DAILY_FEEDS, REFERENCE_FEEDS

LAYERS = ("raw", "clean", "quarantine")  # one feed's tables: clean and quarantine share a step


def feed_assets(feeds: Iterable[str]) -> list[dg.AssetKey]:
    """The tables one feed's files load: raw, clean and quarantine."""
    return [table_key(layer, feed) for feed in feeds for layer in LAYERS]


# The jobs run on the definitions' executor (etl_assets/runtime/executors.py): one process for
# the whole graph, or Celery workers when ETL_CELERY_BROKER is set.
etl_job = dg.define_asset_job(
    "etl_job",
    selection=dg.AssetSelection.all(),
    description="Landing zone → raw → clean (+ quarantine) → marts, with every check.",
)

# Partitioned like the assets it selects: the daily partitions the definitions are built with
# (ETL_LAST_DAY); partitions_def on an asset job is deprecated in this dagster.
daily_ingest_job = dg.define_asset_job(
    "daily_ingest_job",
    selection=feed_assets(c.name for c in DAILY_FEEDS),
    description="A day's flights and weather files → raw → clean (+ quarantine), with their "
    "checks. The marts follow by automation.",
)

reference_job = dg.define_asset_job(
    "reference_job",
    selection=feed_assets(c.name for c in REFERENCE_FEEDS),
    description="The airlines, airports and planes files → raw → clean (+ quarantine).",
)
