"""The package's shape: imports never circle, and the code location (definitions.py, what
`dagster dev`, `dg` and the code server load) never reaches the command line's operations/."""

from __future__ import annotations

import ast
import graphlib
import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "etl_assets"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    """The package's modules this file imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from package import module` imports the module; `from module import name`, the module
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                for a in node.names
            ]
        else:
            continue
        found |= {name for name in names if name in MODULES}
    return found


GRAPH = {name: imports_of(path) - {name} for name, path in MODULES.items()}


def reachable_from(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(GRAPH[name])
    return seen


def test_the_graph_sees_imports_inside_functions():
    # cli imports the definitions inside its commands, so that `etl-assets land` loads no Dagster
    assert "etl_assets.definitions" in GRAPH["etl_assets.operations.cli"]
    assert "etl_assets.assets.raw" in GRAPH["etl_assets.definitions"]
    assert len(MODULES) > 40


def test_no_import_cycle():
    sorter = graphlib.TopologicalSorter(GRAPH)
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as cycle:
        raise AssertionError(f"modules import each other: {' -> '.join(cycle.args[1])}") from None
    assert set(order) == set(MODULES)


def test_the_code_location_never_imports_operations():
    reached = reachable_from("etl_assets.definitions")
    assert "etl_assets.runtime.resources" in reached  # the walk follows imports
    assert sorted(m for m in reached if m.startswith("etl_assets.operations")) == []
    # and in a fresh interpreter, with the definitions built as a code server builds them
    script = (
        "import json, sys\nfrom etl_assets.definitions import defs\n"
        "defs().resolve_all_job_defs()\nprint(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(done.stdout)
    assert "etl_assets.assets.raw" in loaded
    assert [m for m in loaded if m.startswith("etl_assets.operations")] == []


# --- the snapshot: a change to the graph is a reviewed diff -------------------------------

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "definitions.json"


def snapshot() -> dict:
    """What the code location defines, as a reviewer reads it: the assets with their group,
    upstream, partitioning, automation and operational settings and checks; the jobs, schedules
    and sensors. Built from the default settings, whatever this environment sets."""
    import dagster as dg

    from etl_assets.definitions import build_definitions
    from etl_assets.runtime.settings import Settings

    definitions = build_definitions(Settings.from_env({}))
    assets = {}
    for assets_def in definitions.assets or []:
        assert isinstance(assets_def, dg.AssetsDefinition)
        checks = {c.asset_key.to_user_string(): [] for c in assets_def.check_specs}
        for c in assets_def.check_specs:
            checks[c.asset_key.to_user_string()].append(
                {"name": c.name, "blocking": c.blocking, "description": c.description}
            )
        for spec in assets_def.specs:
            key = spec.key.to_user_string()
            condition = spec.automation_condition
            assets[key] = {
                "group": spec.group_name,
                "upstream": sorted(d.asset_key.to_user_string() for d in spec.deps),
                "partitions": partitioning(spec.partitions_def),
                "backfill_policy": str(assets_def.backfill_policy),
                "automation": condition.get_label() or type(condition).__name__
                if condition
                else None,
                "kinds": sorted(spec.kinds),
                "owners": list(spec.owners),
                "tags": {
                    k: v for k, v in sorted(spec.tags.items()) if not k.startswith("dagster/kind/")
                },
                "pool": assets_def.op.pool,
                "retries": assets_def.op.retry_policy.max_retries
                if assets_def.op.retry_policy
                else 0,
                "checks": sorted(checks.get(key, []), key=lambda c: c["name"]),
            }
    freshness = sorted(
        key.to_user_string()
        for checks_def in definitions.asset_checks or []
        for key in checks_def.check_keys
    )
    return {
        "assets": dict(sorted(assets.items())),
        "other_checks": freshness,
        "jobs": {
            job.name: sorted(
                k.to_user_string()
                for k in definitions.resolve_job_def(job.name).asset_layer.executable_asset_keys
            )
            for job in sorted(definitions.jobs or [], key=lambda j: j.name)
        },
        "schedules": {
            s.name: {
                "cron": s.cron_schedule,
                "timezone": s.execution_timezone,
                "default": s.default_status.value,
            }
            for s in sorted(definitions.schedules or [], key=lambda s: s.name)
        },
        "sensors": {
            s.name: {
                "interval": s.minimum_interval_seconds,
                "default": s.default_status.value,
                "type": type(s).__name__,
            }
            for s in sorted(definitions.sensors or [], key=lambda s: s.name)
        },
        "resources": sorted(definitions.resources or {}),
        "executor": definitions.executor.name if definitions.executor else None,
    }


def partitioning(partitions) -> str | None:
    """A time-partitioned asset's cadence, timezone, first and last partition."""
    if partitions is None:
        return None
    return (
        f"{partitions.cron_schedule} {partitions.timezone} "
        f"{partitions.get_first_partition_key()}..{partitions.get_last_partition_key()}"
    )


def test_the_definitions_match_their_reviewed_snapshot():
    """On purpose changed? ETL_UPDATE_SNAPSHOT=1 writes the new snapshot; review its diff."""
    current = json.dumps(snapshot(), indent=1, sort_keys=False) + "\n"
    if os.environ.get("ETL_UPDATE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.exists(), "no snapshot yet: run with ETL_UPDATE_SNAPSHOT=1 and commit it"
    assert current == SNAPSHOT.read_text(), (
        "the definitions changed; if on purpose, rerun with ETL_UPDATE_SNAPSHOT=1 and commit "
        "etl_assets_tests/snapshots/definitions.json with the change"
    )
