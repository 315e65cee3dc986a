"""Segment rules: short conditions over the original columns, with true numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custseg.core.exceptions import CustsegWarning
from custseg.profile.rules import evaluate, rule_text, segment_rules


def by_hand(table: pd.DataFrame, conditions: list[dict]) -> pd.Series:
    """The customers a rule matches, written out in pandas (missing numbers never match)."""
    keep = pd.Series(True, index=table.index)
    for c in conditions:
        col, op, v = table[c["feature"]], c["op"], c["value"]
        if op == "<=":
            keep &= col.le(v).fillna(False).astype(bool)
        elif op == ">=":
            keep &= col.ge(v).fillna(False).astype(bool)
        elif op == "between":
            keep &= col.between(v[0], v[1]).fillna(False).astype(bool)
        elif op == "==" and not isinstance(v, str):
            keep &= col.eq(v).fillna(False).astype(bool)
        elif op == "==":
            keep &= col.astype("string").eq(v).fillna(False).astype(bool)
        elif op == "!=":
            keep &= ~col.astype("string").eq(v).fillna(False).astype(bool)
        elif op == "in":
            keep &= col.astype("string").isin(v).fillna(False).astype(bool)
        elif op == "not in":
            keep &= ~col.astype("string").isin(v).fillna(False).astype(bool)
        else:
            raise AssertionError(f"unknown op {op}")
    return keep


def check_numbers(table: pd.DataFrame, rule: dict, seg_id: int) -> None:
    """Every number of a rule is what its printed conditions give on the table."""
    hit = by_hand(table, rule["conditions"])
    mine = table["segment"] == seg_id
    assert rule["customers"] == int(hit.sum())
    assert rule["precision"] == (round((hit & mine).sum() / hit.sum(), 4) if hit.sum() else 0.0)
    assert rule["recall"] == round((hit & mine).sum() / mine.sum(), 4)
    others = ~mine
    assert rule["others"] == (round((hit & others).sum() / others.sum(), 4)
                              if others.sum() else 0.0)


def boxes(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Customers in planted recency/frequency/monetary boxes, plus a few unclustered."""
    rng = np.random.default_rng(seed)
    seg = rng.integers(1, 4, n)
    recency = np.where(seg == 1, rng.integers(0, 31, n), rng.integers(90, 366, n))
    frequency = np.where(seg == 1, rng.integers(5, 21, n),
                         np.where(seg == 2, rng.integers(1, 3, n), rng.integers(3, 9, n)))
    # segment 3: long-gone but many orders and big spend; segment 2 small spend
    monetary = np.where(seg == 3, rng.uniform(2000, 6000, n), rng.uniform(20, 900, n))
    country = np.where(rng.random(n) < 0.7, "United Kingdom", rng.choice(["France", "EIRE"], n))
    table = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "recency": recency,
                          "frequency": frequency, "monetary": monetary.round(2),
                          "country": country, "segment": seg})
    table.loc[table.index[:20], "segment"] = -1
    return table


def test_planted_boxes_are_recovered_with_true_numbers():
    table = boxes()
    rules = segment_rules(table, ["recency", "frequency", "monetary"], ["country"], seed=1)
    assert sorted(rules) == [1, 2, 3]  # no rule for the unclustered
    for seg_id, rule in rules.items():
        assert rule["precision"] >= 0.9 and rule["recall"] >= 0.9, (seg_id, rule)
        assert len(rule["conditions"]) <= 3
        check_numbers(table, rule, seg_id)
    # the boundaries are where they were planted
    one = {c["feature"]: c for c in rules[1]["conditions"]}
    assert "recency" in one or "frequency" in one
    if "recency" in one:
        assert one["recency"]["op"] == "<=" and 30 <= one["recency"]["value"] < 90
        assert "days" in rules[1]["text"]
    three = {c["feature"]: c for c in rules[3]["conditions"]}
    assert three["monetary"]["op"] == ">=" and 900 <= three["monetary"]["value"] <= 2000


