"""Density, affinity propagation and k-prototypes clustering on data built in code."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from custseg.cluster import _affinity
from custseg.cluster._affinity import fit_affinity
from custseg.cluster._base import NOISE, Fitted, consecutive
from custseg.cluster._density import fit_dbscan, fit_hdbscan
from custseg.cluster._kprototypes import fit_kprototypes

#: Four blobs 8 apart with spread 0.6: well separated in 4 dimensions.
CENTERS = 8.0 * np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]])
AUTO = {"dbscan": fit_dbscan, "hdbscan": fit_hdbscan, "affinity": fit_affinity}


def blobs(n: int = 600, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(n_samples=n, centers=CENTERS, cluster_std=0.6, random_state=seed)
    return X, y.astype(np.int64)


def with_background(X: np.ndarray, y: np.ndarray, n_noise: int = 60,
                    seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Blobs plus uniform points over their bounding box widened by 3; truth -1 for those."""
    rng = np.random.default_rng(seed)
    background = rng.uniform(X.min(axis=0) - 3, X.max(axis=0) + 3, size=(n_noise, X.shape[1]))
    return np.vstack([X, background]), np.r_[y, np.full(n_noise, NOISE)]


def mixed(n: int = 600, seed: int = 3, p_flip: float = 0.1
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three planted groups: overlapping numeric columns (means 3 apart, unit spread) and six
    categorical columns whose code is ``(g + j) % 3`` in column j, except a share ``p_flip``
    redrawn from -1..2 (-1 = missing)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n)
    means = 3.0 * np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    X = means[group] + rng.normal(size=(n, 3))
    codes = np.stack([(group + j) % 3 for j in range(6)], axis=1)
    flip = rng.random(codes.shape) < p_flip
    codes = np.where(flip, rng.integers(-1, 3, codes.shape), codes)
    return X, codes, group


def check_contract(fitted: Fitted, X: np.ndarray) -> None:
    """Labels int64 0..m-1 (+ noise) for every row, centre row i for label i, JSON-ready."""
    labels = fitted.labels
    assert labels.dtype == np.int64 and labels.shape == (len(X),)
    m = fitted.n_clusters
    assert set(labels.tolist()) - {NOISE} == set(range(m))
    assert fitted.centers is not None and fitted.centers.shape == (m, X.shape[1])
    for i in range(m):  # of all centres, row i is the one nearest to cluster i's mean
        gaps = np.linalg.norm(fitted.centers - X[labels == i].mean(axis=0), axis=1)
        assert gaps.argmin() == i
    json.dumps(fitted.params)
    json.dumps(fitted.extra)


# --- automatic choices recover the planted blobs -------------------------------------------

@pytest.mark.parametrize("name", sorted(AUTO))
def test_recovers_blobs(name: str) -> None:
    X, y = blobs()
    fitted = AUTO[name](X, seed=0)
    assert adjusted_rand_score(y, fitted.labels) >= 0.9
    assert fitted.n_clusters == 4
    check_contract(fitted, X)


@pytest.mark.parametrize("name", sorted(AUTO))
def test_sampling_path_labels_every_row(name: str) -> None:
    X, y = blobs(n=3000)
    fitted = AUTO[name](X, seed=0, max_fit=500)
    assert fitted.params["fitted_on"] == 500
    assert adjusted_rand_score(y, fitted.labels) >= 0.9
    assert np.mean(fitted.labels == NOISE) < 0.05
    check_contract(fitted, X)


@pytest.mark.parametrize("name", sorted(AUTO))
def test_same_seed_same_labels(name: str) -> None:
    X, _ = blobs(n=1500)
    first = AUTO[name](X, seed=5, max_fit=400)
    second = AUTO[name](X, seed=5, max_fit=400)
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.centers, second.centers)
    assert first.params == second.params


# --- density methods: background points are noise ------------------------------------------

@pytest.mark.parametrize("name", ["dbscan", "hdbscan"])
@pytest.mark.parametrize("max_fit", [100_000, 400])
def test_background_is_noise(name: str, max_fit: int) -> None:
    X, y = with_background(*blobs(n=1200))
    fitted = AUTO[name](X, seed=0, max_fit=max_fit)
    background = y == NOISE
    assert (fitted.labels == NOISE).any()
    assert np.mean(fitted.labels[background] == NOISE) >= 0.6
    assert np.mean(fitted.labels[~background] == NOISE) < 0.05
    assert adjusted_rand_score(y[~background], fitted.labels[~background]) >= 0.9
    check_contract(fitted, X)


