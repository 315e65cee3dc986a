"""The common shape of custseg's clustering algorithms.

Every algorithm is a function ``fit_<name>(X, k, *, seed, **options) -> Fitted`` over the
prepared feature matrix ``X`` (rows = customers, float64, already scaled). ``k`` is the
number of clusters, or None when the algorithm chooses it itself (density-based methods,
affinity propagation, a Gaussian mixture by BIC). The result is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: Label of customers no cluster claims (density methods); reported as "Unclustered".
NOISE = -1


@dataclass
class Fitted:
    """What an algorithm found.

    labels : int64 array, one per row of X; ``NOISE`` (-1) for noise.
    centers : (n_clusters, n_features) array in the prepared space, row i for label i, or
        None. Methods without centres give the mean of each cluster (a nearest-centroid
        rule), exemplars (affinity propagation) or medoids, so new customers can be
        assigned to the nearest centre.
    params : what the algorithm chose or was given (eps, n_components, linkage, ...),
        plain JSON-ready values.
    extra : data for the report (k-distance curve, BIC curve, dendrogram), JSON-ready.
    rule : how any customer is labelled (see ``_rules``): a dict of numpy arrays with a
        ``kind`` and the ``labels`` of its centres, components or points; None means the
        nearest of ``centers``.
    """

    labels: np.ndarray
    centers: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    rule: dict[str, Any] | None = None

    @property
    def n_clusters(self) -> int:
        return int(np.count_nonzero(np.unique(self.labels) != NOISE))


class Backend(Protocol):
    """Where a :class:`~custseg.Segmenter` fits its final clustering when not in this
    process: an engine's own library (Spark MLlib, see :mod:`custseg.engines`). k is then
    chosen in this process on a seeded sample of at most ``k_sample`` customers. Algorithms
    not in :attr:`algorithms`, and fewer than :attr:`min_customers` customers, are fitted in
    this process, as without a backend."""

    label: str  #: the library's name in messages ("Spark")
    algorithms: Mapping[str, str]  #: custseg algorithm -> the library's estimator
    k_sample: int
    min_customers: int  #: fewer customers are clustered in this process (0: none)

    def fit(self, X: np.ndarray, algorithm: str, k: int, *, seed: int = 0) -> Fitted:
        """Cluster the rows of ``X`` into ``k`` clusters with ``algorithm``."""
        ...


@dataclass(frozen=True)
class FitSample:
    """The rows an algorithm is fitted on (a seeded sample of at most ``size`` of ``n``
    rows, or all of them), and the labels of every row once it is fitted."""

    n: int
    index: np.ndarray | None = None  #: the sampled rows; None: every row

    @classmethod
    def draw(cls, n: int, size: int, rng: np.random.Generator, *,
             ordered: bool = True) -> FitSample:
        """``size`` rows without replacement (one ``rng.choice``), in row order, or in the
        order drawn when ``ordered`` is False; all rows (no draw) when ``n <= size``."""
        if n <= size:
            return cls(n)
        index = rng.choice(n, size=size, replace=False)
        return cls(n, np.sort(index) if ordered else index)

    @property
    def size(self) -> int:
        """How many rows are fitted."""
        return self.n if self.index is None else len(self.index)

    @property
    def indices(self) -> np.ndarray:
        """The fitted rows' indices (``arange(n)`` when every row is fitted)."""
        return np.arange(self.n) if self.index is None else self.index

    def rows(self, X: np.ndarray) -> np.ndarray:
        """The sampled rows of ``X`` (``X`` itself when every row is fitted)."""
        return X if self.index is None else X[self.index]

    def labels(self, X: np.ndarray, assign: Callable[[np.ndarray], np.ndarray],
               own: np.ndarray | None = None) -> np.ndarray:
        """Label of every row of ``X``: ``own`` (the fit's labels of the sampled rows) for
        those, ``assign(rows)`` (the fitted rule) for the others; all by ``assign`` when
        ``own`` is None."""
        if own is None:
            return np.asarray(assign(X)).astype(np.int64)
        if self.index is None:
            return np.asarray(own).astype(np.int64)
        labels = np.empty(self.n, dtype=np.int64)
        rest = np.ones(self.n, dtype=bool)
        rest[self.index] = False
        labels[rest] = assign(X[rest])
        labels[self.index] = own
        return labels


def consecutive(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels renumbered 0..m-1 in their order over the clusters that got rows (``NOISE``
    stays ``NOISE``), and the old label of each new one."""
    used = np.unique(labels[labels != NOISE])
    remap = np.full(int(labels.max(initial=NOISE)) + 2, NOISE, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return remap[labels], used  # remap[-1] is the trailing NOISE slot


def cluster_means(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean of each non-noise cluster, row i for label i (labels 0..n-1)."""
    ids = [int(i) for i in np.unique(labels) if i != NOISE]
    if not ids:
        return np.empty((0, X.shape[1]))
    return np.vstack([X[labels == i].mean(axis=0) for i in ids])


def nearest(X: np.ndarray, points: np.ndarray, chunk: int | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest row of ``points`` for each row of ``X``, and its distance,
    in chunks of rows whose block of distances is about 512 KB, so it stays in cache (3-6x
    faster at a million rows than 128 MB blocks). Brute force: meant for few points
    (centres, exemplars); use a k-d tree for many."""
    chunk = chunk or max(1024, (1 << 16) // max(1, len(points)))
    idx = np.empty(len(X), dtype=np.int64)
    dist = np.empty(len(X))
    p2 = (points ** 2).sum(axis=1)
    for start in range(0, len(X), chunk):
        block = X[start:start + chunk]
        d2 = (block ** 2).sum(axis=1)[:, None] - 2 * block @ points.T + p2[None, :]
        j = d2.argmin(axis=1)
        idx[start:start + chunk] = j
        dist[start:start + chunk] = np.sqrt(np.maximum(d2[np.arange(len(block)), j], 0))
    return idx, dist