def test_thresholds_are_numbers_a_person_types():
    table = boxes(seed=3)
    table["monetary"] = table["monetary"] * 1.2345
    rules = segment_rules(table, ["recency", "frequency", "monetary"], [], seed=0)
    for rule in rules.values():
        for c in rule["conditions"]:
            for v in np.atleast_1d(c["value"]):
                assert float(f"{v:.2g}") == v or (float(v).is_integer() and abs(v) < 100), c


def test_a_categorical_segment_reads_as_is():
    rng = np.random.default_rng(2)
    n = 3000
    country = rng.choice(["United Kingdom", "France", "Germany", "Spain"], n)
    spend = rng.uniform(10, 1000, n)
    seg = np.where(country == "France", 1, 2)
    table = pd.DataFrame({"country": country, "monetary": spend, "segment": seg})
    rule = segment_rules(table, ["monetary"], ["country"])[1]
    assert rule["conditions"] == [{"feature": "country", "op": "==", "value": "France"}]
    assert rule["text"] == "country is France"
    assert rule["precision"] == 1.0 and rule["recall"] == 1.0 and rule["others"] == 0.0
    rest = segment_rules(table, ["monetary"], ["country"])[2]
    check_numbers(table, rest, 2)
    assert rest["recall"] == 1.0 and rest["others"] == 0.0


def test_rules_fitted_on_a_sample_are_scored_on_everyone():
    table = boxes(n=6000, seed=4)
    rules = segment_rules(table, ["recency", "frequency", "monetary"], ["country"],
                          fit_max=800, seed=2)
    for seg_id, rule in rules.items():
        check_numbers(table, rule, seg_id)
        assert rule["recall"] >= 0.85


def test_missing_values_never_match_a_number_condition():
    table = boxes(seed=5)
    table["recency"] = table["recency"].astype(float)
    table.loc[table.index[::7], "recency"] = np.nan
    table.loc[table.index[::11], "country"] = None
    rules = segment_rules(table, ["recency", "frequency", "monetary"], ["country"])
    for seg_id, rule in rules.items():
        check_numbers(table, rule, seg_id)
        hit = evaluate(table, rule["conditions"])
        if any(c["feature"] == "recency" for c in rule["conditions"]):
            assert not hit[table["recency"].isna()].any()


def test_rule_text_in_words():
    conditions = [{"feature": "recency", "op": "<=", "value": 45},
                  {"feature": "frequency", "op": ">=", "value": 5},
                  {"feature": "monetary", "op": "between", "value": [1200, 15000]},
                  {"feature": "country", "op": "not in", "value": ["EIRE", "France"]}]
    assert rule_text(conditions) == ("recency ≤ 45 days and frequency ≥ 5 orders and "
                                     "monetary between 1,200 and 15,000 and country not in "
                                     "{EIRE, France}")
    assert rule_text([{"feature": "MntWines", "op": ">=", "value": 0.5}],
                     {"MntWines": "wine"}) == "wine ≥ 0.5"
    assert rule_text([]) == "every customer"


def test_a_segment_of_everyone_has_the_empty_rule():
    table = pd.DataFrame({"x": [1.0, 2.0, 3.0], "segment": [1, 1, 1]})
    rule = segment_rules(table, ["x"], [])[1]
    assert rule["conditions"] == [] and rule["recall"] == 1.0 and rule["others"] == 0.0


@st.composite
def labelled_tables(draw):
    n = draw(st.integers(5, 80))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    k = draw(st.integers(1, 4))
    seg = rng.integers(1, k + 1, n)
    seg[rng.random(n) < draw(st.floats(0, 0.3))] = -1
    a = rng.normal(0, draw(st.sampled_from([1.0, 100.0, 1e5])), n)
    a[rng.random(n) < draw(st.floats(0, 0.3))] = np.nan
    b = rng.integers(0, draw(st.integers(1, 400)), n)
    levels = np.array(["x", "y", "z", "w"])[:draw(st.integers(1, 4))]
    c = rng.choice(levels, n).astype(object)
    c[rng.random(n) < 0.1] = None
    return pd.DataFrame({"a": a + seg * draw(st.floats(0, 3)), "b": b, "c": c, "segment": seg})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labelled_tables(), st.integers(3, 100))
