"""The README's layout is the package's tree: every module is listed, and nothing that is gone."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def layout_block() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("```\netl_assets/\n")
    return text[start:text.index("\n```", start + 4)]


def test_the_layout_lists_every_module_of_the_package_and_no_other():
    block = layout_block()
    # a module named in a path (etl_assets_tests/test_x.py) is a reference, not a listing
    listed = set(re.findall(r"(?<![/\w])([a-z_]+\.py)\b", block.split("\netl_assets_tests/")[0]))
    modules = {p.name for p in (REPO / "etl_assets").rglob("*.py") if p.name != "__init__.py"}
    assert sorted(modules - listed) == [], "modules the README's layout does not list"
    assert sorted(listed - modules) == [], "files the README's layout lists that are gone"
    folders = {p.name for p in (REPO / "etl_assets").iterdir()
               if p.is_dir() and (p / "__init__.py").exists()}
    assert all(f"{folder}/" in block for folder in folders), folders
