"""Cluster quality: silhouette on a stratified sample, Calinski-Harabasz, Davies-Bouldin,
bootstrap stability, and the choice of k from all of them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from kneed import KneeLocator
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
)

from ._base import NOISE

#: Silhouette is computed on at most this many customers (stratified by cluster).
SILHOUETTE_SAMPLE = 10_000


def stratified_sample(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Row indices, about ``size`` of them, each cluster in proportion (at least 2 each)."""
    n = len(labels)
    if n <= size:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    picks = []
    for lab in np.unique(labels):
        rows = np.flatnonzero(labels == lab)
        take = min(len(rows), max(2, round(size * len(rows) / n)))
        picks.append(rng.choice(rows, take, replace=False))
    return np.sort(np.concatenate(picks))


def silhouette(X: np.ndarray, labels: np.ndarray, chunk: int = 2048) -> float:
    """Mean silhouette coefficient, as :func:`sklearn.metrics.silhouette_score` (Euclidean;
    0 for a customer alone in its cluster), faster: distances in single precision (the
    score is reported to 4 decimals), summed per cluster by one matrix product per block
    of rows instead of a loop.

    >>> import numpy as np
    >>> from sklearn.metrics import silhouette_score
    >>> X = np.random.default_rng(0).normal(size=(300, 3)); lab = np.arange(300) % 4
    >>> bool(np.isclose(silhouette(X, lab), silhouette_score(X, lab)))
    True
    """
    X = np.asarray(X, dtype=np.float64)
    X = (X - X.mean(axis=0)).astype(np.float32)  # centred: smaller norms, less cancellation
    _, labels = np.unique(labels, return_inverse=True)
    n, k = len(X), int(labels.max()) + 1
    onehot = np.zeros((n, k), dtype=np.float32)
    onehot[np.arange(n), labels] = 1.0
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sq = np.einsum("ij,ij->i", X, X)
    total = 0.0
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        dist = X[rows] @ X.T
        dist *= -2.0
        dist += sq[rows, None]
        dist += sq[None, :]
        np.maximum(dist, 0.0, out=dist)
        np.sqrt(dist, out=dist)
        sums = (dist @ onehot).astype(np.float64)
        own = labels[rows]
        index = np.arange(len(own))
        own_count = counts[own]
        a = sums[index, own] / np.maximum(own_count - 1, 1)
        means = sums / counts
        means[index, own] = np.inf
        b = means.min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            sil = np.where(own_count > 1, (b - a) / np.maximum(a, b), 0.0)
        total += float(np.nansum(sil))
    return total / n


def scores(X: np.ndarray, labels: np.ndarray, *, seed: int = 0,
           sample: int = SILHOUETTE_SAMPLE) -> dict[str, float | int | None]:
    """Silhouette (sampled), Calinski-Harabasz and Davies-Bouldin over non-noise rows."""
    keep = labels != NOISE
    X, labels = X[keep], labels[keep]
    if len(np.unique(labels)) < 2 or len(labels) < 3:
        return {"silhouette": None, "calinski_harabasz": None, "davies_bouldin": None,
                "silhouette_sample": 0}
    idx = stratified_sample(labels, sample, seed)
    sil = silhouette(X[idx], labels[idx]) if len(np.unique(labels[idx])) > 1 else None
    return {"silhouette": _round(sil),
            "calinski_harabasz": _round(calinski_harabasz_score(X, labels)),
            "davies_bouldin": _round(davies_bouldin_score(X, labels)),
            "silhouette_sample": int(len(idx))}


def inertia(X: np.ndarray, labels: np.ndarray) -> float:
    """Within-cluster sum of squares (noise left out)."""
    total = 0.0
    for lab in np.unique(labels):
        if lab == NOISE:
            continue
        rows = X[labels == lab]
        total += float(((rows - rows.mean(axis=0)) ** 2).sum())
    return total


def stability(X: np.ndarray, labels: np.ndarray, refit: Callable[[np.ndarray, int], np.ndarray],
              *, n_boot: int = 10, seed: int = 0, max_rows: int = 20_000) -> float:
    """Mean adjusted Rand index between ``labels`` and re-clusterings of bootstrap samples.

    ``refit(X_sample, seed)`` clusters the sample and returns its labels. Samples have at
    most ``max_rows`` rows (drawn with replacement), so the cost stays bounded.
    """
    rng = np.random.default_rng(seed)
    aris = []
    for b in range(n_boot):
        idx = rng.choice(len(X), size=min(len(X), max_rows), replace=True)
        aris.append(adjusted_rand_score(labels[idx], refit(X[idx], seed + 1 + b)))
    return round(float(np.mean(aris)), 4)


