"""``StagedSegmenter``: lifecycle stage first, then value and behaviour within it.

Recency decides the conversation and value its weight: every customer first goes to his
lifecycle stage's group (the ``stage`` column, see :mod:`custseg.prep.lifecycle`), and
each group is then split by a :class:`~custseg.cluster.Segmenter` of its own (the chosen
algorithm, k for action within 2..``max_splits``). A stage too small to stand alone joins
the largest group of the same state (engaged, cooling, lapsed), so that one action still
fits it; a group is kept whole when it is too small to split into pieces of
``min_share`` of all customers, or when its split is not stable (``min_stability``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from custseg.cluster._base import NOISE, cluster_means
from custseg.cluster._evaluate import scores
from custseg.cluster._prepare import FeaturePrep
from custseg.cluster._segmenter import Segmenter
from custseg.core.exceptions import CustsegWarning, DataError
from custseg.core.threads import pooled

#: The stages in the order segments are numbered, and the state one action for each is for.
GROUPS = {"new": "engaged", "active": "engaged", "reactivated": "engaged",
          "cooling": "cooling", "at risk": "cooling", "lapsed": "lapsed"}
#: The states next to each, nearest in need first: a stage too small to stand alone may
#: join one of them (overdue customers are nearer a win-back than a loyalty perk).
NEIGHBOURS = {"engaged": ("cooling",), "cooling": ("lapsed", "engaged"),
              "lapsed": ("cooling",)}
#: Fewer customers than this in a group: it is not split.
MIN_SPLIT = 40
#: A group that is every customer (nobody bought twice: all new) is split in up to this
#: many, as a whole clustering would be.
ALONE = 6
#: Up to this many customers the groups split two at a time (retail:5, 21,860 customers:
#: the cluster stage 2.2-2.5 s to 1.6-2.0 s); past it one at a time (5M customers: 23.0 s
#: paired as alone, and the peak memory of two groups' copies).
PAIRED_UP_TO = 1_000_000


class StagedSegmenter(ClusterMixin, BaseEstimator):
    """Segment customers within their lifecycle stage.

    Parameters
    ----------
    by : str, default="stage"
        The column of ``X`` holding each customer's stage (one of :data:`GROUPS`).
    max_splits : int, default=3
        A stage is split into at most this many segments (:data:`ALONE` when it is the
        only one).
    algorithm, seed, features, skew, scaler, linkage, n_init, n_bootstrap, options,
    backend, min_share, min_stability, k_sample
        As :class:`~custseg.Segmenter`, for the split within each stage; ``min_share`` is
        a share of all customers.
    least_fit : float, default=0.8
        A stage too small to stand alone joins a group of a neighbouring state only when
        that group's action then still fits this share of it (``lifecycle.min_action_fit``).
    fallback : str or None, default=None
        A categorical column (each customer's main category, say) that splits a group
        clustering cannot split stably: one segment per level held by at least
        ``min_share`` of all customers, the other levels together.

    Attributes
    ----------
    labels_ : ndarray of int
        0..n_clusters_-1, numbered stage by stage (in :data:`GROUPS` order), and within a
        stage by descending mean ``monetary``; -1 for customers no cluster claims.
    groups_ : list of dict
        Per stage group: ``group``, ``stages`` it holds, ``state``, ``customers``, ``k``,
        ``first`` (its first label), ``reason``, ``segmenter`` (None: kept whole or split
        by level) and ``levels`` (split by ``fallback``: ``{"column", "levels": {level:
        label}, "other": label or None}``).
    segment_groups_ : list of str
        The group of each segment.
    prep_ : FeaturePrep
        Fitted on all customers: the features the splits could use, for rules and reports.
    n_clusters_, cluster_centers_, metrics_, notes_, warnings_, fitted_params_, extra_
        As :class:`~custseg.Segmenter` (centres and metrics in ``prep_``'s space).
    """

    def __init__(self, by: str = "stage", max_splits: int = 3, algorithm: str = "kmeans",
                 seed: int = 0, features: list[str] | None = None, skew: str = "log1p",
                 scaler: str = "standard", linkage: str = "ward", n_init: int = 10,
                 n_bootstrap: int = 10, options: dict[str, Any] | None = None,
                 backend=None, min_share: float = 0.03, min_stability: float = 0.8,
                 k_sample: int = 100_000, fallback: str | None = None,
                 least_fit: float = 0.8) -> None:
        self.by = by
        self.least_fit = least_fit
        self.fallback = fallback
        self.max_splits = max_splits
        self.algorithm = algorithm
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
        self.k_sample = k_sample

    def fit(self, X: pd.DataFrame, y=None) -> StagedSegmenter:
        """Split the customers of ``X`` (a DataFrame with the ``by`` column) stage by
        stage."""
        if not isinstance(X, pd.DataFrame) or self.by not in X.columns:
            raise DataError(f"Segmenting by lifecycle stage needs a {self.by!r} column; "
                            "use --strategy clusters for a customer table.")
        frame = X.reset_index(drop=True)
        group = self._grouped(frame[self.by].astype(str))
        n = len(frame)
        self.n_features_in_ = frame.shape[1]
        labels = np.full(n, NOISE, dtype=np.int64)
        self.groups_, self.segment_groups_ = [], []
        stabilities = []
        found = set(pd.unique(group))  # one pass, not a comparison per stage
        present = [g for g in dict.fromkeys(GROUPS) if g in found]
        rows_of = {name: np.flatnonzero(group == name) for name in present}
        splits = ALONE if len(present) == 1 else self.max_splits

        def task(name: str | None):
            if name is None:  # the features of all customers, for the scores of the whole
                return FeaturePrep(features=list(self.features) if self.features else None,
                                   transform=self.skew, scaler=self.scaler).fit(frame)
            return self._split(frame.iloc[rows_of[name]], n, splits)

        # The groups split two at a time, largest first, beside the preparation of all
        # customers' features (each group its own seeded Segmenter, so the order changes
        # nothing): a split is many small fits, much of each outside Python's lock, which
        # one group alone leaves the second core idle through. One at a time with a
        # backend (Spark's), as its jobs are submitted, and past PAIRED_UP_TO customers,
        # where two groups' copies at once cost more memory than the pair saves time.
        order = [None, *sorted(present, key=lambda name: -len(rows_of[name]))]
        workers = 1 if self.backend or n > PAIRED_UP_TO else 2
        with warnings.catch_warnings():  # here, not in the workers: it is process-wide
            warnings.simplefilter("ignore", CustsegWarning)
            done = dict(zip(order, pooled(task, order, workers), strict=True))
        self.prep_ = done.pop(None)
        self.notes_, self.warnings_ = list(self.prep_.notes_), []
        for name in present:
            rows = rows_of[name]
            local, model, reason = done[name]
            if model is not None:
                first = frame[self.by].iloc[rows[0]]  # the stage of the group's first customer
                self.notes_ += [f"{first}: {note}" for note in model.notes_
                                if note not in self.notes_]
            if model is not None and not self._fits(frame[self.by].iloc[rows], local, name):
                local, model = np.zeros(len(rows), dtype=np.int64), None
                reason = (f"kept whole: its best split leaves a piece under "
                          f"{self.least_fit:.0%} {GROUPS[name]} customers (the smaller stage "
                          "it took in)")
            if name in self.alone_:
                reason += (f"; it stays a segment of its own: no group of its state or a "
                           f"neighbouring one takes it with its action still fitting "
                           f"{self.least_fit:.0%}")
            levels = None
            if model is None and self.fallback is not None:
                local, levels, reason = self._by_level(frame.iloc[rows], n, splits, local,
                                                       reason)
            first = len(self.segment_groups_)
            k = int(local.max()) + 1 if (local != NOISE).any() else 0
            labels[rows] = np.where(local == NOISE, NOISE, local + first)
            self.segment_groups_ += [name] * k
            if model is not None and model.metrics_.get("stability_ari") is not None:
                stabilities.append((len(rows), model.metrics_["stability_ari"]))
            self.groups_.append({
                "group": name, "state": GROUPS[name], "customers": int(len(rows)), "k": k,
                "first": first, "reason": reason, "segmenter": model, "levels": levels,
                "stages": sorted(frame[self.by].iloc[rows].unique(), key=list(GROUPS).index)})
        self.labels_ = labels
        self.n_clusters_ = len(self.segment_groups_)
        Xp = self.prep_.transform_frame(frame)
        self.cluster_centers_ = cluster_means(Xp, labels)
        metrics = scores(Xp, labels, seed=self.seed)
        weight = sum(w for w, _ in stabilities)
        metrics["stability_ari"] = (round(sum(w * s for w, s in stabilities) / weight, 4)
                                    if weight else None)
        metrics["sizes"] = [int((labels == i).sum()) for i in range(self.n_clusters_)]
        metrics["unclustered"] = int((labels == NOISE).sum())
        self.metrics_ = metrics
        self.fitted_params_ = {"strategy": "stages", "max_splits": self.max_splits,
                               "splits": {g["group"]: g["k"] for g in self.groups_}}
        self.extra_ = {}
        self.k_selection_ = None
        for w in self.warnings_:
            warnings.warn(w, CustsegWarning, stacklevel=2)
        return self

    def _grouped(self, stage: pd.Series) -> np.ndarray:
        """Each customer's group: his stage; a stage under ``min_share`` of all customers
        joins the largest group of the same state, else of a neighbouring state
        (engaged - cooling - lapsed) that keeps its action fitting ``least_fit`` of it;
        one that none takes stays alone (and its reason says so)."""
        unknown = sorted(set(stage.unique()) - set(GROUPS))
        if unknown:
            raise DataError(f"Unknown lifecycle stage(s) {unknown} in column {self.by!r}; "
                            f"expected {list(GROUPS)}.")
        counts = stage.value_counts()
        least = self.min_share * len(stage)
        small = counts < least
        move = {}
        for name in counts.index[small]:
            peers = [s for s in counts.index if GROUPS[s] == GROUPS[name] and not small[s]]
            if peers:
                move[name] = max(peers, key=lambda s: counts[s])
        group = stage.replace(move)
        sizes = {str(g): int(c) for g, c in group.value_counts().items()}
        foreign = dict.fromkeys(sizes, 0)  # customers of another state in a group
        self.alone_ = []
        for name in sorted(sizes, key=sizes.get):
            if sizes[name] >= least:
                continue
            near = [(NEIGHBOURS[GROUPS[name]].index(GROUPS[g]), -sizes[g], g) for g in sizes
                    if GROUPS[g] in NEIGHBOURS[GROUPS[name]] and sizes[g] >= least
                    and foreign[g] + sizes[name] <= (1 - self.least_fit) * (sizes[g]
                                                                           + sizes[name])]
            if not near:
                self.alone_.append(name)
                continue
            to = min(near)[2]
            group = group.replace({name: to})
            sizes[to] += sizes[name]
            foreign[to] += sizes[name]
            sizes[name] = 0
        return group.to_numpy()

    def _fits(self, stage: pd.Series, local: np.ndarray, group: str) -> bool:
        """Every piece of a group is at least ``least_fit`` of the group's state."""
        native = (stage.map(GROUPS) == GROUPS[group]).to_numpy()
        return all(native[local == piece].mean() >= self.least_fit
                   for piece in np.unique(local[local != NOISE]))

    def _split(self, sub: pd.DataFrame, n: int, splits: int
               ) -> tuple[np.ndarray, Segmenter | None, str]:
        """Labels 0.. of one group (in at most ``splits``), its Segmenter (None: whole),
        and why."""
        whole = np.zeros(len(sub), dtype=np.int64)
        most = min(splits, int(len(sub) // max(self.min_share * n, 1)))
        if len(sub) < MIN_SPLIT or most < 2:
            return whole, None, (f"kept whole: {len(sub):,} customers, too few for pieces of "
                                 f"{self.min_share:.0%} of all customers")
        model = Segmenter(algorithm=self.algorithm, k="auto", k_range=(2, most),
                          seed=self.seed, features=self.features, skew=self.skew,
                          scaler=self.scaler, linkage=self.linkage, n_init=self.n_init,
                          n_bootstrap=self.n_bootstrap, options=self.options,
                          backend=self.backend,
                          min_share=min(0.5, self.min_share * n / len(sub)),
                          min_stability=self.min_stability, k_sample=self.k_sample)
        try:
            model.fit(sub)  # its warnings are kept in model.warnings_
        except DataError as exc:
            return whole, None, f"kept whole: {exc}"
        stability = model.metrics_.get("stability_ari")
        if model.n_clusters_ < 2:
            return whole, None, "kept whole: the algorithm found one group"
        smallest = min(model.metrics_["sizes"])
        if smallest < self.min_share * n:
            return whole, None, (f"kept whole: its best split (k={model.n_clusters_}) has a "
                                 f"segment of {smallest:,} customers, under "
                                 f"{self.min_share:.0%} of all")
        if stability is not None and stability < self.min_stability:
            return whole, None, (f"kept whole: its best split (k={model.n_clusters_}) is "
                                 f"not stable (ARI {stability:.2f} < {self.min_stability})")
        why = (model.k_selection_ or {}).get("reason") or f"k={model.n_clusters_}"
        return model.labels_, model, f"split in {model.n_clusters_}: {why}"

    def _by_level(self, sub: pd.DataFrame, n: int, splits: int, whole: np.ndarray,
                  why: str) -> tuple[np.ndarray, dict | None, str]:
        """A group split by the levels of ``fallback`` (None: it has too few big ones)."""
        column = self.fallback
        if column not in sub.columns:
            return whole, None, why
        values = sub[column].astype("string").fillna("unknown").to_numpy(dtype=object)
        counts = pd.Series(values).value_counts()
        big = [str(v) for v in counts.index[counts >= self.min_share * n]]
        if len(big) < len(counts) or len(big) > splits:
            big = big[:splits - 1]
        rest = len(big) < len(counts)
        if len(big) + rest < 2:
            return whole, None, why
        codes = {level: i for i, level in enumerate(big)}
        other = len(big) if rest else None
        local = np.array([codes.get(v, other) for v in values], dtype=np.int64)
        reason = (f"split by {column}: {why.removeprefix('kept whole: ')}; so one segment "
                  f"per {column} held by at least {self.min_share:.0%} of all customers"
                  + (", the others together" if rest else ""))
        return local, {"column": column, "levels": codes, "other": other}, reason

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Segment of each customer: his stage's group, then that group's assignment rule
        (a group kept whole: its one segment)."""
        check_is_fitted(self, "labels_")
        frame = X.reset_index(drop=True)
        group = self._grouped_as_fitted(frame[self.by].astype(str))
        out = np.full(len(frame), NOISE, dtype=np.int64)
        for g in self.groups_:
            rows = np.flatnonzero(group == g["group"])
            if not len(rows):
                continue
            model = g["segmenter"]
            if g.get("levels"):
                local = level_labels(g["levels"], frame.iloc[rows])
            else:
                local = (np.zeros(len(rows), dtype=np.int64) if model is None
                         else model.predict(frame.iloc[rows]))
            out[rows] = np.where(local == NOISE, NOISE, local + g["first"])
        return out

    def _grouped_as_fitted(self, stage: pd.Series) -> np.ndarray:
        """The fitted grouping (see :func:`group_of_stage`), by group name."""
        where = {s: self.groups_[n]["group"] for s, n in group_of_stage(self.groups_).items()}
        return stage.map(where).fillna("").to_numpy()


def group_of_stage(groups: list[dict]) -> dict[str, int]:
    """The group (its position) of each stage: the one that held it in training, else (a
    stage unseen then) the first group of its state; a stage of no state present is
    left out (Unclustered)."""
    where: dict[str, int] = {}
    for n, g in enumerate(groups):
        for s in g["stages"]:
            where.setdefault(s, n)
    for s, state in GROUPS.items():
        same = [n for n, g in enumerate(groups) if g["state"] == state]
        if s not in where and same:
            where[s] = same[0]
    return where


def level_labels(split: dict, frame: pd.DataFrame) -> np.ndarray:
    """Labels of a split by level: its level's, else the others' (the largest level's
    when there was none)."""
    values = frame[split["column"]].astype("string").fillna("unknown")
    other = split["other"] if split["other"] is not None else min(split["levels"].values())
    return values.map(split["levels"]).fillna(other).to_numpy(dtype=np.int64)
