"""The number of segments: clear groups recovered, a continuum cut for action, and the
reason saying which test decided."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

import custseg
from custseg import CustsegWarning, Segmenter
from custseg.cluster._evaluate import (
    Candidate,
    choose_k_for_action,
    reference_silhouettes,
    structured_ks,
)
from custseg.jobs.run import run_segments


def planted_table(groups: int, seed: int = 0, per_group: int = 150) -> tuple[pd.DataFrame,
                                                                           np.ndarray]:
    """A customer table of ``groups`` well-separated groups over four measures with
    business-like names and scales (income in thousands, visits, basket, tenure)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1, 1, size=(groups, 4))
    while min(np.linalg.norm(a - b) for i, a in enumerate(centres) for b in centres[i + 1:]) < 1:
        centres = rng.uniform(-1, 1, size=(groups, 4))  # redraw until every pair is apart
    truth = np.repeat(np.arange(groups), per_group)
    X = centres[truth] * 6 + rng.normal(0, 0.5, size=(len(truth), 4))
    frame = pd.DataFrame({
        "member_ref": [f"M{i:05d}" for i in range(len(truth))],
        "yearlyIncomeK": 60 + 8 * X[:, 0],
        "store_visits": 20 + 3 * X[:, 1],
        "BASKET_SIZE": 40 + 5 * X[:, 2],
        "tenureMonths": 36 + 4 * X[:, 3],
    })
    return frame, truth


