"""Assignment rules: how a fitted clustering labels any customer, training or new.

Every algorithm leaves a rule (``Fitted.rule``), a plain dict of numpy arrays that a saved
model stores as JSON and :func:`apply_rule` evaluates. ``labels`` maps each stored row
(centre, point or mixture component) to its cluster label (``NOISE`` allowed for points).

``nearest_centre``
    ``centers`` (m, d): the nearest centre's label (k-means centres, affinity
    propagation exemplars, hierarchical clustering's micro-cluster centres).
``gaussian_mixture``
    ``covariance_type``, ``weights`` (m,), ``means`` (m, d), ``precisions_cholesky``:
    the component with the highest weighted log-likelihood, the arithmetic of
    scikit-learn's ``GaussianMixture.predict``.
``kprototypes``
    ``centers`` (m, d_numeric), ``modes`` (m, c) category codes, ``gamma``: the lowest
    k-prototypes cost (squared numeric distance + gamma * categorical mismatches), as
    kmodes' ``predict``.
``nearest_point``
    ``points`` (p, d) training customers, ``radius`` (one number, or one per label): the
    nearest point's label when it is within that label's radius, else ``NOISE`` (a point
    labelled ``NOISE`` gives ``NOISE``). Used by the density methods.

The first three kinds are *exact*: the Segmenter rounds their parameters
(:func:`rounded`) and then takes the training labels from the rule itself, so scoring the
training customers with the saved model gives back their labels exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from custseg.cluster._base import NOISE, nearest

KINDS = ("nearest_centre", "gaussian_mixture", "kprototypes", "nearest_point")
#: Kinds whose rule defines the training labels (the fit's own labels are replaced by them).
EXACT_KINDS = ("nearest_centre", "gaussian_mixture", "kprototypes")
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
#: Significant digits kept of the parameters of exact rules (points are kept in full).
DIGITS = 12
#: Most numbers a point rule stores (points x features): about 30 MB of JSON at most, so a
#: model stays well under the loader's 64 MB.
MAX_RULE_NUMBERS = 1_500_000
#: Up to this many centres the nearest is found by brute force (a few matrix products);
#: beyond, with a k-d tree (500 micro-clusters: 0.5 s instead of 3-5 s for 1M customers).
#: The choice depends on the rule only, so training and scoring always take the same path.
BRUTE_FORCE_MAX = 32
#: Rows evaluated at once (keeps the temporary arrays small and in cache).
CHUNK = 1 << 16


def apply_rule(rule: dict[str, Any], X: np.ndarray, cats: np.ndarray | None = None
               ) -> np.ndarray:
    """Cluster label of each row of the prepared matrix ``X`` under ``rule``.

    ``cats`` (integer category codes, one column per categorical feature) is needed by
    the ``kprototypes`` kind only; its numeric part is the first columns of ``X``.
    """
    kind = rule["kind"]
    labels = np.asarray(rule["labels"], dtype=np.int64)
    if len(X) == 0:
        return np.empty(0, dtype=np.int64)
    if len(labels) == 0:
        return np.full(len(X), NOISE, dtype=np.int64)
    if kind == "nearest_centre":
        centers = np.asarray(rule["centers"], dtype=float)
        if len(centers) > BRUTE_FORCE_MAX:
            return labels[cKDTree(centers).query(X, k=1, workers=-1)[1]]
        return labels[nearest(X, centers)[0]]
    if kind == "gaussian_mixture":
        return labels[_gmm_best(X, rule)]
    if kind == "kprototypes":
        return labels[_kprototypes_best(X, cats, rule)]
    if kind == "nearest_point":
        return _nearest_point(X, rule)
    raise ValueError(f"unknown assignment rule kind {kind!r}")


def gmm_log_prob(X: np.ndarray, rule: dict[str, Any]) -> np.ndarray:
    """Weighted log-likelihood of each row under each component, (n, m)."""
    means = np.asarray(rule["means"], dtype=float)
    prec = np.asarray(rule["precisions_cholesky"], dtype=float)
    weights = np.asarray(rule["weights"], dtype=float)
    kind = rule["covariance_type"]
    n, d = X.shape
    m = len(means)
    if kind == "full":
        log_det = np.log(prec.reshape(m, -1)[:, ::d + 1]).sum(axis=1)
        maha = np.empty((n, m))
        for j in range(m):
            y = X @ prec[j] - means[j] @ prec[j]
            maha[:, j] = np.einsum("ij,ij->i", y, y)
    elif kind == "tied":
        log_det = np.full(m, np.log(np.diag(prec)).sum())
        Xp, Mp = X @ prec, means @ prec
        maha = np.empty((n, m))
        for j in range(m):
            y = Xp - Mp[j]
            maha[:, j] = np.einsum("ij,ij->i", y, y)
    elif kind == "diag":
        log_det = np.log(prec).sum(axis=1)
        p = prec ** 2
        maha = (means ** 2 * p).sum(axis=1) - 2.0 * (X @ (means * p).T) + (X ** 2) @ p.T
    elif kind == "spherical":
        log_det = d * np.log(prec)
        p = prec ** 2
        maha = ((means ** 2).sum(axis=1) * p - 2 * (X @ means.T * p)
                + np.outer(np.einsum("ij,ij->i", X, X), p))
    else:
        raise ValueError(f"unknown covariance type {kind!r}")
    return -0.5 * (d * np.log(2 * np.pi) + maha) + log_det + np.log(weights)


def _gmm_best(X: np.ndarray, rule: dict[str, Any]) -> np.ndarray:
    out = np.empty(len(X), dtype=np.int64)
    for start in range(0, len(X), CHUNK):
        out[start:start + CHUNK] = gmm_log_prob(X[start:start + CHUNK], rule).argmax(axis=1)
    return out


def _kprototypes_best(X: np.ndarray, cats: np.ndarray | None, rule: dict[str, Any]
                      ) -> np.ndarray:
    centers = np.asarray(rule["centers"], dtype=float)
    modes = np.asarray(rule["modes"], dtype=np.int64)
    gamma = float(rule["gamma"])
    num = X[:, :centers.shape[1]]
    cats = np.empty((len(X), 0), dtype=np.int64) if cats is None else np.asarray(cats)
    if cats.shape[1] != modes.shape[1]:
        raise ValueError(f"the rule has {modes.shape[1]} categorical column(s), the data "
                         f"{cats.shape[1]}")
    out = np.empty(len(X), dtype=np.int64)
    for start in range(0, len(X), CHUNK):
        block = num[start:start + CHUNK]
        cost = ((block[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
        cost += gamma * (cats[start:start + CHUNK, None, :] != modes[None, :, :]).sum(axis=2)
        out[start:start + CHUNK] = cost.argmin(axis=1)
    return out


def _nearest_point(X: np.ndarray, rule: dict[str, Any]) -> np.ndarray:
    points = np.asarray(rule["points"], dtype=float)
    labels = np.asarray(rule["labels"], dtype=np.int64)
    radius = np.asarray(rule["radius"], dtype=float)
    if radius.size == 0 or not (labels != NOISE).any():
        return np.full(len(X), NOISE, dtype=np.int64)
    # Beyond the largest radius every customer is noise whatever its nearest point, so the
    # k-d tree search stops there (a little beyond: the exact test is the one below).
    widest = float(radius.max())
    dist, idx = cKDTree(points).query(X, k=1, workers=-1,
                                      distance_upper_bound=widest * (1 + 1e-6) + 1e-12)
    found = idx < len(points)  # none within the bound: idx == len(points), dist == inf
    near = np.where(found, labels[np.minimum(idx, len(points) - 1)], NOISE)
    if radius.ndim == 0:
        limit = np.full(len(X), widest)
    else:
        limit = np.where(near == NOISE, -1.0, radius[np.maximum(near, 0)])
    return np.where((near != NOISE) & (dist <= limit), near, NOISE).astype(np.int64)


def rounded(rule: dict[str, Any]) -> dict[str, Any]:
    """The rule with its float parameters at ``DIGITS`` significant digits (exact kinds;
    point rules are returned unchanged: their points are kept in full precision)."""
    if rule["kind"] not in EXACT_KINDS:
        return rule
    out = dict(rule)
    for key in ("centers", "weights", "means", "precisions_cholesky"):
        if key in out:
            out[key] = _round(out[key])
    if "gamma" in out:
        out["gamma"] = float(_round(np.asarray([out["gamma"]]))[0])
    return out


def _round(values) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    flat = [float(f"{v:.{DIGITS}g}") for v in a.ravel().tolist()]
    return np.asarray(flat, dtype=float).reshape(a.shape)


def relabelled(rule: dict[str, Any], remap: dict[int, int]) -> dict[str, Any]:
    """The rule with labels renumbered by ``remap`` (old -> new); rows whose label is not
    in ``remap`` (a cluster no training customer ended in) are dropped. A per-label radius
    is renumbered too."""
    labels = np.asarray(rule["labels"], dtype=np.int64)
    keep = np.array([v == NOISE or v in remap for v in labels.tolist()], dtype=bool)
    out = dict(rule)
    out["labels"] = np.array([remap.get(v, NOISE) for v in labels[keep].tolist()],
                             dtype=np.int64)
    rows = {"nearest_centre": ("centers",), "kprototypes": ("centers", "modes"),
            "nearest_point": ("points",),
            "gaussian_mixture": ("means", "weights")}[rule["kind"]]
    for key in rows:
        out[key] = np.asarray(rule[key])[keep]
    if rule["kind"] == "gaussian_mixture" and rule["covariance_type"] != "tied":
        out["precisions_cholesky"] = np.asarray(rule["precisions_cholesky"])[keep]
    radius = np.asarray(rule.get("radius", 0.0), dtype=float)
    if rule["kind"] == "nearest_point" and radius.ndim == 1:
        new = np.zeros(len(remap))
        for old, target in remap.items():
            new[target] = radius[old]
        out["radius"] = new
    return out


def thinned(points: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
            max_numbers: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """At most ``max_numbers // d`` (default ``MAX_RULE_NUMBERS // d``) of the points, a
    seeded random subset in their order, so a point rule stays a bounded size; also how
    many there were."""
    total = len(points)
    max_numbers = MAX_RULE_NUMBERS if max_numbers is None else max_numbers
    cap = max(1, max_numbers // max(1, points.shape[1]))
    if total <= cap:
        return points, labels, total
    keep = np.sort(rng.choice(total, size=cap, replace=False))
    return points[keep], labels[keep], total
