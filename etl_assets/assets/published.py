"""The marts as analysts read them: a copy published whole after each successful marts run
(`pipeline/readers.py`), so a reader never waits for a load, fails on its lock, or sees half of
one. A failed blocking check of a mart stops the run before this step: the copy stays the last
good one."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from etl_assets.assets.checks import MART_KEYS
from etl_assets.assets.layer import step_arguments, table_arguments
from etl_assets.assets.retries import transient_only
from etl_assets.pipeline import readers
from etl_assets.runtime.resources import PublishedMarts, WarehouseResource

PUBLISHED_KEY = dg.AssetKey(["marts", "published"])

# After any mart's day changes: the marts have many days, so "all parents present" (eager) would
# wait for every day of the range; a run in progress upstream is waited for.
AFTER_THE_MARTS = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after the marts change")


@dg.asset(
    key=PUBLISHED_KEY,
    description="The marts, copied whole into the file analysts read (never the warehouse "
    "itself): the last successful run's, with when it was published and the days covered.",
    **table_arguments("marts", kinds={"duckdb"}, tags={"readers": "published"}),
    deps=MART_KEYS,
    automation_condition=AFTER_THE_MARTS,
    **step_arguments(None),
)
@transient_only
def published_marts(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, published: PublishedMarts
) -> Iterator[dg.MaterializeResult]:
    if published.path is None:
        context.log.info("no file to publish the marts to (a warehouse in memory or MotherDuck)")
        yield dg.MaterializeResult(metadata={"published": dg.MetadataValue.text("nowhere")})
        return
    with warehouse.get_connection() as conn:
        copy = readers.publish(conn, Path(published.path), context.run.run_id)
    context.log.info(copy.describe())
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(copy.path)),
            "published_at": dg.MetadataValue.timestamp(copy.published_at),
            "days": dg.MetadataValue.text(f"{copy.first_day}..{copy.last_day}"),
            **{f"rows_{name}": dg.MetadataValue.int(n) for name, n in copy.rows.items()},
        }
    )
