"""How often the sensors tick: each sensor's default, or ETL_SENSOR_INTERVAL_SECONDS for all.

A shorter interval is for tests and demos that wait on the daemon; read when definitions load,
since a sensor's interval is part of its definition.
"""

import os

INTERVAL_SETTING = "ETL_SENSOR_INTERVAL_SECONDS"
LANDING_SECONDS = 15  # the landing sensor and the marts' automation
ALERT_SECONDS = 30  # the alert sensors


def interval_seconds(default: int) -> int:
    """The sensor's interval: ETL_SENSOR_INTERVAL_SECONDS when set, else its default."""
    value = os.environ.get(INTERVAL_SETTING, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{INTERVAL_SETTING} must be a whole number of seconds, at least 1, "
                         f"not {value!r}")
    return int(value)
