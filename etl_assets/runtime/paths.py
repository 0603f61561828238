"""Where the project is: every relative path setting resolves against it, never the working directory.

Run from any folder, `etl-assets`, `dagster dev` and the tests write the same warehouse, landing
zone, alert log and instance. The project is the source checkout that holds this package (an
editable install, as `make setup` makes), or the absolute folder ETL_PROJECT_DIR names; an
install elsewhere without ETL_PROJECT_DIR must give every path as absolute.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

PROJECT_DIR_VAR = "ETL_PROJECT_DIR"
_MARKERS = ("pyproject.toml", "workspace.yaml")


def project_dir() -> Path:
    """The project's folder: ETL_PROJECT_DIR, else the checkout this package was loaded from."""
    named = os.environ.get(PROJECT_DIR_VAR)
    if named:
        folder = Path(named).expanduser()
        if not folder.is_absolute():
            raise ValueError(f"{PROJECT_DIR_VAR} must be an absolute path, not {named!r}")
        return folder
    checkout = Path(__file__).resolve().parents[2]
    if all((checkout / marker).exists() for marker in _MARKERS):
        return checkout
    raise ValueError(
        f"etl_assets is installed outside its project ({checkout}), so a relative path has "
        f"nothing to be relative to: set {PROJECT_DIR_VAR} to an absolute folder, or give the "
        f"path as absolute")


def project_path(path: str | os.PathLike) -> Path:
    """The path itself when absolute, else the same path inside the project."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_dir() / path


def path_setting(name: str, default: str) -> str | dg.EnvVar:
    """A path from the environment variable `name`, else the default, made absolute.

    An absolute value stays a `dg.EnvVar`, so the UI shows where it came from; a relative one (or
    the default) is resolved against the project here, at load, and given as the resolved path.
    """
    value = os.environ.get(name)
    if value and (Path(value).is_absolute() or value == ":memory:" or value.startswith("md:")):
        return dg.EnvVar(name)  # a path, an in-memory database, a MotherDuck database
    return str(project_path(value or default))


def env_path(name: str, default: str) -> Path:
    """The same path as `path_setting` gives a resource, for code that runs outside a run."""
    return project_path(os.environ.get(name) or default)
