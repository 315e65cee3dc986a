"""Files without a header row (CDNOW's ``id date quantity amount``): the first line is
data, not names, and the fields are read from the values."""

import numpy as np
import pytest

import custseg
from custseg.io import guess_from_values


def cdnow_text(customers: int = 60, seed: int = 0) -> tuple[str, int]:
    rng = np.random.default_rng(seed)
    lines = []
    for c in range(1, customers + 1):
        for _ in range(int(rng.integers(1, 5))):
            day = f"1997{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}"
            qty = int(rng.integers(1, 6))
            lines.append(f" {c:05d} {day}  {qty}   {qty * rng.uniform(5, 20):.2f}")
    return "\n".join(lines) + "\n", len(lines)


def test_whitespace_history_without_header_is_read_whole(tmp_path):
    text, n = cdnow_text()
    path = tmp_path / "CDNOW_master.txt"
    path.write_text(text)
    result = custseg.run_rfm(path)
    s = result.summary
    assert s["audit"]["rows_in"] == n  # the first line counts as data
    assert s["mapping"] == {"customer_id": "column1", "invoice_date": "column2",
                            "quantity": "column3", "amount": "column4"}
    assert s["input"]["header"] is False
    warned = " ".join(s["audit"]["warnings"])
    assert "no header row" in warned and "customer_id=column1" in warned
    assert result.customers["customer_id"].str.fullmatch(r"\d{5}").all()
    assert len(result.customers) == 60


def test_headerless_columns_that_cannot_be_told_apart_ask_for_map(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("1,2020-01-05,2020-01-09,5.5\n2,2020-02-01,2020-02-03,7.25\n"
                    "1,2020-03-01,2020-03-02,1.5\n")  # order and ship date: which is which?
    with pytest.raises(custseg.MappingError, match="no header row.*--map customer_id=column1"):
        custseg.run_rfm(path)
    result = custseg.run_rfm(path, config=custseg.Config(mapping={
        "customer_id": "column1", "invoice_date": "column2", "amount": "column4"}))
    assert result.summary["audit"]["rows_in"] == 3


def test_a_header_of_years_is_still_a_header(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("customer,date,2019,2020\nA,2020-01-01,1,2\nB,2020-02-01,3,4\n")
    source = custseg.read_table(path)
    assert list(source.columns) == ["customer", "date", "2019", "2020"]


def test_guess_from_values_needs_one_reading():
    assert guess_from_values({"a": ["00001", "00002"], "b": ["19970101", "19970102"],
                              "c": ["1", "2"], "d": ["11.77", "3.50"]}) == {
        "customer_id": "a", "invoice_date": "b", "amount": "d", "quantity": "c"}
    assert guess_from_values({"a": ["1", "2"], "b": ["3", "4"]}) is None  # no dates
    assert guess_from_values({"a": ["19970101"], "b": ["x"]}) is None  # date first


def test_spark_reads_a_headerless_csv_as_duckdb_does(tmp_path):
    pytest.importorskip("pyspark")
    import shutil
    if shutil.which("java") is None:
        pytest.skip("the Spark engine needs a Java runtime")
    text, n = cdnow_text(customers=20, seed=2)
    path = tmp_path / "history.csv"
    path.write_text("".join(",".join(line.split()) + "\n" for line in text.splitlines()),
                    encoding="utf-8-sig")  # a byte-order mark is not part of the first field
    duck = custseg.run_rfm(path)
    spark = custseg.run_rfm(path, config=custseg.Config(engine="spark"))
    assert spark.summary["mapping"] == duck.summary["mapping"]
    assert spark.summary["audit"]["rows_in"] == duck.summary["audit"]["rows_in"] == n
    cols = ["customer_id", "frequency", "monetary"]
    assert spark.customers[cols].equals(duck.customers[cols])