def test_dbscan_eps_from_knee_and_curve() -> None:
    X, _ = blobs()
    fitted = fit_dbscan(X)
    assert fitted.params["eps_from"] == "knee"
    assert fitted.params["min_samples"] == 8  # max(5, 2 * 4 features)
    curve = fitted.extra["k_distance"]
    assert 2 <= len(curve) <= 200 and curve == sorted(curve)
    assert curve[0] <= fitted.params["eps"] <= curve[-1]
    assert fitted.extra["eps"] == fitted.params["eps"]
    # eps sits between the spread inside a blob and the gap between blobs.
    assert 0.3 < fitted.params["eps"] < 4.0


def test_dbscan_given_eps_and_min_samples() -> None:
    X, y = blobs()
    fitted = fit_dbscan(X, eps=1.5, min_samples=6)
    assert fitted.params["eps_from"] == "given"
    assert fitted.params["eps"] == 1.5 and fitted.params["min_samples"] == 6
    assert adjusted_rand_score(y, fitted.labels) >= 0.9


def test_dbscan_tiny_eps_is_all_noise() -> None:
    X, _ = blobs(n=200)
    fitted = fit_dbscan(X, eps=1e-6)
    assert (fitted.labels == NOISE).all()
    assert fitted.n_clusters == 0 and fitted.centers.shape == (0, X.shape[1])


def test_hdbscan_min_cluster_size_default_on_fitted_rows() -> None:
    X, _ = blobs(n=3000)
    assert fit_hdbscan(X, max_fit=1200).params["min_cluster_size"] == 12
    assert fit_hdbscan(X[:300]).params["min_cluster_size"] == 5
    small = fit_hdbscan(X, min_cluster_size=40, max_fit=1000)
    assert small.params["min_cluster_size"] == 40 and len(small.extra["assign_radius"]) == 4


@given(st.lists(st.integers(min_value=-1, max_value=12), min_size=1, max_size=60))
def test_consecutive_keeps_the_partition(raw: list[int]) -> None:
    labels = np.asarray(raw, dtype=np.int64)
    out, _ = consecutive(labels)
    assert set(out.tolist()) - {NOISE} == set(range(len(set(raw) - {NOISE})))
    np.testing.assert_array_equal(out == NOISE, labels == NOISE)
    assert adjusted_rand_score(labels, out) == pytest.approx(1.0)


# --- affinity propagation --------------------------------------------------------------------

def test_affinity_preference_search_hits_k() -> None:
    X = np.random.default_rng(0).normal(size=(400, 3))  # no natural clusters
    similarity = -((X[:, None] - X[None]) ** 2).sum(axis=-1)
    fitted = fit_affinity(X, 7, seed=0)
    assert fitted.n_clusters == fitted.params["n_exemplars"] == 7
    assert similarity.min() < fitted.params["preference"] < np.median(similarity)
    assert 2 < len(fitted.extra["search"]) <= _affinity.MAX_SEARCH_FITS
    assert fitted.extra["search"][-1] == [fitted.params["preference"], 7]
    assert fitted.params["converged"] is True
    check_contract(fitted, X)


def test_affinity_unreachable_k_gives_the_closest_count() -> None:
    X, y = blobs()
    similarity = -((X[:, None] - X[None]) ** 2).sum(axis=-1)
    fitted = fit_affinity(X, 2, seed=0)  # even the lowest preference keeps the 4 blobs
    assert fitted.n_clusters == 4 and adjusted_rand_score(y, fitted.labels) == 1.0
    assert [count for _, count in fitted.extra["search"]] == [4, 4]
    assert fitted.params["preference"] == pytest.approx(np.median(similarity))


def test_affinity_centers_are_customers() -> None:
    X, _ = blobs(n=300)
    fitted = fit_affinity(X)
    rows = {tuple(row) for row in X}
    assert all(tuple(center) in rows for center in fitted.centers)


def test_affinity_given_preference_is_used() -> None:
    X, _ = blobs(n=300)
    fitted = fit_affinity(X, 3, preference=-5000.0)
    assert fitted.params["preference"] == -5000.0 and len(fitted.extra["search"]) == 1


