import dagster as dg

from etl_assets.assets.clean import clean_assets
from etl_assets.assets.marts import mart_assets
from etl_assets.assets.raw import raw_assets
from etl_assets.alerts import check_failure_alert_sensor, run_failure_alert_sensor
from etl_assets.checks import factory_checks
from etl_assets.jobs import etl_job
from etl_assets.resources import build_resources


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[*raw_assets, *clean_assets, *mart_assets],
        asset_checks=factory_checks,
        jobs=[etl_job],
        sensors=[run_failure_alert_sensor, check_failure_alert_sensor],
        resources=build_resources(),
    )
