"""Density methods: DBSCAN and HDBSCAN, fitted on a sample for large n.

Both choose the number of clusters themselves (``k`` is ignored) and label customers in
no dense region as ``NOISE``. Beyond ``max_fit`` rows the algorithm runs on a seeded
random sample and every other row joins the cluster of its nearest fitted point when it
is close enough (within ``eps`` of a core sample for DBSCAN, within a per-cluster radius
for HDBSCAN), else it is noise.
"""

from __future__ import annotations

import warnings

import numpy as np
from kneed import KneeLocator
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.neighbors import NearestNeighbors

from ._base import NOISE, Fitted, cluster_means

#: The k-distance curve (and so eps) is computed for at most this many rows.
KDIST_ROWS = 10_000
#: Points of the k-distance curve kept in ``extra`` for the report.
CURVE_POINTS = 200
#: Assignment radius of a cluster: this percentile of its members' nearest-member distances
#: (95 left about 5% of held-out rows inside clusters as noise; 99 leaves about 1-2%).
ASSIGN_QUANTILE = 99


def fit_dbscan(X: np.ndarray, k: int | None = None, *, seed: int = 0, eps: float | None = None,
               min_samples: int | None = None, max_fit: int = 50_000) -> Fitted:
    """DBSCAN, with ``eps`` from the knee of the k-distance curve unless given.

    Parameters
    ----------
    X : (n, d) float array, prepared and scaled.
    k : ignored; the density decides the number of clusters.
    seed : seed of the row samples.
    eps : neighbourhood radius; None picks the knee of the sorted distances to the
        ``min_samples``-th nearest neighbour (the point itself counting as the first, as in
        DBSCAN's core rule), or their 95th percentile if there is no knee.
    min_samples : points (self included) within ``eps`` that make a core point; default
        ``max(5, 2 * d)``.
    max_fit : DBSCAN runs on at most this many rows; the others join the cluster of their
        nearest core sample when it is within ``eps``, else they are noise.
    """
    n, d = X.shape
    min_samples = max(5, 2 * d) if min_samples is None else int(min_samples)
    rng = np.random.default_rng(seed)
    fit_idx = _sample_index(n, max_fit, rng)
    X_fit = X if fit_idx is None else X[fit_idx]

    curve = _k_distance_curve(X_fit, min_samples, rng)
    if eps is not None:
        eps_from = "given"
    else:
        eps, eps_from = _knee(curve)
    eps = float(eps)
    if eps <= 0:  # duplicated rows: any positive radius groups them
        eps = float(np.finfo(float).eps)

    model = DBSCAN(eps=eps, min_samples=min_samples).fit(X_fit)
    fit_labels = model.labels_.astype(np.int64)
    if fit_idx is None:
        labels = fit_labels
    else:
        labels = np.full(n, NOISE, dtype=np.int64)
        core = model.core_sample_indices_
        if len(core):
            rest = np.ones(n, dtype=bool)
            rest[fit_idx] = False
            labels[rest] = _join_nearest(X[rest], X_fit[core], fit_labels[core], eps)
        labels[fit_idx] = fit_labels
    labels = _consecutive(labels)
    step = max(1, int(np.ceil(len(curve) / CURVE_POINTS)))
    return Fitted(
        labels=labels, centers=cluster_means(X, labels),
        params={"eps": eps, "min_samples": min_samples, "fitted_on": len(X_fit),
                "eps_from": eps_from},
        extra={"k_distance": [float(v) for v in curve[::step]], "eps": eps,
               "noise_share": float(np.mean(labels == NOISE))},
    )


