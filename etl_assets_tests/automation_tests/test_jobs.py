from etl_assets.definitions import defs


def selected(job_name: str) -> set[str]:
    job = defs().resolve_job_def(job_name)
    graph = job.asset_layer.asset_graph
    return {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).is_executable}


def test_the_daily_ingest_job_loads_one_days_files_and_leaves_marts_to_automation():
    assert selected("daily_ingest_job") == {
        "raw/flights",
        "raw/weather",
        "clean/flights",
        "clean/weather",
        "quarantine/quarantined_flights",
        "quarantine/quarantined_weather",
    }
    assert defs().resolve_job_def("daily_ingest_job").partitions_def is not None


def test_the_reference_job_loads_the_reference_tables():
    assert selected("reference_job") == {
        f"{layer}/{prefix}{name}"
        for layer, prefix in (("raw", ""), ("clean", ""), ("quarantine", "quarantined_"))
        for name in ("airlines", "airports", "planes")
    }


def test_no_two_assets_of_a_group_share_the_name_the_ui_shows():
    """The lineage graph and the sidebar show a key's last part: within a group it must differ."""
    specs = defs().resolve_all_asset_specs()
    shown = {}
    for spec in specs:
        shown.setdefault((spec.group_name, spec.key.path[-1]), []).append(spec.key)
    assert {k: v for k, v in shown.items() if len(v) > 1} == {}
    names = {spec.key.path[-1] for spec in specs if spec.group_name == "clean"}
    assert {"flights", "quarantined_flights"} <= names


def test_the_etl_job_is_the_whole_graph():
    every = {k.to_user_string() for k in defs().resolve_all_asset_keys()}
    assert selected("etl_job") == every
    assert {"raw/flights", "clean/planes", "marts/fct_flights"} < every
