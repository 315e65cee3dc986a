"""The real UCI Online Retail file: counts and an independent pandas computation."""

import pandas as pd
import pytest

import custseg
from conftest import ONLINE_RETAIL, needs_online_retail
from custseg.prep.predict import COLUMNS

pytestmark = needs_online_retail


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return custseg.run_rfm(ONLINE_RETAIL, out_dir=tmp_path_factory.mktemp("or") / "out")


@pytest.fixture(scope="module")
def independent():
    """R, F, M under the documented rules, written directly in pandas."""
    raw = pd.read_parquet(ONLINE_RETAIL)
    raw = raw.drop_duplicates()
    ok = (raw["CustomerID"].notna() & (raw["Quantity"] > 0) & (raw["UnitPrice"] > 0)
          & ~raw["InvoiceNo"].str.fullmatch(r"C\d+"))
    p = raw[ok].assign(value=lambda d: d["Quantity"] * d["UnitPrice"],
                       customer_id=lambda d: d["CustomerID"].astype("int64").astype(str))
    as_of = p["InvoiceDate"].max().normalize() + pd.Timedelta(days=1)
    g = p.groupby("customer_id")
    return pd.DataFrame({
        "recency": (as_of - g["InvoiceDate"].max().dt.normalize()).dt.days,
        "frequency": g["InvoiceNo"].nunique(),
        "monetary": g["value"].sum(),
    })


def test_customer_count_and_audit_total(result):
    s = result.summary
    assert s["customers"] == 4338
    assert s["audit"]["rows_in"] == 541909
    assert s["audit"]["rows_used"] + sum(s["audit"]["dropped"].values()) == 541909
    assert s["audit"]["dropped"]["missing_customer_id"] == 135080
    assert s["as_of"] == "2011-12-10"
    assert sum(seg["customers"] for seg in s["rfm_segments"]) == 4338


def test_every_customer_matches_independent_rfm(result, independent):
    ours = result.customers.set_index("customer_id")
    assert set(ours.index) == set(independent.index)
    ours = ours.loc[independent.index]
    assert (ours["recency"] == independent["recency"]).all()
    assert (ours["frequency"] == independent["frequency"]).all()
    assert (ours["monetary"] - independent["monetary"]).abs().max() < 0.005
    assert ours["recency"].min() == 1


def test_customers_seen_but_never_buying_are_listed(result):
    raw = pd.read_parquet(ONLINE_RETAIL, columns=["CustomerID"])
    seen = set(raw["CustomerID"].dropna().astype("int64").astype(str))
    listed = set(result.customers["customer_id"]) | set(result.excluded["customer_id"])
    assert listed == seen  # 4,372 ids: 4,338 segmented + the rest excluded with a reason
    assert (result.excluded["reason"] == "no_valid_purchase").all()


def test_outputs_written(result):
    out = result.out_dir
    seg = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    assert len(seg) == 4338 and seg["customer_id"].is_unique
    assert list(seg.columns[:4]) == ["customer_id", "recency", "frequency", "monetary"]
    assert list(seg.columns[-15:]) == ["r_score", "f_score", "m_score", "rfm_code", "rfm_segment",
                                       *COLUMNS, "stage", "stage_reason"]
    assert (out / "summary.json").exists() and (out / "excluded_customers.csv").exists()
