"""Clustering on Spark MLlib, for ``Segmenter(engine="spark")``.

KMeans is MLlib's KMeans (k-means|| initialisation), the hierarchical method is MLlib's
BisectingKMeans (divisive, top-down) and the Gaussian mixture is MLlib's
GaussianMixture. The prepared matrix goes to Spark as Arrow; labels come back in row
order. Choosing k happens on a sample beforehand (see the Segmenter).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ._base import Fitted

#: custseg algorithm -> MLlib estimator.
SPARK_ALGORITHMS = {"kmeans": "KMeans", "hierarchical": "BisectingKMeans",
                    "gmm": "GaussianMixture"}


def _session():
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    from ..config import Config
    from ..engines.spark import session

    return session(Config(engine="spark"))


def fit_spark(X: np.ndarray, algorithm: str, k: int, *, seed: int = 0,
              max_iter: int = 50) -> Fitted:
    """Fit MLlib's estimator for ``algorithm`` with ``k`` clusters on the rows of ``X``."""
    from pyspark.ml import clustering
    from pyspark.ml.functions import array_to_vector

    spark = _session()
    name = SPARK_ALGORITHMS[algorithm]
    # BisectingKMeans splits a cluster from two points at its centre +- 1e-4 x the centre's
    # norm: on centred data (standard scaling) that is ~0 and no split ever happens. The
    # clustering does not depend on a shift of every point, so shift away from 0.
    shift = float(np.abs(X).max() + 1.0) if name == "BisectingKMeans" else 0.0
    X = np.ascontiguousarray(X + shift, dtype=np.float64)
    n, d = X.shape
    offsets = pa.array(np.arange(0, n * d + 1, d, dtype=np.int32))
    table = pa.table({"row": pa.array(np.arange(n, dtype=np.int64)),
                      "x": pa.ListArray.from_arrays(offsets, pa.array(X.ravel()))})
    frame = spark.createDataFrame(table).select("row", array_to_vector("x").alias("features"))
    frame = frame.cache()
    estimator = getattr(clustering, name)(k=k, seed=seed, maxIter=max_iter)
    model = estimator.fit(frame)
    predicted = model.transform(frame).select("row", "prediction").toArrow()
    frame.unpersist()
    labels = np.empty(n, dtype=np.int64)
    labels[predicted.column("row").to_numpy()] = predicted.column("prediction").to_numpy()
    rule = None
    if name == "GaussianMixture":
        gaussians = model.gaussiansDF.collect()
        centers = np.array([row["mean"].toArray() for row in gaussians])
        rule = _mixture_rule(np.asarray(model.weights), centers,
                             [row["cov"].toArray() for row in gaussians])
    else:
        centers = np.array([np.asarray(c) for c in model.clusterCenters()])
    # Labels are renumbered 0..m-1 over the clusters that hold customers (MLlib may leave
    # a cluster empty, e.g. BisectingKMeans when a leaf cannot be split).
    used, labels = np.unique(labels, return_inverse=True)
    extra = {}
    if name != "GaussianMixture":
        extra["inertia"] = float(model.summary.trainingCost)
    if rule is not None:  # label components as the Segmenter's labels (empty ones dropped)
        keep = np.isin(np.arange(len(centers)), used)
        remap = np.full(len(centers), -1)
        remap[used] = np.arange(len(used))
        rule = {**rule, "weights": rule["weights"][keep], "means": rule["means"][keep],
                "precisions_cholesky": rule["precisions_cholesky"][keep],
                "labels": remap[keep]}
    return Fitted(labels=labels.astype(np.int64), centers=centers[used] - shift,
                  params={"engine": "spark", "mllib": name, "k": int(k),
                          "max_iter": int(max_iter)}, extra=extra, rule=rule)


def _mixture_rule(weights: np.ndarray, means: np.ndarray, covariances: list[np.ndarray]
                  ) -> dict:
    """MLlib's mixture as custseg's ``gaussian_mixture`` rule (full covariances)."""
    from scipy.linalg import cholesky, solve_triangular

    precisions = []
    for cov in covariances:
        lower = cholesky(cov, lower=True)
        precisions.append(solve_triangular(lower, np.eye(len(cov)), lower=True).T)
    return {"kind": "gaussian_mixture", "covariance_type": "full",
            "weights": np.asarray(weights, dtype=float), "means": np.asarray(means),
            "precisions_cholesky": np.array(precisions),
            "labels": np.arange(len(weights), dtype=np.int64)}
