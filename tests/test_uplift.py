"""Control groups and uplift statistics (custseg.prep.uplift), checked by simulation: a
planted uplift is covered by its 95% interval about 95% of the time, segments with none
are flagged at about the nominal rate or less, and the split is random, stratified and
reproducible."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custseg.prep import uplift

SEEDS = 300


def campaign(rng, sizes, rates, planted, share=0.2):
    """One simulated campaign: customers of segments ``sizes`` buying at ``rates``; the
    target group of each segment buys ``planted`` points more; revenue lognormal."""
    segment = np.repeat(np.arange(len(sizes)), sizes)
    members = pd.DataFrame({"customer_id": np.arange(len(segment)), "segment": segment})
    members["group"] = uplift.split_groups(members, share, int(rng.integers(1 << 30)))
    target = (members["group"] == "target").to_numpy()
    p = np.asarray(rates)[segment] + np.where(target, np.asarray(planted)[segment], 0)
    bought = rng.random(len(segment)) < p
    members["orders"] = bought * (1 + rng.poisson(0.3, len(segment)))
    members["revenue"] = bought * rng.lognormal(3.5, 1.0, len(segment))
    return uplift.compare_groups(members)


def test_a_planted_uplift_is_covered_and_null_segments_are_rarely_flagged():
    rng = np.random.default_rng(20261206)
    sizes, rates, planted = [4000, 3000, 2500, 2000], [0.10, 0.05, 0.20, 0.15], \
        [0.05, 0, 0, 0]
    covered = found = flagged = revenue_covered = 0
    for _ in range(SEEDS):
        table = campaign(rng, sizes, rates, planted)
        hit = table.iloc[0]
        low, high = hit["buying"].interval
        covered += low <= planted[0] <= high
        found += hit["buying_p_adjusted"] < 0.05
        flagged += sum(table.iloc[i]["buying_p_adjusted"] < 0.05 for i in (1, 2, 3))
        true_extra = planted[0] * math.exp(3.5 + 0.5)  # E[revenue | bought] x planted
        r_low, r_high = hit["revenue"].interval
        revenue_covered += r_low <= true_extra <= r_high
    # 300 runs: the 95% band of a 95% coverage is about 92.5% to 97.5%
    assert 0.92 <= covered / SEEDS <= 0.98
    assert 0.90 <= revenue_covered / SEEDS <= 0.98
    assert found / SEEDS > 0.9  # 4,000 customers, 20% held out: 5 points is plain to see
    assert flagged / (3 * SEEDS) <= 0.05 + 0.02  # at most the nominal 5%, after Holm


def test_an_a_a_split_shows_no_difference_at_about_the_nominal_rate():
    rng = np.random.default_rng(7)
    any_flagged = raw = 0
    for _ in range(SEEDS):
        table = campaign(rng, [3000, 3000, 3000], [0.1, 0.3, 0.05], [0, 0, 0], share=0.5)
        segments = table.iloc[:-1]
        any_flagged += (segments["buying_p_adjusted"] < 0.05).any()
        raw += sum(t.p_value < 0.05 for t in segments["buying"])
    assert any_flagged / SEEDS <= 0.05 + 0.03  # Holm keeps the family-wise rate at 5%
    assert 0.02 <= raw / (3 * SEEDS) <= 0.08  # each test alone: about 5%


def test_the_smallest_detectable_uplift_matches_the_textbook_sample_size():
    # 10% -> 12% at 80% power, 5% two-sided needs about 3,840 customers per group
    # (Fleiss; Evan Miller's calculator gives 3,841)
    assert uplift.detectable_uplift(0.10, 3841, 3841) == pytest.approx(0.02, abs=0.0005)
    small = uplift.detectable_uplift(0.10, 900, 100)
    assert small > uplift.detectable_uplift(0.10, 500, 500)  # a lopsided split sees less
    needed = uplift.holdout_for(0.10, 40_000, 0.02)
    control = round(40_000 * needed)
    assert uplift.detectable_uplift(0.10, 40_000 - control, control) <= 0.02
    smaller = round(40_000 * (needed - 0.01))
    assert uplift.detectable_uplift(0.10, 40_000 - smaller, smaller) > 0.02
    assert uplift.holdout_for(0.10, 300, 0.02) is None
    assert uplift.detectable_uplift(0.1, 1, 5) is None


def test_a_lopsided_split_is_a_sample_ratio_mismatch_and_a_fair_one_is_not():
    fair = pd.DataFrame({"target": [900, 1800], "control": [100, 200]})
    assert uplift.sample_ratio(fair, 0.1) > 0.5
    trimmed = pd.DataFrame({"target": [900, 1200], "control": [100, 200]})  # 600 unsent
    assert uplift.sample_ratio(trimmed, 0.1) < uplift.SRM_ALPHA
    assert uplift.sample_ratio(fair, 0.0) is None


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 60), min_size=1, max_size=5),
       share=st.sampled_from([0.05, 0.1, 0.25, 0.5]), seed=st.integers(0, 2**31 - 1))
def test_the_split_is_stratified_and_the_same_seed_gives_the_same_groups(sizes, share, seed):
    segment = np.repeat(np.arange(len(sizes)), sizes)
    members = pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(segment))],
                            "segment": segment})
    group = uplift.split_groups(members, share, seed)
    for s, n in enumerate(sizes):
        assert (group[segment == s] == "control").sum() == round(share * n)
    shuffled = members.sample(frac=1, random_state=seed % 1000)
    again = uplift.split_groups(shuffled, share, seed)
    assert (again.sort_index() == group).all()  # row order does not matter, the seed does


def test_the_control_group_is_random_not_the_first_customers():
    members = pd.DataFrame({"customer_id": range(10_000), "segment": 0})
    control = members["customer_id"][uplift.split_groups(members, 0.1, 3) == "control"]
    assert abs(control.mean() - 4999.5) < 300  # evenly spread over the ids
    other = members["customer_id"][uplift.split_groups(members, 0.1, 4) == "control"]
    assert len(set(control) & set(other)) < 200  # another seed, another group (~100 shared)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_gives_statsmodels_numbers(p_values):
    from statsmodels.stats.multitest import multipletests

    expected = multipletests(p_values, alpha=0.05, method="holm")[1]
    assert uplift.holm(p_values) == pytest.approx(expected, abs=1e-12)


def test_the_measure_page_escapes_segment_names():
    from custseg.core import campaign as cp
    from custseg.outputs.report.measure import render_measure

    comparison = cp.Comparison(target=0.2, control=0.1, uplift=0.1, interval=[0.05, 0.15],
                               relative=1.0, relative_interval=[0.5, 1.5], p_value=0.001,
                               p_adjusted=0.002)
    hostile = '<script>alert("x")</script> & co'

    def result(name, segment):
        return cp.SegmentResult(
            segment=segment, name=name, target=900, control=100, buyers_target=180,
            buyers_control=10, buying=comparison, orders=comparison, revenue=comparison,
            incremental_revenue=90.0, incremental_interval=[45.0, 135.0],
            incremental_buyers=90.0, significant=True, verdict=f"{name} did well")

    window = cp.Window(start="2024-01-01", end="2024-01-31", days=30)
    page = render_measure(cp.Measurement(
        version=1, manifest="a.manifest.json", orders="later.csv", window=window,
        data_last_day="2024-01-30", days_to_come=0, lines={"within": 5, "before": 0,
                                                           "after": 0},
        alpha=0.05, buying_test="t", revenue_test="t", correction="holm",
        sample_ratio_p=0.5, sample_ratio_mismatch=False, currency=None,
        segments=[result(hostile, "1")], total=result("all segments", None),
        outsiders=cp.Outsiders(customers=0, orders=0, revenue=0.0), warnings=[hostile]))
    assert "<script>" not in page and "&lt;script&gt;" in page
