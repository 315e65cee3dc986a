"""Shared fixtures: small order-line tables built in code, and the real data sets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ONLINE_RETAIL = SHARED / "online_retail.parquet"
MALL = SHARED / "mall_customers.csv"

needs_online_retail = pytest.mark.skipif(
    not ONLINE_RETAIL.exists(), reason=f"real data set not found at {ONLINE_RETAIL}")
needs_mall = pytest.mark.skipif(not MALL.exists(), reason=f"real data set not found at {MALL}")


def tiny_lines() -> pd.DataFrame:
    """Fourteen Online-Retail-style lines, each drop rule hit at least once.

    Customer A: two invoices (10 Jan, 20 Jan), 3 products, a cancellation and a return.
    Customer B: one invoice on 1 Feb (the last date), with a duplicate line.
    Customer C: one purchase, cancelled the next day.
    Customer D: only a return, so no valid purchase.
    """
    rows = [
        # InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice, CustomerID, Country
        ("1001", "P1", 2, "2011-01-10 09:00", 3.0, "A", "UK"),
        ("1001", "P2", 1, "2011-01-10 09:00", 10.0, "A", "UK"),
        ("1002", "P3", 4, "2011-01-20 12:00", 2.5, "A", "France"),
        ("1002", "P3", 4, "2011-01-20 12:00", 2.5, "A", "France"),  # duplicate
        ("C1003", "P1", -1, "2011-01-21 10:00", 3.0, "A", "UK"),  # cancellation
        ("1004", "P9", 5, "2011-02-01 15:30", 1.0, "B", "Germany"),
        ("1004", "P9", 5, "2011-02-01 15:30", 1.0, "B", "Germany"),  # duplicate
        ("1004", "P8", 0, "2011-02-01 15:30", 1.0, "B", "Germany"),  # zero quantity
        ("1004", "P7", 1, "2011-02-01 15:30", 0.0, "B", "Germany"),  # non-positive price
        ("1005", "P1", 1, "2011-01-15 08:00", 3.0, None, "UK"),  # no customer
        ("1006", "P1", 1, "not a date", 3.0, "B", "UK"),  # bad date
        ("1007", "P1", 2, "2011-01-16 08:00", 3.0, "C", "UK"),
        ("C1007", "P1", -2, "2011-01-17 08:00", 3.0, "C", "UK"),  # cancellation
        ("1008", "P2", -3, "2011-01-18 08:00", 10.0, "A", "UK"),  # return without C
        ("1009", "P2", -1, "2011-01-19 08:00", 10.0, "D", "UK"),  # return only
    ]
    frame = pd.DataFrame(rows, columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate",
                                        "UnitPrice", "CustomerID", "Country"])
    return frame


@pytest.fixture
def lines() -> pd.DataFrame:
    return tiny_lines()


def write_text(frame: pd.DataFrame, path: Path, sep: str = ",", encoding: str = "utf-8",
               bom: bool = False) -> Path:
    text = frame.to_csv(index=False, sep=sep, lineterminator="\n")
    data = text.encode(encoding)
    if bom:
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)
    return path


#: The slowest test files, slowest first (seconds in CI): collected first, so that with two
#: workers (``make test``, which keeps this order with --no-loadscope-reorder; xdist would
#: otherwise hand out the files with the most tests first) the long ones start at once and
#: the short ones fill in at the end.
SLOW_FIRST = ("test_spark_cluster.py", "test_spark.py", "test_model.py", "test_reliability.py",
              "test_app_browser.py", "test_bad_inputs.py", "test_cli.py", "test_report.py",
              "test_encodings.py", "test_properties.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))
