"""The README and the docs/ pages match the package: docs/layout.md lists every module and nothing
that is gone, the README's short layout names every package folder, the README stays short, and
every relative link points at a file that exists."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 250


def layout_block() -> str:
    """The module-by-module layout: the code block of docs/layout.md that starts at etl_assets/."""
    text = (REPO / "docs" / "layout.md").read_text()
    start = text.index("```\netl_assets/\n")
    return text[start : text.index("\n```", start + 4)]


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 4)
    return text[start : end if end != -1 else len(text)]


def package_folders() -> set[str]:
    """Every folder of etl_assets/ that is a package (holds an __init__.py), nested ones too."""
    return {
        p.parent.name
        for p in (REPO / "etl_assets").rglob("__init__.py")
        if p.parent != REPO / "etl_assets"
    }


def test_the_layout_lists_every_module_of_the_package_and_no_other():
    block = layout_block()
    # a module named in a path (etl_assets_tests/test_x.py) is a reference, not a listing
    listed = set(re.findall(r"(?<![/\w])([a-z_]+\.py)\b", block.split("\netl_assets_tests/")[0]))
    modules = {p.name for p in (REPO / "etl_assets").rglob("*.py") if p.name != "__init__.py"}
    assert sorted(modules - listed) == [], "modules docs/layout.md does not list"
    assert sorted(listed - modules) == [], "files docs/layout.md lists that are gone"
    folders = package_folders()
    assert all(f"{folder}/" in block for folder in folders), folders


def test_the_readmes_short_layout_names_every_package_folder():
    layout = readme_section("Layout")
    missing = sorted(f for f in package_folders() if f"{f}/" not in layout)
    assert missing == [], "package folders the README's layout does not name"


def test_the_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def relative_links(page: Path) -> list[str]:
    """The targets of the page's Markdown links and images, outside code, that are not web
    addresses."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)  # fenced blocks
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    targets = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    return [t for t in targets if not re.match(r"(https?|mailto):", t)]


def test_every_relative_link_points_at_a_file_that_exists():
    assert (REPO / "docs" / "layout.md") in PAGES
    broken = []
    for page in PAGES:
        for target in relative_links(page):
            path = target.split("#", 1)[0]
            if path and not (page.parent / path).exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert broken == [], "links to files that do not exist"
