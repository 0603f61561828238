"""The extract/transform/load functions stay plain Python: nothing in pipeline/ imports Dagster."""

import ast
from pathlib import Path

import etl_assets.pipeline

PIPELINE = Path(etl_assets.pipeline.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_pipeline_modules_do_not_import_dagster():
    modules = sorted(PIPELINE.glob("*.py"))
    assert len(modules) >= 6
    offenders = {p.name for p in modules if {"dagster", "dagster_duckdb"} & imported_modules(p)}
    assert offenders == set()
