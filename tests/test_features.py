import datetime as dt
import os

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_features_spilled_past_a_small_memory_limit_equal_those_in_memory(tmp_path):
    """DuckDB spills the feature groups past memory_limit; the table is the same."""
    from custseg.core.config import Config
    from custseg.synth import generate

    path = generate(3000, tmp_path, seed=5)["transactions"]
    roomy = custseg.run_rfm(path, config=Config(memory_limit="2GB")).customers
    tight = custseg.run_rfm(path, config=Config(memory_limit="32MB", threads=1)).customers
    assert len(roomy) > 2500
    pd.testing.assert_frame_equal(roomy, tight)


@pytest.mark.parametrize("line_bytes, where", [(10**9, "custseg_scratch"), (100, "memory")])
def test_lines_go_to_the_scratch_database_unless_they_fit_in_memory(tmp_path, monkeypatch,
                                                                     line_bytes, where):
    """Lines too big for a share of memory_limit live in the scratch file, removed on
    close; small ones in memory. Either way the customers are the same."""
    import custseg.engines.duckdb as duckdb_engine
    from custseg.core.config import Config
    from custseg.engines.duckdb import DuckDBEngine
    from custseg.jobs.rfm import read_input
    from custseg.synth import generate

    monkeypatch.setattr(duckdb_engine, "LINE_BYTES", line_bytes)
    path = generate(200, tmp_path / "data", seed=1)["transactions"]
    config = Config(temp_directory=str(tmp_path / "temp"))
    engine = DuckDBEngine(config)
    source, reading = read_input(engine, path, config, {})
    engine.clean(source, reading.mapping, config)
    database = engine.sample.execute(
        "SELECT database_name FROM duckdb_tables() WHERE table_name = 'lines'").fetchone()[0]
    scratch = list((tmp_path / "temp").glob("custseg-*.duckdb"))
    assert database == where and len(scratch) == 1
    engine.close()
    assert not list((tmp_path / "temp").glob("custseg-*"))
    customers = custseg.run_rfm(path, config=config).customers
    monkeypatch.setattr(duckdb_engine, "LINE_BYTES", 10**9 if line_bytes == 100 else 100)
    pd.testing.assert_frame_equal(customers, custseg.run_rfm(path, config=config).customers)


def test_the_scratch_database_of_a_killed_run_is_removed_by_the_next(tmp_path):
    import subprocess
    import sys

    from custseg.core.config import Config
    from custseg.engines.duckdb import DuckDBEngine

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    temp = tmp_path / "temp"
    temp.mkdir()
    stale = temp / f"custseg-{gone}-abc.duckdb"
    stale.write_bytes(b"left by a killed run")
    (temp / f"custseg-{gone}-abc.duckdb.wal").write_bytes(b"")
    alive = temp / f"custseg-{os.getpid()}-def.duckdb"  # a run still going: kept
    alive.write_bytes(b"in use")
    DuckDBEngine(Config(temp_directory=str(temp))).close()
    assert sorted(p.name for p in temp.iterdir()) == [alive.name]


def test_the_tables_of_products_and_orders_give_the_numbers_of_the_lines(tmp_path):
    """The DuckDB engine counts distinct products, at any date, and the products' lift
    from its table of each customer's products, and the countries' lift, the months and
    the holdout's labels from its table of orders; the numbers are those of the lines."""
    import numpy as np

    from custseg.core.config import Config, ProfileConfig
    from custseg.engines.duckdb import DuckDBEngine
    from custseg.engines.lines import cohort_months, segment_lines
    from custseg.jobs.rfm import read_input
    from custseg.jobs.value import window_labels
    from custseg.prep.features import customer_features_table
    from custseg.synth import generate

    path = generate(800, tmp_path, seed=3)["transactions"]
    config = Config()
    engine = DuckDBEngine(config)
    source, reading = read_input(engine, path, config, {})
    engine.clean(source, reading.mapping, config)
    last = engine.query("SELECT max(invoice_date) AS d FROM lines")["d"][0].date()
    dates = [last + dt.timedelta(days=1), last - dt.timedelta(days=200)]
    from_lines = [customer_features_table(engine.sample, d, True) for d in dates]
    assert engine.pairs is None
    for d, expected in zip(dates, from_lines, strict=True):
        got = engine.features(d, True)
        assert engine.pairs is not None
        pd.testing.assert_frame_equal(got, expected)
        assert got["distinct_products"].sum() > len(got)
    labels = from_lines[0][["customer_id"]].assign(
        segment=np.arange(len(from_lines[0])) % 4,
        cohort=cohort_months(from_lines[0]["tenure"], dates[0]))
    with_pairs = segment_lines(engine, labels, reading.mapping, ProfileConfig())
    split = last - dt.timedelta(days=90)
    labels_of_orders = window_labels(engine, split, 90)
    engine.pairs = engine.orders = None
    with_lines = segment_lines(engine, labels, reading.mapping, ProfileConfig())
    assert (with_pairs.items["kind"] == "products").sum() > 10
    assert (with_pairs.items["kind"] == "countries").sum() > 3
    pd.testing.assert_frame_equal(with_pairs.items, with_lines.items, check_exact=False,
                                  rtol=1e-12)
    # the months and the holdout's labels, from the orders table and from the lines
    assert len(with_pairs.months) > 50 and len(labels_of_orders) > 100
    pd.testing.assert_frame_equal(with_pairs.months, with_lines.months, check_exact=False,
                                  rtol=1e-12)
    pd.testing.assert_frame_equal(labels_of_orders.sort_index(),
                                  window_labels(engine, split, 90).sort_index(),
                                  check_exact=False, rtol=1e-12)
    engine.close()


