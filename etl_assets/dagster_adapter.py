"""What the pipeline needs of Dagster 1.13 that has no public name: environment flags, run tags.

Kept in this one module, with tests that pin their effect (etl_assets_tests/test_dagster_adapter.py
and the alert tests), so an upgrade that changes them fails there first.
"""

from __future__ import annotations

import os

# One "planned" event per asset and run instead of one per asset and day (read by the event log).
PLANNED_EVENTS_FLAG = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
# Events of a step written in batches of this many; only PostgreSQL storage writes a batch as one
# multi-row insert, other storages write them one by one as before.
EVENT_BATCH_FLAG = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 1000


def use_fast_event_writes() -> None:
    """Turn both on for this process and the runs it executes, unless the environment says."""
    os.environ.setdefault(PLANNED_EVENTS_FLAG, "1")
    os.environ.setdefault(EVENT_BATCH_FLAG, str(EVENT_BATCH_SIZE))


# Run tags Dagster sets (dagster/_core/storage/tags.py) and the error class of a step stopped by a
# failed blocking check (dagster/_core/execution/plan/execute_step.py).
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
WILL_RETRY_TAG = "dagster/will_retry"
BLOCKING_CHECK_ERROR = "DagsterAssetCheckFailedError"
