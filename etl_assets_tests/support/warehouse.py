"""The warehouse as the tests compare it: its tables, and each table's rows and digest."""

import datetime as dt

from etl_assets.pipeline import backends, quality
from etl_assets.pipeline.contract import ALL_FEEDS
from etl_assets.pipeline.marts import MARTS

FIRST_DAYS = (dt.date(2013, 1, 1), dt.date(2013, 1, 3))  # three real days of the bundled feed

# Every table of the warehouse, and the columns that say where and when a file was loaded (a file
# delivered again, in the same or another form, differs there only).
TABLES = [f"{layer}.{c.name}" for layer in ("raw", "clean", "quarantine") for c in ALL_FEEDS]
TABLES += [f"marts.{name}" for name in MARTS] + ["raw.delivered_files"]
LOAD_COLUMNS = ("_loaded_at", "loaded_at", "_source_identity", "identity")


def checksums(
    warehouse: str | backends.Lake, exclude: tuple[str, ...] = (), digits: int | None = 6
) -> dict[str, tuple[int, str]]:
    """Each table's rows and content digest, without the columns in `exclude`, doubles rounded
    to `digits` places (None: at full precision)."""
    with backends.connect(warehouse, read_only=True) as conn:
        return {t: quality.table_checksum(conn, t, exclude, digits) for t in TABLES}
