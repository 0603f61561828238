import datetime as dt

import pandas as pd
import pytest

from etl_assets.pipeline import extract
from etl_assets.pipeline.contract import AIRLINES, FLIGHTS
from etl_assets.pipeline.landing import daily_file, reference_file

LOADED_AT = pd.Timestamp("2026-11-23 12:00", tz="UTC")
DAYS = [dt.date(2013, 1, 1), dt.date(2013, 1, 2)]


def test_daily_files_are_read_as_text_with_lineage(landed_days):
    frame = extract.extract_daily(landed_days, FLIGHTS, DAYS, LOADED_AT)

    assert list(frame.columns) == [*FLIGHTS.source_columns, "delivery_date", "_source_file",
                                   "_loaded_at"]
    assert len(frame) == 842 + 943  # the source's flights on Jan 1 and Jan 2
    assert frame["dep_time"].map(type).eq(str).all()  # as delivered: text, 'NA' included
    assert (frame["dep_time"] == "NA").sum() > 0
    by_file = frame.groupby("_source_file")["delivery_date"].first()
    assert by_file.to_dict() == {"flights/2013-01-01.csv": pd.Timestamp("2013-01-01"),
                                 "flights/2013-01-02.csv": pd.Timestamp("2013-01-02")}
    assert (frame["_loaded_at"] == LOADED_AT).all()


def test_missing_daily_files_are_named_with_the_command_to_land_them(landed_days):
    wanted = [dt.date(2013, 1, 3), dt.date(2013, 1, 4), dt.date(2013, 1, 5)]
    with pytest.raises(extract.DeliveryError) as error:
        extract.extract_daily(landed_days, FLIGHTS, wanted, LOADED_AT)
    message = str(error.value)
    assert "2 flights file(s) missing" in message
    assert "flights/2013-01-04.csv" in message and "flights/2013-01-05.csv" in message
    assert "etl-assets land --start 2013-01-04 --end 2013-01-05" in message


def test_a_file_with_another_header_is_refused(tmp_path):
    path = daily_file(tmp_path, "flights", DAYS[0])
    path.parent.mkdir(parents=True)
    path.write_text("year,month,day,carrier,surprise\n2013,1,1,UA,x\n")
    with pytest.raises(extract.DeliveryError, match=r"missing columns \['dep_time'.*"
                                                    r"unexpected columns \['surprise'\]"):
        extract.extract_daily(tmp_path, FLIGHTS, DAYS[:1], LOADED_AT)


def test_an_empty_file_is_refused(tmp_path):
    path = reference_file(tmp_path, "airlines")
    path.parent.mkdir(parents=True)
    path.write_text("")
    with pytest.raises(extract.DeliveryError, match="file is empty"):
        extract.extract_reference(tmp_path, AIRLINES, LOADED_AT)


def test_columns_in_another_order_are_put_back_in_contract_order(tmp_path):
    path = reference_file(tmp_path, "airlines")
    path.parent.mkdir(parents=True)
    path.write_text("name,carrier\nUnited Air Lines Inc.,UA\n")
    frame = extract.extract_reference(tmp_path, AIRLINES, LOADED_AT)
    assert frame[["carrier", "name"]].values.tolist() == [["UA", "United Air Lines Inc."]]
    assert pd.isna(frame.loc[0, "delivery_date"])


def test_a_file_that_is_not_utf8_is_refused_naming_it(tmp_path):
    path = reference_file(tmp_path, "airlines")
    path.parent.mkdir(parents=True)
    path.write_bytes("carrier,name\nUA,Caf\xe9 Air\n".encode("latin-1"))
    with pytest.raises(extract.DeliveryError, match=r"airlines\.csv: not a readable UTF-8 CSV"):
        extract.extract_reference(tmp_path, AIRLINES, LOADED_AT)
