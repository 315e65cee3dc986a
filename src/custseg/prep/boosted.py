"""Discriminative purchase models: gradient-boosted trees, or a logistic (and Poisson)
regression, on each customer's features as at a past cut-off, labelled with what he did
in the days after it.

scikit-learn's HistGradientBoosting: already a dependency (no new wheel of hundreds of MB
as LightGBM's or CatBoost's), it bins features as LightGBM does (fast on millions of
rows), takes missing values (a one-time buyer's gap between orders) natively, and has a
Poisson loss for counts. One classifier per window (30, 90 and the holdout's days: "bought
within"), one Poisson regressor for purchase days within the holdout's days.

The regression is the trees' plain sibling for small histories (a few thousand customers,
where trees are noisy): the logs of the same features, imputed and scaled, in scikit-learn's
LogisticRegression and PoissonRegressor.

The model can only be trained on the past: :func:`check_no_leak` stops a training set
whose features saw a purchase on or after the first day of its labels.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from custseg.core.exceptions import CustsegError
from custseg.core.threads import pooled

#: The customer features the trees see, where the run has them.
INPUTS = ("recency", "frequency", "monetary", "tenure", "avg_order_value",
          "avg_items_per_order", "distinct_products", "return_rate",
          "mean_days_between_orders", "purchase_days", "repeat_purchase_value",
          "discount_share")
#: Customers the models are trained on at most (a seeded sample past that). On 300,000
#: synthetic customers, 50,000 against 100,000: the trees' holdout AUC 0.9167 against
#: 0.9198, their predicted orders 343,953 against 351,744 (411,805 bought), and the
#: value step 8 s shorter (of 37 s).
MAX_ROWS = 50_000
#: The share of the customers the trees' early stopping holds out.
VALIDATION = 0.2
#: The fewest customers in a tree's leaf.
MIN_LEAF = 40
#: Customers the trees need at least; below, the logistic regression stands in alone.
MIN_ROWS = 1_000


def learning_rate(rows: int) -> float:
    """The trees' step: 0.1, or 0.2 on a full sample of :data:`MAX_ROWS` (a history of more
    customers than that), where every customer's prediction costs: twice the step stops
    early at about half the trees, so predicting takes half as long (500,000 synthetic
    customers: the value stage 12.8 s against 19.3 s). It ranks as well and counts a
    little worse (holdout AUC 0.916 against 0.912, mean squared error of purchases 0.4%
    higher; 120,000 customers drawn from BG/NBD and from Pareto/NBD: AUC within 0.0002,
    the error 4% and 2% higher), which the holdout weighs against the other models.
    On fewer customers the small step is better and predicting cheap (Online Retail, 4,300
    customers: AUC 0.738 against 0.728 at 0.2; CDNOW: 0.798 against 0.796)."""
    return 0.2 if rows >= MAX_ROWS else 0.1


class LeakError(CustsegError):
    """A training set whose features saw the period its labels count."""


def check_no_leak(features: pd.DataFrame, as_of: dt.date, label_start: dt.date) -> None:
    """The features (the customers as at ``as_of``) end before the labels' first day, and
    so does every customer's last purchase as his features have it (``as_of`` - recency);
    else the features saw the period the labels count."""
    if as_of > label_start:
        raise LeakError(f"the boosted model's training features are as at {as_of}, after "
                        f"{label_start}, the first day its labels count: they would leak "
                        "the answer")
    last = pd.Timestamp(as_of) - pd.to_timedelta(features["recency"].to_numpy(), unit="D")
    seen = last >= pd.Timestamp(label_start)
    if seen.any():
        raise LeakError(f"the boosted model's training features see {int(seen.sum()):,} "
                        f"customers' purchases on or after {label_start}, the first day "
                        "its labels count: they would leak the answer")


def usable(features: pd.DataFrame) -> list[str]:
    """The :data:`INPUTS` in ``features`` with some value (a run without products has
    none in ``distinct_products``)."""
    return [c for c in INPUTS if c in features
            and pd.to_numeric(features[c], errors="coerce").notna().any()]


def design(features: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The trees' inputs: ``columns`` of ``features``, the silence in the customer's own
    gaps (recency / mean days between orders) and his rate of purchase days; one float
    matrix, filled column by column (5M customers: 0.55-0.6 s; stacking the columns'
    copies took 0.65 s in memory used before and 3.9 s in fresh memory)."""
    X = np.empty((len(features), len(columns) + 2))
    for j, c in enumerate(columns):
        X[:, j] = _floats(features[c])
    gap = _floats(features["mean_days_between_orders"])
    with np.errstate(divide="ignore", invalid="ignore"):
        X[:, -2] = _floats(features["recency"]) / np.where(gap > 0, gap, np.nan)
        X[:, -1] = (_floats(features["purchase_days"])
                    / np.clip(_floats(features["tenure"]), 1, None))
    return X


