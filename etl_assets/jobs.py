import dagster as dg

# In-process: one Python process for the whole graph. DuckDB takes one writer at a time, and
# per-step processes would each pay Dagster's start-up cost for work measured in seconds.
etl_job = dg.define_asset_job(
    "etl_job",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Landing zone → raw → clean (+ quarantine) → marts, with every check.",
)
