"""Demographic differences of segments: tests, Holm's correction, words."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from custseg.core.exceptions import CustsegWarning
from custseg.profile.demographics import (
    chi2_two,
    customer_table_differences,
    demographic_differences,
    holm,
    kruskal_two,
)


def test_holm_against_a_hand_computed_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == pytest.approx([0.02])
    assert len(holm([])) == 0


def test_kruskal_and_chi2_equal_scipy_on_a_tiny_example():
    values = np.array([1, 2, 2, 3, 5, 5, 5, 8, 9, 9, 10, 12], dtype=float)
    inside = np.array([1, 1, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0], dtype=bool)
    h, p, eps = kruskal_two(values, inside)
    ref = stats.kruskal(values[inside], values[~inside])
    assert h == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert eps == pytest.approx(ref.statistic / (len(values) - 1))

    gender = pd.Series(["F", "F", "M", "F", "M", None, "F", "M", "M", "F", "M", "M"])
    chi2, p, v, table = chi2_two(gender, inside)
    # by hand: segment rows 0,1,3,5,9 are F,F,F,missing,F; the rest M,M,F,M,M,M,M
    assert table.loc["segment"].to_dict() == {"F": 4, "M": 0}
    assert table.loc["rest"].to_dict() == {"F": 1, "M": 6}
    ref2 = stats.chi2_contingency([[4, 0], [1, 6]], correction=False)
    assert chi2 == pytest.approx(ref2.statistic) and p == pytest.approx(ref2.pvalue)
    assert v == pytest.approx(np.sqrt(ref2.statistic / 11))


def planted(seed: int, n: int = 1500) -> pd.DataFrame:
    """Segment 1 is 10 years older, segment 2 mostly women; noise columns differ nowhere."""
    rng = np.random.default_rng(seed)
    seg = rng.integers(1, 5, n)
    age = np.rint(rng.normal(40, 10, n) + np.where(seg == 1, 10, 0))
    female = np.where(seg == 2, 0.8, 0.45)
    gender = np.where(rng.random(n) < female, "Female", "Male")
    table = pd.DataFrame({"segment": seg, "age": age, "gender": gender})
    for i in range(3):
        table[f"noise{i}"] = rng.lognormal(3, 1, n)
        table[f"colour{i}"] = rng.choice(["red", "green", "blue"], n)
    table.loc[table.index[:15], "segment"] = -1
    return table


NOISE_NUM = ["noise0", "noise1", "noise2"]
NOISE_CAT = ["colour0", "colour1", "colour2"]


def test_planted_differences_are_found_in_the_right_direction():
    table = planted(0)
    found, info = demographic_differences(table, ["age", *NOISE_NUM], ["gender", *NOISE_CAT])
    assert info["tests"] == 4 * 8 and info["correction"] == "holm"
    assert sorted(found) == [1, 2, 3, 4]
    older = {e["column"]: e for e in found[1]}["age"]
    assert older["test"] == "kruskal" and older["median"] > older["rest_median"] + 5
    assert older["p_adjusted"] < 0.001 and older["effect_size"] >= 0.05
    assert older["text"].startswith("age: median ")
    women = {e["column"]: e for e in found[2]}["gender"]
    assert women["test"] == "chi2" and women["level"] == "Female"
    assert women["share"] > 0.7 > women["rest_share"]
    assert women["text"].startswith("gender: Female 8") and "V = " in women["text"]
    for entries in found.values():
        for e in entries:
            assert e["column"] in ("age", "gender")
            assert e["p_adjusted"] >= e["p_value"]


def test_no_difference_is_not_reported_in_95_percent_of_seeds():
    """Holm's correction, not the effect threshold, keeps false positives at bay: with
    no minimum effect, random columns (24 tests a run) show up in at most 1 of 20 runs."""
    reported_runs = 0
    for seed in range(20):
        table = planted(100 + seed, n=600)
        found, _ = demographic_differences(table, NOISE_NUM, NOISE_CAT, min_epsilon2=0.0,
                                           min_cramers_v=0.0)
        reported_runs += any(found.values())
    assert reported_runs <= 1


def test_uncorrected_tests_would_report_noise():
    """The check above can fail: the raw p-values of the same runs are often below 0.05."""
    raw = 0
    for seed in range(20):
        table = planted(100 + seed, n=600)
        found, _ = demographic_differences(table, NOISE_NUM, NOISE_CAT, alpha=0.05 * 24,
                                           min_epsilon2=0.0, min_cramers_v=0.0)
        raw += any(e["p_value"] < 0.05 for entries in found.values() for e in entries)
    assert raw >= 5


def test_customer_table_columns_skip_what_was_clustered_and_renamed_clashes():
    table = planted(1)
    table = table.rename(columns={"age": "age_customer"})  # clashed with a feature "age"
    table["age"] = 1.0
    info_in = {"numeric": ["age", "noise0"], "categorical": ["gender", "colour0", "missing"]}
    found, info = customer_table_differences(table, info_in, ["noise0", "recency"])
    assert info["columns"] == ["age_customer", "gender", "colour0"]
    assert info["skipped"] == {"noise0": "used for clustering"}
    assert any(e["column"] == "age_customer" for e in found[1])


def test_many_levels_and_constant_columns_are_skipped_with_why():
    table = planted(2)
    table["city"] = [f"city{i % 50}" for i in range(len(table))]
    table["one"] = "x"
    _, info = demographic_differences(table, [], ["city", "one"])
    assert info["skipped"] == {"city": "50 levels (more than 20)", "one": "constant"}
    assert info["tests"] == 0


EVIL = '<img src=x onerror="alert(1)">'


def test_run_with_a_customer_table_reports_planted_demographics(tmp_path):
    """The synthetic groups differ in age and income by construction; gender is drawn
    independently of the group, so no segment may differ in it. A planted membership level
    (markup, to check escaping) that one group mostly holds must show on its cards."""
    import custseg
    from custseg.synth import generate

    paths = generate(1500, tmp_path / "data", seed=5)
    customers = pd.read_parquet(paths["customers_table"])
    groups = pd.read_csv(paths["groups"], dtype={"customer_id": str})
    group = customers["CustomerID"].map(groups.set_index("customer_id")["group"])
    rng = np.random.default_rng(0)
    vip = group == group.value_counts().index[0]
    customers["tier"] = np.where(rng.random(len(customers)) < np.where(vip, 0.9, 0.1), EVIL,
                                 "standard")
    table_path = tmp_path / "customers.parquet"
    customers.to_parquet(table_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustsegWarning)  # RFM ties of a small table
        result = custseg.run_segments(paths["transactions"], customers=table_path, k=4,
                                      seed=0, out_dir=tmp_path / "out")
    s = result.summary
    assert s["demographics"]["correction"] == "holm"
    assert set(s["demographics"]["columns"]) == {"age", "income", "gender", "region", "tier"}
    lines = [e for g in s["segments"] if g["id"] != -1 for e in g["demographics"]]
    assert {e["column"] for e in lines} & {"age", "income"}
    assert "gender" not in {e["column"] for e in lines}
    tier = [e for e in lines if e["column"] == "tier"]
    assert tier and any(e["level"] == EVIL and e["share"] > 0.5 for e in tier)
    for g in s["segments"]:
        if g["id"] == -1:
            assert "demographics" not in g
            continue
        for e in g["demographics"]:
            rows = result.customers
            inside = rows["segment"] == g["id"]
            if e["test"] == "kruskal":
                assert e["median"] == pytest.approx(rows.loc[inside, e["column"]].median())
                assert e["rest_median"] == pytest.approx(rows.loc[~inside, e["column"]].median())
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    start = html.index('<section id="segments">')
    cards = html[start:html.index("</section>", start)]
    assert EVIL not in html
    assert "tier: &lt;img src=x onerror=&#34;alert(1)&#34;&gt; " in cards
    for g in s["segments"]:
        for e in g.get("demographics", []):
            assert e["text"].split(" (")[0].replace("<", "&lt;").replace(">", "&gt;").replace(
                '"', "&#34;") in cards
        if "rule" in g:
            assert f"rule: <b>{g['rule']['text']}</b>" in cards
            assert f"{g['rule']['recall']:.1%} of this segment" in cards


def test_a_zero_one_flag_is_tested_as_a_share():
    rng = np.random.default_rng(3)
    n = 1200
    seg = rng.integers(1, 3, n)
    complain = (rng.random(n) < np.where(seg == 1, 0.4, 0.05)).astype(int)
    table = pd.DataFrame({"segment": seg, "Complain": complain})
    found, info = demographic_differences(table, ["Complain"], [])
    one = found[1][0]
    assert one["test"] == "chi2" and one["level"] == "1" and one["flag"]
    assert one["share"] == pytest.approx(complain[seg == 1].mean())
    assert one["text"].startswith("complain = 1: 4")
    two = found[2][0]
    assert two["level"] == "1" and two["share"] < two["rest_share"]


def test_a_customer_table_alone_gets_no_demographics(tmp_path):
    """Alone, the table's columns are what was clustered: no test, no key."""
    import custseg

    table = planted(4, n=300).drop(columns="segment")
    table.insert(0, "customer_id", [f"c{i}" for i in range(len(table))])
    path = tmp_path / "table.csv"
    table.to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustsegWarning)
        result = custseg.run_segments(path, k=3, seed=0)
    assert "demographics" not in result.summary
    assert all("demographics" not in g for g in result.summary["segments"])
    assert all("rule" in g for g in result.summary["segments"] if g["id"] != -1)
