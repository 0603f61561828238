"""The contract's column rules as SQL: one condition per rule, for quarantine reasons and checks.

Cleaning asks which rules a typed row breaks (and says why in the row's reason); the
`values_within_contract` check asks the same conditions of the stored rows. Both run the SQL
generated here in DuckDB, so a rule can never mean one thing in the split and another in the check.
Identifiers come from the contract (validated there); values and patterns are quoted as literals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from etl_assets.pipeline.tables import Column

UNPARSED = "__unparsed"  # suffix of the column holding text that failed to parse
_KINDS = {
    "BIGINT": "a whole number",
    "DOUBLE": "a finite number",
    "TIMESTAMPTZ": "a timestamp with a UTC offset",
}


def literal(text: str) -> str:
    """A SQL string literal of a code constant."""
    return "'" + text.replace("'", "''") + "'"


def bound(value: float | None) -> str:
    return "…" if value is None else f"{value:g}"


@dataclass(frozen=True)
class Rule:
    """A rule rows can break: its name (the same for every row), where, and the row's reason."""

    name: str
    condition: str  # SQL, true where a row breaks the rule; NULL counts as not broken
    reason: str | None = None  # SQL text for one row's reason; the name when None
    column: str | None = None

    @property
    def broken(self) -> str:
        return f"coalesce({self.condition}, false)"

    @property
    def reason_sql(self) -> str:
        return self.reason or literal(self.name)


def _quoted(column: str, value_sql: str, rest: str) -> str:
    """`column 'value' rest` as SQL text."""
    return f"{literal(column + ' ' + chr(39))} || {value_sql} || {literal(chr(39) + rest)}"


def column_rules(columns: Iterable[Column], *, typed: bool) -> list[Rule]:
    """Each column's declared rules: parses, required, range, allowed values, pattern.

    typed: the rows come straight from typing raw text, so a value that did not parse is a rule
    of its own, and a derived column's missing value is left to the rules of its derivation.
    Otherwise (stored rows) every declared rule of every column applies.
    """
    rules = []
    for col in columns:
        name = col.name
        parsed = typed and col.source is not None
        if parsed and col.dtype in _KINDS:
            kind = _KINDS[col.dtype]
            rules.append(
                Rule(
                    f"{name} is not {kind}",
                    f"{name}{UNPARSED} IS NOT NULL",
                    _quoted(name, f"{name}{UNPARSED}", f" is not {kind}"),
                    name,
                )
            )
        if not col.nullable and (parsed or not typed):
            missing = f"{name} IS NULL" + (
                f" AND {name}{UNPARSED} IS NULL" if parsed and col.dtype in _KINDS else ""
            )
            rules.append(Rule(f"{name} is missing", missing, column=name))
        if col.min is not None or col.max is not None:
            tests = ([f"{name} < {col.min!r}"] if col.min is not None else []) + (
                [f"{name} > {col.max!r}"] if col.max is not None else []
            )
            rest = f" outside [{bound(col.min)}, {bound(col.max)}]"
            rules.append(
                Rule(
                    f"{name}{rest}",
                    " OR ".join(tests),
                    f"{literal(name + ' ')} || printf('%g', {name}::DOUBLE) || {literal(rest)}",
                    name,
                )
            )
        if col.allowed is not None:
            values = ", ".join(literal(v) for v in col.allowed)
            rest = f" not one of {'/'.join(col.allowed)}"
            rules.append(
                Rule(
                    f"{name}{rest}",
                    f"{name} NOT IN ({values})",
                    _quoted(name, f"{name}::VARCHAR", rest),
                    name,
                )
            )
        if col.pattern is not None:
            rest = f" does not match {col.pattern}"
            rules.append(
                Rule(
                    f"{name}{rest}",
                    f"NOT regexp_full_match({name}::VARCHAR, {literal(col.pattern)})",
                    _quoted(name, f"{name}::VARCHAR", rest),
                    name,
                )
            )
    return rules


def within(col: Column) -> str:
    """SQL for a column's value where it meets the declared range, NULL where it does not."""
    tests = ([f"{col.name} >= {col.min!r}"] if col.min is not None else []) + (
        [f"{col.name} <= {col.max!r}"] if col.max is not None else []
    )
    return f"CASE WHEN {' AND '.join(tests)} THEN {col.name} END" if tests else col.name
