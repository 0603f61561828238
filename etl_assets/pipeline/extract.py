"""Extract: read delivered files from the landing zone into raw frames, every value as text.

Raw keeps each delivered row and column as delivered (strings, 'NA' included) plus lineage
columns, so nothing a later rule rejects is lost before it can be quarantined with a reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from etl_assets.pipeline.contract import TableContract
from etl_assets.pipeline.landing import daily_file, missing_daily_files, reference_file


class DeliveryError(ValueError):
    """A delivery that cannot be read as the feed it claims to be: missing, empty or misshapen."""


def read_delivery(
    path: Path,
    contract: TableContract,
    *,
    landing_dir: Path,
    delivery_date: dt.date | None,
    loaded_at: pd.Timestamp,
) -> pd.DataFrame:
    """One delivered file as text, with its header checked against the feed's contract."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        raise DeliveryError(f"{path}: file is empty (not even a header)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DeliveryError(f"{path}: not a readable UTF-8 CSV file: {error}") from None
    header = list(frame.columns)
    missing = [c for c in contract.source_columns if c not in header]
    extra = [c for c in header if c not in contract.source_columns]
    if missing or extra:
        raise DeliveryError(
            f"{path}: header does not match the {contract.name} feed"
            + (f"; missing columns {missing}" if missing else "")
            + (f"; unexpected columns {extra}" if extra else "")
        )
    frame = frame[list(contract.source_columns)]
    frame["delivery_date"] = pd.Timestamp(delivery_date) if delivery_date else pd.NaT
    frame["delivery_date"] = frame["delivery_date"].astype("datetime64[us]")
    frame["_source_file"] = str(Path(path).relative_to(landing_dir))
    frame["_loaded_at"] = loaded_at
    return frame


def extract_daily(
    landing_dir: Path, contract: TableContract, wanted: Sequence[dt.date], loaded_at: pd.Timestamp
) -> pd.DataFrame:
    """All delivered rows of a daily feed for the given days; every file must be there."""
    landing_dir = Path(landing_dir)
    missing = missing_daily_files(landing_dir, [contract.name], wanted)
    if missing:
        shown = ", ".join(str(path) for _, _, path in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DeliveryError(
            f"{len(missing)} {contract.name} file(s) missing from the landing zone: {shown}{more}. "
            f"Land them first, e.g. `etl-assets land --start {missing[0][1]} "
            f"--end {missing[-1][1]}`."
        )
    frames = [
        read_delivery(daily_file(landing_dir, contract.name, day), contract,
                      landing_dir=landing_dir, delivery_date=day, loaded_at=loaded_at)
        for day in wanted
    ]
    if not frames:
        return empty_raw(contract)
    return pd.concat(frames, ignore_index=True)


def extract_reference(
    landing_dir: Path, contract: TableContract, loaded_at: pd.Timestamp
) -> pd.DataFrame:
    landing_dir = Path(landing_dir)
    path = reference_file(landing_dir, contract.name)
    if not path.exists():
        raise DeliveryError(
            f"{contract.name} reference file missing from the landing zone: {path}. "
            "Land it first, e.g. `etl-assets land --start 2013-01-01 --end 2013-01-01`."
        )
    return read_delivery(path, contract, landing_dir=landing_dir, delivery_date=None,
                         loaded_at=loaded_at)


def empty_raw(contract: TableContract) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in contract.source_columns})
    frame["delivery_date"] = pd.Series(dtype="datetime64[us]")
    frame["_source_file"] = pd.Series(dtype=object)
    frame["_loaded_at"] = pd.Series(dtype="datetime64[us, UTC]")
    return frame
