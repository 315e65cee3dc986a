"""What segments buy (lift) and cohort retention, checked against pandas computations
written here from the raw rows, on Online Retail and on planted data."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import custseg
from conftest import ONLINE_RETAIL, needs_online_retail
from custseg.core.config import ProfileConfig
from custseg.engines.duckdb import DuckDBEngine
from custseg.engines.lines import cohort_months, segment_lines
from custseg.jobs.rfm import run_rfm
from custseg.jobs.run import run_segments
from custseg.profile.lines import cohort_retention
from test_cluster import PLANTED_MAP, planted_lines


# ------------------------------------------------------------------ Online Retail
@pytest.fixture(scope="module")
def purchases():
    """Online Retail's purchase lines as the textbook cleaning has them: a customer id,
    quantity and price above 0, no cancellation invoice."""
    raw = pd.read_parquet(ONLINE_RETAIL)
    ok = (raw["CustomerID"].notna() & (raw["Quantity"] > 0) & (raw["UnitPrice"] > 0)
          & ~raw["InvoiceNo"].str.fullmatch(r"C\d+"))
    return raw[ok].assign(
        customer_id=lambda d: d["CustomerID"].astype("int64").astype(str),
        Description=lambda d: d["Description"].str.strip())


@pytest.fixture(scope="module")
def retail_run(tmp_path_factory):
    return run_segments(ONLINE_RETAIL, out_dir=tmp_path_factory.mktemp("lift") / "out",
                        n_bootstrap=0)


@pytest.fixture(scope="module")
def retail_rfm():
    config = custseg.Config(profile={"cohorts_by_segment": True})
    return run_rfm(ONLINE_RETAIL, config=config)


def _shares(purchases: pd.DataFrame, members: set[str], product: str) -> tuple[float, float]:
    """Share of ``members`` and of all customers who bought ``product``."""
    buyers = set(purchases.loc[purchases["StockCode"] == product, "customer_id"])
    everyone = set(purchases["customer_id"])
    return len(buyers & members) / len(members), len(buyers) / len(everyone)


def _check_top_products(groups, purchases) -> int:
    """Every segment's listed products: the lift and support recomputed here, the top one
    bought at least 1.5x as often as by all customers, shown by its commonest description."""
    checked = 0
    for members, listed in groups:
        if not listed:
            continue
        for item in listed:
            share, overall = _shares(purchases, members, item["id"])
            assert item["support"] == pytest.approx(share, abs=1e-4)
            assert item["lift"] == pytest.approx(share / overall, rel=1e-3)
            names = purchases.loc[purchases["StockCode"] == item["id"], "Description"]
            assert item["item"] == names.value_counts().sort_index().idxmax() != item["id"]
        assert listed[0]["lift"] >= 1.5
        assert [i["lift"] for i in listed] == sorted((i["lift"] for i in listed), reverse=True)
        checked += 1
    return checked


@needs_online_retail
def test_each_segments_top_product_is_bought_at_least_1_5x_as_often(retail_run, purchases):
    table = retail_run.customers
    groups = [(set(table.loc[table["segment"] == s["id"], "customer_id"]),
               s["over_represented"]["products"]) for s in retail_run.summary["segments"]]
    assert _check_top_products(groups, purchases) >= 2


@needs_online_retail
def test_rfm_segments_top_products_too(retail_rfm, purchases):
    table = retail_rfm.customers
    groups = [(set(table.loc[table["rfm_segment"] == s["name"], "customer_id"]),
               s["over_represented"]["products"])
              for s in retail_rfm.summary["rfm_segments"] if s["customers"]]
    assert _check_top_products(groups, purchases) >= 5


@needs_online_retail
def test_what_stands_out_differs_between_segments(retail_run):
    """The complaint behind lift: the same best-sellers top every segment."""
    tops = [s["over_represented"]["products"][0]["item"]
            for s in retail_run.summary["segments"] if s["over_represented"]["products"]]
    assert len(tops) == len(set(tops)) >= 2


def _textbook_cohorts(purchases: pd.DataFrame) -> pd.DataFrame:
    """The cohort table of the usual pandas tutorial: customers per cohort month and
    months since, over the cohort's size."""
    month = purchases["InvoiceDate"].dt.to_period("M")
    frame = pd.DataFrame({"customer_id": purchases["customer_id"], "month": month})
    frame["cohort"] = frame.groupby("customer_id")["month"].transform("min")
    frame["since"] = (frame["month"] - frame["cohort"]).apply(lambda d: d.n)
    counts = frame.groupby(["cohort", "since"])["customer_id"].nunique().unstack()
    return counts.divide(counts[0], axis=0)


