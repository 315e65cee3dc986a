"""Feature preparation, choice of k, hierarchical merging, Segmenter, run and compare."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.cluster.hierarchy import linkage
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

import custseg
from custseg import ConfigError, CustsegWarning
from custseg.cluster import FeaturePrep, Segmenter
from custseg.cluster._evaluate import choose_k, stratified_sample
from custseg.cluster._hierarchical import fit_hierarchical, weighted_ward
from custseg.jobs.run import rank, run_segments


def planted_lines(seed: int = 0, per_group: int = 150) -> tuple[pd.DataFrame, dict]:
    """Order lines of four behaviour groups, under unusual column names.

    vip: ~30 orders of ~400, last days ago; regular: ~10 orders of ~60; lapsed: ~3
    orders of ~150, last ~300 days ago; new: exactly one small order in the last days.
    """
    rng = np.random.default_rng(seed)
    groups = {"vip": (30, 400.0, 5), "regular": (10, 60.0, 30), "lapsed": (3, 150.0, 300),
              "new": (1, 25.0, 10)}
    end = pd.Timestamp("2023-12-31")
    rows, truth, inv = [], {}, 100000
    for g, (orders, basket, last) in groups.items():
        for c in range(per_group):
            cid = f"{g[0].upper()}{c:05d}"
            truth[cid] = g
            n = 1 if orders == 1 else max(2, int(rng.poisson(orders)))
            last_day = end - pd.Timedelta(days=int(rng.integers(max(1, last // 2), last + 1)))
            span = 365 if g != "new" else 20
            for d in sorted(int(x) for x in rng.integers(0, span, n)):
                inv += 1
                when = last_day - pd.Timedelta(days=span - 1 - d) if n > 1 else last_day
                for _ in range(int(rng.integers(1, 4))):
                    rows.append((f"O{inv}", when, cid, int(rng.integers(1, 4)),
                                 round(float(rng.lognormal(np.log(basket / 4), 0.3)), 2),
                                 f"SKU{rng.integers(0, 50)}"))
    frame = pd.DataFrame(rows, columns=["ticket", "purchased_at", "shopper", "units",
                                        "unit_cost", "article"])
    return frame, truth


PLANTED_MAP = {"customer_id": "shopper", "invoice_id": "ticket", "invoice_date": "purchased_at",
               "quantity": "units", "unit_price": "unit_cost", "product_id": "article"}


@pytest.fixture(scope="module")
def planted():
    return planted_lines()


@pytest.mark.parametrize("algorithm, min_ari", [("kmeans", 0.9), ("hierarchical", 0.85),
                                                ("gmm", 0.85)])
def test_auto_k_recovers_planted_transaction_segments(planted, algorithm, min_ari):
    frame, truth = planted
    result = run_segments(frame=frame, config=custseg.Config(mapping=PLANTED_MAP),
                          algorithm=algorithm, strategy="clusters")
    seg = result.customers
    ari = adjusted_rand_score(seg["customer_id"].map(truth), seg["segment"])
    assert result.summary["k"] == 4, result.summary["k_selection"]["reason"]
    assert ari >= min_ari
    assert result.summary["k_selection"]["reason"].startswith("k=4")


def test_segments_numbered_by_descending_monetary_and_deterministic(planted):
    frame, _ = planted
    config = custseg.Config(mapping=PLANTED_MAP)
    a = run_segments(frame=frame, config=config, k=4, seed=3)
    b = run_segments(frame=frame, config=config, k=4, seed=3)
    pd.testing.assert_frame_equal(a.customers, b.customers)
    means = a.customers.groupby("segment")["monetary"].mean()
    assert list(means.index) == [1, 2, 3, 4]
    assert means.is_monotonic_decreasing
    assert not a.customers["segment_name"].str.startswith("Segment ").any()


def mixed_table(seed: int = 0, n: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers of three planted groups with numeric and categorical columns."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, n)
    frame = pd.DataFrame({
        "client": [f"c{i}" for i in range(n)],
        "age": np.array([25, 45, 65])[g] + rng.normal(0, 4, n),
        "income": np.array([30, 90, 50])[g] * 1000 + rng.normal(0, 5000, n),
        "channel": np.where(rng.random(n) < 0.9, np.array(["app", "store", "phone"])[g],
                            "web"),
        "region": rng.choice(["north", "south"], n),
    })
    return frame, g


def test_customer_table_with_given_k_recovers_groups():
    frame, g = mixed_table()
    model = Segmenter(k=3, n_bootstrap=0).fit(frame.drop(columns="client"))
    assert adjusted_rand_score(g, model.labels_) >= 0.9
    assert "channel" in model.prep_.categorical_


@pytest.mark.parametrize("centers", [3, 6])
def test_the_searchs_silhouette_of_the_chosen_segments_is_theirs(centers):
    """The silhouette the search measured at the chosen k, reused, is the one the final
    segments get when measured afresh (the same sample)."""
    from custseg.cluster._evaluate import scores

    X, _ = make_blobs(n_samples=1500, centers=centers, n_features=3, cluster_std=2.5,
                      random_state=centers)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    seg = Segmenter(seed=0).fit(frame)
    assert seg._search_silhouette is not None  # the search's fit was kept
    fresh = scores(seg.prep_.transform_frame(frame), seg.labels_, seed=0)
    assert seg.metrics_["silhouette"] == fresh["silhouette"]
    assert seg.metrics_["silhouette_sample"] == fresh["silhouette_sample"]


def test_one_hot_block_weighs_like_one_numeric_column():
    frame, _ = mixed_table()
    prep = FeaturePrep().fit(frame.drop(columns="client"))
    X = prep.transform_frame(frame)
    n_num = len(prep.numeric_)
    assert X[:, :n_num].var(axis=0) == pytest.approx(np.ones(n_num))
    block = X[:, n_num:n_num + len(prep.spec_["channel"]["levels"]) + 1]
    assert block.var(axis=0).sum() == pytest.approx(1.0)


def test_near_duplicates_dropped_by_rank_correlation_on_a_sample(monkeypatch):
    """Past RHO_SAMPLE customers the correlations come from a sample: the same columns go
    as with scipy's Spearman over every row, and the note gives rho and the sample."""
    from scipy.stats import spearmanr

    from custseg.cluster import _prepare

    monkeypatch.setattr(_prepare, "RHO_SAMPLE", 2_000)
    rng = np.random.default_rng(3)
    n = 20_000
    age = rng.normal(40, 10, n)
    frame = pd.DataFrame({"age": age, "birth_year": 2026 - age + rng.normal(0, 1.5, n),
                          "income": rng.lognormal(10, 0.5, n),
                          "spend": rng.lognormal(5, 1, n)})
    frame["spend_x"] = frame["spend"] * rng.lognormal(0, 0.6, n)  # rho about 0.85: kept
    full = {"birth_year": abs(spearmanr(frame["age"], frame["birth_year"]).statistic),
            "spend_x": abs(spearmanr(frame["spend"], frame["spend_x"]).statistic)}
    assert full["birth_year"] > 0.95 and 0.7 < full["spend_x"] < 0.9
    prep = FeaturePrep().fit(frame)
    assert "birth_year" not in prep.numeric_ and "spend_x" in prep.numeric_
    note = next(n for n in prep.notes_ if n.startswith("Dropped birth_year"))
    rho = float(note.split("rho| = ")[1].split(" ")[0])
    assert rho == pytest.approx(full["birth_year"], abs=0.01)
    assert "on a random 2,000 of 20,000 customers" in note


