"""The settings: every variable read once, checked, typed, and the same as the docs' table."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from etl_assets.runtime.resources import build_resources
from etl_assets.runtime.settings import Settings, settings_fields, variable

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "etl_assets"


def docs_table() -> dict[str, str]:
    """The configuration table of the docs (docs/configuration.md): each variable and its
    default column."""
    text = (REPO / "docs" / "configuration.md").read_text()
    start = text.index("\n| variable | default | what |\n") + 1
    end = text.find("\n\n", start)  # the table ends at the first blank line, or the page's end
    table = text[start : end if end != -1 else len(text)]
    return {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"^\| `(\w+)` \| ([^|]*) \|", table, re.M)
    }


def test_the_docs_table_lists_every_setting_with_its_default():
    table = docs_table()
    assert sorted(table) == sorted(f.metadata["variable"] for f in settings_fields())
    for f in settings_fields():
        shown, declared = table[f.metadata["variable"]], f.metadata["default"]
        if declared is None:  # unset, or each sensor's own interval
            assert not shown.startswith("`"), (f.name, shown)
        elif shown.startswith("`"):  # a literal default: the same value
            assert shown.split("`")[1] == str(declared), (f.name, shown, declared)


def environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def test_only_the_settings_read_the_projects_variables():
    names = {f.metadata["variable"] for f in settings_fields()}
    readers = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            # os.environ.get("X"), os.getenv("X"), os.environ["X"]
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and (
                    node.func.attr == "getenv"
                    or (node.func.attr == "get" and environ(node.func.value))
                )
            ):
                args = node.args[:1]
            elif (
                isinstance(node, ast.Subscript)
                and environ(node.value)
                and not isinstance(node.ctx, ast.Store)
            ):
                args = [node.slice]
            else:
                continue
            readers += [
                f"{path.relative_to(REPO)}: {a.value}"
                for a in args
                if isinstance(a, ast.Constant) and a.value in names
            ]
    # instance_at saves the variable to put it back, and reads nothing from it
    assert readers == ["etl_assets/operations/instance.py: DAGSTER_HOME"]


def test_the_defaults_are_inside_the_project(tmp_path):
    settings = Settings.from_env({"ETL_PROJECT_DIR": str(tmp_path)})
    assert settings.warehouse == str(tmp_path / "data/warehouse.duckdb")
    assert settings.landing_dir == tmp_path / "data/landing"
    assert settings.alert_log == tmp_path / "data/alerts.jsonl"
    assert settings.dagster_home == tmp_path / ".dagster_home"
    assert (settings.manifest_policy, settings.last_day, settings.ingest_cron) == (
        "warn",
        "2013-12-31",
        "0 6 * * *",
    )
    assert (settings.quarantine_limit_percent, settings.volume_tolerance_percent) == (5, 25)
    assert settings.interval(30) == 30 and not settings.on_celery


def test_the_project_is_the_checkout_that_holds_the_package():
    assert Settings.from_env({}).project_dir == REPO


def test_a_relative_project_folder_is_refused():
    with pytest.raises(ValueError, match="ETL_PROJECT_DIR must be an absolute path"):
        Settings.from_env({"ETL_PROJECT_DIR": "somewhere"})


def test_relative_paths_resolve_against_the_project_not_the_working_directory(
    monkeypatch, tmp_path
):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for name in list(os.environ):
        if name.startswith("ETL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ETL_PROJECT_DIR", str(project))
    monkeypatch.setenv("ETL_WAREHOUSE_PATH", "w/warehouse.duckdb")
    monkeypatch.setenv("ETL_ALERT_LOG", str(tmp_path / "alerts.jsonl"))
    resources = build_resources(Settings.from_env())
    assert resources["warehouse"].database == str(project / "w/warehouse.duckdb")
    assert resources["io_manager"].database == str(project / "w/warehouse.duckdb")
    assert resources["landing"].path == str(project / "data/landing")
    # a value given as it is used stays the environment variable: the UI says where it came from
    assert resources["alerts"].log_path == dg.EnvVar("ETL_ALERT_LOG")


@pytest.mark.parametrize("database", [":memory:", "md:analytics"])
def test_a_database_that_is_no_file_is_left_as_given(monkeypatch, database):
    monkeypatch.setenv("ETL_WAREHOUSE_PATH", database)
    settings = Settings.from_env()
    assert settings.warehouse == database
    assert build_resources(settings)["warehouse"].database == dg.EnvVar("ETL_WAREHOUSE_PATH")


def test_a_given_interval_applies_to_every_sensor():
    settings = Settings.from_env({"ETL_SENSOR_INTERVAL_SECONDS": " 5 "})
    assert (settings.interval(30), settings.interval(15)) == (5, 5)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ETL_SENSOR_INTERVAL_SECONDS", "0", "must be a whole number, at least 1"),
        ("ETL_SENSOR_INTERVAL_SECONDS", "2.5", "must be a whole number"),
        ("ETL_SENSOR_INTERVAL_SECONDS", "soon", "must be a whole number"),
        ("ETL_QUARANTINE_LIMIT_PERCENT", "101", "at least 0 and at most 100"),
        ("ETL_VOLUME_TOLERANCE_PERCENT", "-5", "must be a whole number"),
        ("ETL_MANIFEST_POLICY", "sometimes", "must be one of"),
        ("ETL_LAST_DAY", "tomorrow", "must be a date"),
        ("ETL_LAST_DAY", "2013-13-01", "must be a date"),
        ("ETL_LAST_DAY", "2012-12-31", "before the first day"),
        ("ETL_ALERT_WEBHOOK_URL", "ftp://hooks.example/T0K3N", "http:// or https://"),
        ("ETL_ALERT_WEBHOOK_URL", "https://user:s3cret@hooks.example/x", "user or password"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_what_it_expects(name, value, expected):
    with pytest.raises(
        ValueError, match=f"{name} .*{re.escape(expected)}|{name}.*{re.escape(expected)}"
    ) as refused:
        Settings.from_env({name: value})
    if "WEBHOOK" in name:  # a secret is never repeated
        assert "T0K3N" not in str(refused.value) and "s3cret" not in str(refused.value)


def test_secrets_stay_out_of_the_settings_repr():
    settings = Settings.from_env(
        {
            "ETL_ALERT_WEBHOOK_URL": "https://hooks.example/T0K3N",
            "ETL_CELERY_BROKER": "redis://:pw@127.0.0.1:6379/0",
            "ETL_DUCKLAKE_CATALOG": "postgres:dbname=lake host=127.0.0.1 password=s3cret",
        }
    )
    assert settings.alert_webhook_url.endswith("T0K3N") and settings.on_celery
    assert settings.ducklake_catalog.endswith("s3cret")
    assert not {"T0K3N", "pw@", "s3cret"} & set(re.findall(r"T0K3N|pw@|s3cret", repr(settings)))


def test_the_variable_of_each_setting():
    assert variable("warehouse_path") == "ETL_WAREHOUSE_PATH"
    assert variable("dagster_home") == "DAGSTER_HOME"


@pytest.mark.e2e
def test_definitions_loaded_with_the_setting_tick_every_sensor_at_that_interval():
    """The interval is part of a sensor's definition, so a fresh interpreter reads it at load."""
    script = (
        "from etl_assets.definitions import defs\n"
        "for s in defs().sensors: print(s.name, s.minimum_interval_seconds)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"ETL_SENSOR_INTERVAL_SECONDS": "7", "PATH": ""},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    intervals = dict(line.split() for line in done.stdout.splitlines())
    assert {
        name: int(seconds)
        for name, seconds in intervals.items()
        if name != "marts_freshness_sensor"
    } == {
        "landing_zone_sensor": 7,
        "marts_automation_sensor": 7,
        "run_failure_alert_sensor": 7,
        "check_failure_alert_sensor": 7,
        "alert_delivery_sensor": 7,
    }


def test_nothing_reads_the_settings_at_import():
    """A bad value fails where the definitions are built, not where a module is imported."""
    script = "import etl_assets.definitions as d\nprint('imported')\nd.defs()"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "ETL_LAST_DAY": "someday"},
        timeout=120,
    )
    assert done.stdout.strip() == "imported"
    assert done.returncode != 0 and "ETL_LAST_DAY must be a date" in done.stderr


def test_the_env_example_names_every_setting_and_gives_the_defaults():
    lines = (REPO / ".env.example").read_text().splitlines()
    active = dict(line.split("=", 1) for line in lines if re.match(r"[A-Z_]+=", line))
    commented = [line[2:].split("=")[0] for line in lines if re.match(r"# [A-Z_]+=", line)]
    assert sorted([*active, *commented]) == sorted(
        f.metadata["variable"] for f in settings_fields()
    )
    assert len(active) >= 10
    assert Settings.from_env(active) == Settings.from_env({})  # a line left active: the default
