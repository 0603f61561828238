"""The package's shape: imports never circle, and the code location (definitions.py, what
`dagster dev`, `dg` and the code server load) never reaches the command line's operations/."""

from __future__ import annotations

import ast
import graphlib
import json
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
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES
                     else node.module for a in node.names]
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
    script = ("import json, sys\nfrom etl_assets.definitions import defs\n"
              "defs().resolve_all_job_defs()\nprint(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    loaded = json.loads(done.stdout)
    assert "etl_assets.assets.raw" in loaded
    assert [m for m in loaded if m.startswith("etl_assets.operations")] == []
