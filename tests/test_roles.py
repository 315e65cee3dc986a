"""A role for every column of a customer table: detection, the roles and their reasons,
the features they drive, and ``--cluster-on``."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import custseg
from custseg import Config, MappingError
from custseg.cluster import FeaturePrep
from custseg.io._customers import load_customers
from custseg.io._roles import looks_personal
from custseg.jobs.rfm import CustomerTableInput
from custseg.jobs.run import run_segments

N = 300
EMPTY = ""


def wide_table(n: int = N, seed: int = 1) -> tuple[pd.DataFrame, dict]:
    """A wide customer table as exported from a CRM or a spreadsheet (all text), with the
    facts the roles must recover."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n)
    enrol = [dt.date(2012, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 900, n)]
    born = rng.integers(1945, 2001, n)
    balance = rng.lognormal(np.array([4, 7, 8])[group], 0.8).round(6)
    minimum = rng.lognormal(5, 1, n).round(6).astype(str).astype(object)
    minimum[rng.random(n) < 0.05] = EMPTY  # a few empty: imputed
    value = rng.lognormal(3, 1, n).round(2).astype(str).astype(object)
    value[rng.random(n) < 0.55] = EMPTY
    value[rng.random(n) < 0.3] = "#DIV/0!"  # 79%-ish empty or #DIV/0!
    notes = np.where(rng.random(n) < 0.8, EMPTY, "called back")
    discount = np.where(rng.random(n) < 0.7, 0, rng.integers(5, 60, n))  # skewed percents
    frame = pd.DataFrame({
        "member_no": [f"M{i:05d}" for i in range(n)],
        "Dt_Customer": [f"{d.day}-{d.strftime('%b')}-{d.strftime('%y')}" for d in enrol],
        "Year_Birth": born.astype(str),
        "IsActive": np.where(group == 1, "Y", "N"),
        "newsletter": rng.choice(["yes", "no"], n),
        "AcceptedOffer": (rng.random(n) < 0.2).astype(int).astype(str),
        "BALANCE": balance.astype(str),
        "MINIMUM_PAYMENTS": minimum,
        "TotalSpend": (rng.lognormal(6, 1, n)).round(2).astype(str),
        "num_orders": rng.poisson(np.array([2, 9, 20])[group]).astype(str),
        "discount_pct": discount.astype(str),
        "purchaseFrequency": rng.random(n).round(6).astype(str),
        "segment_code": rng.integers(1, 5, n).astype(str),
        "Education": rng.choice(["Basic", "Graduation", "Master", "PhD", "2n Cycle"], n),
        "Comment": [f"Customer asked about delivery options on visit {i} and left happy"
                    for i in range(n)],
        "Z_CostContact": "3",
        "email": [f"m{i}@example.org" for i in range(n)],
        "contact": [f"+44 20 7946 {i:04d}" for i in range(n)],
        "#VALUE!": value,
        "Notes": notes,
    })
    facts = {"enrol": enrol, "born": born, "group": group}
    return frame, facts


EXPECTED = {"member_no": "id", "Dt_Customer": "date", "Year_Birth": "year",
            "IsActive": "flag", "newsletter": "flag", "AcceptedOffer": "outcome",
            "BALANCE": "money", "MINIMUM_PAYMENTS": "money", "TotalSpend": "money",
            "num_orders": "count", "discount_pct": "rate", "purchaseFrequency": "rate",
            "segment_code": "category", "Education": "category", "Comment": "text",
            "Z_CostContact": "constant", "email": "personal", "contact": "personal",
            "#VALUE!": "missing", "Notes": "missing"}


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> tuple[Path, pd.DataFrame, dict]:
    frame, facts = wide_table()
    path = tmp_path_factory.mktemp("wide") / "members.csv"
    frame.to_csv(path, index=False)
    return path, frame, facts


def read(path, config: Config | None = None):
    con = duckdb.connect()
    try:
        return load_customers(con, path, config or Config())
    finally:
        con.close()


