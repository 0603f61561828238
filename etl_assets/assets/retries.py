"""Which failures a step retries: the transient ones (I/O, a busy or locked warehouse), no other.

A deterministic error (a bug, a bad value, a refused delivery) fails its step at once, with its
message: retrying it three times with backoff only delays the alert.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import dagster as dg
import duckdb

from etl_assets.pipeline.extract import WarehouseBusy

# About 2, 4, 8 s between tries, jittered, for a fault that may pass: another process (a notebook,
# the duckdb CLI) holding the warehouse file for a moment, a file system that hiccups.
STEP_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# OSErrors that another try cannot mend: the file is not there, not a file, or not ours to read.
_LASTING_OS_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def is_transient(error: BaseException) -> bool:
    """Whether trying again later may succeed: I/O trouble, a lock, a commit conflict."""
    if isinstance(error, (WarehouseBusy, duckdb.IOException, duckdb.TransactionException)):
        return True
    return isinstance(error, OSError) and not isinstance(error, _LASTING_OS_ERRORS)


def transient_only(body: Callable[..., Iterator]) -> Callable[..., Iterator]:
    """Wrap a step's generator body so that only transient errors reach the retry policy."""

    @functools.wraps(body)
    def step(*args, **kwargs) -> Iterator:
        try:
            yield from body(*args, **kwargs)
        except dg.Failure:
            raise  # the step said itself whether to retry
        except Exception as error:
            if is_transient(error):
                raise
            raise dg.Failure(
                description=f"{type(error).__name__}: {error}", allow_retries=False
            ) from error

    return step
