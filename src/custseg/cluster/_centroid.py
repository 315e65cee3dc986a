"""Centroid methods: k-means (MiniBatch for large n) and Gaussian mixtures."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from custseg.cluster._base import FitSample, Fitted, consecutive

#: Above this many rows k-means switches to MiniBatchKMeans.
MINIBATCH_FROM = 200_000
#: Gaussian mixtures are fitted on at most this many rows, then predict the rest.
GMM_MAX_FIT = 100_000


def fit_kmeans(X: np.ndarray, k: int, *, seed: int = 0, n_init: int = 10,
               minibatch: bool | None = None, init: np.ndarray | None = None) -> Fitted:
    """k-means++ with ``n_init`` restarts; MiniBatchKMeans automatically for large n.
    With ``init`` (k centres, e.g. a sample's), one run of Lloyd's algorithm from them
    (MiniBatch only when asked for)."""
    if init is not None:
        model = (MiniBatchKMeans(n_clusters=k, init=init, n_init=1, random_state=seed,
                                 batch_size=4096, max_no_improvement=20) if minibatch
                 else KMeans(n_clusters=k, init=init, n_init=1, random_state=seed))
        minibatch = bool(minibatch)
    elif minibatch or (minibatch is None and len(X) >= MINIBATCH_FROM):
        minibatch = True
        model = MiniBatchKMeans(n_clusters=k, n_init=max(3, n_init // 3), random_state=seed,
                                batch_size=4096, max_no_improvement=20)
    else:
        minibatch = False
        model = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = model.fit_predict(X)
    centers = model.cluster_centers_
    return Fitted(labels=labels.astype(np.int64), centers=centers,
                  params={"n_init": model.n_init, "minibatch": minibatch,
                          **({"init": "sample centres"} if init is not None else {})},
                  extra={"inertia": float(model.inertia_)},
                  rule={"kind": "nearest_centre", "centers": centers,
                        "labels": np.arange(len(centers))})


def fit_gmm(X: np.ndarray, k: int, *, seed: int = 0, n_init: int = 2,
            covariance_type: str = "full", max_fit: int = GMM_MAX_FIT) -> Fitted:
    """Gaussian mixture with ``k`` components, fitted on a sample for large n."""
    # The sample stays in the order drawn: the fit depends on the order of its rows.
    sample = FitSample.draw(len(X), max_fit, np.random.default_rng(seed), ordered=False)
    fit_rows = sample.rows(X)
    model = GaussianMixture(n_components=k, covariance_type=covariance_type, n_init=n_init,
                            random_state=seed, reg_covar=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(fit_rows)
    labels, order = consecutive(sample.labels(X, model.predict))
    # Components no customer ended in are left out of the rule: the argmax over the others
    # is the same for every training row.
    prec = model.precisions_cholesky_
    rule = {"kind": "gaussian_mixture", "covariance_type": covariance_type,
            "weights": model.weights_[order], "means": model.means_[order],
            "precisions_cholesky": prec if covariance_type == "tied" else prec[order],
            "labels": np.arange(len(order))}
    return Fitted(labels=labels, centers=model.means_[order],
                  params={"covariance_type": covariance_type, "fitted_on": sample.size,
                          "converged": bool(model.converged_)},
                  extra={"bic": float(model.bic(fit_rows))}, rule=rule)
