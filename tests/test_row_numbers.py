"""Row numbers are not data: a pandas index or a ``Row ID`` column hides no duplicate."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import custseg
from conftest import ONLINE_RETAIL, needs_online_retail, tiny_lines
from custseg import Config
from custseg.engines.duckdb import connect
from custseg.io import load_source
from custseg.prep.cleaning import row_number_columns

COUNTS = ("rows_in", "rows_used", "dropped")


def copies(frame: pd.DataFrame) -> int:
    """Lines equal to an earlier one, among those with a customer id (a line without one
    is dropped as missing_customer_id before duplicates are looked for)."""
    return int(frame[frame["CustomerID"].notna()].duplicated().sum())


def counts(result) -> dict:
    return {k: result.summary["audit"][k] for k in COUNTS}


@pytest.fixture(scope="module")
def retail() -> pd.DataFrame:
    return pd.read_parquet(ONLINE_RETAIL)


@pytest.fixture(scope="module")
def original(retail):
    return custseg.run_rfm(ONLINE_RETAIL)


@needs_online_retail
def test_shuffled_online_retail_saved_by_pandas_keeps_its_duplicates(tmp_path, retail,
                                                                     original):
    """``to_parquet`` of a shuffled frame stores its index as ``__index_level_0__``; it is
    not read, so the 5,225 duplicate lines and the segments are those of the original."""
    assert original.summary["audit"]["dropped"]["duplicate"] == copies(retail) == 5225
    path = tmp_path / "shuffled.parquet"
    retail.sample(frac=1, random_state=3).to_parquet(path)
    assert "__index_level_0__" in pq.read_schema(path).names
    result = custseg.run_rfm(path)
    assert counts(result) == counts(original)
    pd.testing.assert_frame_equal(result.customers, original.customers)
    pd.testing.assert_frame_equal(result.excluded, original.excluded)
    assert "__index_level_0__" in result.summary["audit"]["notes"]["pandas_index"]
    assert "__index_level_0__" not in result.summary["mapping"].values()


def with_row_numbers(frame: pd.DataFrame, how: str) -> pd.DataFrame:
    if how == "Row ID":  # Superstore: first column, from 1, in the shuffled order
        return pd.concat([pd.DataFrame({"Row ID": np.arange(1, len(frame) + 1)},
                                       index=frame.index), frame], axis=1)
    if how == "Unnamed: 0":  # a pandas index read back and saved again: any position
        out = frame.copy()
        out["Unnamed: 0"] = frame.index
        return out
    raise ValueError(how)


@needs_online_retail
@pytest.mark.parametrize("how", ["index", "Row ID", "Unnamed: 0"])
def test_a_row_number_column_in_a_csv_hides_no_duplicate(tmp_path, retail, how):
    shuffled = retail.head(40_000).sample(frac=1, random_state=5)
    plain = tmp_path / "plain.csv"
    shuffled.to_csv(plain, index=False)
    numbered = tmp_path / "numbered.csv"
    if how == "index":  # pandas to_csv with its index: a first column with no name
        shuffled.to_csv(numbered)
    else:
        with_row_numbers(shuffled, how).to_csv(numbered, index=False)
    reference, result = custseg.run_rfm(plain), custseg.run_rfm(numbered)
    assert reference.summary["audit"]["dropped"]["duplicate"] == copies(shuffled)
    assert counts(result) == counts(reference)
    pd.testing.assert_frame_equal(result.customers, reference.customers)
    note = result.summary["audit"]["notes"]["row_numbers"]
    assert note.startswith({"index": "column0", "Row ID": "Row ID",
                            "Unnamed: 0": "Unnamed: 0"}[how])
    assert "duplicate rule" in note
    assert "row_numbers" not in reference.summary["audit"]["notes"]


def lines_with(column: str, values, first: bool = True) -> pd.DataFrame:
    frame = tiny_lines()
    frame.insert(0 if first else len(frame.columns), column, values)
    return frame


def test_a_unique_but_not_consecutive_id_still_tells_lines_apart():
    """A real line id (unique, with gaps) makes tiny_lines' two copies different lines."""
    n = len(tiny_lines())
    line_ids = [1000 + 7 * i for i in range(n)]
    result = custseg.run_rfm(frame=lines_with("Line ID", line_ids))
    assert result.summary["audit"]["dropped"]["duplicate"] == 0
    assert "row_numbers" not in result.summary["audit"]["notes"]
    numbered = custseg.run_rfm(frame=lines_with("Line ID", list(range(1000, 1000 + n))))
    assert numbered.summary["audit"]["dropped"]["duplicate"] == 2
    assert numbered.summary["audit"]["notes"]["row_numbers"].startswith("Line ID numbers")