@needs_online_retail
def test_cohort_retention_equals_the_textbook_table(retail_rfm, purchases):
    block = retail_rfm.summary["cohorts"]
    rows = pd.DataFrame([r.to_dict() for r in block.rows])
    overall = rows[rows["segment"].isna()] if "segment" in rows else rows
    ours = overall.pivot(index="cohort", columns="months_since", values="share")
    expected = _textbook_cohorts(purchases)
    expected.index = expected.index.astype(str)
    assert list(ours.index) == list(expected.index)
    np.testing.assert_allclose(ours.to_numpy(dtype=float), expected.to_numpy(dtype=float),
                               atol=1e-4, equal_nan=True)
    assert block.partial_month == "2011-12"  # the data ends on 9 December 2011
    assert block.left_out == 0 and block.by_segment


@needs_online_retail
def test_cohorts_per_segment_add_up_to_all_customers(retail_rfm):
    rows = pd.DataFrame([r.to_dict() for r in retail_rfm.summary["cohorts"].rows])
    per = rows[rows["segment"].notna()].groupby(["cohort", "months_since"])["customers"].sum()
    overall = rows[rows["segment"].isna()].set_index(["cohort", "months_since"])["customers"]
    pd.testing.assert_series_equal(per.sort_index(), overall.sort_index(), check_names=False)
    names = {s["name"] for s in retail_rfm.summary["rfm_segments"] if s["customers"]}
    assert set(rows["segment"].dropna()) == names


# ----------------------------------------------------------------- planted data
def _planted_with_categories() -> tuple[pd.DataFrame, dict]:
    """Planted groups; vip customers buy from the category Garden on a third of their
    lines, everybody else on about a twentieth, and the lapsed live in France."""
    frame, truth = planted_lines(seed=4)
    rng = np.random.default_rng(4)
    vip = frame["shopper"].str.startswith("V").to_numpy()
    garden = rng.random(len(frame)) < np.where(vip, 1 / 3, 1 / 20)
    frame["Sub-Category"] = np.where(garden, "Garden", "Kitchen")
    frame["Country"] = np.where(frame["shopper"].str.startswith("L"), "France", "UK")
    return frame, truth


def test_planted_category_and_country_stand_out():
    frame, truth = _planted_with_categories()
    config = custseg.Config(mapping=PLANTED_MAP, clv={"enabled": False})
    result = run_segments(frame=frame, config=config, k=4, n_bootstrap=0)
    assert result.summary["mapping"]["category"] == "Sub-Category"  # detected by name
    assert result.summary["lift"]["columns"] == {
        "products": "article", "categories": "Sub-Category", "countries": "Country"}
    table = result.customers.assign(group=lambda d: d["customer_id"].map(truth))
    main = table.groupby("segment")["group"].agg(lambda g: g.value_counts().idxmax())
    for seg in result.summary["segments"]:
        listed = seg["over_represented"]
        members = set(table.loc[table["segment"] == seg["id"], "customer_id"])
        garden = set(frame.loc[frame["Sub-Category"] == "Garden", "shopper"])
        share, overall = len(garden & members) / len(members), len(garden) / len(table)
        garden_listed = [i for i in listed["categories"] if i["item"] == "Garden"]
        if share / overall >= 1.5:
            assert garden_listed[0]["lift"] == pytest.approx(share / overall, rel=1e-3)
        else:
            assert not garden_listed
        if main[seg["id"]] == "vip":
            assert garden_listed
        if main[seg["id"]] == "lapsed":
            assert [i["item"] for i in listed["countries"]] == ["France"]
        assert "Kitchen" not in [i["item"] for i in listed["categories"]]


