import sqlite3

import duckdb
import pandas as pd
import pytest

import custseg
from conftest import write_text
from custseg import Config, InputError
from custseg.io import sniff_text


def summary_of(path, **kwargs):
    return custseg.run_rfm(path, **kwargs)


def reference(lines):
    return custseg.run_rfm(frame=lines).customers


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimiters_give_the_same_segments(tmp_path, lines, sep):
    path = write_text(lines, tmp_path / "orders.txt", sep=sep)
    result = custseg.run_rfm(path)
    assert result.summary["input"]["delimiter"] == sep
    pd.testing.assert_frame_equal(result.customers, reference(lines))


def test_runs_of_whitespace(tmp_path, lines):
    frame = lines.copy()
    frame["InvoiceDate"] = frame["InvoiceDate"].str.replace(" ", "T")
    text = "\n".join("   ".join(str(v) if v is not None else "NA" for v in row)
                     for row in [frame.columns, *frame.itertuples(index=False)])
    path = tmp_path / "orders.dat"
    path.write_text(text + "\n")
    assert sniff_text(path.read_bytes())[1] == "whitespace"
    result = custseg.run_rfm(path)
    assert result.summary["customers"] == 3
    assert result.summary["audit"]["rows_in"] == 15


def test_utf8_bom_and_latin1(tmp_path, lines):
    frame = lines.copy()
    frame["Country"] = frame["Country"].replace({"Germany": "Österreich"})
    bom = custseg.run_rfm(write_text(frame, tmp_path / "bom.csv", bom=True))
    latin_path = write_text(frame, tmp_path / "latin.csv", encoding="latin-1")
    latin = custseg.run_rfm(latin_path)
    # Latin-1 reads any byte, so it is never guessed: the guess is Windows-1252, which
    # agrees with it on every letter.
    assert latin.summary["input"]["encoding"] == "cp1252"
    asked = custseg.run_rfm(latin_path, config=Config(encoding="latin-1"))
    assert asked.summary["input"]["encoding"] == "latin-1"
    pd.testing.assert_frame_equal(asked.customers, latin.customers)
    assert list(bom.customers.columns) == list(latin.customers.columns)
    assert bom.customers.set_index("customer_id").loc["B", "country"] == "Österreich"
    pd.testing.assert_frame_equal(bom.customers, latin.customers)


def test_latin1_byte_deep_in_a_utf8_looking_file(tmp_path, lines):
    big = pd.concat([lines] * 5000, ignore_index=True)
    copy = big.index // len(lines)  # each copy its own customers, as a big export has
    big["CustomerID"] = big["CustomerID"].where(big["CustomerID"].isna(),
                                                big["CustomerID"] + copy.astype(str))
    big.loc[len(big) - 1, "Country"] = "España"
    path = write_text(big, tmp_path / "late.csv", encoding="latin-1")
    result = custseg.run_rfm(path)
    assert result.summary["input"]["encoding"] == "cp1252"
    offset = path.read_bytes().index("ñ".encode("latin-1"))
    assert any("Windows-1252" in w and f"offset {offset:,}, line {len(big) + 1:,}" in w
               for w in result.summary["audit"]["warnings"])


def test_malformed_lines_are_counted(tmp_path, lines):
    path = write_text(lines, tmp_path / "bad.csv")
    with path.open("a") as fh:
        fh.write("1010,P1,1,2011-01-11 10:00,3.0,A,UK,EXTRA,FIELDS\n")
    audit = custseg.run_rfm(path).summary["audit"]
    assert audit["dropped"]["malformed_line"] == 1
    assert audit["rows_in"] == 16 == audit["rows_used"] + sum(audit["dropped"].values())


def test_excel_first_sheet_and_named_sheet(tmp_path, lines):
    path = tmp_path / "orders.xlsx"
    frame = lines.copy()
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"], errors="coerce")
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"note": ["cover sheet"]}).to_excel(writer, sheet_name="Cover", index=False)
        frame.to_excel(writer, sheet_name="Orders", index=False)
    with pytest.raises(custseg.MappingError):
        custseg.run_rfm(path)  # the first sheet is the cover
    result = custseg.run_rfm(path, config=Config(sheet="Orders"))
    assert result.summary["input"]["sheet"] == "Orders"
    assert result.summary["customers"] == 3
    with pytest.raises(InputError, match="no sheet 'Nope'.*'Cover', 'Orders'"):
        custseg.run_rfm(path, config=Config(sheet="Nope"))


def test_parquet_file_and_folder(tmp_path, lines):
    frame = lines.assign(InvoiceDate=pd.to_datetime(lines["InvoiceDate"], errors="coerce"))
    (tmp_path / "parts").mkdir()
    frame.iloc[:8].to_parquet(tmp_path / "parts" / "a.parquet")
    frame.iloc[8:].to_parquet(tmp_path / "parts" / "b.parquet")
    frame.to_parquet(tmp_path / "all.parquet")
    one = custseg.run_rfm(tmp_path / "all.parquet")
    many = custseg.run_rfm(tmp_path / "parts")
    assert one.summary["input"]["format"] == "parquet"
    pd.testing.assert_frame_equal(one.customers, many.customers)
    assert one.summary["audit"]["dropped"]["unparseable_date"] == 1


def test_sqlite_and_duckdb_queries(tmp_path, lines):
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as con:
        lines.to_sql("order_lines", con, index=False)
    lite = custseg.run_rfm(db=f"sqlite:///{db}", sql="select * from order_lines")
    duck_path = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(duck_path))
    con.register("frame", lines)
    con.execute("CREATE TABLE order_lines AS SELECT * FROM frame")
    con.close()
    duck = custseg.run_rfm(db=f"duckdb:///{duck_path}", sql="select * from order_lines")
    assert lite.summary["input"]["format"] == duck.summary["input"]["format"] == "sql"
    pd.testing.assert_frame_equal(lite.customers, duck.customers)
    pd.testing.assert_frame_equal(lite.customers, reference(lines))


def test_sql_errors_are_one_line(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        custseg.run_rfm(db=f"sqlite:///{tmp_path / 'none.db'}", sql="select 1")
    db = tmp_path / "x.db"
    sqlite3.connect(db).close()
    with pytest.raises(InputError, match="query failed"):
        custseg.run_rfm(db=f"sqlite:///{db}", sql="select * from missing_table")


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"InvoiceNo,CustomerID,InvoiceDate,UnitPrice,Quantity\n", "no data rows"),
    (b"\x00\x01\x02\xff\xfe garbage \x00" * 50, "binary"),
    (b"PAR1 this is not really parquet", "not a readable Parquet"),
])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        custseg.run_rfm(path)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        custseg.run_rfm(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="folder with no .parquet"):
        custseg.run_rfm(tmp_path)


def test_leading_zeros_and_float_ids(tmp_path):
    frame = pd.DataFrame({"CustomerID": ["007", "7", "17850.0", "17850"],
                          "InvoiceNo": ["1", "2", "3", "4"], "Quantity": [1, 1, 1, 1],
                          "UnitPrice": [1.0, 2.0, 3.0, 4.0],
                          "InvoiceDate": ["2020-01-01"] * 4})
    ids = set(custseg.run_rfm(write_text(frame, tmp_path / "o.csv")).customers["customer_id"])
    assert ids == {"007", "7", "17850"}
    floats = frame.assign(CustomerID=[7.0, 7.0, 17850.0, 17850.0])
    ids = set(custseg.run_rfm(frame=floats).customers["customer_id"])
    assert ids == {"7", "17850"}
