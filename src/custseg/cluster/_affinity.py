"""Affinity propagation: exemplars chosen among the customers, on a sample for large n.

Affinity propagation keeps several dense n x n matrices (similarity, responsibility,
availability), so it runs on at most ``max_fit`` rows (3,000 rows: about 70 MB each) and
every customer is then assigned to its nearest exemplar. The number of exemplars follows
the ``preference`` (the diagonal of the similarity matrix); when ``k`` is given the
preference is searched for it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import AffinityPropagation, KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import pairwise_distances

from custseg.cluster._base import FitSample, Fitted, consecutive, nearest

#: Most affinity propagation fits spent searching the preference for a given k.
MAX_SEARCH_FITS = 15


@dataclass
class _Run:
    """One affinity propagation fit: the preference, exemplar rows and convergence."""

    preference: float
    exemplars: np.ndarray
    converged: bool


def fit_affinity(X: np.ndarray, k: int | None = None, *, seed: int = 0, max_fit: int = 3_000,
                 damping: float = 0.9, preference: float | None = None) -> Fitted:
    """Affinity propagation on negative squared Euclidean similarities.

    Parameters
    ----------
    X : (n, d) float array, prepared and scaled.
    k : wanted number of clusters, or None. Given (and ``preference`` is None), the
        preference is bisected between the minimum and the median similarity (geometric
        midpoints, at most ``MAX_SEARCH_FITS`` fits) for ``k`` exemplars, or the closest
        count found.
    seed : seed of the row sample and of scikit-learn's tie-breaking noise.
    max_fit : rows the algorithm runs on; all rows are then assigned to the nearest exemplar.
    damping : scikit-learn's damping factor (0.5-1; higher is slower but steadier).
    preference : fixed preference; None uses the median similarity (scikit-learn's default)
        when ``k`` is None.

    Notes
    -----
    A run that does not converge is reported as ``params["converged"] = False`` and its
    exemplars are used anyway; if it found none, k-means centres (k = ``max(2, k or 2)``)
    replace them and ``params["fallback"] = "kmeans"``.
    """
    sample = FitSample.draw(len(X), max_fit, np.random.default_rng(seed))
    X_fit = sample.rows(X)
    similarity = -pairwise_distances(X_fit, metric="sqeuclidean")

    runs: list[_Run] = []
    if preference is not None or k is None:
        pref = float(np.median(similarity)) if preference is None else float(preference)
        runs.append(_propagate(similarity, pref, seed, damping))
        best = runs[0]
    else:
        best = _search_preference(similarity, k, seed, damping, runs)

    params: dict[str, object] = {"preference": best.preference, "damping": float(damping),
                                 "converged": best.converged, "fitted_on": sample.size,
                                 "n_exemplars": len(best.exemplars)}
    if len(best.exemplars):
        centers = X_fit[best.exemplars]
    else:
        kmeans = KMeans(n_clusters=min(max(2, k or 2), len(X_fit)), n_init=10,
                        random_state=seed).fit(X_fit)
        centers = kmeans.cluster_centers_
        params["fallback"] = "kmeans"
    # Every customer, sampled or not, goes to its nearest centre; centres none got are dropped.
    labels, used = consecutive(sample.labels(X, lambda rows: nearest(rows, centers)[0]))
    centers = centers[used]
    extra = {"search": [[run.preference, len(run.exemplars)] for run in runs]}
    return Fitted(labels=labels, centers=centers, params=params, extra=extra,
                  rule={"kind": "nearest_centre", "centers": centers,
                        "labels": np.arange(len(centers))})


def _propagate(similarity: np.ndarray, preference: float, seed: int, damping: float,
               max_iter: int = 1000) -> _Run:
    """One affinity propagation fit on the precomputed similarity matrix.

    Whether it converged is read from its iterations (it stops early once converged, with
    exemplars), not from the warning scikit-learn gives: a record of warnings is the whole
    process's, so in the dashboard it took other sessions' warnings, and its end could
    leave every later warning recorded in it."""
    model = AffinityPropagation(affinity="precomputed", preference=preference, damping=damping,
                                max_iter=max_iter, convergence_iter=50, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(similarity)
    exemplars = np.asarray(model.cluster_centers_indices_, dtype=np.int64)
    converged = model.n_iter_ < max_iter and len(exemplars) > 0
    return _Run(preference=float(preference), exemplars=exemplars, converged=converged)


def _search_preference(similarity: np.ndarray, k: int, seed: int, damping: float,
                       runs: list[_Run]) -> _Run:
    """Bisect the preference between min and median similarity for ``k`` exemplars.

    Every fit is appended to ``runs``; the run closest to ``k`` is returned (converged runs
    first, then the earliest).
    """

    def fit(pref: float) -> int:
        runs.append(_propagate(similarity, pref, seed, damping))
        return len(runs[-1].exemplars)

    low, high = float(similarity.min()), float(np.median(similarity))
    # The median gives the most exemplars of the range, the minimum the fewest.
    if fit(high) > k and low < high and fit(low) < k:
        while len(runs) < MAX_SEARCH_FITS:
            # Exemplar counts change on a log scale of the preference (both ends < 0).
            mid = -np.sqrt(low * high) if high < 0 else (low + high) / 2
            found = fit(mid)
            if found == k or not low < mid < high:
                break
            low, high = (mid, high) if found < k else (low, mid)
    return min(runs, key=lambda run: (abs(len(run.exemplars) - k), not run.converged))