_line = st.tuples(
    st.sampled_from(["a", "b"]),  # customer
    st.sampled_from(["1", "2", None]),  # invoice (None: a line without one)
    st.integers(min_value=0, max_value=6),  # day
    st.sampled_from([0, 0, 5]),  # hour: lines of one invoice at two timestamps, at times
    st.sampled_from([-2.0, 1.0, 3.0, None]),  # quantity (None: no quantity column)
    st.sampled_from([0.5, 2.25, 10.0]),  # unit price
    st.sampled_from(["P1", "P2", None]),  # product
    st.sampled_from(["UK", "FR", None]),  # country
    st.sampled_from(["purchase", "purchase", "return", "cancellation", "refunded",
                     "zero_quantity"]),  # status
    st.booleans(),  # discounted
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_line, min_size=1, max_size=30), st.integers(min_value=1, max_value=8),
       st.booleans())
def test_features_from_the_orders_table_equal_those_from_the_lines(rows, day, quantities):
    """orders_sql sums the lines per invoice, timestamp, status and country; the features
    read from it, at any date, are exactly those read from the lines."""
    import duckdb

    from custseg.prep.features import customer_features_table, orders_sql

    start = dt.datetime(2021, 3, 1)
    lines = pd.DataFrame(
        [(c, i, start + dt.timedelta(days=d, hours=h), q if quantities else None,
          (1.0 if q is None else q) * p, p_id, None, None, k, 1, s, disc)
         for c, i, d, h, q, p, p_id, k, s, disc in rows],
        columns=["customer_id", "invoice_id", "invoice_date", "quantity", "value",
                 "product_id", "description", "category", "country", "n", "status",
                 "discounted"]).astype({"quantity": float})
    con = duckdb.connect()
    con.register("frame", lines)
    con.execute("CREATE TABLE lines AS SELECT * FROM frame")
    con.execute(f"CREATE TABLE orders AS {orders_sql('lines', has_discounts=True)}")
    as_of = (start + dt.timedelta(days=day)).date()
    for products in (True, False):
        expected = customer_features_table(con, as_of, products, has_discounts=True)
        got = customer_features_table(con, as_of, products, has_discounts=True,
                                      orders="orders")
        pd.testing.assert_frame_equal(got, expected)


def test_features_fetched_through_arrow_are_the_frame_duckdb_gives():
    """``frame_of`` (Arrow) gives DuckDB's own ``df()`` of the same query: the same dtypes
    (nullable integers where a value is missing, dates, decimals, booleans with a gap and
    columns of no value converted by DuckDB: its text of None only is of dtype object),
    the same values, and the ORDER BY of 300,000 rows sorted on two threads."""
    from custseg.engines.duckdb import connect
    from custseg.prep.features import frame_of

    con = connect()
    con.execute("SET threads = 2")
    query = """
        SELECT md5(CAST(i AS VARCHAR)) AS id, i, CAST(i AS INTEGER) AS small,
               CASE WHEN i % 3 = 0 THEN i END AS gaps, CAST(NULL AS BIGINT) AS empty,
               i / 7 AS ratio, CASE WHEN i % 5 = 0 THEN i / 3 END AS ratio_gaps,
               CASE WHEN i % 4 = 0 THEN NULL ELSE 'c' || (i % 9) END AS country,
               CAST(NULL AS VARCHAR) AS no_country, CAST(NULL AS DOUBLE) AS no_share,
               i % 2 = 0 AS even, CASE WHEN i % 3 = 0 THEN i % 2 = 0 END AS even_gaps,
               DATE '2020-01-01' + CAST(i % 900 AS INTEGER) AS day,
               TIMESTAMP '2020-01-01 10:00' + to_seconds(i) AS at,
               CAST(i AS DECIMAL(38, 6)) / 3 AS exact, CAST(i AS HUGEINT) AS huge,
               CAST(i AS UBIGINT) AS unsigned
        FROM range(300000) AS t(i) ORDER BY id"""
    expected = con.execute(query).df()
    got = frame_of(con, query)
    pd.testing.assert_frame_equal(got, expected)
    assert got["id"].is_monotonic_increasing
    empty = query.replace("ORDER BY", "WHERE i < 0 ORDER BY")
    pd.testing.assert_frame_equal(frame_of(con, empty), con.execute(empty).df())
    dates = ("SELECT DATE '2020-01-01' + CAST(i * 7919 % 5000 AS INTEGER) AS day "
             "FROM range(5000) AS t(i) ORDER BY day DESC")  # DuckDB converts every column
    pd.testing.assert_frame_equal(frame_of(con, dates), con.execute(dates).df())
    con.close()