def test_every_column_of_a_wide_table_gets_its_role(wide):
    path, frame, _ = wide
    table, info = read(path)
    assert {c: v["role"] for c, v in info["columns"].items()} == EXPECTED
    assert info["key"] == "member_no"
    assert list(table["customer_id"][:2]) == ["M00000", "M00001"]
    assert all(v["reason"] for v in info["columns"].values())
    assert "#DIV/0!" in info["columns"]["#VALUE!"]["reason"]
    for col in ("email", "contact", "Z_CostContact", "#VALUE!", "Notes"):
        assert col not in table.columns


def test_no_number_is_taken_for_personal_data(wide):
    path, frame, _ = wide
    _, info = read(path)
    numeric = [c for c in frame.columns
               if pd.to_numeric(frame[c].replace(EMPTY, np.nan), errors="coerce").notna().mean()
               > 0.5]
    assert "BALANCE" in numeric and "MINIMUM_PAYMENTS" in numeric
    assert not [c for c in numeric if info["columns"][c]["role"] == "personal"]
    assert set(info["personal_columns_left_out"]) == {"email", "contact"}


def test_dates_become_days_since_and_birth_years_ages(wide):
    path, frame, facts = wide
    table, info = read(path)
    reference = max(facts["enrol"]) + dt.timedelta(days=1)  # day after the latest date
    assert info["reference_day"] == reference.isoformat()
    expected_days = [(reference - d).days for d in facts["enrol"]]
    assert table["Dt_Customer"].tolist() == expected_days
    assert table["Year_Birth"].tolist() == (reference.year - facts["born"]).tolist()
    assert table["IsActive"].tolist() == (facts["group"] == 1).astype(float).tolist()
    with_as_of = read(path, Config(as_of="2020-01-01"))[0]
    assert with_as_of["Dt_Customer"].iloc[0] == (dt.date(2020, 1, 1) - facts["enrol"][0]).days
    assert with_as_of["Year_Birth"].iloc[0] == 2020 - facts["born"][0]


def test_features_follow_the_roles(wide):
    path, _, _ = wide
    table, _ = read(path)
    prep = FeaturePrep().fit(table)
    used = prep.numeric_ + prep.categorical_
    assert set(used) <= {c for c, r in EXPECTED.items()
                         if r not in ("id", "text", "personal", "constant", "missing")}
    assert "Dt_Customer" in prep.numeric_  # days since, never one-hot
    assert not any(c.startswith("Dt_Customer=") for c in prep.columns_)
    assert set(prep.categorical_) <= {"segment_code", "Education"}
    assert "segment_code" in prep.categorical_
    for col in ("discount_pct", "purchaseFrequency", "AcceptedOffer", "IsActive"):
        if col in prep.spec_:
            assert prep.spec_[col]["transform"] == "none", col  # rates and flags: no log
    assert prep.spec_["BALANCE"]["transform"] == "log1p"
    assert pd.Series(table["discount_pct"]).skew() > 1  # so log1p would have applied
    notes = " ".join(prep.notes_)
    assert "Comment: free text" in notes


