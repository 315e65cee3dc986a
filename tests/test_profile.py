"""Profiles, names, descriptions and actions: names must agree with the numbers."""

import re

import numpy as np
import pandas as pd
import pytest

import custseg
from conftest import MALL, needs_mall
from custseg import ConfigError
from custseg.jobs.run import run_segments
from custseg.profile.profiles import build_profiles, default_naming_rules, name_segments
from test_cluster import PLANTED_MAP, planted_lines


@pytest.fixture(scope="module")
def planted_run():
    frame, truth = planted_lines(seed=1)
    return run_segments(frame=frame, config=custseg.Config(mapping=PLANTED_MAP), k=4), truth


def by_name(result):
    return {s["name"]: s for s in result.summary["segments"]}


def test_names_agree_with_the_numbers(planted_run):
    result, _ = planted_run
    seg = result.customers
    means = seg.groupby("segment_name")[["monetary", "recency", "tenure", "frequency"]].mean()
    names = set(means.index)
    assert len(names) == 4 and not any(n.startswith("Segment ") for n in names)
    high = [n for n in names if n.startswith(("High-value", "Big spenders"))]
    assert high and means.loc[high[0], "monetary"] == means["monetary"].max()
    lapsed = [n for n in names if "apsed" in n or "Lost" in n]
    assert lapsed and means.loc[lapsed[0], "recency"] == means["recency"].max()
    assert "New customers" in names
    assert means.loc["New customers", "tenure"] == means["tenure"].min()


def test_each_segment_is_described_with_numbers_and_2_to_4_actions(planted_run):
    result, truth = planted_run
    for s in result.summary["segments"]:
        assert re.search(r"\d", s["description"]) and "%" in s["description"]
        assert 2 <= len(s["actions"]) <= 4
        assert s["profile"]["customers"] == s["size"]
        assert set(s["profile"]["features"]["monetary"]) == {"mean", "median", "z", "all_mean"}
        assert abs(sum(s["profile"]["rfm_mix"].values()) - 1) < 1e-3
    # the segment named for new customers is the planted "new" group
    seg = result.customers
    new = seg[seg["segment_name"] == "New customers"]["customer_id"].map(truth)
    assert (new == "new").mean() > 0.9


def test_profiles_z_scores_and_shares():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"customer_id": [str(i) for i in range(300)],
                          "monetary": np.r_[rng.lognormal(8, 0.2, 100), rng.lognormal(4, 0.2, 200)],
                          "plan": ["gold"] * 100 + ["basic"] * 200,
                          "segment": [1] * 100 + [2] * 200})
    profiles = build_profiles(frame)
    assert profiles[1]["share"] == pytest.approx(1 / 3, abs=1e-3)
    assert profiles[1]["features"]["monetary"]["z"] > 0 > profiles[2]["features"]["monetary"]["z"]
    assert profiles[1]["revenue_share"] > 0.9
    assert profiles[1]["categories"]["plan"] == {"gold": 1.0}


@needs_mall
def test_customer_table_names_come_from_distinguishing_columns():
    columns = {"annual income": "Annual Income (k$)", "spending score": "Spending Score (1-100)"}
    result = run_segments(MALL, features=list(columns.values()), k=5)
    seg = result.customers
    means = seg.groupby("segment_name")[list(columns.values())].mean()
    overall = seg[list(columns.values())].mean()
    assert seg["segment_name"].nunique() == 5
    said = 0
    for name, row in means.iterrows():
        # "High annual income, low spending score": each part's first word is its level
        for part in name.lower().split(", "):
            level = part.split()[0]
            for words, column in columns.items():
                if words in part and level in ("high", "low"):
                    said += 1
                    assert (row[column] > overall[column]) == (level == "high"), name
        assert "(" not in name and "k$" not in name
    # the four corners of income x spending score are named on both columns
    assert said >= 8, list(means.index)


def test_naming_rules_are_data_and_checked(planted_run):
    result, _ = planted_run
    profiles = {s["id"]: s["profile"] for s in result.summary["segments"]}
    rules = [{"name": "Whales", "when": {"monetary": "top"}, "actions": ["a", "b"]},
             *default_naming_rules()]
    names = name_segments(profiles, rules)
    top = max(profiles, key=lambda i: profiles[i]["features"]["monetary"]["mean"])
    assert names[top]["name"] == "Whales"
    with pytest.raises(ConfigError, match="condition monetary: 'huge'"):
        custseg.Config(naming_rules=[{"name": "X", "when": {"monetary": "huge"},
                                      "actions": ["a", "b"]}])
    with pytest.raises(ConfigError, match="2 to 4 actions"):
        custseg.Config(naming_rules=[{"name": "X", "when": {}, "actions": ["a"]}])


def test_names_stay_unique_with_more_segments_than_rules(planted_run):
    result, _ = planted_run
    profiles = {s["id"]: s["profile"] for s in result.summary["segments"]}
    clones = {i * 10 + j: profiles[i] for i in profiles for j in range(4)}
    names = [v["name"] for v in name_segments(clones).values()]
    assert len(names) == len(set(names))


def test_top_products_and_monthly_trend_add_up(planted_run):
    result, _ = planted_run
    trend = pd.DataFrame(result.summary["monthly_trend"])
    assert trend["revenue"].sum() == pytest.approx(result.customers["monetary"].sum(), rel=1e-6)
    by_seg = trend.groupby("segment")["revenue"].sum()
    money = result.customers.groupby("segment")["monetary"].sum()
    pd.testing.assert_series_equal(by_seg, money, check_names=False, rtol=1e-6)
    for s in result.summary["segments"]:
        products = s["profile"]["top_products"]
        assert 1 <= len(products) <= 5
        revenues = [p["revenue"] for p in products]
        assert revenues == sorted(revenues, reverse=True)


def test_two_segments_low_value_side_is_not_called_mid_value():
    frame, _ = planted_lines(seed=5)
    result = run_segments(frame=frame, config=custseg.Config(mapping=PLANTED_MAP), k=2)
    for s in result.summary["segments"]:
        z = s["profile"]["features"]["monetary"]["z"]
        if "mid-value" in s["name"]:
            assert -0.3 < z < 0.3
        if s["name"].startswith("Low"):
            assert z < -0.3
