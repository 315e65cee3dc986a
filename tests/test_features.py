import datetime as dt

import pandas as pd
import pytest

import custseg


def features_of(lines, **kwargs):
    clean, _ = custseg.clean(lines)
    return custseg.customer_features(clean, **kwargs).set_index("customer_id")


def test_features_match_hand_computation(lines):
    f = features_of(lines)
    # as-of is the day after the last date (1 Feb) -> 2 Feb.
    a, b, c = f.loc["A"], f.loc["B"], f.loc["C"]
    assert list(f.index) == ["A", "B", "C"]  # D only returned goods
    assert (a.recency, a.frequency, a.monetary, a.tenure) == (13, 2, 26.0, 23)
    assert a.avg_order_value == 13.0
    assert a.avg_items_per_order == 3.5
    assert a.distinct_products == 3
    assert a.return_rate == pytest.approx(33 / (26 + 33))
    assert a.mean_days_between_orders == pytest.approx(10.125)
    assert a.country == "UK"
    assert (b.recency, b.frequency, b.monetary, b.tenure) == (1, 1, 5.0, 1)
    assert pd.isna(b.mean_days_between_orders)
    assert b.return_rate == 0
    assert b.country == "Germany"
    assert (c.recency, c.monetary, c.return_rate) == (17, 6.0, 0.5)


def test_as_of_sets_recency_origin(lines):
    f = features_of(lines, as_of=dt.date(2011, 3, 1))
    assert f.loc["B", "recency"] == 28
    assert f.loc["A", "tenure"] == (dt.date(2011, 3, 1) - dt.date(2011, 1, 10)).days


def test_without_invoice_id_each_customer_day_is_an_order():
    frame = pd.DataFrame({
        "customer": ["x", "x", "x", "y"],
        "order date": ["2020-05-01 09:00", "2020-05-01 17:00", "2020-05-03", "2020-05-03"],
        "revenue": [10.0, 5.0, 1.0, 2.0],
    })
    clean, audit = custseg.clean(frame)
    assert "customer-day" in audit.notes["invoice_id"]
    f = custseg.customer_features(clean).set_index("customer_id")
    assert f.loc["x", "frequency"] == 2
    assert f.loc["x", "monetary"] == 16.0
    assert f.loc["y", "frequency"] == 1


def test_country_tie_breaks_alphabetically_whatever_the_row_order():
    rows = pd.DataFrame({
        "InvoiceNo": ["1", "2"], "Quantity": [1, 1], "UnitPrice": [1.0, 1.0],
        "InvoiceDate": ["2020-01-01", "2020-01-02"], "CustomerID": ["k", "k"],
        "Country": ["Spain", "Italy"]})
    for frame in (rows, rows.iloc[::-1]):
        assert features_of(frame).loc["k", "country"] == "Italy"


def test_features_in_several_passes_equal_one_pass(monkeypatch):
    """Large inputs are aggregated in passes over hashed customer ids; same table."""
    import tempfile

    from custseg.prep import features
    from custseg.synth import generate

    with tempfile.TemporaryDirectory() as tmp:
        path = generate(400, tmp, seed=5)["transactions"]
        one = custseg.run_rfm(path).customers
        monkeypatch.setattr(features, "MIN_PASS_LINES", 1_000)  # about 8 passes
        monkeypatch.setattr(features, "BYTES_PER_LINE", 1 << 40)
        many = custseg.run_rfm(path).customers
    assert len(one) > 350
    pd.testing.assert_frame_equal(one, many)
