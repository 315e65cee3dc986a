import pandas as pd
import pytest

import custseg
from custseg import Config, DataError


def test_audit_counts_each_line_once_under_its_reason(lines):
    clean, audit = custseg.clean(lines)
    # Hand-counted from the fixture's comments.
    expected = {"missing_customer_id": 1, "unparseable_date": 1, "duplicate": 2,
                "cancellation": 2, "return": 2, "zero_quantity": 1, "non_positive_price": 1}
    assert {k: v for k, v in audit.dropped.items() if v} == expected
    assert audit.rows_in == len(lines) == 15
    assert audit.rows_used == 5
    assert audit.rows_in == audit.rows_used + sum(audit.dropped.values())
    assert any("'InvoiceDate'" in w and "not a date" in w for w in audit.warnings)
    purchases = clean[clean["status"] == "purchase"]
    assert sorted(purchases["invoice_id"]) == ["1001", "1001", "1002", "1004", "1007"]


def test_c_prefix_is_a_cancellation_only_when_ordinary_ids_are_digits(lines):
    frame = lines.copy()
    frame["InvoiceNo"] = ["CA-2017-1520", "CA-2017-1520", "CA-2017-1530", "CA-2017-1530",
                          "CA-2017-1540", "US-2017-1", "US-2017-1", "US-2017-1", "US-2017-1",
                          "US-2017-2", "US-2017-3", "CB-2017-4", "CB-2017-5", "US-2017-6",
                          "US-2017-7"]
    frame.loc[frame["Quantity"] < 0, "Quantity"] *= -1  # no negative quantities either
    _, audit = custseg.clean(frame)
    assert audit.dropped["cancellation"] == 0
    assert audit.dropped["return"] == 0
    assert "do not follow" in audit.notes["cancellation"]


def test_cancellation_pattern_from_config(lines):
    frame = lines.copy()
    frame["InvoiceNo"] = frame["InvoiceNo"].str.replace("C", "X")
    frame.loc[frame["Quantity"] < 0, "Quantity"] *= -1
    _, audit = custseg.clean(frame, config=Config(cancellation_pattern="X[0-9]+"))
    assert audit.dropped["cancellation"] == 2


def test_rules_can_be_switched_off(lines):
    _, strict = custseg.clean(lines)
    _, loose = custseg.clean(lines, config=Config(cleaning={"duplicates": False,
                                                           "returns": False}))
    assert loose.dropped["duplicate"] == 0
    assert loose.dropped["cancellation"] == loose.dropped["return"] == 0
    assert loose.rows_used == strict.rows_used + 2 + 4
    assert loose.rows_in == loose.rows_used + sum(loose.dropped.values())


def test_strict_rule_turns_a_drop_into_an_error(lines):
    with pytest.raises(DataError, match="'CustomerID'.*missing_customer"):
        custseg.clean(lines, config=Config(cleaning={"missing_customer": False}))


def test_lines_on_or_after_as_of_are_counted_not_used(lines):
    _, audit = custseg.clean(lines, config=Config(as_of="2011-01-20"))
    # 1002 (x2 copies), C1003 and the four 1004 lines are on or after 20 Jan.
    assert audit.dropped["after_as_of"] == 7
    assert audit.rows_in == audit.rows_used + sum(audit.dropped.values())


def test_every_line_dropped_is_an_error_naming_the_reasons(lines):
    with pytest.raises(DataError, match="Every line.*cancellation: 2.*zero_quantity: 9"):
        custseg.clean(lines.assign(Quantity=0))


def test_as_of_before_every_order_names_the_first_date(lines):
    with pytest.raises(DataError, match="as-of date 2010-01-01 is before every order.*"
                                        "first is dated 2011-01-10.*later --as-of"):
        custseg.clean(lines, config=Config(as_of="2010-01-01"))


def test_mostly_unreadable_number_column_is_an_error(lines):
    frame = lines.copy().astype({"UnitPrice": str})
    frame["UnitPrice"] = ["#DIV/0!"] * 12 + ["3.0", "1.0", "2.0"]
    with pytest.raises(DataError, match="'UnitPrice'.*#DIV/0!.*--map unit_price=COLUMN"):
        custseg.clean(frame)


def test_messy_numbers_are_read(lines):
    frame = lines.copy().astype({"UnitPrice": str})
    frame.loc[0, "UnitPrice"] = "$3"
    frame.loc[1, "UnitPrice"] = "10 EUR"
    frame.loc[5, "UnitPrice"] = "1,000.00"
    frame.loc[6, "UnitPrice"] = "1,000.00"
    clean, audit = custseg.clean(frame)
    assert audit.dropped["unparseable_number"] == 0
    values = clean[clean["status"] == "purchase"].set_index(["invoice_id", "product_id"])["value"]
    assert values[("1001", "P1")] == 6.0
    assert values[("1001", "P2")] == 10.0
    assert values[("1004", "P9")] == 5000.0


def test_cleaning_twice_equals_cleaning_once(lines):
    first, _ = custseg.clean(lines)
    kept = first[first["status"] == "purchase"]
    again_input = pd.DataFrame({
        "InvoiceNo": kept["invoice_id"], "StockCode": kept["product_id"],
        "Quantity": kept["quantity"], "InvoiceDate": kept["invoice_date"],
        "UnitPrice": kept["value"] / kept["quantity"], "CustomerID": kept["customer_id"],
        "Country": kept["country"]})
    second, audit = custseg.clean(again_input)
    assert audit.rows_used == len(kept)
    cols = ["customer_id", "invoice_id", "invoice_date", "quantity", "value", "product_id"]
    pd.testing.assert_frame_equal(second[cols].reset_index(drop=True),
                                  kept[cols].reset_index(drop=True), check_dtype=False)
