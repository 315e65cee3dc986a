"""Hierarchical clustering that scales: micro-clusters, then an exact weighted merge.

scikit-learn's AgglomerativeClustering keeps a full distance matrix (about 12 GB at
40,000 rows). Here k-means first summarises the customers into at most ``n_micro``
micro-clusters (centroid + size); Ward's criterion is then applied exactly to those
weighted points: merging A and B costs ``|A||B| / (|A|+|B|) * ||c_A - c_B||^2``, the rise
in within-cluster sum of squares. The merge order gives every k at once and the
dendrogram for the report. Average and complete linkage use scipy on the micro-cluster
centroids.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from custseg.cluster._base import Fitted
from custseg.cluster._centroid import fit_kmeans


class Tree:
    """Merge tree over micro-clusters; ``cut(k)`` labels the customers."""

    def __init__(self, micro_labels: np.ndarray, centers: np.ndarray, sizes: np.ndarray,
                 Z: np.ndarray) -> None:
        self.micro_labels, self.centers, self.sizes, self.Z = micro_labels, centers, sizes, Z

    def cut(self, k: int) -> np.ndarray:
        """Customer labels for ``k`` clusters (0..k-1, in order of first micro-cluster)."""
        m = len(self.centers)
        if k >= m:
            return self.micro_labels.copy()
        groups = fcluster(self.Z, t=k, criterion="maxclust") - 1
        _, first = np.unique(groups, return_index=True)
        order = np.argsort(np.argsort(first))  # relabel by first appearance: deterministic
        return order[groups][self.micro_labels].astype(np.int64)

    def centers_for(self, labels_micro: np.ndarray, k: int) -> np.ndarray:
        return np.vstack([np.average(self.centers[labels_micro == j], axis=0,
                                     weights=self.sizes[labels_micro == j]) for j in range(k)])


def build_tree(X: np.ndarray, *, seed: int = 0, linkage_method: str = "ward",
               n_micro: int = 500) -> Tree:
    """Micro-clusters by k-means, then the merge tree over them."""
    n_micro = min(n_micro, len(X))
    micro = fit_kmeans(X, n_micro, seed=seed, n_init=1)
    labels = micro.labels
    sizes = np.bincount(labels, minlength=n_micro).astype(float)
    keep = sizes > 0
    remap = np.cumsum(keep) - 1
    centers, sizes, labels = micro.centers[keep], sizes[keep], remap[labels]
    if linkage_method == "ward":
        Z = weighted_ward(centers, sizes)
    else:
        Z = linkage(centers, method=linkage_method)
    return Tree(labels, centers, sizes, Z)


def weighted_ward(centers: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Ward's merge sequence over weighted points, as a scipy linkage matrix.

    Heights are sqrt(2 * increase in within-cluster sum of squares), scipy's convention
    for Ward, so unit weights reproduce ``scipy.cluster.hierarchy.linkage(..., 'ward')``.
    """
    m = len(centers)
    cent = centers.astype(float).copy()
    size = sizes.astype(float).copy()
    ids = np.arange(m)  # scipy cluster id of each active slot
    count = np.ones(m)  # micro-clusters in each active slot (scipy's fourth column)
    active = np.ones(m, dtype=bool)
    sq = (cent ** 2).sum(axis=1)
    d2 = sq[:, None] + sq[None, :] - 2 * cent @ cent.T
    cost = size[:, None] * size[None, :] / (size[:, None] + size[None, :]) * np.maximum(d2, 0)
    np.fill_diagonal(cost, np.inf)
    Z = np.empty((m - 1, 4))
    for step in range(m - 1):
        flat = int(np.argmin(cost))
        a, b = divmod(flat, m)
        a, b = min(a, b), max(a, b)
        Z[step] = [min(ids[a], ids[b]), max(ids[a], ids[b]), np.sqrt(2 * cost[a, b]),
                   count[a] + count[b]]
        count[a] += count[b]
        cent[a] = (size[a] * cent[a] + size[b] * cent[b]) / (size[a] + size[b])
        size[a] += size[b]
        ids[a] = m + step
        active[b] = False
        cost[b, :] = cost[:, b] = np.inf
        d2a = ((cent - cent[a]) ** 2).sum(axis=1)
        row = size * size[a] / (size + size[a]) * d2a
        row[~active] = np.inf
        row[a] = np.inf
        cost[a, :] = cost[:, a] = row
    return Z


def fit_hierarchical(X: np.ndarray, k: int, *, seed: int = 0, linkage_method: str = "ward",
                     n_micro: int = 500, tree: Tree | None = None) -> Fitted:
    """Agglomerative clustering into ``k`` clusters (pass ``tree`` to reuse one)."""
    tree = tree or build_tree(X, seed=seed, linkage_method=linkage_method, n_micro=n_micro)
    labels = tree.cut(k)
    micro_groups = labels[np.unique(tree.micro_labels, return_index=True)[1]]
    centers = tree.centers_for(micro_groups, k)
    Z = tree.Z
    tail = Z[-min(len(Z), 60):]
    # Every customer is labelled through its micro-cluster, the nearest k-means centre:
    # the rule stores those centres and the cluster of each.
    return Fitted(labels=labels, centers=centers,
                  params={"linkage": linkage_method, "micro_clusters": int(len(tree.centers))},
                  extra={"dendrogram": {"last_merges": tail.round(6).tolist(),
                                        "micro_clusters": int(len(tree.centers))}},
                  rule={"kind": "nearest_centre", "centers": tree.centers,
                        "labels": micro_groups.astype(np.int64)})
