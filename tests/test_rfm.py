import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from custseg import ConfigError, balanced_edges, rfm_scores
from custseg.core.config import default_rfm_segments
from custseg.prep.rfm import check_segment_map, score, segment_summary


def test_default_segment_map_covers_all_125_cells_exactly_once():
    segments = default_rfm_segments()
    codes = [code for cells in segments.values() for code in cells]
    every = {"".join(map(str, c)) for c in itertools.product(range(1, 6), repeat=3)}
    assert len(codes) == 125
    assert set(codes) == every
    assert len(segments) == 11
    assert list(segments)[0] == "Champions" and list(segments)[-1] == "Lost"
    assert len(check_segment_map(segments)) == 125


def test_segment_map_errors_name_the_cell():
    segments = default_rfm_segments()
    segments["Lost"] = segments["Lost"] + ["555"]
    with pytest.raises(ConfigError, match="555"):
        check_segment_map(segments)
    segments = default_rfm_segments()
    segments["Lost"] = segments["Lost"][1:]
    with pytest.raises(ConfigError, match="1 cell"):
        check_segment_map(segments)


def test_distinct_values_split_into_fifths():
    values = np.arange(1000, dtype=float)
    scores = score(values, balanced_edges(values))
    assert np.bincount(scores)[1:].tolist() == [200] * 5


def test_heavy_ties_keep_equal_values_together_and_fill_every_score():
    values = np.array([1] * 340 + [2] * 190 + [3] * 120 + [4] * 90 + list(range(5, 265)))
    scores = score(values, balanced_edges(values))
    assert set(scores[values == 1]) == {1}
    assert sorted(set(scores)) == [1, 2, 3, 4, 5]


def test_recency_scores_best_for_most_recent():
    recency = np.array([1, 5, 10, 50, 100, 200, 300, 365, 400, 500])
    s = score(recency, balanced_edges(recency), higher_is_better=False)
    assert s[0] == 5 and s[-1] == 1


def test_few_distinct_values_spread_over_the_range():
    values = np.array([1, 1, 1, 2, 2, 2])
    s = score(values, balanced_edges(values))
    assert sorted(set(s)) == [1, 5]


@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=300))
def test_scores_are_monotone_within_range_and_tie_consistent(raw):
    values = np.array(raw, dtype=float)
    s = score(values, balanced_edges(values))
    assert s.min() >= 1 and s.max() <= 5
    order = np.argsort(values, kind="stable")
    assert np.all(np.diff(s[order]) >= 0)
    for v in np.unique(values):
        assert len(set(s[values == v])) == 1


@given(st.lists(st.floats(min_value=0.01, max_value=1e6), min_size=50, max_size=400,
                unique=True))
def test_distinct_values_give_near_equal_fifths(raw):
    values = np.array(raw)
    counts = np.bincount(score(values, balanced_edges(values)), minlength=6)[1:]
    assert counts.max() - counts.min() <= 1


def test_rfm_scores_and_summary_on_a_table():
    rng = np.random.default_rng(0)
    n = 500
    features = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)],
                             "recency": rng.integers(1, 365, n),
                             "frequency": rng.integers(1, 30, n),
                             "monetary": rng.lognormal(5, 1, n)})
    scored = rfm_scores(features)
    assert scored["rfm_code"].str.fullmatch("[1-5]{3}").all()
    assert scored["rfm_segment"].notna().all()
    champions = scored[scored["rfm_segment"] == "Champions"]
    assert (champions["r_score"] >= 4).all() and (champions["f_score"] >= 4).all()
    summary = segment_summary(scored, default_rfm_segments())
    assert sum(s["customers"] for s in summary) == n
    assert sum(s["revenue_share"] for s in summary) == pytest.approx(1, abs=1e-3)
