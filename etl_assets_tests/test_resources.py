import dagster as dg
import duckdb
import pandas as pd

from etl_assets.resources import WarehouseIOManager

days = dg.DailyPartitionsDefinition(start_date="2013-01-01", end_date="2013-01-05")
SCHEMA = dg.TableSchema(columns=[dg.TableColumn("day", "DATE"), dg.TableColumn("n", "BIGINT")])
frames: dict[str, pd.DataFrame] = {}


@dg.asset(key_prefix="test", partitions_def=days,
          metadata={"partition_expr": "day", "dagster/column_schema": SCHEMA})
def numbers(context: dg.AssetExecutionContext) -> pd.DataFrame:
    return frames[context.partition_key]


def materialize(path, key: str, frame: pd.DataFrame) -> bool:
    frames[key] = frame
    result = dg.materialize([numbers], partition_key=key, raise_on_error=False,
                            resources={"io_manager": WarehouseIOManager(database=str(path))})
    return result.success


def table(path) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute("SELECT * FROM test.numbers ORDER BY ALL").fetchdf()


def day(text, *values):
    return pd.DataFrame({"day": pd.Timestamp(text), "n": list(values)})


def test_an_empty_first_output_creates_the_table_with_declared_types(tmp_path):
    path = tmp_path / "sub" / "w.duckdb"  # the parent folder is created too
    assert materialize(path, "2013-01-01", day("2013-01-01").iloc[0:0])
    with duckdb.connect(str(path), read_only=True) as conn:
        types = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_name = 'numbers'").fetchall())
    assert types == {"day": "DATE", "n": "BIGINT"}
    assert table(path).empty


def test_rewriting_a_partition_replaces_only_that_partition(tmp_path):
    path = tmp_path / "w.duckdb"
    assert materialize(path, "2013-01-01", day("2013-01-01", 1, 2))
    assert materialize(path, "2013-01-02", day("2013-01-02", 3))
    assert materialize(path, "2013-01-01", day("2013-01-01", 7))
    assert table(path)["n"].tolist() == [7, 3]  # ordered by day


def test_a_failed_write_keeps_the_partition_it_was_replacing(tmp_path):
    path = tmp_path / "w.duckdb"
    assert materialize(path, "2013-01-01", day("2013-01-01", 1, 2))
    broken = day("2013-01-01", 5).assign(surprise="a column the table does not have")

    assert not materialize(path, "2013-01-01", broken)
    assert table(path)["n"].tolist() == [1, 2]  # the delete was rolled back with the insert


def test_columns_are_matched_by_name_not_position(tmp_path):
    path = tmp_path / "w.duckdb"
    assert materialize(path, "2013-01-03", day("2013-01-03", 9)[["n", "day"]])
    row = table(path).iloc[0]
    assert (row["day"], row["n"]) == (pd.Timestamp("2013-01-03"), 9)


def test_a_value_of_the_wrong_type_fails_the_write_instead_of_loading(tmp_path):
    path = tmp_path / "w.duckdb"
    assert materialize(path, "2013-01-01", day("2013-01-01", 1))
    assert not materialize(path, "2013-01-01", pd.DataFrame({"day": [pd.Timestamp("2013-01-01")],
                                                              "n": ["not a number"]}))
    assert table(path)["n"].tolist() == [1]


def test_row_counts_describe_the_table_and_the_partition_written(tmp_path):
    path = tmp_path / "w.duckdb"
    assert materialize(path, "2013-01-01", day("2013-01-01", 1, 2))
    frames["2013-01-02"] = day("2013-01-02", 3)
    result = dg.materialize([numbers], partition_key="2013-01-02",
                            resources={"io_manager": WarehouseIOManager(database=str(path))})
    metadata = result.asset_materializations_for_node("test__numbers")[0].metadata
    assert metadata["dagster/row_count"].value == 3
    assert metadata["dagster/partition_row_count"].value == 1