def test_reported_numbers_equal_the_printed_conditions(table, fit_max):
    rules = segment_rules(table, ["a", "b"], ["c"], fit_max=fit_max)
    assert set(rules) == {int(s) for s in table["segment"].unique() if s != -1}
    for seg_id, rule in rules.items():
        check_numbers(table, rule, seg_id)


def test_run_segments_puts_the_rule_on_every_segment(tmp_path):
    import custseg
    from custseg.synth import generate

    paths = generate(800, tmp_path / "data", seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustsegWarning)  # RFM ties of a small table
        result = custseg.run_segments(paths["transactions"], k=4, seed=0)
    groups = [g for g in result.summary["segments"] if g["id"] != -1]
    assert groups
    for g in groups:
        rule = g["rule"]
        assert set(rule) >= {"text", "conditions", "precision", "recall", "others"}
        table = result.customers
        check_numbers(table, rule, g["id"])
        assert {c["feature"] for c in rule["conditions"]} <= set(
            result.summary["features"]["used"])
    assert "demographics" not in result.summary  # no customer table joined


def test_a_two_level_column_reads_as_the_level_it_keeps():
    rng = np.random.default_rng(6)
    n = 2000
    gender = rng.choice(["Female", "Male"], n)
    age = rng.integers(18, 80, n)
    seg = np.where((gender == "Female") & (age <= 35), 1, 2)
    table = pd.DataFrame({"age": age, "gender": gender, "segment": seg})
    rule = segment_rules(table, ["age"], ["gender"])[1]
    assert sorted(rule["conditions"], key=lambda c: c["feature"]) == [
        {"feature": "age", "op": "<=", "value": 35},
        {"feature": "gender", "op": "==", "value": "Female"}]
    assert rule["precision"] == 1.0 and rule["recall"] == 1.0
    assert "gender is Female" in rule["text"] and "age ≤ 35" in rule["text"]


def test_a_flag_reads_as_its_value():
    rng = np.random.default_rng(7)
    n = 2000
    accepted = rng.integers(0, 2, n)
    visits = rng.integers(0, 20, n)
    table = pd.DataFrame({"AcceptedCmp5": accepted, "visits": visits,
                          "segment": np.where(accepted == 1, 1, 2)})
    rules = segment_rules(table, ["AcceptedCmp5", "visits"], [])
    assert rules[1]["conditions"] == [{"feature": "AcceptedCmp5", "op": "==", "value": 1}]
    assert rules[2]["conditions"] == [{"feature": "AcceptedCmp5", "op": "==", "value": 0}]
    assert rules[1]["text"].endswith(" = 1") and rules[1]["recall"] == 1.0


def test_a_group_told_apart_by_a_missing_value_still_gets_a_written_rule():
    """One-order customers have no gap between orders: a tree splits on missing first,
    which no CRM condition says; the rule must name what can be written."""
    rng = np.random.default_rng(5)
    n1, n2 = 300, 700
    table = pd.DataFrame({
        "frequency": np.r_[rng.integers(20, 40, n1), np.ones(n2, int)],
        "monetary": np.r_[rng.lognormal(7, 0.3, n1), rng.lognormal(3, 0.3, n2)],
        "mean_days_between_orders": np.r_[rng.uniform(5, 9, n1), np.full(n2, np.nan)],
        "segment": np.r_[np.ones(n1, int), np.full(n2, 2)]})
    rules = segment_rules(table, ["frequency", "monetary", "mean_days_between_orders"], [])
    for seg_id in (1, 2):
        assert rules[seg_id]["conditions"], rules[seg_id]
        assert rules[seg_id]["precision"] >= 0.99 and rules[seg_id]["recall"] >= 0.99