#: How close to its best value a metric must be for a k to count as supported by it:
#: silhouette within 0.05, Calinski-Harabasz within 5%, Davies-Bouldin within 20%.
SILHOUETTE_TOL, CH_TOL, DB_TOL = 0.05, 0.05, 0.20


def choose_k(curves: dict[str, list]) -> tuple[int, str]:
    """One k from the curves, and the reason in words.

    Each metric supports every k whose value is close to that metric's best (metrics are
    noisy, so near-ties count): silhouette (high), Calinski-Harabasz (high),
    Davies-Bouldin (low), and the elbow of the inertia curve. The k with the most
    support wins; ties go to the higher silhouette, then the smaller k.
    """
    ks = curves["k"]
    support: dict[int, list[str]] = {k: [] for k in ks}
    sil, ch, db = curves["silhouette"], curves["calinski_harabasz"], curves["davies_bouldin"]
    best_sil = _best(ks, sil, max)
    best_ch = _best(ks, ch, max)
    best_db = _best(ks, db, min)
    elbow = _elbow(ks, curves["inertia"])
    for i, k in enumerate(ks):
        if best_sil and sil[i] is not None and sil[i] >= best_sil[1] - SILHOUETTE_TOL:
            support[k].append(f"silhouette peaks at {sil[i]:.2f}" if k == best_sil[0] else
                              f"silhouette {sil[i]:.2f} (peak {best_sil[1]:.2f} at "
                              f"k={best_sil[0]})")
        if best_ch and ch[i] is not None and ch[i] >= (1 - CH_TOL) * best_ch[1]:
            support[k].append(f"Calinski-Harabasz highest ({ch[i]:,.0f})" if k == best_ch[0] else
                              f"Calinski-Harabasz within {CH_TOL:.0%} of its peak at "
                              f"k={best_ch[0]}")
        if best_db and db[i] is not None and db[i] <= (1 + DB_TOL) * best_db[1]:
            support[k].append(f"Davies-Bouldin lowest ({db[i]:.2f})" if k == best_db[0] else
                              f"Davies-Bouldin within {DB_TOL:.0%} of its low at "
                              f"k={best_db[0]}")
        if k == elbow:
            support[k].append(f"elbow of inertia at {k}")
    if not any(support.values()):
        return ks[0], f"k={ks[0]}: no metric could be computed; the smallest k was used"
    sil_at = {k: -1.0 if v is None else v for k, v in zip(ks, sil, strict=True)}
    chosen = max(ks, key=lambda k: (len(support[k]), sil_at[k], -k))
    reason = f"k={chosen}: " + "; ".join(support[chosen])
    if chosen in (ks[0], ks[-1]) and len(ks) > 2:
        reason += "; at the edge of the range searched: consider widening --k-range"
    return chosen, reason


def _best(ks: list[int], values: list, pick) -> tuple[int, float] | None:
    pairs = [(v, k) for k, v in zip(ks, values, strict=True) if v is not None]
    if not pairs:
        return None
    value, k = pick(pairs, key=lambda p: p[0])
    return k, value


def choose_k_bic(curves: dict[str, list]) -> tuple[int, str]:
    """Gaussian mixtures: components by BIC. BIC of real customer data keeps falling as
    extra components carve up groups that are not Gaussian, so the knee of the BIC curve
    (where the gains level off) is used; the lowest BIC when there is no knee."""
    ks, bic = curves["k"], curves["bic"]
    low = ks[int(np.argmin(bic))]
    knee = _elbow(ks, bic)
    if knee is not None and knee < low:
        return knee, (f"k={knee}: knee of the BIC curve (BIC falls on to its lowest, "
                      f"{min(bic):,.0f}, at k={low}, by splitting groups that are not Gaussian)")
    return low, f"k={low}: BIC lowest ({min(bic):,.0f})"


def _elbow(ks: list[int], values: list[float]) -> int | None:
    if len(ks) < 3:
        return None
    knee = KneeLocator(ks, values, curve="convex", direction="decreasing").knee
    return int(knee) if knee is not None else None


def _round(value) -> float | None:
    return None if value is None else round(float(value), 4)
