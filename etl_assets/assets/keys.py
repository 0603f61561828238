"""Asset keys: a warehouse table `schema.name` is the asset `schema/name`, in one place.

A quarantine table's key ends in `quarantined_<name>`, so that wherever the UI shows only the
last part of a key (the lineage graph, the asset sidebar) its tables are never shown under the
name of the clean table beside them: `clean/flights` and `quarantine/quarantined_flights`, both
in the warehouse's `quarantine` and `clean` schemas as `flights`.
"""

import dagster as dg

QUARANTINE = "quarantine"
_QUARANTINED = "quarantined_"


def table_key(schema: str, name: str) -> dg.AssetKey:
    """The asset of the warehouse table schema.name."""
    return dg.AssetKey([schema, f"{_QUARANTINED}{name}" if schema == QUARANTINE else name])


def step_key(schema: str, name: str) -> str:
    """The step that writes the table schema.name: its asset's own (`raw__flights`), or for a
    feed's clean and quarantine tables the one step that writes both (`clean_flights`)."""
    if schema in ("clean", QUARANTINE):
        return f"clean_{name}"
    return "__".join(table_key(schema, name).path)


def key_table(key: dg.AssetKey) -> str:
    """The warehouse table schema.name an asset key stands for."""
    schema, name = key.path
    if schema == QUARANTINE:
        name = name.removeprefix(_QUARANTINED)
    return f"{schema}.{name}"