def fit_hdbscan(X: np.ndarray, k: int | None = None, *, seed: int = 0,
                min_cluster_size: int | None = None, max_fit: int = 20_000) -> Fitted:
    """HDBSCAN (scikit-learn), fitted on a sample for large n.

    Parameters
    ----------
    X : (n, d) float array, prepared and scaled.
    k : ignored; the density decides the number of clusters.
    seed : seed of the row sample.
    min_cluster_size : smallest cluster; default ``max(5, n_fit // 100)`` over the fitted
        rows, so groups under about 1% of customers are noise.
    max_fit : HDBSCAN runs on at most this many rows. Every other row joins the cluster of
        its nearest clustered fitted point when that distance is within the cluster's
        radius (99th percentile of its members' distances to their nearest fellow member),
        else it is noise.
    """
    n = len(X)
    rng = np.random.default_rng(seed)
    fit_idx = _sample_index(n, max_fit, rng)
    X_fit = X if fit_idx is None else X[fit_idx]
    if min_cluster_size is None:
        min_cluster_size = max(5, len(X_fit) // 100)
    min_cluster_size = int(min_cluster_size)

    model = HDBSCAN(min_cluster_size=min_cluster_size, copy=True)
    fit_labels = model.fit_predict(X_fit).astype(np.int64)
    extra: dict[str, object] = {}
    if fit_idx is None:
        labels = fit_labels
    else:
        labels = np.full(n, NOISE, dtype=np.int64)
        clustered = fit_labels != NOISE
        if clustered.any():
            radius = _cluster_radii(X_fit, fit_labels)
            rest = np.ones(n, dtype=bool)
            rest[fit_idx] = False
            member_labels = fit_labels[clustered]
            labels[rest] = _join_nearest(X[rest], X_fit[clustered], member_labels,
                                         radius[member_labels])
            extra["assign_radius"] = [float(r) for r in radius]
        labels[fit_idx] = fit_labels
    labels = _consecutive(labels)
    extra["noise_share"] = float(np.mean(labels == NOISE))
    return Fitted(labels=labels, centers=cluster_means(X, labels),
                  params={"min_cluster_size": min_cluster_size, "fitted_on": len(X_fit)},
                  extra=extra)


def _sample_index(n: int, max_fit: int, rng: np.random.Generator) -> np.ndarray | None:
    """Sorted indices of a random sample of ``max_fit`` rows, or None if all rows fit."""
    if n <= max_fit:
        return None
    return np.sort(rng.choice(n, size=max_fit, replace=False))


def _k_distance_curve(X: np.ndarray, min_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted distances to the ``min_samples``-th nearest row (self first), for at most
    ``KDIST_ROWS`` query rows against all of ``X`` (so the density matches the fitted rows)."""
    queries = X if len(X) <= KDIST_ROWS else X[rng.choice(len(X), KDIST_ROWS, replace=False)]
    n_neighbors = min(min_samples, len(X))
    dist, _ = NearestNeighbors(n_neighbors=n_neighbors).fit(X).kneighbors(queries)
    return np.sort(dist[:, -1])


def _knee(curve: np.ndarray) -> tuple[float, str]:
    """eps at the knee of the sorted k-distance curve, else its 95th percentile.

    kneed's first knee is easily a late bump in the tail of noise points, so all its knees
    are collected (``online=True``) and the one farthest below the chord is kept: Kneedle's
    global maximum of ``x_norm - y_norm``.
    """
    if len(curve) >= 3 and curve[-1] > curve[0]:
        x = np.arange(len(curve))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kneed warns when it finds no knee
            locator = KneeLocator(x, curve, curve="convex", direction="increasing", online=True)
        knees = np.asarray(sorted(locator.all_knees), dtype=np.int64)
        if len(knees):
            gap = knees / x[-1] - (curve[knees] - curve[0]) / (curve[-1] - curve[0])
            return float(curve[knees[np.argmax(gap)]]), "knee"
    return float(np.percentile(curve, 95)), "percentile"


def _cluster_radii(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per cluster, the ``ASSIGN_QUANTILE`` percentile of its members' nearest-member distances."""
    radii = []
    for c in range(labels.max() + 1):
        members = X[labels == c]
        if len(members) < 2:
            radii.append(0.0)
            continue
        dist, _ = NearestNeighbors(n_neighbors=1).fit(members).kneighbors()
        radii.append(float(np.percentile(dist[:, 0], ASSIGN_QUANTILE)))
    return np.asarray(radii)


def _join_nearest(rows: np.ndarray, points: np.ndarray, point_labels: np.ndarray,
                  radius: float | np.ndarray) -> np.ndarray:
    """Label of each row's nearest point when within ``radius`` (per point or one), else noise.

    The points are tens of thousands of core samples or cluster members, so a k-d tree is
    used, not ``nearest``'s brute force (40x faster at 150,000 rows x 45,000 points x 6).
    """
    dist, idx = NearestNeighbors(n_neighbors=1).fit(points).kneighbors(rows)
    dist, idx = dist[:, 0], idx[:, 0]
    within = dist <= (radius[idx] if isinstance(radius, np.ndarray) else radius)
    return np.where(within, point_labels[idx], NOISE).astype(np.int64)


def _consecutive(labels: np.ndarray) -> np.ndarray:
    """Renumber non-noise labels 0..m-1 in their current order; noise stays ``NOISE``."""
    used = np.unique(labels[labels != NOISE])
    if len(used) and used[-1] == len(used) - 1:
        return labels
    remap = np.full(int(labels.max()) + 2, NOISE, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return remap[labels]  # remap[-1] is the trailing NOISE slot
