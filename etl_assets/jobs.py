import dagster as dg

from etl_assets.pipeline.contract import DAILY_FEEDS, REFERENCE_FEEDS


def _feed_assets(feeds) -> dg.AssetSelection:
    """A feed's raw table, its clean table and its quarantine (one step writes both)."""
    return dg.AssetSelection.assets(*(
        dg.AssetKey([layer, c.name]) for c in feeds for layer in ("raw", "clean", "quarantine")))


# In-process: one Python process for the whole graph. DuckDB takes one writer at a time, and
# per-step processes would each pay Dagster's start-up cost for work measured in seconds.
etl_job = dg.define_asset_job(
    "etl_job",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Landing zone → raw → clean (+ quarantine) → marts, with every check.",
)


# Partitioned like the assets it selects (the configured daily partitions).
daily_ingest_job = dg.define_asset_job(
    "daily_ingest_job",
    selection=_feed_assets(DAILY_FEEDS),
    executor_def=dg.in_process_executor,
    description="One day's flights and weather files → raw → clean (+ quarantine), with their "
                "checks. Marts follow by declarative automation.",
)


reference_job = dg.define_asset_job(
    "reference_job",
    selection=_feed_assets(REFERENCE_FEEDS),
    executor_def=dg.in_process_executor,
    description="Airlines, airports and planes files → raw → clean (+ quarantine).",
)
