"""requirements.lock pins every package `make setup` installs: the environment is the lock's,
and the lock holds each version setup.py pins."""

import importlib.metadata
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"


def locked() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", LOCK.read_text(), re.M)
    return {canonicalize_name(name): version for name, version in pins}


def test_the_lock_holds_every_version_setup_py_pins():
    pins = locked()
    assert len(pins) > 100 and "dagster" in pins
    declared = [Requirement(r) for r in importlib.metadata.requires("etl_assets") or []]
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock has {name} {pins[name]}, setup.py asks {requirement.specifier}: "
            f"run make lock"
        )


def test_every_installed_package_is_at_its_locked_version():
    pins = locked()
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()
    }
    tools = {"pip", "setuptools", "wheel", "etl-assets"}  # the installer, and the project
    assert {
        name: version
        for name, version in installed.items()
        if name not in tools and pins.get(name) != version
    } == {}
