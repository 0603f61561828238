"""A CLI run whose process died is failed by the next run, and its warehouse slot freed."""

import os
import socket
import subprocess
import sys

import dagster as dg

from etl_assets.operations.instance import HOST_TAG, LAUNCHER_TAG, PID_TAG, release_abandoned_runs


def dead_pid() -> int:
    """The id of a process that has ended (and so can be no run's)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def cli_run(instance, run_id: str, pid: int, host: str | None = None) -> dg.DagsterRun:
    run = dg.DagsterRun(
        job_name="etl_job",
        run_id=run_id,
        status=dg.DagsterRunStatus.STARTED,
        tags={
            LAUNCHER_TAG: "etl-assets",
            HOST_TAG: host or socket.gethostname(),
            PID_TAG: str(pid),
        },
    )
    instance.add_run(run)
    return run


def test_only_the_runs_whose_process_is_gone_are_failed_and_their_slots_freed(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("warehouse", 1)
        cli_run(instance, "dead", dead_pid())
        cli_run(instance, "alive", os.getpid())  # this test's own process
        cli_run(instance, "elsewhere", dead_pid(), host="another-host")  # not ours to judge
        assert storage.claim_concurrency_slot("warehouse", "dead", "raw__flights").is_claimed
        lines = []

        released = release_abandoned_runs(instance, lines.append)

        assert released == 1
        statuses = {r.run_id: r.status for r in instance.get_runs()}
        assert statuses == {
            "dead": dg.DagsterRunStatus.FAILURE,
            "alive": dg.DagsterRunStatus.STARTED,
            "elsewhere": dg.DagsterRunStatus.STARTED,
        }
        assert storage.get_concurrency_info("warehouse").claimed_slots == []
        [line] = lines
        assert line.startswith("released run dead") and "1 pool slot(s) freed" in line
        assert release_abandoned_runs(instance, lines.append) == 0  # failed once, not again
