import subprocess
import sys

import pytest

from etl_assets.automation.intervals import INTERVAL_SETTING, interval_seconds


def test_a_sensor_keeps_its_default_interval_unless_the_setting_is_given(monkeypatch):
    monkeypatch.delenv(INTERVAL_SETTING, raising=False)
    assert interval_seconds(30) == 30
    monkeypatch.setenv(INTERVAL_SETTING, " 5 ")
    assert interval_seconds(30) == 5


@pytest.mark.parametrize("value", ["0", "-5", "2.5", "soon"])
def test_an_interval_that_is_not_a_whole_number_of_seconds_is_refused(monkeypatch, value):
    monkeypatch.setenv(INTERVAL_SETTING, value)
    with pytest.raises(ValueError, match=f"{INTERVAL_SETTING} must be a whole number"):
        interval_seconds(30)


@pytest.mark.e2e
def test_definitions_loaded_with_the_setting_tick_every_sensor_at_that_interval():
    """The interval is part of a sensor's definition, so a fresh interpreter reads it at load."""
    script = ("from etl_assets.definitions import defs\n"
              "for s in defs().sensors: print(s.name, s.minimum_interval_seconds)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={INTERVAL_SETTING: "7", "PATH": ""}, timeout=120)
    assert done.returncode == 0, done.stderr
    intervals = dict(line.split() for line in done.stdout.splitlines())
    assert {name: int(seconds) for name, seconds in intervals.items()
            if name != "marts_freshness_sensor"} == {
        "landing_zone_sensor": 7, "marts_automation_sensor": 7, "run_failure_alert_sensor": 7,
        "check_failure_alert_sensor": 7, "alert_delivery_sensor": 7}