def continuum_lines(seed: int = 0, customers: int = 1500, repeat: float = 0.65) -> pd.DataFrame:
    """Order lines with no groups: orders per customer heavy-tailed (many buy once),
    spend per order lognormal, first and last orders spread over two years."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2024-01-01")
    rows = []
    for c in range(customers):
        n = int(rng.geometric(1 - repeat))
        first = int(rng.integers(0, 730))
        days = np.sort(rng.integers(first, 731, n)) if n > 1 else np.array([first])
        basket = float(rng.lognormal(3.5, 0.8))
        for i, d in enumerate(days):
            rows.append((f"c{c}", f"o{c}-{i}", end - pd.Timedelta(days=730 - int(d)),
                         round(basket * float(rng.lognormal(0, 0.3)), 2)))
    return pd.DataFrame(rows, columns=["customer", "order", "date", "amount"])


CONTINUUM_MAP = {"customer_id": "customer", "invoice_id": "order", "invoice_date": "date",
                 "amount": "amount"}


@pytest.mark.parametrize("groups", [2, 3, 4, 6])
def test_planted_groups_are_recovered(groups):
    frame, truth = planted_table(groups, seed=groups)
    model = Segmenter(n_bootstrap=5).fit(frame.drop(columns="member_ref"))
    assert model.n_clusters_ == groups, model.k_selection_["reason"]
    assert adjusted_rand_score(truth, model.labels_) > 0.95
    reason = model.k_selection_["reason"]
    assert reason.startswith(f"k={groups}: clear groups") and "Gaussian cloud" in reason
    assert model.k_selection_["structure"] == "clear groups"
    assert "widening" not in reason  # at k <= 6 the range of 2..10 did not bind


def test_a_continuum_is_cut_for_action_and_says_why():
    lines = continuum_lines()
    result = run_segments(frame=lines, config=custseg.Config(mapping=CONTINUUM_MAP),
                          n_bootstrap=6, strategy="clusters")
    sel = result.summary["k_selection"]
    k = result.summary["k"]
    assert 3 <= k <= 8
    assert sel["structure"] == "continuum"
    assert sel["reason"].startswith(f"k={k}: no clear groups")
    assert "continuum" in sel["reason"] and "3..8" in sel["reason"]
    assert "widening" not in sel["reason"]
    by_k = {c["k"]: c for c in sel["candidates"]}
    assert sorted(by_k) == list(range(min(by_k), 9)) and k in by_k  # tried from 8 down
    chosen = by_k[k]
    passed = (chosen["stability"] >= 0.8 and not chosen["clashes"]
              and chosen["smallest_share"] >= 0.03)
    if passed:  # the largest k that passes all three tests
        assert "is the largest whose segments are all stable" in sel["reason"]
        assert all(not (c["stability"] >= 0.8 and not c["clashes"]
                        and c["smallest_share"] >= 0.03) for j, c in by_k.items() if j > k)
    else:
        assert "no k passes all three" in sel["reason"]
    sizes = result.customers["segment"].value_counts(normalize=True)
    assert len(sizes) == k and (not passed or sizes.min() >= 0.03)
    names = result.customers["segment_name"].unique()
    assert len(names) == k


def test_reference_silhouette_is_what_a_featureless_cloud_scores():
    rng = np.random.default_rng(3)
    cloud = rng.normal(size=(3000, 3))
    curves = {"k": [2, 3, 4], "silhouette": []}
    ref = reference_silhouettes(cloud, curves["k"], seed=0)
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    for k in curves["k"]:
        labels = KMeans(k, n_init=3, random_state=0).fit_predict(cloud)
        curves["silhouette"].append(silhouette_score(cloud, labels, sample_size=2000,
                                                     random_state=0))
    # the data is itself a Gaussian cloud: it scores as its reference does, so no k is clear
    for k, sil in zip(curves["k"], curves["silhouette"], strict=True):
        assert abs(sil - ref[k]) < 0.05
    assert structured_ks(curves, ref, curves["k"]) == []


def test_choose_k_for_action_takes_the_largest_passing_k_and_names_what_decided():
    cands = [Candidate(3, 0.95, 0.20, []), Candidate(4, 0.90, 0.10, []),
             Candidate(5, 0.85, 0.02, []), Candidate(6, 0.70, 0.08, []),
             Candidate(7, 0.88, 0.05, ["two segments would share 'Loyal regulars'"])]
    k, reason = choose_k_for_action(cands, min_stability=0.8, min_share=0.03)
    assert k == 4
    assert "k=5: smallest segment 2.0% < 3%" in reason
    assert "k=6: stability 0.70 < 0.8" in reason
    assert "k=7: two segments would share 'Loyal regulars'" in reason
    k, reason = choose_k_for_action([Candidate(3, 0.6, 0.2, []), Candidate(4, 0.7, 0.1, [])],
                                    min_stability=0.8, min_share=0.03)
    assert k == 4 and reason.startswith("no k passes all three") and "0.70 < 0.8" in reason


def test_given_k_range_decides_and_hints_only_when_it_can_widen():
    frame, _ = planted_table(6, seed=6)
    X = frame.drop(columns="member_ref")
    with pytest.warns(CustsegWarning, match="Stability"):  # 4 segments over 6 groups
        model = Segmenter(k_range=(2, 4), n_bootstrap=3).fit(X)
    assert model.n_clusters_ == 4
    assert model.k_selection_["reason"].endswith("consider widening --k-range")
    assert model.k_selection_["k"] == [2, 3, 4]
    model = Segmenter(k=6, n_bootstrap=3).fit(X)
    assert model.n_clusters_ == 6 and model.k_selection_ is None


def test_unstable_choice_is_a_warning_in_the_summary():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"customer_no": range(400), "a": rng.normal(size=400),
                          "b": rng.normal(size=400), "c": rng.normal(size=400)})
    with pytest.warns(CustsegWarning, match=r"Stability of the 7 segments is 0\.\d+, under 0\.8"):
        Segmenter(k=7, n_bootstrap=4).fit(table.drop(columns="customer_no"))
    result = run_segments(frame=table, config=custseg.Config(input_kind="table"), k=7,
                          n_bootstrap=4)
    stab = result.summary["metrics"]["stability_ari"]
    assert stab < 0.8
    assert any(w.startswith(f"Stability of the 7 segments is {stab:.2f}")
               for w in result.summary["audit"]["warnings"])


def test_one_time_buyers_are_a_tie_not_a_cluster():
    """Half the customers bought once (CDNOW-like): their frequency is one value and their
    gap between orders is filled in, which k-means sees as a separate group at k=2; with
    ties broken it is a continuum, cut for action."""
    lines = continuum_lines(seed=4, customers=1200, repeat=0.5)
    result = run_segments(frame=lines, config=custseg.Config(mapping=CONTINUUM_MAP),
                          n_bootstrap=4, strategy="clusters")
    sel = result.summary["k_selection"]
    assert sel["structure"] == "continuum", sel["reason"]
    assert 3 <= result.summary["k"] <= 8
    raw = dict(zip(sel["k"], sel["silhouette"], strict=True))
    untied = dict(zip(sel["k"], sel["untied_silhouette"], strict=True))
    assert untied[2] < raw[2]  # the tie made the split look better than it is



def test_k_from_a_stratified_sample_matches_the_full_search():
    """On planted groups, k chosen on a stratified sample of 3,000 of 15,000 customers
    (then one k-means run over all of them from the sample's centres) is the k of the
    search over every customer, with metrics within 0.01 (Calinski-Harabasz, which grows
    with n, within 1%) and the same segments."""
    frame = planted_table(5, seed=3, per_group=3_000)[0].drop(columns="member_ref")
    full = Segmenter(k_sample=0).fit(frame)
    sampled = Segmenter(k_sample=3_000).fit(frame)
    assert "sample" not in full.k_selection_
    assert sampled.k_selection_["sample"] == pytest.approx(3_000, abs=60)
    assert (f"stratified sample of {sampled.k_selection_['sample']:,} of {len(frame):,}"
            in sampled.k_selection_["reason"])
    assert sampled.n_clusters_ == full.n_clusters_ == 5
    for key in ("silhouette", "davies_bouldin", "stability_ari"):
        assert sampled.metrics_[key] == pytest.approx(full.metrics_[key], abs=0.01), key
    assert sampled.metrics_["calinski_harabasz"] == pytest.approx(
        full.metrics_["calinski_harabasz"], rel=0.01)
    assert adjusted_rand_score(full.labels_, sampled.labels_) > 0.99
