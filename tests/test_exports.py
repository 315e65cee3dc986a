"""Realistic exports with other names, encodings, delimiters and date formats."""

import json
import subprocess
import sys

import pandas as pd
import pytest

import custseg


def superstore() -> pd.DataFrame:
    """Superstore-style lines: line totals only, US dates, ids that begin with C."""
    return pd.DataFrame({
        "Row ID": [1, 2, 3, 4, 5],
        "Order ID": ["CA-2016-152156", "CA-2016-152156", "US-2015-108966", "CA-2017-100001",
                     "CA-2016-152156"],
        "Order Date": ["11/8/2016", "11/8/2016", "10/11/2015", "1/2/2017", "11/8/2016"],
        "Ship Date": ["11/11/2016", "11/11/2016", "10/18/2015", "1/5/2017", "11/11/2016"],
        "Customer ID": ["CG-12520", "CG-12520", "SO-20335", "CG-12520", "CG-12520"],
        "Customer Name": ["Claire Gute", "Claire Gute", "Sean O'Donnell", "Claire Gute",
                          "Claire Gute"],
        "Product ID": ["FUR-BO-10001798", "FUR-CH-10000454", "OFF-LA-10000240",
                       "FUR-BO-10001798", "FUR-CH-10000454"],
        "Sales": ["261.96", "731.94", "1,044.63", "$10.00", "731.94"],
        "Quantity": [2, 3, 7, 1, 3],
        "Country": ["United States"] * 5,
    })


def test_superstore_export_without_flags(tmp_path):
    path = tmp_path / "superstore.csv"
    superstore().to_csv(path, index=False)
    result = custseg.run_rfm(path)
    s = result.summary
    assert s["mapping"]["amount"] == "Sales" and s["mapping"]["invoice_date"] == "Order Date"
    assert s["audit"]["dropped"]["cancellation"] == 0  # CA-... is an ordinary order id
    # Row 5 is row 2 again but for Row ID, which only numbers the rows.
    assert s["audit"]["dropped"]["duplicate"] == 1
    assert s["audit"]["notes"]["row_numbers"].startswith("Row ID numbers the rows")
    seg = result.customers.set_index("customer_id")
    assert seg.loc["CG-12520", "frequency"] == 2
    assert seg.loc["CG-12520", "monetary"] == pytest.approx(261.96 + 731.94 + 10.00)
    assert seg.loc["SO-20335", "monetary"] == pytest.approx(1044.63)
    assert s["as_of"] == "2017-01-03"
    assert seg.loc["SO-20335", "recency"] == (pd.Timestamp("2017-01-03")
                                              - pd.Timestamp("2015-10-11")).days


def german() -> str:
    return ("Rechnungsnummer;Rechnungsdatum;Kundennummer;Kundenname;Artikelnummer;Menge;"
            "Einzelpreis;Land\n"
            "R-1001;03.02.2021;0042;Jürgen Müller;A-1;2;1.234,50;Österreich\n"
            "R-1001;03.02.2021;0042;Jürgen Müller;A-2;1;9,99;Österreich\n"
            "R-1002;15.03.2021;42;Zoë Weiß;A-1;1;1.234,50;Deutschland\n"
            "R-1003;16.03.2021;0042;Jürgen Müller;A-3;-1;9,99;Österreich\n")


def test_german_latin1_semicolon_decimal_comma_export(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(german().encode("latin-1"))
    result = custseg.run_rfm(path)
    s = result.summary
    assert s["input"]["encoding"] == "cp1252" and s["input"]["delimiter"] == ";"
    assert "decimal comma" in s["audit"]["notes"]["unit_price"]
    assert "DD.MM.YYYY" in s["audit"]["notes"]["invoice_date"]
    seg = result.customers.set_index("customer_id")
    assert set(seg.index) == {"0042", "42"}  # leading zeros make a different customer
    assert seg.loc["0042", "monetary"] == pytest.approx(2 * 1234.50 + 9.99)
    assert seg.loc["0042", "country"] == "Österreich"
    assert seg.loc["0042", "return_rate"] == pytest.approx(9.99 / (2 * 1234.50 + 2 * 9.99),
                                                          abs=5e-5)  # rounded to 4 places
    assert s["audit"]["dropped"]["return"] == 1


def test_tab_separated_with_map_and_compact_dates(tmp_path):
    path = tmp_path / "orders.tsv"
    path.write_text("buyer\tbon\twhen\tamount_paid\n"
                    "u1\tb1\t20230101\t10.5\n"
                    "u1\tb2\t20230105\t4.5\n"
                    "u2\tb3\t20230103\t7\n")
    run = subprocess.run(
        [sys.executable, "-m", "custseg.cli", "rfm", str(path), "--map", "customer_id=buyer",
         "--map", "invoice_date=when", "--map", "invoice_id=bon", "--out",
         str(tmp_path / "out"), "-q"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["mapping"]["amount"] == "amount_paid"
    seg = pd.read_csv(tmp_path / "out" / "segments.csv").set_index("customer_id")
    assert seg.loc["u1", "monetary"] == 15.0 and seg.loc["u1", "recency"] == 1
