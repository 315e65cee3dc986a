import datetime as dt

import duckdb
import pytest

from custseg.io._parse import date_expr, decimal_comma, finite, id_expr, number_expr


def parse_dates(values, dayfirst=None):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (d VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    expr, note, warnings = date_expr(con, "t", "d", "VARCHAR", dayfirst)
    got = [r[0] for r in con.execute(f"SELECT {expr} FROM t").fetchall()]
    return got, note, warnings


def test_iso_us_dayfirst_and_compact_dates():
    got, _, _ = parse_dates(["2011-12-09 12:50:00", "2011-12-09T12:50", "2011-12-09"])
    assert got == [dt.datetime(2011, 12, 9, 12, 50)] * 2 + [dt.datetime(2011, 12, 9)]
    got, note, _ = parse_dates(["12/1/2010 8:26", "1/13/2011 14:05", "2/3/2011"])
    assert got == [dt.datetime(2010, 12, 1, 8, 26), dt.datetime(2011, 1, 13, 14, 5),
                   dt.datetime(2011, 2, 3)]
    assert "MM/DD/YYYY" in note and "second part reaches 13" in note
    got, note, _ = parse_dates(["25.12.2011", "01.02.2011 10:00"])
    assert got == [dt.datetime(2011, 12, 25), dt.datetime(2011, 2, 1, 10, 0)]
    got, _, _ = parse_dates(["25/12/2011", "01/02/2011"])
    assert got[1] == dt.datetime(2011, 2, 1)
    got, _, _ = parse_dates(["20111209", "20110101"])
    assert got == [dt.datetime(2011, 12, 9), dt.datetime(2011, 1, 1)]


def test_ambiguous_day_month_warns_and_dayfirst_overrides():
    got, _, warnings = parse_dates(["01/02/2011", "03/04/2011"])
    assert got[0] == dt.datetime(2011, 1, 2)
    assert warnings and "--dayfirst" in warnings[0]
    got, note, warnings = parse_dates(["01/02/2011", "03/04/2011"], dayfirst=True)
    assert got[0] == dt.datetime(2011, 2, 1) and not warnings and "as told" in note


def test_two_digit_years_are_not_year_eleven():
    got, _, _ = parse_dates(["12/1/10 8:26", "1/13/11"])
    assert got == [dt.datetime(2010, 12, 1, 8, 26), dt.datetime(2011, 1, 13)]


def test_mixed_formats_each_read_and_garbage_is_null():
    got, _, _ = parse_dates(["2011-12-09", "12/31/2011", "yesterday", ""])
    assert got == [dt.datetime(2011, 12, 9), dt.datetime(2011, 12, 31), None, None]


@pytest.mark.parametrize("raw, expected", [
    ("12", 12.0), ("1,234.50", 1234.5), ("$12", 12.0), ("12 EUR", 12.0), ("€ 3.5", 3.5),
    ("-3", -3.0), ("(5.00)", -5.0), ("-$7.25", -7.25), ("#DIV/0!", None), ("NaN", None),
    ("inf", None), ("abc", None), ("12abc34", None), ("", None), (".5", 0.5),
])
def test_number_text(raw, expected):
    con = duckdb.connect()
    expr = finite(f"({number_expr('v', 'VARCHAR')})")
    assert con.execute(f"SELECT {expr} FROM (SELECT ?::VARCHAR AS v)", [raw]).fetchone()[0] \
        == expected


def test_decimal_comma_detected_and_read():
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('1.234,50'), ('12,5'), ('3')) v(v)")
    assert decimal_comma(con, "t", "v")
    got = [r[0] for r in con.execute(f"SELECT {number_expr('v', 'VARCHAR', True)} FROM t")
           .fetchall()]
    assert got == [1234.5, 12.5, 3.0]
    con.execute("CREATE TABLE u AS SELECT * FROM (VALUES ('1,234.50'), ('12.5')) v(v)")
    assert not decimal_comma(con, "u", "v")


@pytest.mark.parametrize("typ, raw, expected", [
    ("VARCHAR", "007", "007"), ("VARCHAR", " 17850.0 ", "17850"), ("VARCHAR", "nan", None),
    ("VARCHAR", "", None), ("DOUBLE", 17850.0, "17850"), ("DOUBLE", float("nan"), None),
    ("BIGINT", 42, "42"), ("VARCHAR", "CA-2017-1", "CA-2017-1"),
])
def test_ids_are_text(typ, raw, expected):
    con = duckdb.connect()
    got = con.execute(f"SELECT {id_expr('v', typ)} FROM (SELECT ?::{typ} AS v)", [raw]).fetchone()
    assert got[0] == expected


def test_month_names():
    got, note, _ = parse_dates(["09-Dec-2011", "9 Dec 2011 14:05", "1-Feb-11"])
    assert got == [dt.datetime(2011, 12, 9), dt.datetime(2011, 12, 9, 14, 5),
                   dt.datetime(2011, 2, 1)]
    assert "DD-Mon-YYYY" in note
    got, note, _ = parse_dates(["Dec 9, 2011", "December 10, 2011", "Jan 2 2012"])
    assert got == [dt.datetime(2011, 12, 9), dt.datetime(2011, 12, 10), dt.datetime(2012, 1, 2)]