def _floats(column: pd.Series) -> np.ndarray:
    """A column as floats, a value that is not a number as NaN."""
    if column.dtype.kind in "fiub":
        return column.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


@dataclass
class Boosted:
    """Trees trained at one cut-off: ``p_buy`` per window, ``expected`` purchase days in
    ``days``."""

    days: int
    windows: tuple[int, ...]
    classifiers: dict
    regressor: object
    columns: list[str]

    def inputs(self, features: pd.DataFrame) -> np.ndarray:
        """The matrix the models predict from (:func:`design`), to give :meth:`p_buy` and
        :meth:`expected` once for all of them."""
        return design(features, self.columns)

    def p_buy(self, features: pd.DataFrame, window: int, X: np.ndarray | None = None
              ) -> np.ndarray:
        model = self.classifiers.get(window)
        if model is None:
            return np.full(len(features), np.nan)
        if isinstance(model, float):  # everyone or no one bought in training: that share
            return np.full(len(features), model)
        with threads(len(features)):
            return model.predict_proba(self.inputs(features) if X is None else X)[:, 1]

    def expected(self, features: pd.DataFrame, X: np.ndarray | None = None) -> np.ndarray:
        with threads(len(features)):
            return np.clip(self.regressor.predict(
                self.inputs(features) if X is None else X), 0, None)


#: The discriminative models, by key, and their names in words.
KINDS = {"boosted": "gradient-boosted trees", "linear": "logistic regression"}


def train(features: pd.DataFrame, labels: pd.DataFrame, days: int, *, as_of: dt.date,
          label_start: dt.date, seed: int = 0, kind: str = "boosted",
          windows: bool = True) -> Boosted:
    """Fit on ``features`` (customers as at ``as_of``) and ``labels`` (their columns
    ``w{window}``: purchase days within that many days of ``label_start``); with
    ``windows`` False, only the ``days`` window (all a holdout's check scores)."""
    check_no_leak(features, as_of, label_start)
    with threads(0):
        return _train(features, labels, days, seed, kind, windows)


#: Rows below which the models predict on one thread: OpenMP's and BLAS's threads on a
#: small table cost more than they give (on a busy machine, seconds for a few thousand
#: rows, spinning while they wait). They always fit on one: a tree's many short parallel
#: loops, with OpenMP's threads sleeping between them (``OMP_WAIT_POLICY=PASSIVE``,
#: :mod:`custseg.core.threads`), take twice as long on two cores as on one (50,000 rows:
#: 0.74 s against 0.38 s; the logistic regression 0.14 s against 0.04 s).
SMALL = 50_000
#: Rows from which a training fits two models at a time (one thread each): 50,000 rows
#: 0.9 s to 0.6 s, 25,000 1.0 s to 0.75 s; 10,000 no faster, the trees' Python then
#: holding the lock most of the time.
PAIRED_FROM = 20_000


def threads(rows: int):
    """One thread for OpenMP and BLAS on fewer than :data:`SMALL` rows, else the cores
    custseg may use (:func:`~custseg.core.threads.cores`; a library loaded since the job
    began is limited too) (a context)."""
    from threadpoolctl import threadpool_limits

    from custseg.core.threads import cores

    return threadpool_limits(1 if rows < SMALL else cores())


