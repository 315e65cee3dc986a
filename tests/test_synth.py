"""The synthetic data generator: determinism, layout, realism, planted groups."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import custseg
from custseg.synth import GROUPS, generate

CUSTOMERS = 2000
CHUNK = 700  # several chunks, so invoice numbering across chunks is exercised
FILES = ("transactions.parquet", "customers.parquet", "groups.csv")


def digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("synth")
    return generate(CUSTOMERS, out, seed=7, chunk_customers=CHUNK)


@pytest.fixture(scope="module")
def tx(synth) -> pd.DataFrame:
    return pd.read_parquet(synth["transactions"])


@pytest.fixture(scope="module")
def people(synth) -> pd.DataFrame:
    return pd.read_parquet(synth["customers_table"])


@pytest.fixture(scope="module")
def groups(synth) -> pd.DataFrame:
    return pd.read_csv(synth["groups"], dtype=str)


@pytest.fixture(scope="module")
def purchases(tx) -> pd.DataFrame:
    """Clean purchase lines with a customer, and their value."""
    ok = (tx["CustomerID"].notna() & ~tx["InvoiceNo"].str.startswith("C")
          & (tx["Quantity"] > 0) & (tx["UnitPrice"] > 0))
    out = tx[ok].drop_duplicates().copy()
    out["value"] = out["Quantity"] * out["UnitPrice"]
    return out


@pytest.fixture(scope="module")
def rfm(synth, groups) -> pd.DataFrame:
    result = custseg.run_rfm(synth["transactions"])
    return result.customers.merge(groups, on="customer_id", validate="one_to_one")


# ------------------------------------------------------------------------ determinism
def test_same_arguments_give_identical_files(synth, tmp_path):
    again = generate(CUSTOMERS, tmp_path, seed=7, chunk_customers=CHUNK)
    assert digests(tmp_path) == digests(Path(synth["transactions"]).parent)
    assert again["lines"] == synth["lines"]


def test_other_seed_gives_other_data(synth, tmp_path):
    generate(CUSTOMERS, tmp_path, seed=8, chunk_customers=CHUNK)
    first, other = digests(Path(synth["transactions"]).parent), digests(tmp_path)
    assert first["transactions.parquet"] != other["transactions.parquet"]
    assert first["groups.csv"] != other["groups.csv"]


def test_summary(synth):
    assert set(synth) == {"lines", "customers", "transactions", "customers_table", "groups",
                          "seed"}
    assert synth["customers"] == CUSTOMERS and synth["seed"] == 7
    assert synth["lines"] == pq.ParquetFile(synth["transactions"]).metadata.num_rows
    # about 20 lines per customer
    assert 14 <= synth["lines"] / CUSTOMERS <= 28


def test_row_group_per_chunk(synth):
    chunks = -(-CUSTOMERS // CHUNK)
    assert pq.ParquetFile(synth["transactions"]).metadata.num_row_groups == chunks
    assert pq.ParquetFile(synth["customers_table"]).metadata.num_row_groups == chunks


# ----------------------------------------------------------------------------- layout
def test_transactions_schema(synth, tx):
    schema = pq.read_schema(synth["transactions"])
    assert schema.names == ["InvoiceNo", "StockCode", "Description", "Quantity",
                            "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
    for name in ("InvoiceNo", "StockCode", "Description", "CustomerID", "Country"):
        assert pa.types.is_string(schema.field(name).type), name
    assert schema.field("Quantity").type == pa.int64()
    assert pa.types.is_timestamp(schema.field("InvoiceDate").type)
    assert schema.field("UnitPrice").type == pa.float64()
    assert tx["CustomerID"].dropna().str.fullmatch(r"\d{5,}").all()
    required = ["InvoiceNo", "StockCode", "Description", "InvoiceDate", "Country"]
    assert tx[required].notna().all().all()


def test_customers_schema(synth, people):
    schema = pq.read_schema(synth["customers_table"])
    assert schema.names == ["CustomerID", "age", "gender", "income", "region"]
    assert pa.types.is_string(schema.field("CustomerID").type)
    assert pa.types.is_integer(schema.field("age").type)
    assert pa.types.is_floating(schema.field("income").type)
    assert len(people) == CUSTOMERS and people["CustomerID"].is_unique
    assert people["age"].between(18, 90).all()
    assert set(people["gender"]) <= {"F", "M", "X"}
    assert people["gender"].isin(["F", "M"]).mean() > 0.9
    assert (people["income"] > 0).all()
    assert 3 <= people["region"].nunique() <= 10


def test_groups_match_customers(people, groups):
    assert list(groups.columns) == ["customer_id", "group"]
    assert set(groups["customer_id"]) == set(people["CustomerID"])
    assert set(groups["group"]) == {g.name for g in GROUPS}
    assert len(GROUPS) >= 5
    assert abs(sum(g.share for g in GROUPS) - 1) < 1e-9


def test_dates_in_period(tx):
    assert tx["InvoiceDate"].min() >= pd.Timestamp("2022-01-01")
    assert tx["InvoiceDate"].max() < pd.Timestamp("2024-01-01")


def test_custom_period(tmp_path):
    out = generate(300, tmp_path, seed=1, start="2023-03-01", end="2023-06-30")
    dates = pd.read_parquet(out["transactions"], columns=["InvoiceDate"])["InvoiceDate"]
    assert dates.min() >= pd.Timestamp("2023-03-01")
    assert dates.max() < pd.Timestamp("2023-07-01")


@pytest.mark.parametrize("kwargs", [{"customers": 0}, {"chunk_customers": 0}, {"seed": -1},
                                    {"start": "2023-02-01", "end": "2023-01-01"}])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate(**{"customers": 10, "out_dir": tmp_path, **kwargs})


# --------------------------------------------------------------------------- invoices
def test_invoices_have_several_lines_kept_together(tx):
    invoice = tx["InvoiceNo"]
    runs = (invoice != invoice.shift()).sum()
    assert runs == invoice.nunique()  # each invoice's lines are contiguous
    assert 3.5 <= len(tx) / invoice.nunique() <= 7
    one = tx.groupby("InvoiceNo").agg(dates=("InvoiceDate", "nunique"),
                                     customers=("CustomerID", "nunique"))
    assert (one["dates"] == 1).all() and (one["customers"] <= 1).all()


def test_products_differ_within_an_invoice(tx):
    distinct = tx.drop_duplicates()
    assert not distinct.duplicated(["InvoiceNo", "StockCode"]).any()


def test_catalog(tx):
    assert 1000 <= tx["StockCode"].nunique() <= 4000
    assert (tx.groupby("StockCode")["Description"].nunique() == 1).all()
    prices = tx[tx["UnitPrice"] > 0].groupby("StockCode")["UnitPrice"].nunique()
    assert (prices == 1).all()  # one price per product, apart from the dirty lines
    counts = tx["StockCode"].value_counts()
    top = counts.iloc[: len(counts) // 10].sum() / counts.sum()
    assert top > 0.3  # popular products dominate (Zipf-like)


def test_cancellations(tx):
    cancel = tx[tx["InvoiceNo"].str.startswith("C")]
    assert cancel["InvoiceNo"].str.fullmatch(r"C\d+").all()
    assert tx.loc[~tx["InvoiceNo"].str.startswith("C"), "InvoiceNo"].str.fullmatch(r"\d+").all()
    assert (cancel["Quantity"] < 0).all()
    share = cancel["InvoiceNo"].nunique() / tx["InvoiceNo"].nunique()
    assert 0.005 <= share <= 0.03
    # every cancelled line was bought earlier by the same customer
    known = cancel.dropna(subset=["CustomerID"]).reset_index()
    bought = tx.loc[~tx["InvoiceNo"].str.startswith("C"), ["CustomerID", "StockCode",
                                                             "InvoiceDate"]]
    pairs = known.merge(bought, on=["CustomerID", "StockCode"], suffixes=("", "_bought"))
    earlier = pairs[pairs["InvoiceDate_bought"] < pairs["InvoiceDate"]]
    assert set(earlier["index"]) == set(known["index"])


def test_invoice_numbers_unique_across_chunks(tx):
    numbers = tx["InvoiceNo"].str.removeprefix("C").astype(int)
    per_number = tx.assign(n=numbers).groupby("n")["InvoiceNo"].nunique()
    assert (per_number == 1).all()  # "123" and "C123" never both exist
    assert numbers.nunique() == tx["InvoiceNo"].nunique()


def test_returns_and_dirty_values(tx):
    returns = tx[~tx["InvoiceNo"].str.startswith("C") & (tx["Quantity"] < 0)]
    assert len(returns) > 0
    assert 0.005 <= tx["CustomerID"].isna().mean() <= 0.03
    assert tx.duplicated().sum() >= 1
    assert (tx["UnitPrice"] == 0).sum() >= 1
    assert (tx["UnitPrice"] < 0).sum() >= 1
    assert (tx["Quantity"] == 0).sum() >= 1
    assert tx.duplicated().mean() < 0.01


# ---------------------------------------------------------------------------- realism
def test_seasonality(tx):
    orders = tx.drop_duplicates("InvoiceNo")
    per_month = orders.groupby(orders["InvoiceDate"].dt.to_period("M")).size()
    autumn = per_month[per_month.index.month.isin([11, 12])]
    assert autumn.mean() > 1.2 * per_month.mean()


def test_heavy_tailed_spend(purchases):
    spend = purchases.groupby("CustomerID")["value"].sum().sort_values(ascending=False)
    top = spend.iloc[: len(spend) // 10].sum() / spend.sum()
    assert top > 0.4
    assert purchases["UnitPrice"].max() > 10 * purchases["UnitPrice"].median()


def test_repeat_purchases(purchases):
    orders = purchases.groupby("CustomerID")["InvoiceNo"].nunique()
    assert (orders == 1).mean() > 0.2  # many one-time buyers
    assert orders.std() > orders.mean()  # order counts vary strongly
    assert orders.max() >= 20


def test_demographics_follow_groups(people, groups):
    table = people.merge(groups, left_on="CustomerID", right_on="customer_id")
    income = table.groupby("group")["income"].median()
    assert income["lapsed_big_spenders"] > income["occasional_bargain"]
    assert income["champions"] > income["loyal_low_spenders"]
    age = table.groupby("group")["age"].mean()
    assert age["new_customers"] < age["loyal_low_spenders"]


# ---------------------------------------------------------------------- planted groups
def test_run_rfm_recovers_group_directions(rfm):
    assert len(rfm) > 0.9 * CUSTOMERS
    mean = rfm.groupby("group")[["recency", "frequency", "monetary", "tenure"]].mean()
    assert mean.loc["lapsed_big_spenders", "recency"] > 3 * mean.loc["champions", "recency"]
    assert mean.loc["occasional_bargain", "recency"] > mean.loc["regulars", "recency"]
    assert mean.loc["champions", "frequency"] > 5 * mean.loc["occasional_bargain", "frequency"]
    assert mean.loc["loyal_low_spenders", "frequency"] > mean.loc["new_customers", "frequency"]
    assert mean.loc["champions", "monetary"] > 5 * mean.loc["loyal_low_spenders", "monetary"]
    assert mean.loc["lapsed_big_spenders", "monetary"] > mean.loc["regulars", "monetary"]
    assert mean.loc["occasional_bargain", "monetary"] == mean["monetary"].min()
    new = rfm[rfm["group"] == "new_customers"]
    assert new["tenure"].max() <= 62  # first purchase in the last ~2 months


def test_groups_separable_on_rfm(rfm):
    """Nearest group centre in standardised log R, F, M finds most customers' group."""
    x = np.log1p(rfm[["recency", "frequency", "monetary"]].clip(lower=0).to_numpy(float))
    x = (x - x.mean(0)) / x.std(0)
    labels = rfm["group"].to_numpy()
    names = np.unique(labels)
    centres = np.stack([x[labels == n].mean(0) for n in names])
    nearest = names[np.argmin(((x[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)]
    assert (nearest == labels).mean() > 0.7


# -------------------------------------------------------------------------- properties
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(customers=st.integers(1, 60), chunk=st.integers(1, 25), seed=st.integers(0, 2**32))
def test_any_size_and_chunking(customers, chunk, seed):
    with tempfile.TemporaryDirectory() as folder:
        out = generate(customers, folder, seed=seed, chunk_customers=chunk)
        tx = pd.read_parquet(out["transactions"])
        people = pd.read_parquet(out["customers_table"])
        groups = pd.read_csv(out["groups"], dtype=str)
    assert len(tx) == out["lines"] > 0
    assert list(people["CustomerID"]) == [str(10001 + i) for i in range(customers)]
    assert list(groups["customer_id"]) == list(people["CustomerID"])
    assert set(tx["CustomerID"].dropna()) <= set(people["CustomerID"])
    assert (tx["InvoiceNo"] != tx["InvoiceNo"].shift()).sum() == tx["InvoiceNo"].nunique()
    assert tx["InvoiceNo"].str.removeprefix("C").nunique() == tx["InvoiceNo"].nunique()
    assert tx["InvoiceDate"].between(pd.Timestamp("2022-01-01"),
                                     pd.Timestamp("2023-12-31 23:59:59")).all()
