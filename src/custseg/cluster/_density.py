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

import numpy as np
from kneed import KneeLocator
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.neighbors import NearestNeighbors

from custseg.cluster._base import NOISE, Fitted, cluster_means
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
    core = model.core_sample_indices_
    points, point_labels, n_core = thinned(X_fit[core], fit_labels[core], rng)
    rule = {"kind": "nearest_point", "points": points, "labels": point_labels,
            "radius": eps, "what": "core samples", "of": n_core}
    labels, rule = _renumbered(_with_rest(X, fit_idx, fit_labels, rule), rule)
    step = max(1, int(np.ceil(len(curve) / CURVE_POINTS)))
    return Fitted(
        labels=labels, centers=cluster_means(X, labels),
        params={"eps": eps, "min_samples": min_samples, "fitted_on": len(X_fit),
                "eps_from": eps_from},
        extra={"k_distance": [float(v) for v in curve[::step]], "eps": eps,
               "noise_share": float(np.mean(labels == NOISE))},
        rule=rule,
    )


def _with_rest(X: np.ndarray, fit_idx: np.ndarray | None, fit_labels: np.ndarray,
               rule: dict) -> np.ndarray:
    """Labels of every row: the fit's own for the fitted sample, the rule's for the rest."""
    if fit_idx is None:
        return fit_labels
    labels = np.empty(len(X), dtype=np.int64)
    rest = np.ones(len(X), dtype=bool)
    rest[fit_idx] = False
    labels[rest] = apply_rule(rule, X[rest])
    labels[fit_idx] = fit_labels
    return labels


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
    n = len(X)
    rng = np.random.default_rng(seed)
    fit_idx = _sample_index(n, max_fit, rng)
    X_fit = X if fit_idx is None else X[fit_idx]
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
    labels, rule = _renumbered(_with_rest(X, fit_idx, fit_labels, rule), rule)
    extra = {"assign_radius": [float(r) for r in rule["radius"]],
             "noise_share": float(np.mean(labels == NOISE))}
    return Fitted(labels=labels, centers=cluster_means(X, labels),
                  params={"min_cluster_size": min_cluster_size, "fitted_on": len(X_fit)},
                  extra=extra, rule=rule)


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


def _consecutive(labels: np.ndarray) -> np.ndarray:
    """Renumber non-noise labels 0..m-1 in their current order; noise stays ``NOISE``."""
    used = np.unique(labels[labels != NOISE])
    if len(used) and used[-1] == len(used) - 1:
        return labels
    remap = np.full(int(labels.max()) + 2, NOISE, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return remap[labels]  # remap[-1] is the trailing NOISE slot


def _renumbered(labels: np.ndarray, rule: dict) -> tuple[np.ndarray, dict]:
    """:func:`_consecutive` labels, and the rule renumbered the same way."""
    new = _consecutive(labels)
    if new is labels:
        return labels, rule
    used, first = np.unique(labels[labels != NOISE], return_index=True)
    return new, relabelled(rule, dict(zip(used.tolist(),
                                          new[labels != NOISE][first].tolist(), strict=True)))