def test_run_on_a_wide_table_records_columns_and_never_clusters_a_mostly_missing_one(
        wide, tmp_path):
    path, _, _ = wide
    result = run_segments(path, k=3, out_dir=tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {c: v["role"] for c, v in summary["columns"].items()} == EXPECTED
    used = summary["features"]["used"]
    assert "#VALUE!" not in used and "Notes" not in used
    assert summary["features"]["cluster_on"] == "table"
    assert any(n.startswith("Left out #VALUE!: missing") for n in summary["features"]["notes"])
    assert result.customers["customer_id"].is_unique
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'id="columns"' in html and "#DIV/0!" in html


@pytest.mark.parametrize("written, dates", [
    ("iso", ["2012-09-04", "2013-12-25", "2014-01-31"]),
    ("dd/mm/yyyy", ["04/09/2012", "25/12/2013", "31/01/2014"]),
    ("dd-mm-yyyy", ["04-09-2012", "25-12-2013", "31-01-2014"]),
    ("d-Mon-yy", ["4-Sep-12", "25-Dec-13", "31-Jan-14"]),
    ("m/d/yyyy h:mm", ["9/4/2012 0:00", "12/25/2013 0:00", "1/31/2014 0:00"]),
])
def test_dates_in_the_usual_export_forms(tmp_path, written, dates):
    n = 30
    frame = pd.DataFrame({"ID": range(1, n + 1), "joined": [dates[i % 3] for i in range(n)],
                          "spend": np.linspace(10, 500, n).round(2)})
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    table, info = read(path, Config(as_of="2014-02-01"))
    assert info["columns"]["joined"]["role"] == "date", info["columns"]["joined"]
    expected = [(dt.date(2014, 2, 1) - d).days for d in
                (dt.date(2012, 9, 4), dt.date(2013, 12, 25), dt.date(2014, 1, 31))]
    assert table["joined"].tolist()[:3] == expected


def test_member_no_table_is_recognised_not_read_as_order_lines(tmp_path):
    n = 60
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"member_no": [f"{1000 + i}" for i in range(n)],
                          "visits": rng.poisson(5, n), "spend": rng.gamma(2, 50, n).round(2)})
    path = tmp_path / "members.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(CustomerTableInput, match="looks like a customer table"):
        custseg.run_rfm(path)
    result = run_segments(path, k=2)
    assert sorted(result.customers["customer_id"]) == sorted(frame["member_no"])
    assert result.summary["columns"]["member_no"]["role"] == "id"
    with pytest.raises(MappingError, match="--map invoice_date=") as err:
        custseg.run_rfm(path, config=Config(input_kind="orders"))
    assert not isinstance(err.value, CustomerTableInput)


