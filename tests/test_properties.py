"""Invariants over generated order lines (hypothesis)."""

import datetime as dt

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import custseg

line = st.tuples(
    st.sampled_from(["1001", "1002", "1003", "1004", "C1002", "C1005"]),  # invoice
    st.sampled_from(["P1", "P2", "P3"]),  # product
    st.integers(min_value=-3, max_value=6),  # quantity
    st.integers(min_value=0, max_value=60).map(  # date
        lambda d: (dt.datetime(2021, 1, 1) + dt.timedelta(days=d, hours=d % 7)).isoformat(" ")),
    st.sampled_from([-1.0, 0.0, 0.5, 2.5, 10.0]),  # unit price
    st.sampled_from(["a", "b", "007", "7", None]),  # customer
)
tables = st.lists(line, min_size=1, max_size=40).map(
    lambda rows: pd.DataFrame(rows, columns=["InvoiceNo", "StockCode", "Quantity",
                                             "InvoiceDate", "UnitPrice", "CustomerID"]))
fast = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def valid_customers(frame: pd.DataFrame) -> set[str]:
    """Customers with a valid purchase, by the documented rules, written independently.

    "C" + digits marks a cancellation when the ordinary invoice ids are digits, so only
    when some plain-digit id is present.
    """
    cancel = frame["InvoiceNo"].str.startswith("C")
    if cancel.all():
        cancel = cancel & False
    ok = (frame["CustomerID"].notna() & (frame["Quantity"] > 0) & (frame["UnitPrice"] > 0)
          & ~cancel)
    return set(frame.loc[ok, "CustomerID"])


@fast
@given(tables, st.randoms(use_true_random=False))
def test_pipeline_invariants(frame, rnd):
    buyers = valid_customers(frame)
    try:
        result = custseg.run_rfm(frame=frame)
    except custseg.DataError:
        assert not buyers  # only fails when nobody bought anything
        return
    seg, audit = result.segments, result.summary["audit"]
    # every customer with a valid purchase exactly once, nobody else
    assert sorted(seg["customer_id"]) == sorted(buyers)
    # audit adds up
    assert audit["rows_in"] == len(frame) == audit["rows_used"] + sum(audit["dropped"].values())
    assert (seg["recency"] >= 1).all()
    for col in ("r_score", "f_score", "m_score"):
        assert seg[col].between(1, 5).all()
    # shuffling the rows changes nothing
    order = list(range(len(frame)))
    rnd.shuffle(order)
    shuffled = custseg.run_rfm(frame=frame.iloc[order].reset_index(drop=True))
    pd.testing.assert_frame_equal(seg, shuffled.segments)
    assert shuffled.summary["audit"] == audit