def test_description_alone_names_the_products():
    frame, _ = planted_lines(seed=5)
    frame["Item Description"] = "Item " + frame.pop("article")
    frame["Country"] = "UK"  # one country: its lift is 1 everywhere, so it is left out
    mapping = {k: v for k, v in PLANTED_MAP.items() if k != "product_id"}
    result = run_rfm(frame=frame, config=custseg.Config(mapping=mapping, clv={"enabled": False}))
    assert result.summary["mapping"]["description"] == "Item Description"
    assert result.summary["mapping"]["country"] == "Country"
    assert result.summary["lift"]["columns"] == {"products": "Item Description"}
    named = [s for s in result.summary["rfm_segments"] if s["customers"]]
    assert all(set(s["over_represented"]) == {"products"} for s in named)
    listed = [i for s in named for i in s["over_represented"]["products"]]
    assert listed and all(i["item"].startswith("Item SKU") and "id" not in i for i in listed)


# --------------------------------------------------------------- invariants
@st.composite
def labelled_lines(draw):
    n = draw(st.integers(3, 40))
    products = draw(st.lists(st.sampled_from("abcdef"), min_size=n, max_size=n))
    customers = draw(st.lists(st.integers(0, 11), min_size=n, max_size=n))
    days = draw(st.lists(st.integers(0, 400), min_size=n, max_size=n))
    segments = draw(st.lists(st.integers(1, 3), min_size=12, max_size=12))
    lines = pd.DataFrame({
        "customer_id": [f"c{c}" for c in customers],
        "invoice_date": [pd.Timestamp("2022-01-01") + pd.Timedelta(days=d) for d in days],
        "product_id": products, "value": 1.0, "status": "purchase"})
    labels = pd.DataFrame({"customer_id": [f"c{i}" for i in range(12)],
                           "segment": segments})
    labels = labels[labels["customer_id"].isin(lines["customer_id"])]
    return lines, labels


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labelled_lines(), st.floats(0, 0.5), st.integers(1, 3), st.floats(1, 3))
def test_lift_and_cohorts_hold_their_definitions(data, min_support, min_buyers, min_lift):
    lines, labels = data
    engine = DuckDBEngine()
    try:
        engine.sample.register("raw_lines", lines)
        engine.sample.execute("CREATE TABLE lines AS SELECT *, NULL::VARCHAR AS description, "
                              "NULL::VARCHAR AS category, NULL::VARCHAR AS country FROM raw_lines")
        s = ProfileConfig(min_support=min_support, min_buyers=min_buyers, min_lift=min_lift,
                          top=3)
        as_of = dt.date(2023, 3, 1)
        tenure = (pd.Timestamp(as_of) - lines.groupby("customer_id")["invoice_date"].min()
                  ).dt.days
        cohort = cohort_months(labels["customer_id"].map(tenure), as_of)
        found = segment_lines(engine, labels.assign(cohort=cohort), {"product_id": "p"}, s)
    finally:
        engine.close()
    sizes = labels["segment"].value_counts()
    bought = lines.drop_duplicates(["customer_id", "product_id"]).merge(labels)
    for row in found.items.itertuples():
        members = bought[(bought["segment"] == row.segment) & (bought["product_id"] == row.item)]
        everyone = bought[bought["product_id"] == row.item]
        assert row.buyers == len(members) >= 1
        assert row.support == pytest.approx(len(members) / sizes[row.segment])
        assert row.lift == pytest.approx(row.support / (len(everyone) / len(labels)))
        if row.listed:
            assert row.buyers >= min_buyers and row.support >= min_support - 1e-12
            assert row.lift >= min_lift - 1e-12
    assert (found.items[found.items["listed"]].groupby("segment").size() <= 3).all()
    block = cohort_retention(found.months, as_of=as_of, max_cohorts=24)
    firsts = lines.groupby("customer_id")["invoice_date"].min().dt.to_period("M")
    starts = [r for r in block["rows"] if r["months_since"] == 0]
    assert sum(r["customers"] for r in starts) == len(labels)  # each customer once
    assert {r["cohort"] for r in starts} == {str(p) for p in firsts}
    assert all(0 < r["share"] <= 1 for r in block["rows"])
    assert block["partial_month"] is None  # the data ends with February