def test_order_lines_without_a_date_name_both_ways_out(tmp_path):
    frame = pd.DataFrame({"CustomerID": ["A", "A", "B", "B"], "InvoiceNo": ["1", "2", "3", "4"],
                          "Quantity": [1, 2, 3, 4], "UnitPrice": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(MappingError) as err:
        custseg.run_rfm(frame=frame)
    assert not isinstance(err.value, CustomerTableInput)
    assert "--map invoice_date=COLUMN" in str(err.value)
    assert "--input-kind table" in str(err.value)


def test_input_kind_table_reads_what_detection_cannot(tmp_path):
    """Repeated ids: detection reads order lines; --input-kind table says otherwise."""
    frame = pd.DataFrame({"Kunde": ["a", "b", "c", "a"] * 10, "Umsatz": np.arange(40) * 1.5,
                          "Besuche": np.arange(40) % 7})
    path = tmp_path / "kunden.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(MappingError, match="--input-kind table"):
        custseg.run_rfm(path)
    result = run_segments(path, config=Config(input_kind="table"), k=2)
    assert sorted(result.customers["customer_id"]) == ["a", "b", "c"]
    assert any("37 customer id(s) repeat" in w for w in result.summary["audit"]["warnings"])
    with pytest.raises(CustomerTableInput, match="RFM needs order lines"):
        custseg.run_rfm(path, config=Config(input_kind="table"))


def test_a_table_without_an_id_is_numbered_by_row(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"Age": rng.integers(18, 70, 50), "Income": rng.normal(50, 10, 50),
                          "Gender": rng.choice(["F", "M"], 50)})
    path = tmp_path / "survey.csv"
    frame.to_csv(path, index=False)
    result = run_segments(path, k=2)
    assert result.customers["customer_id"].tolist() == [str(i) for i in range(1, 51)]
    assert "numbered by row" in result.summary["audit"]["notes"]["customer_id"]
    assert result.summary["customer_table"]["key"] is None


def lines_and_people(n: int = 80, seed: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Order lines of ``n`` customers and their customer table (birth year, flag, plan)."""
    rng = np.random.default_rng(seed)
    rows, inv = [], 0
    start = dt.datetime(2023, 1, 1)
    for c in range(n):
        for _ in range(1 + c % 5):
            inv += 1
            when = start + dt.timedelta(days=int(rng.integers(0, 360)))
            rows.append((f"I{inv}", when.strftime("%Y-%m-%d"), f"C{c:03d}",
                         int(rng.integers(1, 5)), float(rng.choice([2.5, 9.9, 30.0]))))
    lines = pd.DataFrame(rows, columns=["InvoiceNo", "InvoiceDate", "CustomerID", "Quantity",
                                        "UnitPrice"])
    people = pd.DataFrame({"CustomerID": [f"C{c:03d}" for c in range(n)],
                           "YearOfBirth": rng.integers(1950, 2000, n),
                           "VIP": rng.choice(["Y", "N"], n),
                           "plan_type": rng.choice(["basic", "plus"], n),
                           "Z_Const": 1})
    return lines, people


@pytest.mark.parametrize("cluster_on", ["behaviour", "all"])
def test_cluster_on_behaviour_or_all(tmp_path, cluster_on):
    lines, people = lines_and_people()
    people_path = tmp_path / "people.csv"
    people.to_csv(people_path, index=False)
    result = run_segments(frame=lines, customers=people_path, k=3,
                          config=Config(cluster_on=cluster_on))
    summary = result.summary
    assert summary["features"]["cluster_on"] == cluster_on
    assert summary["columns"]["YearOfBirth"]["role"] == "year"
    assert summary["columns"]["Z_Const"]["role"] == "constant"
    used = summary["features"]["used"]
    table_cols = {"YearOfBirth", "VIP", "plan_type"}
    if cluster_on == "all":
        assert table_cols <= set(used) and "recency" in used
    else:
        assert not table_cols & set(used)
    ages = result.customers.set_index("customer_id")["YearOfBirth"]
    born = people.set_index("CustomerID")["YearOfBirth"]
    reference_year = int(summary["customer_table"]["reference_year"])
    assert (ages == reference_year - born.loc[ages.index]).all()


def test_cli_cluster_on_all_and_rfm_on_a_table(tmp_path):
    lines, people = lines_and_people()
    lines.to_csv(tmp_path / "orders.csv", index=False)
    people.to_csv(tmp_path / "people.csv", index=False)
    cli = [sys.executable, "-m", "custseg.cli"]
    run = subprocess.run([*cli, "run", str(tmp_path / "orders.csv"), "--customers",
                          str(tmp_path / "people.csv"), "--cluster-on", "all", "--k", "3",
                          "--out", str(tmp_path / "out"), "-q"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["features"]["cluster_on"] == "all"
    assert "VIP" in summary["features"]["used"]
    rfm = subprocess.run([*cli, "rfm", str(tmp_path / "people.csv"), "--out",
                          str(tmp_path / "rfm")], capture_output=True, text=True)
    assert rfm.returncode == 1 and "customer table" in rfm.stderr


# ------------------------------------------------------------------ personal data
@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1e7, allow_nan=False), min_size=5, max_size=40),
       st.integers(1, 8))
def test_decimal_numbers_are_never_phone_numbers(values, digits):
    text = pd.Series([f"{v:.{digits}f}" for v in values])
    assert looks_personal(text) is None


def test_phone_numbers_and_emails_are_still_found():
    phones = pd.Series(["+44 20 7946 0018", "020 7946 0000", "(555) 123-4567",
                        "+1-202-555-0143", "0161 496 0000"])
    assert looks_personal(phones) == "phone numbers"
    assert looks_personal(pd.Series(["a@b.org", "c.d@e.co.uk"])) == "e-mail addresses"
    assert looks_personal(pd.Series(["40.900749", "1072.340217", "3202.467416"])) is None


@pytest.mark.parametrize("name, values, role", [
    ("MntWines", [0, 12, 635, 88, 1493, 5] * 5, "money"),
    ("NumWebPurchases", [0, 3, 8, 27, 2, 1] * 5, "count"),
    ("PURCHASES_TRX", [0, 2, 358, 12, 1, 4] * 5, "count"),
    ("Income", [58138, 46344, 71613, 26646, 1730, 666666] * 5, "money"),
    ("CASH_ADVANCE_FREQUENCY", [0.0, 0.25, 1.5, 0.083333, 0.5, 0.1] * 5, "rate"),
    ("response_rate", [0.0, 12.5, 99.0, 40.0, 3.0, 0.0] * 5, "rate"),
    ("Kidhome", [0, 1, 2, 0, 1, 0] * 5, "count"),
    ("customer_level", [1, 2, 3, 2, 1, 3] * 5, "category"),
    ("temperature", [-3.5, 12.25, 20.0, 7.1, 0.5, 3.3] * 5, "number"),
])
def test_numbers_get_money_count_rate_from_values_and_name(name, values, role):
    from custseg.io._roles import infer_roles

    roles, _ = infer_roles(pd.DataFrame({name: [str(v) for v in values]}))
    assert roles[name].role == role, roles[name]


def test_a_saved_pandas_index_is_not_data(tmp_path):
    rng = np.random.default_rng(7)
    table = pd.DataFrame({"member_no": [f"M{i:04d}" for i in range(120)],
                          "spend": rng.lognormal(4, 1, 120).round(2),
                          "visits": rng.poisson(5, 120)}).sample(frac=1, random_state=3)
    path = tmp_path / "members.csv"
    table.to_csv(path)  # the shuffled index 0..119 is written as a nameless first column
    result = run_segments(path, k=3)
    index_col = [c for c, v in result.summary["columns"].items()
                 if "numbers the rows" in v["reason"]]
    assert len(index_col) == 1 and result.summary["columns"][index_col[0]]["role"] == "id"
    assert index_col[0] not in result.summary["features"]["used"]
    assert set(result.summary["features"]["used"]) == {"spend", "visits"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 6), st.sampled_from([np.nan, 1.0, 2.0, 3.0]),
                          st.sampled_from([np.nan, 0.5, 1.25, 4.0]),
                          st.sampled_from([np.nan, 0.5, 1.75, 2.5, 5.0, 12.0])),
                min_size=2, max_size=60))
def test_order_sums_agree_with_a_pandas_group_by(rows):
    """The NumPy order-total check (bincount, fmax) gives the share the pandas group-by
    it replaced gives: orders of two lines or more whose total is price x quantity."""
    from custseg.io._evidence import Profile
    from custseg.io._infer import MIN_GROUPS, _order_sums

    k, qty, price, total = (np.array(c) for c in zip(*rows, strict=True))

    def prof(name, values):
        return Profile(name=name, n=len(values), present=len(values), distinct=1,
                       text=pd.Series(values), numbers=np.asarray(values, dtype=float))

    codes = type("Codes", (), {"codes": lambda self, _: k.astype(np.int64)})()
    got = _order_sums(codes, prof("q", qty), prof("p", price), prof("t", total), "order")
    ok = (k >= 0) & ~np.isnan(qty) & ~np.isnan(price)
    frame = pd.DataFrame({"k": k[ok], "v": qty[ok] * price[ok], "t": total[ok]})
    per = frame.groupby("k").agg(n=("v", "size"), v=("v", "sum"), t=("t", "max"))
    multi = per[per["n"] >= 2]
    want = (0.0 if ok.sum() < 2 or len(multi) < MIN_GROUPS else float(
        (np.abs(multi["t"] - multi["v"]) <= 0.01 * np.abs(multi["v"]) + 0.011).mean()))
    assert got == pytest.approx(want)
