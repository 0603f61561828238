from etl_assets.definitions import defs


def selected(job_name: str) -> set[str]:
    job = defs().resolve_job_def(job_name)
    graph = job.asset_layer.asset_graph
    return {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).is_executable}


def test_the_daily_ingest_job_loads_one_days_files_and_leaves_marts_to_automation():
    assert selected("daily_ingest_job") == {
        "raw/flights", "raw/weather", "clean/flights", "clean/weather",
        "quarantine/flights", "quarantine/weather"}
    assert defs().resolve_job_def("daily_ingest_job").partitions_def is not None


def test_the_reference_job_loads_the_reference_tables():
    assert selected("reference_job") == {
        f"{layer}/{name}" for layer in ("raw", "clean", "quarantine")
        for name in ("airlines", "airports", "planes")}


def test_the_etl_job_is_the_whole_graph():
    assert len(selected("etl_job")) == 18
