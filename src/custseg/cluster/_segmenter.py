"""``Segmenter``: preparation, choice of k, clustering and evaluation in one estimator."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_array, check_is_fitted

from custseg.cluster._base import NOISE, Backend, Fitted, cluster_means
from custseg.cluster._centroid import fit_gmm, fit_kmeans
from custseg.cluster._evaluate import (
    ACTION_RANGE,
    STRUCTURE_RANGE,
    Candidate,
    choose_k,
    choose_k_bic,
    choose_k_for_action,
    inertia,
    k_sample_rows,
    reference_silhouettes,
    sampled_silhouettes,
    scores,
    separation,
    stability,
    structure_words,
    structured_ks,
)
from custseg.cluster._hierarchical import build_tree, fit_hierarchical
from custseg.cluster._prepare import FeaturePrep
from custseg.cluster._rules import EXACT_KINDS, apply_rule, relabelled, rounded
from custseg.core.config import ALGORITHMS, SETTINGS, check_options
from custseg.core.exceptions import ConfigError, CustsegWarning, DataError
from custseg.core.threads import pooled

#: Minimum share of customers below which a cluster draws a warning.
SMALL_CLUSTER = 0.01
#: k-prototypes (kmodes loops in Python) is fitted on at most this many customers.
KPROTOTYPES_MAX_FIT = 20_000
#: Affinity propagation is quadratic: exemplars are found on this many customers.
AFFINITY_MAX_FIT = 1_000


def _positive_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1


#: Parameters shared with the config, checked by its declarations ("clustering.k", ...).
_SETTINGS = {**{name: SETTINGS[f"clustering.{name}"] for name in (
    "algorithm", "k", "k_range", "seed", "features", "skew", "scaler", "linkage", "options",
    "k_sample")},
    "min_share": SETTINGS["min_segment_share"], "min_stability": SETTINGS["min_stability"]}
#: Parameters of the estimator only: name -> (check, description of the allowed values).
_CONSTRAINTS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_init": (_positive_int, "an int in the range [1, inf)"),
    "n_bootstrap": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                    "an int in the range [0, inf)"),
    "backend": (lambda v: v is None or callable(getattr(v, "fit", None)),
                "None or a Backend (an engine's clustering library)"),
    "namer": (lambda v: v is None or callable(v), "None or a callable"),
}
#: Up to this many customers, the search for k fits each k as the final fit would.
SEARCH_FULL_INIT = 50_000


class Segmenter(ClusterMixin, BaseEstimator):
    """Segment customers: prepare features, choose k, cluster, evaluate.

    Parameters
    ----------
    algorithm : str, default="kmeans"
        One of ``kmeans``, ``hierarchical``, ``gmm``, ``kprototypes``, ``dbscan``,
        ``hdbscan``, ``affinity``.
    k : "auto" or int, default="auto"
        Number of segments; "auto" chooses it (algorithms that decide it themselves
        ignore it): clear groups where the data has them (k in 2..10), else, on a
        continuum, the largest k in 3..8 whose segments are stable, distinct and big
        enough (see :mod:`custseg.cluster._evaluate`).
    k_range : tuple of int or None, default=None
        Range of k searched by "auto", for clear groups and for a continuum alike; None
        uses the two default ranges above, as ``run_segments`` and the command line do
        unless the config's ``clustering.k_range`` says otherwise.
    seed : int, default=0
    features : list of str, default=None
        Columns to cluster on; None picks them (transaction features, or every usable
        column of a customer table).
    skew : {"log1p", "yeo-johnson", "none"}, default="log1p"
        Skew handling of numeric features (log1p only on non-negative skewed columns).
    scaler : {"standard", "robust"}, default="standard"
    linkage : {"ward", "average", "complete"}, default="ward"
        For ``hierarchical``.
    n_init : int, default=10
        Restarts of the final k-means / k-prototypes fit.
    n_bootstrap : int, default=10
        Bootstrap resamples for the stability score (0 skips it).
    options : dict, default=None
        Options of the algorithm: ``eps``, ``min_samples`` (dbscan), ``min_cluster_size``
        (hdbscan), ``preference``, ``damping`` (affinity), ``covariance_type`` (gmm),
        ``gamma`` (kprototypes), ``n_micro`` (hierarchical), ``minibatch`` (kmeans).
    backend : Backend or None, default=None
        Where the final fit runs: None in this process (scikit-learn and friends), or an
        engine's library (``SparkEngine.cluster_backend()``: Spark MLlib), k then chosen
        on a sample of ``backend.k_sample`` customers. An algorithm the backend does not
        have (``backend.algorithms``), or fewer than ``backend.min_customers`` customers,
        are fitted in this process, as without a backend.
    min_share : float, default=0.03
        On a continuum, every segment of the chosen k holds at least this share.
    min_stability : float, default=0.8
        Stability the chosen k should reach; on a continuum a test, and below it a warning.
    k_sample : int, default=100_000
        With more customers, k = "auto" is chosen on a sample of this many, stratified
        over the first two principal components (:func:`k_sample_rows`); the final
        clustering then covers every customer (k-means starts from the sample's centres).
        0: every customer.
    namer : callable or None, default=None
        ``namer(frame, labels) -> list of str``: how the segments of a candidate k clash
        (share a name or first action; empty when distinct). None skips that test.

    Attributes
    ----------
    labels_ : ndarray of int
        0..n_clusters_-1, numbered by descending mean ``monetary`` (by size without it);
        -1 for customers no cluster claims.
    n_clusters_, cluster_centers_ : int, ndarray
    assignment_ : dict
        The rule that labels any customer (what ``predict`` and a saved model use), with
        the final labels; for k-means, k-prototypes, affinity propagation, hierarchical
        clustering and Gaussian mixtures the training labels come from it.
    k_selection_ : dict or None
        Curves per k and the reason for the chosen k.
    metrics_ : dict
        silhouette, calinski_harabasz, davies_bouldin, stability_ari, sizes.
    notes_, warnings_ : list of str

    Examples
    --------
    >>> import numpy as np
    >>> from custseg import Segmenter
    >>> X = np.r_[np.zeros((20, 2)), np.ones((20, 2)) * 10] + np.arange(40)[:, None] % 3
    >>> Segmenter(k=2, n_bootstrap=0).fit(X).n_clusters_
    2
    """

    def __init__(self, algorithm: str = "kmeans", k: int | str = "auto",
                 k_range: tuple[int, int] | None = None, seed: int = 0,
                 features: list[str] | None = None, skew: str = "log1p",
                 scaler: str = "standard", linkage: str = "ward", n_init: int = 10,
                 n_bootstrap: int = 10, options: dict[str, Any] | None = None,
                 backend: Backend | None = None, min_share: float = 0.03,
                 min_stability: float = 0.8, namer: Callable | None = None,
                 k_sample: int = 100_000) -> None:
        self.algorithm = algorithm
        self.k = k
        self.k_range = k_range
        self.seed = seed
        self.features = features
        self.skew = skew
        self.scaler = scaler
        self.linkage = linkage
        self.n_init = n_init
        self.n_bootstrap = n_bootstrap
        self.options = options
        self.backend = backend
        self.min_share = min_share
        self.min_stability = min_stability
        self.namer = namer
        self.k_sample = k_sample

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        for name, declaration in _SETTINGS.items():
            declaration.check_param("Segmenter", name, getattr(self, name))
        for name, (check, allowed) in _CONSTRAINTS.items():
            value = getattr(self, name)
            if not check(value):
                raise ConfigError(f"The {name!r} parameter of Segmenter must be {allowed}. "
                                  f"Got {value!r} instead.")
        check_options(self.algorithm, self.options, "'options' parameter of Segmenter")

    # --------------------------------------------------------------------- fitting
    def fit(self, X, y=None) -> Segmenter:
        """Cluster the customers of ``X`` (a DataFrame or a 2-D numeric array)."""
        self._validate_params()
        frame = _as_frame(X, min_samples=2)
        self.n_features_in_ = frame.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.prep_ = FeaturePrep(features=list(self.features) if self.features else None,
                                 transform=self.skew, scaler=self.scaler).fit(frame)
        Xp = self.prep_.transform_frame(frame)
        cats = self.prep_.category_codes(frame)
        self.notes_ = list(self.prep_.notes_)
        self._library = self._backend_for(len(frame))
        self.warnings_: list[str] = []
        n_distinct = len(np.unique(Xp, axis=0)) if len(Xp) <= 200_000 else len(Xp)
        algo = ALGORITHMS[self.algorithm]
        start = time.perf_counter()
        self.k_selection_ = None
        self._searched: dict[int, Fitted] = {}
        self._search_centers: np.ndarray | None = None
        self._search_stability: float | None = None
        self._search_silhouette: tuple[float | None, int] | None = None
        tree, sampled = None, False
        if algo.needs_k:
            if self.k == "auto":
                top = min(n_distinct, len(Xp) - 1)
                low, high = self.k_range or (STRUCTURE_RANGE[0], max(STRUCTURE_RANGE[1],
                                                                     ACTION_RANGE[1]))
                if min(high, top) < low:
                    raise DataError(f"Only {n_distinct} distinct customer(s) after preparation: "
                                    f"too few for k in {low}..{high}; pass --k "
                                    "or use other features.")
                rows = self._k_rows(Xp)
                Xk, ck = Xp[rows], (cats[rows] if len(cats) else cats)
                tree = (build_tree(Xk, seed=self.seed, linkage_method=self.linkage,
                                   **dict(self.options or {}))
                        if self.algorithm == "hierarchical" else None)
                k, self.k_selection_ = self._select_k(Xk, ck, frame.iloc[rows], top, tree)
                sampled = len(Xk) < len(Xp)
                if sampled:
                    self.k_selection_["reason"] += (
                        f" (k chosen on a stratified sample of {len(Xk):,} of {len(Xp):,} "
                        "customers; the final fit covers all of them)")
                    self.k_selection_["sample"] = int(len(Xk))
                    self._searched, self._search_stability = {}, None  # fits of the sample
                    self._search_silhouette = None
                    tree = None
            else:
                k = int(self.k)
                if k > n_distinct:
                    raise DataError(f"k={k} but only {n_distinct} distinct customer(s) after "
                                    "preparation; choose a smaller k.")
            searched = self._searched.pop(k, None) if self.k == "auto" else None
            if self._library is not None:
                fitted = self._library.fit(Xp, self.algorithm, k, seed=self.seed)
            elif searched is not None:
                fitted = searched  # the search's own fit of all customers at this k
            elif sampled and self._search_centers is not None and self.algorithm == "kmeans":
                # k-means over every customer from the sample's centres: one run of Lloyd
                fitted = fit_kmeans(Xp, k, seed=self.seed, init=self._search_centers,
                                    **dict(self.options or {}))
            else:
                fitted = self._fit_k(Xp, cats, k, self.n_init, self.seed, tree=tree)
        else:
            k = None if self.k == "auto" else int(self.k)
            fitted = self._fit_free(Xp, k, self.seed)
        self.fit_seconds_ = round(time.perf_counter() - start, 3)
        self._finish(frame, Xp, cats, fitted)
        return self

    def _backend_for(self, n: int) -> Backend | None:
        """The backend that fits ``n`` customers with this algorithm; None (with a note
        when there is a backend): this process, as without one."""
        backend = self.backend
        if backend is None:
            return None
        if self.algorithm not in backend.algorithms:
            self.notes_.append(f"{backend.label} has no {self.algorithm}: it was fitted in "
                               "this process instead.")
            return None
        if n < backend.min_customers:
            self.notes_.append(f"The {n:,} customers were clustered in this process: "
                               f"{backend.label} takes over from {backend.min_customers:,}.")
            return None
        return backend

    def _k_rows(self, Xp: np.ndarray) -> np.ndarray:
        """The customers k is chosen on: all, or a stratified sample of ``k_sample`` (at
        most the backend's ``k_sample``)."""
        size = self.k_sample or len(Xp)
        if self._library is not None:
            size = min(size, self._library.k_sample)
        return k_sample_rows(Xp, size, seed=self.seed)

    def _fit_k(self, Xp: np.ndarray, cats: np.ndarray, k: int, n_init: int, seed: int,
               tree=None) -> Fitted:
        name, opts = self.algorithm, dict(self.options or {})
        if name == "kmeans":
            return fit_kmeans(Xp, k, seed=seed, n_init=n_init, **opts)
        if name == "hierarchical":
            return fit_hierarchical(Xp, k, seed=seed, linkage_method=self.linkage, tree=tree,
                                    **opts)
        if name == "gmm":
            return fit_gmm(Xp, k, seed=seed, **opts)
        from custseg.cluster._kprototypes import fit_kprototypes

        numeric = Xp[:, :len(self.prep_.numeric_)]
        return fit_kprototypes(numeric, k, seed=seed, categories=cats, n_init=min(n_init, 4),
                               max_fit=KPROTOTYPES_MAX_FIT, **opts)

    def _fit_free(self, Xp: np.ndarray, k: int | None, seed: int) -> Fitted:
        opts = dict(self.options or {})
        if self.algorithm == "dbscan":
            from custseg.cluster._density import fit_dbscan
            return fit_dbscan(Xp, k, seed=seed, **opts)
        if self.algorithm == "hdbscan":
            from custseg.cluster._density import fit_hdbscan
            return fit_hdbscan(Xp, k, seed=seed, **opts)
        from custseg.cluster._affinity import fit_affinity
        return fit_affinity(Xp, k, seed=seed, max_fit=AFFINITY_MAX_FIT, **opts)

    def _ranges(self, top: int) -> tuple[list[int], list[int]]:
        """The k searched for clear groups and for a continuum, capped at ``top``."""
        if self.k_range is not None:
            ks = [k for k in range(self.k_range[0], self.k_range[1] + 1) if k <= top]
            return ks, ks
        structure = [k for k in range(STRUCTURE_RANGE[0], STRUCTURE_RANGE[1] + 1) if k <= top]
        action = [k for k in range(ACTION_RANGE[0], ACTION_RANGE[1] + 1) if k <= top]
        return structure, action or structure

    def _select_k(self, Xp: np.ndarray, cats: np.ndarray, frame: pd.DataFrame, top: int,
                  tree=None) -> tuple[int, dict]:
        """Clear groups when the data has them, else the k a marketer can act on."""
        structure_ks, action_ks = self._ranges(top)
        ks = sorted(set(structure_ks) | set(action_ks))
        curves: dict[str, list] = {"k": [], "inertia": [], "silhouette": [],
                                   "calinski_harabasz": [], "davies_bouldin": []}
        bic, labels_at = [], {}

        # With up to SEARCH_FULL_INIT customers each k gets the final fit's restarts, and the
        # chosen k's fit is kept (its stability is then the one reported); above, 3 restarts.
        n_init = self.n_init if len(Xp) <= SEARCH_FULL_INIT else 3

        def evaluate(k: int) -> tuple[Fitted, dict]:
            fitted = self._fit_k(Xp, cats, k, n_init=n_init, seed=self.seed, tree=tree)
            return fitted, separation(Xp, fitted.labels)

        # Two k at a time: much of a fit and its scores runs outside the GIL (BLAS, numpy),
        # and each k is seeded on its own, so the curves do not depend on the order. The
        # cores are shared between them: no OpenMP or BLAS pool of full size inside each.
        results = pooled(evaluate, ks, 2)
        for k, (fitted, s) in zip(ks, results, strict=True):
            labels_at[k] = fitted.labels
            curves["k"].append(k)
            curves["inertia"].append(round(float(fitted.extra.get("inertia")
                                                 or inertia(Xp, fitted.labels)), 4))
            for key in ("calinski_harabasz", "davies_bouldin"):
                curves[key].append(s[key])
            if "bic" in fitted.extra:
                bic.append(round(fitted.extra["bic"], 2))
        if bic:
            curves["bic"] = bic
        labelings = [labels_at[k] for k in ks]
        curves["silhouette"], sample = sampled_silhouettes(Xp, labelings, seed=self.seed)
        # Groups are judged with ties broken, so that a point mass (everyone who bought
        # once) or an imputed value is not taken for a cluster.
        Xs = self._untied(frame)
        untied = {"k": ks, "silhouette": sampled_silhouettes(Xs, labelings,
                                                             seed=self.seed)[0]}
        reference = reference_silhouettes(Xs, ks, seed=self.seed)
        clear = structured_ks(untied, reference, structure_ks)
        candidates: list[Candidate] = []
        selection: dict[str, Any] = {"untied_silhouette": untied["silhouette"],
                                     "reference_silhouette": [reference[k] for k in ks]}
        if clear:
            chosen, why = (choose_k_bic(curves, clear) if self.algorithm == "gmm"
                           else choose_k(curves, clear))
            i = curves["k"].index(chosen)
            reason = (f"k={chosen}: clear groups (silhouette {untied['silhouette'][i]:.2f} "
                      f"against {reference[chosen]:.2f} for a single Gaussian cloud of the same "
                      f"shape); {why.partition(': ')[2]}")
            if chosen == structure_ks[-1] and chosen < top:
                reason += ("; at the top of the range searched: consider widening "
                           "--k-range")
            selection["structure"] = "clear groups"
        else:
            # From the largest k down: the first that passes every test is the choice, and
            # smaller ones need not be tried.
            for k in sorted(action_ks, reverse=True):
                candidates.append(self._candidate(k, Xp, cats, frame, labels_at[k]))
                if not candidates[-1].failures(self.min_stability, self.min_share):
                    break
            candidates.reverse()
            chosen, why = choose_k_for_action(candidates, min_stability=self.min_stability,
                                              min_share=self.min_share)
            reason = (f"k={chosen}: no clear groups "
                      f"({structure_words(untied, reference, structure_ks)}), so the customers "
                      f"form a continuum, cut for action in {action_ks[0]}..{action_ks[-1]}: "
                      f"{why}")
            if self.k_range is not None and chosen == action_ks[-1] and chosen < top:
                reason += "; at the top of --k-range: consider widening it"
            selection["structure"] = "continuum"
            selection["candidates"] = [
                {"k": c.k, "stability": c.stability, "smallest_share": round(c.smallest_share, 4),
                 "clashes": c.clashes} for c in candidates]
        best = results[ks.index(chosen)][0]
        if best.centers is not None and len(best.centers) == chosen:
            self._search_centers = np.asarray(best.centers)
        if n_init == self.n_init and self._library is None:
            self._searched[chosen] = best
            self._search_silhouette = (curves["silhouette"][ks.index(chosen)], sample)
            self._search_stability = next((c.stability for c in candidates if c.k == chosen),
                                          None)
        return chosen, {**curves, **selection, "chosen": chosen, "reason": reason,
                        "silhouette_sample": sample}

    def _untied(self, frame: pd.DataFrame) -> np.ndarray:
        """The prepared matrix with ties broken: whole-number columns jittered by +-0.5
        (a count of 1 then blends into 2 as it would in a continuum) and columns filled
        from another one (a one-order customer's gap) left out."""
        rng = np.random.default_rng(self.seed)
        jittered = frame.copy()
        for col in self.prep_.numeric_:
            v = pd.to_numeric(jittered[col], errors="coerce").astype(float)
            present = v.dropna()
            if len(present) and (present == present.round()).all():
                jittered[col] = v + rng.uniform(-0.5, 0.5, len(v))
        X = self.prep_.transform_frame(jittered)
        keep = [i for i, c in enumerate(self.prep_.numeric_)
                if "impute_from" not in self.prep_.spec_[c]]
        keep += list(range(len(self.prep_.numeric_), X.shape[1]))
        return X[:, keep] if keep else X

    def _candidate(self, k: int, Xp: np.ndarray, cats: np.ndarray, frame: pd.DataFrame,
                   labels: np.ndarray) -> Candidate:
        """Stability, smallest share and name clashes of the segments at ``k``."""
        n_boot = self.n_bootstrap or 10
        stab = stability(Xp, labels, lambda Xb, s: self._refit_labels(Xb, cats, s, k),
                         n_boot=n_boot, seed=self.seed)
        shares = np.bincount(labels[labels != NOISE]) / len(labels)
        clashes = None
        if self.namer is not None:
            clashes = list(self.namer(frame.reset_index(drop=True), labels))
        return Candidate(k=k, stability=stab, smallest_share=float(shares.min()),
                         clashes=clashes)

    def _finish(self, frame: pd.DataFrame, Xp: np.ndarray, cats: np.ndarray,
                fitted: Fitted) -> None:
        fitted, rule = _with_rule(fitted, Xp, cats)
        labels, centers, remap = _ordered(fitted, frame, Xp)
        self.labels_ = labels
        self.cluster_centers_ = centers
        self.assignment_ = relabelled(rule, remap)
        self.n_clusters_ = int(len(centers))
        self.fitted_params_ = fitted.params
        self.extra_ = fitted.extra
        same = fitted.params.get("relabelled_by_rule", 0) == 0  # the search's own segments
        metrics = scores(Xp, labels, seed=self.seed,
                         silhouette=self._search_silhouette if same else None)
        metrics["stability_ari"] = None
        known = self._search_stability if same else None  # the same resamples
        if self.n_bootstrap and self.n_clusters_ >= 2:
            metrics["stability_ari"] = known if known is not None else stability(
                Xp, labels, lambda Xb, s: self._refit_labels(Xb, cats, s, self.n_clusters_),
                n_boot=self.n_bootstrap, seed=self.seed)
            if metrics["stability_ari"] < self.min_stability:
                self.warnings_.append(
                    f"Stability of the {self.n_clusters_} segments is "
                    f"{metrics['stability_ari']:.2f}, under {self.min_stability}: re-clustering "
                    "slightly different customers moves many of them to another segment; treat "
                    "the boundaries as soft, or ask for fewer segments with --k.")
        sizes = [int((labels == i).sum()) for i in range(self.n_clusters_)]
        noise = int((labels == NOISE).sum())
        metrics["sizes"] = sizes
        metrics["unclustered"] = noise
        self.metrics_ = metrics
        n = len(labels)
        for i, size in enumerate(sizes):
            if size < SMALL_CLUSTER * n:
                self.warnings_.append(f"Segment {i + 1} holds {size} customers "
                                      f"({size / n:.1%}), under 1% of all.")
        if noise:
            self.warnings_.append(f"{noise} customers ({noise / n:.1%}) belong to no cluster "
                                  "and are reported as 'Unclustered'.")
        for w in self.warnings_:
            warnings.warn(w, CustsegWarning, stacklevel=3)

    def _refit_labels(self, Xb: np.ndarray, cats: np.ndarray, seed: int, k: int) -> np.ndarray:
        """Labels of a bootstrap sample clustered the same way (with ``k`` clusters)."""
        if ALGORITHMS[self.algorithm].needs_k:
            if self.algorithm == "kprototypes":
                return fit_kmeans(Xb, k, seed=seed, n_init=2).labels
            return self._fit_k(Xb, cats, k, 2, seed).labels
        return self._fit_free(Xb, None, seed).labels

    # ------------------------------------------------------------------ prediction
    def predict(self, X) -> np.ndarray:
        """Segment of each customer (prepared with the fitted parameters) under the fitted
        assignment rule, the one a saved model uses: the nearest centre for k-means and
        affinity propagation, the nearest micro-cluster for hierarchical clustering, the
        most likely component for Gaussian mixtures, the lowest cost for k-prototypes, the
        nearest stored customer within a radius for the density methods (-1: none)."""
        check_is_fitted(self, "labels_")
        frame = _as_frame(X, getattr(self, "feature_names_in_", None))
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {frame.shape[1]} features, but Segmenter is expecting "
                             f"{self.n_features_in_} features as input.")
        Xp = self.prep_.transform_frame(frame)
        cats = (self.prep_.category_codes(frame)
                if self.assignment_["kind"] == "kprototypes" else None)
        return apply_rule(self.assignment_, Xp, cats)

    def fit_predict(self, X, y=None) -> np.ndarray:
        return self.fit(X).labels_


def _as_frame(X, columns=None, min_samples: int = 1) -> pd.DataFrame:
    """A DataFrame as it is; anything else through scikit-learn's input checks."""
    if isinstance(X, pd.DataFrame):
        return X.reset_index(drop=True)
    arr = check_array(X, accept_sparse=False, dtype="numeric", ensure_min_samples=min_samples)
    names = list(columns) if columns is not None else [f"x{i}" for i in range(arr.shape[1])]
    if len(names) != arr.shape[1]:
        names = [f"x{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=names)


def _with_rule(fitted: Fitted, Xp: np.ndarray, cats: np.ndarray) -> tuple[Fitted, dict]:
    """The fit's assignment rule; for exact kinds, rounded as it is saved, and the training
    labels taken from it (``params["relabelled_by_rule"]`` counts the customers whose label
    that changed: only near-ties, normally 0), so a saved model reproduces them."""
    rule = fitted.rule
    if rule is None:
        ids = [int(i) for i in np.unique(fitted.labels) if i != NOISE]
        usable = (fitted.centers is not None and len(fitted.centers) == len(ids)
                  and np.shape(fitted.centers)[1] == Xp.shape[1])
        centers = fitted.centers if usable else cluster_means(Xp, fitted.labels)
        rule = {"kind": "nearest_centre", "centers": np.asarray(centers),
                "labels": np.asarray(ids if usable else range(len(centers)), dtype=np.int64)}
    if rule["kind"] not in EXACT_KINDS:
        return fitted, rule
    rule = rounded(rule)
    labels = apply_rule(rule, Xp, cats if rule["kind"] == "kprototypes" else None)
    changed = int((labels != fitted.labels).sum())
    return replace(fitted, labels=labels,
                   params={**fitted.params, "relabelled_by_rule": changed}), rule


def _ordered(fitted: Fitted, frame: pd.DataFrame, Xp: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Renumber clusters by descending mean monetary (or size); noise stays -1. Also the
    renumbering (old label -> new)."""
    labels = fitted.labels
    ids = [int(i) for i in np.unique(labels) if i != NOISE]
    if "monetary" in frame.columns:
        money = pd.to_numeric(frame["monetary"], errors="coerce").to_numpy()
        key = {i: (-np.nanmean(money[labels == i]), -(labels == i).sum(), i) for i in ids}
    else:
        key = {i: (-(labels == i).sum(), i) for i in ids}
    order = sorted(ids, key=lambda i: key[i])
    remap = {old: new for new, old in enumerate(order)}
    lookup = np.full(max(ids, default=NOISE) + 2, NOISE, dtype=np.int64)  # [-1]: noise
    lookup[list(remap)] = list(remap.values())
    new_labels = lookup[labels]
    usable = (fitted.centers is not None and len(fitted.centers) == len(ids)
              and fitted.centers.shape[1] == Xp.shape[1])
    centers = fitted.centers if usable else cluster_means(Xp, labels)
    centers = np.asarray(centers)[order] if len(ids) else np.empty((0, Xp.shape[1]))
    return new_labels, centers, remap