def _estimators(kind: str, seed: int, rows: int, copies: float = 1.0):
    """A classifier and a Poisson regressor of the kind, for ``rows`` training rows, each
    customer in them ``copies`` times on average (a leaf holds :data:`MIN_LEAF`
    customers' worth of rows)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if kind == "linear":
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression, PoissonRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        def steps():
            return [FunctionTransformer(_signed_log), SimpleImputer(add_indicator=True),
                    StandardScaler()]
        return (lambda: make_pipeline(*steps(), LogisticRegression(C=1.0, max_iter=1000)),
                lambda: make_pipeline(*steps(), PoissonRegressor(alpha=1e-3, max_iter=1000)))
    common = {"max_iter": 200, "learning_rate": learning_rate(rows), "max_leaf_nodes": 15,
              "min_samples_leaf": round(MIN_LEAF * copies), "l2_regularization": 1.0,
              "early_stopping": True, "validation_fraction": VALIDATION, "n_iter_no_change": 10,
              "random_state": seed}
    return (lambda: HistGradientBoostingClassifier(**common),
            lambda: HistGradientBoostingRegressor(loss="poisson", **common))


def _signed_log(X: np.ndarray) -> np.ndarray:
    return np.sign(X) * np.log1p(np.abs(X))


def _train(features: pd.DataFrame, labels: pd.DataFrame, days: int, seed: int,
           kind: str, windows: bool) -> Boosted:
    if len(features) > MAX_ROWS:
        pick = np.random.default_rng(seed).choice(len(features), MAX_ROWS, replace=False)
        features, labels = features.iloc[pick], labels.iloc[pick]
    columns = usable(features)
    X = design(features, columns)
    shorter = tuple(w for w in (30, 90) if w < days) if windows else ()
    Y = labels[[f"w{w}" for w in (*shorter, days)]].to_numpy(dtype=float)
    group = copies(X, Y) if kind == "boosted" else np.arange(len(X))
    held = held_out(group, seed)

    def fit(model, y: np.ndarray):
        if held is None or len(np.unique(y[~held])) < 2:  # the split left one label only
            return model.fit(X, y)
        return model.fit(X[~held], y[~held], X_val=X[held], y_val=y[held])

    classifier, regressor = _estimators(kind, seed, len(features),
                                        len(X) / (int(group.max(initial=0)) + 1))
    classifiers: dict = {}
    jobs: list[tuple[int | None, np.ndarray]] = []  # (window, labels); None: the counts
    for j, w in enumerate((*shorter, days)):
        y = Y[:, j] > 0
        if y.all() or not y.any():
            classifiers[w] = float(y.mean())
        else:
            jobs.append((w, y))
    jobs.append((None, Y[:, -1]))
    # From PAIRED_FROM rows two fits at a time, each on one thread (see SMALL): a tree's
    # loops run outside Python's lock, and each model is seeded on its own, so the order
    # changes nothing.
    fitted = pooled(lambda job: fit(classifier() if job[0] is not None else regressor(),
                                    job[1]), jobs, 2 if len(X) >= PAIRED_FROM else 1)
    classifiers.update({w: model for (w, _), model in zip(jobs[:-1], fitted[:-1], strict=True)})
    return Boosted(days, (*shorter, days), dict(sorted(classifiers.items())), fitted[-1],
                   columns)


def copies(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Each row's group of identical customers (the same inputs ``X`` and labels ``Y``,
    a missing value equal to a missing one), numbered from 0 in order of appearance."""
    table = pd.DataFrame(np.column_stack([X, Y]))
    return table.groupby(list(table.columns), dropna=False, sort=False).ngroup().to_numpy()


def held_out(group: np.ndarray, seed: int) -> np.ndarray | None:
    """The rows the trees' early stopping holds out when some customers are identical
    (:func:`copies`; an export that repeats its customers, or one-time buyers alike in
    everything): a seeded :data:`VALIDATION` share of the groups, each with all its rows,
    so that the trees are not checked on copies of the customers they train on (on
    copies they would never stop). None when no two are alike, or when the draw would
    hold out all or none: the trees' own split then."""
    distinct = int(group.max(initial=0)) + 1
    if distinct == len(group):
        return None
    held = np.random.default_rng(seed).random(distinct) < VALIDATION
    if held.all() or not held.any():
        return None
    return held[group]


def days_to_half(probs: dict[int, np.ndarray], n: int) -> np.ndarray:
    """The days until P(a purchase) reaches one half, by linear interpolation between the
    windows' probabilities (0 at day 0); NaN where it does not within the last window."""
    grid = [0, *sorted(probs)]
    table = np.column_stack([np.zeros(n)] + [probs[w] for w in sorted(probs)])
    out = np.full(n, np.nan)
    for j in range(1, len(grid)):
        lo, hi = table[:, j - 1], table[:, j]
        hit = np.isnan(out) & (hi >= 0.5) & (lo < 0.5)
        share = (0.5 - lo[hit]) / np.maximum(hi[hit] - lo[hit], 1e-12)
        out[hit] = np.ceil(grid[j - 1] + share * (grid[j] - grid[j - 1]))
    return out
