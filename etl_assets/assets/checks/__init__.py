"""Asset checks: the pipeline's data tests, declared once per table, evaluated in the warehouse.

Severity is a decision, stated at the start of each check's description:
- ERROR, blocking: bad data must not flow downstream. A failure stops every asset downstream in
  the same run (the marts keep their previous rows). The clean layer never stores a row that
  breaks the contract, because such rows go to quarantine, so these fail only when something
  is broken: the code, the warehouse, or a delivery that is mostly bad.
- WARN: the source is known to be incomplete (planes missing from the registry, airports
  missing from the airport list, hours without a weather report); analysts can live with it,
  and the check says how much is affected.

A check on a partitioned table judges the partitions of the run that just wrote it, through
the $start/$end range of its queries: its cost follows the partitions, not the table's history.
The queries are plain functions in `etl_assets.pipeline.quality`; this package turns what they
return into results a person can act on: counts, the failing share and a sample as markdown.
"""

from etl_assets.assets.checks.framework import Scope, TableCheck, Verdict, evaluate
from etl_assets.assets.checks.suites import (
    MART_KEYS,
    MARTS_FRESH_WITHIN,
    clean_checks,
    factory_checks,
    freshness_checks,
    mart_checks,
    quarantine_checks,
    raw_checks,
)

__all__ = [
    "MARTS_FRESH_WITHIN",
    "MART_KEYS",
    "Scope",
    "TableCheck",
    "Verdict",
    "clean_checks",
    "evaluate",
    "factory_checks",
    "freshness_checks",
    "mart_checks",
    "quarantine_checks",
    "raw_checks",
]
