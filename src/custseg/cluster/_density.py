"""Density methods: DBSCAN and HDBSCAN, fitted on a sample for large n.

Both choose the number of clusters themselves (``k`` is ignored) and label customers in
no dense region as ``NOISE``. Beyond ``max_fit`` rows the algorithm runs on a seeded
random sample and every other row is labelled by the same rule that a saved model uses
(``Fitted.rule``): for DBSCAN the nearest core sample's cluster when it is within ``eps``;
for HDBSCAN the label of the nearest fitted row (Unclustered ones included) when it is
within that cluster's radius; else noise.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
from kneed import KneeLocator
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.neighbors import NearestNeighbors

from custseg.cluster._base import NOISE, FitSample, Fitted, cluster_means, consecutive
from custseg.cluster._rules import apply_rule, relabelled, thinned

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
    sample = FitSample.draw(n, max_fit, rng)
    X_fit = sample.rows(X)

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
    core = model.core_sample_indices_
    points, point_labels, n_core = thinned(X_fit[core], fit_labels[core], rng)
    rule = {"kind": "nearest_point", "points": points, "labels": point_labels,
            "radius": eps, "what": "core samples", "of": n_core}
    labels, rule = _renumbered(sample.labels(X, partial(apply_rule, rule), fit_labels), rule)
    step = max(1, int(np.ceil(len(curve) / CURVE_POINTS)))
    return Fitted(
        labels=labels, centers=cluster_means(X, labels),
        params={"eps": eps, "min_samples": min_samples, "fitted_on": sample.size,
                "eps_from": eps_from},
        extra={"k_distance": [float(v) for v in curve[::step]], "eps": eps,
               "noise_share": float(np.mean(labels == NOISE))},
        rule=rule,
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
    max_fit : HDBSCAN runs on at most this many rows. Every other row takes the label of
        its nearest fitted row (noise included) when that distance is within the cluster's
        radius (99th percentile of its members' distances to their nearest fellow member),
        else it is noise; the rule stores the fitted rows, radii and labels.
    """
    rng = np.random.default_rng(seed)
    sample = FitSample.draw(len(X), max_fit, rng)
    X_fit = sample.rows(X)
    if min_cluster_size is None:
        min_cluster_size = max(5, len(X_fit) // 100)
    min_cluster_size = int(min_cluster_size)

    model = HDBSCAN(min_cluster_size=min_cluster_size, copy=True)
    fit_labels = model.fit_predict(X_fit).astype(np.int64)
    radius = _cluster_radii(X_fit, fit_labels)
    # Every fitted row is kept, Unclustered ones too: each gives back its own label, and a
    # new customer nearest to an Unclustered one is Unclustered as well.
    points, point_labels, n_fit = thinned(X_fit, fit_labels, rng)
    rule = {"kind": "nearest_point", "points": points, "labels": point_labels,
            "radius": radius, "what": "fitted customers", "of": n_fit}
    labels, rule = _renumbered(sample.labels(X, partial(apply_rule, rule), fit_labels), rule)
    extra = {"assign_radius": [float(r) for r in rule["radius"]],
             "noise_share": float(np.mean(labels == NOISE))}
    return Fitted(labels=labels, centers=cluster_means(X, labels),
                  params={"min_cluster_size": min_cluster_size, "fitted_on": sample.size},
                  extra=extra, rule=rule)


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


def _renumbered(labels: np.ndarray, rule: dict) -> tuple[np.ndarray, dict]:
    """:func:`consecutive` labels, and the rule renumbered the same way."""
    new, used = consecutive(labels)
    if len(used) and used[-1] == len(used) - 1:  # already 0..m-1
        return labels, rule
    return new, relabelled(rule, {old: i for i, old in enumerate(used.tolist())})
