"""A run that stops for ever just before one layer's write commits, for a test to SIGKILL it there.

    python -m etl_assets_tests.support.crash_child LAYER SIGNAL_FILE START END

LAYER is raw, clean (clean + quarantine, one transaction) or marts. The run is `etl-assets run`'s
(runner.run_job) on the warehouse and landing zone the environment names; when the transaction
that writes the layer's flights table (raw.flights, clean.flights with quarantine.flights,
marts.fct_flights) has written its rows and is about to commit, SIGNAL_FILE is created, holding
the tables written, and the process waits to be killed.
"""

import datetime as dt
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from etl_assets.pipeline import warehouse

STOP_AT = {"raw": "raw.flights", "clean": "clean.flights", "marts": "marts.fct_flights"}


def main(layer: str, signal_file: str, start: str, end: str) -> None:
    written: list[str] = []
    replace_rows, transaction = warehouse.replace_rows, warehouse.transaction

    def recording_replace_rows(conn, target, *args, **kwargs):
        written.append(target)
        return replace_rows(conn, target, *args, **kwargs)

    @contextmanager
    def stopping_transaction(conn, *args, **kwargs):
        with transaction(conn, *args, **kwargs):
            written.clear()
            yield
            if STOP_AT[layer] in written:  # the rows are in, not yet committed
                Path(signal_file).write_text(",".join(written))
                threading.Event().wait()  # until SIGKILL

    warehouse.replace_rows = recording_replace_rows
    warehouse.transaction = stopping_transaction

    from etl_assets.definitions import build_definitions
    from etl_assets.operations.runner import run_job
    from etl_assets.runtime.settings import Settings

    settings = Settings.from_env()
    summary = run_job(
        build_definitions(settings),
        settings,
        dt.date.fromisoformat(start),
        dt.date.fromisoformat(end),
        echo=print,
    )
    print(summary.render())
    sys.exit(3)  # never reached when the layer was written: the test kills the process first


if __name__ == "__main__":
    main(*sys.argv[1:])
