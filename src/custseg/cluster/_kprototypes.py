"""k-prototypes for mixed numeric and categorical customers (the ``kmodes`` package).

The cost of a customer to a prototype is the squared Euclidean distance over the numeric
columns plus ``gamma`` times the number of categorical columns that differ from the
prototype's modes. kmodes 0.12.2 works with this scikit-learn and numpy, but it loops over
customers in Python (tens of microseconds per customer and pass), so it runs on at most
``max_fit`` rows and predicts the others.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
from kmodes.kprototypes import KPrototypes
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from custseg.cluster._base import FitSample, Fitted, consecutive


def fit_kprototypes(X: np.ndarray, k: int, *, seed: int = 0, categories: np.ndarray | None = None,
                    gamma: float | None = None, n_init: int = 4,
                    max_fit: int = 100_000) -> Fitted:
    """k-prototypes (Huang) with Cao initialisation of the modes.

    Parameters
    ----------
    X : (n, d) float array, the prepared numeric columns.
    k : number of clusters.
    seed : seed of the row sample and of kmodes' numeric initialisation.
    categories : (n, c) int array of category codes, -1 for missing (kept as a category of
        its own). None or no columns: k-means on ``X`` instead, with
        ``params["fallback"]`` saying so.
    gamma : weight of one categorical mismatch against squared numeric distance; None
        uses kmodes' default, half the mean standard deviation of the numeric columns.
    n_init : restarts; the lowest-cost run is kept.
    max_fit : rows the model is fitted on; the others are assigned by ``predict``.

    Returns
    -------
    Fitted
        ``centers`` are the numeric parts of the prototypes and ``extra["modes"]`` their
        categorical codes (row i for label i).
    """
    n, d = X.shape
    sample = FitSample.draw(n, max_fit, np.random.default_rng(seed))
    cats = _as_categories(categories, n)

    if cats is None:
        kmeans = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            kmeans.fit(sample.rows(X))
        labels, used = consecutive(sample.labels(X, kmeans.predict))
        centers = kmeans.cluster_centers_[used]
        return Fitted(labels=labels, centers=centers,
                      params={"k": k, "n_init": n_init, "fitted_on": sample.size,
                              "fallback": "kmeans (no categorical columns)"},
                      extra={"inertia": float(kmeans.inertia_)},
                      rule={"kind": "nearest_centre", "centers": centers,
                            "labels": np.arange(len(centers))})

    combined = np.hstack([X, cats.astype(np.float64)])
    categorical = list(range(d, d + cats.shape[1]))
    model = KPrototypes(n_clusters=k, init="Cao", n_init=n_init, gamma=gamma,
                        random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(sample.rows(combined), categorical=categorical)
    # The fitted rows keep the fit's labels, unless kmodes skipped iterating (when there
    # are no more distinct rows than k) and left none.
    labels, used = consecutive(sample.labels(
        combined, partial(model.predict, categorical=categorical), model.labels_))
    prototypes = model.cluster_centroids_.astype(np.float64)[used]
    return Fitted(
        labels=labels, centers=prototypes[:, :d],
        params={"k": k, "gamma": float(model.gamma), "n_init": n_init, "init": "Cao",
                "fitted_on": sample.size},
        extra={"modes": prototypes[:, d:].round().astype(np.int64).tolist(),
               "cost": float(model.cost_), "n_iter": int(model.n_iter_)},
        rule={"kind": "kprototypes", "centers": prototypes[:, :d],
              "modes": prototypes[:, d:].round().astype(np.int64), "gamma": float(model.gamma),
              "labels": np.arange(len(prototypes))},
    )


def _as_categories(categories: np.ndarray | None, n: int) -> np.ndarray | None:
    """The category codes as an (n, c) int array, or None when there are no columns."""
    if categories is None:
        return None
    cats = np.asarray(categories)
    if cats.ndim == 1:
        cats = cats.reshape(-1, 1)
    if cats.shape[0] != n:
        raise ValueError(f"categories has {cats.shape[0]} rows, X has {n}")
    if cats.shape[1] == 0:
        return None
    return cats.astype(np.int64)