def test_default_features_of_a_customer_table_skip_ids_personal_and_free_text():
    n = 50
    frame = pd.DataFrame({"CustomerNo": np.arange(n), "email": [f"u{i}@x.org" for i in range(n)],
                          "comment": [f"note number {i} about things" for i in range(n)],
                          "age": np.arange(n) % 40 + 20, "plan": ["a", "b"] * (n // 2),
                          "constant": 1})
    prep = FeaturePrep().fit(frame)
    assert prep.numeric_ == ["age"] and prep.categorical_ == ["plan"]
    notes = " ".join(prep.notes_)
    for word in ("CustomerNo: an identifier", "email: personal", "comment: free text",
                 "constant: constant"):
        assert word in notes


def test_rfm_always_kept_and_noise_feature_left_out(planted):
    frame, _ = planted
    result = run_segments(frame=frame, config=custseg.Config(mapping=PLANTED_MAP), k=4)
    used = result.summary["features"]["used"]
    assert used[:3] == ["recency", "frequency", "monetary"]
    assert "avg_items_per_order" not in used  # random in every group
    assert any("avg_items_per_order: adds little" in note
               for note in result.summary["features"]["notes"])


def test_weighted_ward_matches_scipy_on_unit_weights():
    points = np.random.default_rng(1).normal(size=(60, 3))
    ours = weighted_ward(points, np.ones(60))
    theirs = linkage(points, method="ward")
    np.testing.assert_allclose(ours[:, 2], theirs[:, 2])


def test_hierarchical_scales_past_a_distance_matrix():
    X, y = make_blobs(60_000, 5, centers=4, random_state=2)  # 60k^2 floats = 29 GB
    fitted = fit_hierarchical(X, 4, seed=0)
    assert adjusted_rand_score(y, fitted.labels) > 0.99
    assert fitted.centers.shape == (4, 5)
    assert fitted.extra["dendrogram"]["micro_clusters"] == 500


def test_choose_k_counts_near_ties_and_explains():
    curves = {"k": [2, 3, 4, 5], "inertia": [100.0, 70.0, 20.0, 18.0],
              "silhouette": [0.5, 0.66, 0.63, 0.55], "calinski_harabasz": [900, 1800, 2500, 2510],
              "davies_bouldin": [0.9, 0.5, 0.55, 0.7]}
    k, reason = choose_k(curves)
    assert k == 4
    assert reason.startswith("k=4") and "Calinski-Harabasz within 5% of its peak at k=5" in reason


def test_stratified_sample_keeps_every_cluster():
    labels = np.r_[np.zeros(99_000, int), np.ones(1_000, int)]
    idx = stratified_sample(labels, 5_000, seed=0)
    assert 4_900 <= len(idx) <= 5_100
    assert (labels[idx] == 1).sum() == 50


def test_parameter_errors_use_one_template():
    X = np.zeros((10, 2))
    with pytest.raises(ConfigError, match=r"The 'k' parameter of Segmenter must be 'auto' or an "
                                          r"int >= 2\. Got 1 instead\."):
        Segmenter(k=1).fit(X)
    with pytest.raises(ConfigError, match="'algorithm' parameter of Segmenter must be one of"):
        Segmenter(algorithm="kmedoids").fit(X)


def test_too_few_distinct_customers_is_a_clear_error():
    X = np.r_[np.zeros((5, 2)), np.ones((5, 2))]
    with pytest.raises(custseg.DataError, match="only 2 distinct"):
        Segmenter(k=3).fit(X)


def test_predict_reproduces_training_labels_and_small_clusters_warn():
    X, _ = make_blobs(2_000, 3, centers=[[0, 0, 0], [8, 8, 8], [16, 0, 0]],
                      random_state=0)
    X = np.r_[X, [[40, 40, 40]] * 5]  # a tiny far group: under 1%
    with pytest.warns(CustsegWarning, match="under 1% of all"):
        model = Segmenter(k=4, n_bootstrap=3, skew="none").fit(X)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    assert 0.9 <= model.metrics_["stability_ari"] <= 1.0


def test_rank_puts_best_first_and_failures_last():
    table = pd.DataFrame([
        {"algorithm": "a", "k": 3, "silhouette": 0.2, "calinski_harabasz": 10.0,
         "davies_bouldin": 2.0, "stability_ari": 0.5, "error": None},
        {"algorithm": "b", "k": 4, "silhouette": 0.6, "calinski_harabasz": 50.0,
         "davies_bouldin": 0.6, "stability_ari": 0.9, "error": None},
        {"algorithm": "c", "k": None, "error": "boom"}])
    ranked, text = rank(table)
    assert list(ranked["algorithm"]) == ["b", "a", "c"]
    assert text.startswith("Recommended: b with k=4")


def test_run_and_compare_commands(tmp_path, planted):
    frame, _ = planted
    path = tmp_path / "orders.csv"
    frame.to_csv(path, index=False)
    maps = [f"--map={f}={c}" for f, c in PLANTED_MAP.items()]
    run = subprocess.run([sys.executable, "-m", "custseg.cli", "run", str(path), *maps,
                          "--k", "4", "--out", str(tmp_path / "run"), "-q"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    seg = pd.read_csv(tmp_path / "run" / "segments.csv")
    assert {"segment", "segment_name", "rfm_segment"} <= set(seg.columns)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["algorithm"] == "kmeans" and summary["k"] == 4
    assert set(summary["metrics"]) >= {"silhouette", "calinski_harabasz", "davies_bouldin",
                                       "stability_ari"}
    assert sum(s["size"] for s in summary["segments"]) == len(seg)
    cmp = subprocess.run([sys.executable, "-m", "custseg.cli", "compare", str(path), *maps,
                          "--k", "4", "--out", str(tmp_path / "cmp")],
                         capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stderr
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert table.columns[0] == "algorithm"
    assert set(table["algorithm"]) == {*custseg.cluster.ALGORITHMS, "stages+kmeans"}
    assert table["best_action_fit"].between(0, 1).all()
    staged = table.loc[table["algorithm"] == "stages+kmeans", "best_action_fit"].iloc[0]
    assert staged >= table["best_action_fit"].max() - 1e-9  # one state per segment
    assert "Recommended:" in cmp.stdout


def test_customer_table_alone_is_segmented_without_rfm(tmp_path):
    frame, g = mixed_table()
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run_segments(path, k=3, out_dir=tmp_path / "out")
    assert "rfm_segment" not in result.customers.columns
    assert adjusted_rand_score(g, result.customers["segment"]) >= 0.9
    assert (tmp_path / "out" / "segments.csv").exists()


def test_rank_puts_too_many_segments_after_the_rest():
    table = pd.DataFrame([
        {"algorithm": "many", "k": 16, "silhouette": 0.7, "calinski_harabasz": 90.0,
         "davies_bouldin": 0.5, "stability_ari": 0.9, "error": None},
        {"algorithm": "few", "k": 5, "silhouette": 0.5, "calinski_harabasz": 60.0,
         "davies_bouldin": 0.8, "stability_ari": 0.8, "error": None}])
    ranked, text = rank(table, max_k=10)
    assert list(ranked["algorithm"]) == ["few", "many"]
    assert "more than 10 segments: many" in text


def test_spreadsheet_error_column_is_numeric_with_a_warning(tmp_path):
    frame, g = mixed_table()
    years = np.array([2.0, 9.0, 5.0])[g] + np.random.default_rng(5).normal(0, 0.5, len(g))
    frame["ratio"] = years.round(2).astype(str)
    frame.loc[::7, "ratio"] = "#DIV/0!"
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    result = run_segments(path, k=3)
    assert "ratio" in result.summary["features"]["used"]
    warning = [w for w in result.summary["audit"]["warnings"] if "'ratio'" in w]
    assert warning and "#DIV/0!" in warning[0] and "86 value(s)" in warning[0]
    assert adjusted_rand_score(g, result.customers["segment"]) >= 0.9


def test_algorithm_options_from_the_command_line(tmp_path):
    frame, _ = mixed_table()
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    run = subprocess.run([sys.executable, "-m", "custseg.cli", "run", str(path),
                          "--algorithm", "dbscan", "--option", "eps=0.9",
                          "--option", "min_samples=8", "--scaler", "robust",
                          "--out", str(tmp_path / "out"), "-q"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["clustering_params"]["eps"] == 0.9
    assert summary["clustering_params"]["eps_from"] == "given"
    assert summary["clustering_params"]["min_samples"] == 8
    bad = subprocess.run([sys.executable, "-m", "custseg.cli", "run", str(path),
                          "--algorithm", "kmeans", "--option", "eps=0.9",
                          "--out", str(tmp_path / "bad")], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "takes, for kmeans, ['minibatch']. Got 'eps' instead." in bad.stderr


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(-1, 3)), min_size=1, max_size=60))
def test_the_adjusted_rand_index_is_scikit_learns(pairs):
    """The stability bootstraps' adjusted Rand index, from a dense contingency table, is
    scikit-learn's to the last bit (one cluster, full agreement and noise labels too)."""
    from custseg.cluster._evaluate import adjusted_rand

    a, b = (np.array(side) for side in zip(*pairs, strict=True))
    assert adjusted_rand(a, b) == adjusted_rand_score(a, b)
    assert adjusted_rand(a * 7 + 100, b) == adjusted_rand_score(a, b)  # labels are names