def test_affinity_without_exemplars_falls_back_to_kmeans(monkeypatch) -> None:
    def no_exemplars(similarity, preference, seed, damping):
        return _affinity._Run(preference, np.empty(0, dtype=np.int64), converged=False)

    monkeypatch.setattr(_affinity, "_propagate", no_exemplars)
    X, y = blobs(n=400)
    fitted = fit_affinity(X, 4, seed=0)
    assert fitted.params["fallback"] == "kmeans" and fitted.params["converged"] is False
    assert fitted.n_clusters == 4 and adjusted_rand_score(y, fitted.labels) >= 0.9
    check_contract(fitted, X)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), damping=st.sampled_from([0.5, 0.7, 0.9]),
       max_iter=st.sampled_from([55, 80, 200]), quantile=st.floats(0.0, 0.5))
def test_affinity_convergence_is_the_one_scikit_learn_warns_of(seed, damping, max_iter,
                                                                 quantile) -> None:
    """Whether a fit converged, read from its iterations, is what scikit-learn's own
    warning says of the same fit (few iterations: many fits stop unconverged); a fit that
    converges at its very last iteration is counted unconverged."""
    import warnings

    from sklearn.cluster import AffinityPropagation
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 2)) + rng.integers(0, 3, size=(40, 1)) * 4
    similarity = -((X[:, None] - X[None]) ** 2).sum(-1)
    preference = float(np.quantile(similarity, quantile))
    run = _affinity._propagate(similarity, preference, 0, damping, max_iter=max_iter)
    model = AffinityPropagation(affinity="precomputed", preference=preference,
                                damping=damping, max_iter=max_iter, convergence_iter=50,
                                random_state=0)
    with warnings.catch_warnings(record=True) as caught:  # this test's one thread
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(similarity)
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    np.testing.assert_array_equal(run.exemplars, model.cluster_centers_indices_)
    if model.n_iter_ == max_iter and not warned:
        assert not run.converged
    else:
        assert run.converged == (not warned)


# --- k-prototypes ----------------------------------------------------------------------------

def test_kprototypes_uses_the_categorical_signal() -> None:
    X, codes, group = mixed()
    fitted = fit_kprototypes(X, 3, seed=0, categories=codes)
    numeric_only = KMeans(n_clusters=3, n_init=4, random_state=0).fit_predict(X)
    assert adjusted_rand_score(group, fitted.labels) >= 0.9
    assert adjusted_rand_score(group, numeric_only) < 0.85
    assert fitted.params["gamma"] == pytest.approx(0.5 * X.std(axis=0).mean())
    # The modes are the planted codes: each mode row is (g + j) % 3 for one group g.
    assert sorted(fitted.extra["modes"]) == [[(g + j) % 3 for j in range(6)] for g in range(3)]
    check_contract(fitted, X)


def test_kprototypes_sampling_path_and_determinism() -> None:
    X, codes, group = mixed(n=2500)
    first = fit_kprototypes(X, 3, seed=4, categories=codes, max_fit=500, n_init=2)
    second = fit_kprototypes(X, 3, seed=4, categories=codes, max_fit=500, n_init=2)
    assert first.params["fitted_on"] == 500
    assert adjusted_rand_score(group, first.labels) >= 0.9
    np.testing.assert_array_equal(first.labels, second.labels)
    check_contract(first, X)


@pytest.mark.parametrize("categories", [None, np.empty((600, 0), dtype=np.int64)])
def test_kprototypes_without_categories_is_kmeans(categories) -> None:
    X, y = blobs()
    fitted = fit_kprototypes(X, 4, seed=0, categories=categories)
    assert fitted.params["fallback"] == "kmeans (no categorical columns)"
    assert adjusted_rand_score(y, fitted.labels) >= 0.9
    check_contract(fitted, X)


def test_kprototypes_fewer_distinct_rows_than_k_gives_consecutive_labels() -> None:
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 5.0]]), 20, axis=0)
    codes = np.repeat(np.array([[0], [1], [-1]]), 20, axis=0)
    fitted = fit_kprototypes(X, 5, seed=0, categories=codes)
    assert fitted.n_clusters == 3
    assert sorted(fitted.extra["modes"]) == [[-1], [0], [1]]
    check_contract(fitted, X)


def test_kprototypes_rejects_misaligned_categories() -> None:
    X, codes, _ = mixed(n=100)
    with pytest.raises(ValueError, match="rows"):
        fit_kprototypes(X, 3, categories=codes[:50])