def test_row_numbers_shared_by_copies_are_not_row_numbers():
    """Copies exported with the same number: not unique, so the column is data."""
    frame = tiny_lines()
    ids = list(range(1, len(frame) + 1))
    ids[3], ids[6] = ids[2], ids[5]  # lines 3 and 6 copy lines 2 and 5 (see conftest)
    result = custseg.run_rfm(frame=lines_with("Row ID", ids))
    assert result.summary["audit"]["dropped"]["duplicate"] == 2
    assert "row_numbers" not in result.summary["audit"]["notes"]


def test_a_mapped_column_is_never_a_row_number():
    frame = tiny_lines()
    frame["CustomerID"] = [str(i) for i in range(1, len(frame) + 1)]  # one line each
    frame = frame[["CustomerID", *[c for c in frame.columns if c != "CustomerID"]]]
    result = custseg.run_rfm(frame=frame)
    assert "row_numbers" not in result.summary["audit"]["notes"]


def test_only_first_or_row_number_named_columns_are_considered():
    """An unmapped column that happens to count 1..n in the middle, named like data, is
    left in the rule (the check is bounded to a few columns)."""
    frame = tiny_lines()
    frame.insert(3, "Pieces", range(1, len(frame) + 1))
    result = custseg.run_rfm(frame=frame)
    assert result.summary["audit"]["dropped"]["duplicate"] == 0
    assert "row_numbers" not in result.summary["audit"]["notes"]


@settings(max_examples=60, deadline=None)
@given(start=st.integers(-5, 10**12), n=st.integers(2, 40), seed=st.integers(0, 2**16),
       damage=st.sampled_from(["none", "gap", "repeat", "missing", "not a number"]),
       as_text=st.booleans(), name=st.sampled_from(["Row ID", "#", "index", "Unnamed: 0",
                                                    "row_number", "Zeile"]))
def test_a_column_numbers_the_rows_iff_its_integers_are_unique_and_consecutive(
        start, n, seed, damage, as_text, name):
    rng = np.random.default_rng(seed)
    values = [int(v) for v in rng.permutation(np.arange(start, start + n))]
    pos = int(rng.integers(n))
    if damage == "gap":
        values[pos] = start + n + 1 + int(rng.integers(0, 3))
    elif damage == "repeat":
        values[pos] = values[(pos + 1) % n]
    frame = pd.DataFrame({"CustomerID": [f"c{i % 3}" for i in range(n)],
                          "InvoiceDate": "2011-01-01", "Amount": 1.0})
    column = [str(v) for v in values] if as_text else values
    if damage == "missing":
        column = [None if i == pos else v for i, v in enumerate(column)]
    elif damage == "not a number":
        column = [str(v) for v in values]
        column[pos] = f"{values[pos]}.5"
    frame[name] = pd.Series(column, dtype=object if as_text or damage != "none" else "int64")
    con = connect()
    try:
        source = load_source(con, frame=frame)
        mapping = {"customer_id": "CustomerID", "invoice_date": "InvoiceDate",
                   "amount": "Amount"}
        found = row_number_columns(con, source, mapping)
    finally:
        con.close()
    named = name != "Zeile"  # neither named like a row number nor the first column
    assert found == ([name] if damage == "none" and named else [])


# ------------------------------------------------------------------------------ spark
needs_spark = pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is None or shutil.which("java") is None,
    reason="the Spark engine needs pyspark and a Java runtime")
SPARK = Config(engine="spark", spark_master="local[2]")


@needs_spark
@needs_online_retail
def test_spark_leaves_the_same_row_numbers_out(tmp_path, retail):
    shuffled = retail.head(20_000).sample(frac=1, random_state=9)
    parquet = tmp_path / "shuffled.parquet"
    shuffled.to_parquet(parquet)
    csv = tmp_path / "numbered.csv"
    with_row_numbers(shuffled, "Row ID").to_csv(csv, index=False)
    for path, note in ((parquet, "pandas_index"), (csv, "row_numbers")):
        duck, spark = custseg.run_rfm(path), custseg.run_rfm(path, config=SPARK)
        assert duck.summary["audit"]["dropped"]["duplicate"] == copies(shuffled)
        assert note in spark.summary["audit"]["notes"]
        assert spark.summary["audit"] == duck.summary["audit"]
        pd.testing.assert_frame_equal(duck.customers, spark.customers, check_dtype=False)
