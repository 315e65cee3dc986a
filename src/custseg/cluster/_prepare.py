"""Feature preparation: from a customer table to the numeric matrix clustering needs.

Fitted once, applied to new customers with the same parameters (kept as plain data, so
they can be saved as JSON):

* numeric columns: missing values imputed with the median, skew reduced (log1p for
  non-negative skewed columns, or Yeo-Johnson), then standard or robust scaling;
* categorical columns: one-hot over the most frequent levels, each block weighted so its
  total variance equals one standardised numeric column (one categorical column never
  outweighs the numeric ones), and integer codes for k-prototypes;
* constant columns dropped, and for transaction features the behavioural columns that
  nearly duplicate an earlier one (|Spearman rho| > 0.9) dropped, each with a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from custseg.core.config import SETTINGS
from custseg.core.exceptions import ConfigError, DataError
from custseg.io._roles import (
    NOT_LOGGED,
    NUMERIC_ROLES,
    ROLES_ATTR,
    USABLE,
    id_like_name,
    infer_roles,
)

#: Default clustering features of transaction data, in priority order.
TRANSACTION_FEATURES = (
    "recency", "frequency", "monetary", "tenure", "avg_order_value", "avg_items_per_order",
    "distinct_products", "return_rate", "mean_days_between_orders", "discount_share",
)
#: Columns never used as features: outputs of RFM and segmenting, keys.
NOT_FEATURES = ("customer_id", "r_score", "f_score", "m_score", "rfm_code", "rfm_segment",
                "segment", "segment_name", "stage", "stage_reason")
#: A missing value of the key is filled from the value's column: a one-order customer's
#: gap between orders is at least the days since that order.
IMPUTE_FROM = {"mean_days_between_orders": "recency"}
#: Always kept when clustering transaction features by default.
CORE_FEATURES = ("recency", "frequency", "monetary")
#: Share of a behavioural feature's variance the R-F-M groups must explain to keep it.
MIN_ETA2 = 0.2
MAX_LEVELS = 20
NEAR_DUPLICATE = 0.9


@dataclass
class FeaturePrep:
    """Fit on a customer table, then turn any table with the same columns into X.

    Parameters
    ----------
    features : list of str or None
        Columns to use; None picks them (see :func:`default_features`).
    transform : {"log1p", "yeo-johnson", "none"}
        Skew handling of numeric columns (log1p only where a column is non-negative and
        skewed; Yeo-Johnson on every numeric column).
    scaler : {"standard", "robust"}
    drop_near_duplicates : bool
        Drop a later feature that correlates above 0.9 with an earlier one.
    """

    features: list[str] | None = None
    transform: str = "log1p"
    scaler: str = "standard"
    drop_near_duplicates: bool = True
    # fitted
    numeric_: list[str] = field(default_factory=list)
    categorical_: list[str] = field(default_factory=list)
    spec_: dict[str, dict[str, Any]] = field(default_factory=dict)
    columns_: list[str] = field(default_factory=list)
    notes_: list[str] = field(default_factory=list)

    def fit(self, frame: pd.DataFrame) -> FeaturePrep:
        SETTINGS["clustering.skew"].check_param("FeaturePrep", "transform", self.transform)
        SETTINGS["clustering.scaler"].check_param("FeaturePrep", "scaler", self.scaler)
        chosen, notes = (choose_features(frame, self.features) if self.features
                         else default_features(frame))
        roles = _roles(frame, [c for c in chosen if c not in TRANSACTION_FEATURES])[0]
        numeric = [c for c in chosen if roles.get(c) != "category" and (
            _is_numeric(frame[c]) or (roles.get(c) in NUMERIC_ROLES and roles[c] != "flag"))]
        categorical = [c for c in chosen if c not in numeric]
        spec: dict[str, dict[str, Any]] = {}
        kept_numeric = []
        for col in numeric:
            values = pd.to_numeric(frame[col], errors="coerce").astype(float)
            missing = int(values.isna().sum())
            if values.notna().sum() == 0 or values.nunique() <= 1:
                notes.append(f"Dropped {col}: constant.")
                continue
            median = float(values.median())
            s = {"kind": "numeric", "impute": median, "transform": "none"}
            fill_from = IMPUTE_FROM.get(col)
            if missing and fill_from in frame.columns:
                s["impute_from"] = fill_from
                notes.append(f"{col} is missing for {missing} customer(s) with one order; "
                             f"their {fill_from} (the gap so far) stands in.")
            elif missing:
                notes.append(f"Imputed {missing} missing value(s) of {col} with the median "
                             f"{median:.4g}.")
            v = self._filled(frame, col, s)
            if (self.transform == "log1p" and roles.get(col) not in NOT_LOGGED and v.min() >= 0
                    and pd.Series(v).skew() > 1):
                s["transform"] = "log1p"
                v = np.log1p(v)
            elif self.transform == "yeo-johnson":
                v, lmbda = stats.yeojohnson(v)
                s["transform"], s["lambda"] = "yeo-johnson", float(lmbda)
            if self.scaler == "robust":
                q1, med, q3 = np.percentile(v, [25, 50, 75])
                center, scale = med, (q3 - q1) or v.std() or 1.0
            else:
                center, scale = v.mean(), v.std() or 1.0
            s["center"], s["scale"] = float(center), float(scale)
            spec[col] = s
            kept_numeric.append(col)
        self.spec_ = spec
        core = [c for c in CORE_FEATURES if c in kept_numeric] if not self.features else []
        if self.drop_near_duplicates and len(kept_numeric) > 2:
            kept_numeric, dropped = _drop_near_duplicates(frame, kept_numeric, spec, core)
            notes += dropped
        if len(core) == len(CORE_FEATURES) and len(kept_numeric) > len(core):
            kept_numeric, dropped = _informative(self, frame, kept_numeric, core, spec)
            notes += dropped
        kept_categorical = []
        for col in categorical:
            values = frame[col].astype("string")
            counts = values.value_counts(dropna=False)
            if len(counts) <= 1:
                notes.append(f"Dropped {col}: constant.")
                continue
            levels = [str(v) for v in counts.index[:MAX_LEVELS] if not pd.isna(v)]
            if len(counts) > MAX_LEVELS:
                notes.append(f"{col}: {len(counts)} levels; the {MAX_LEVELS} most frequent kept, "
                             "the rest grouped as 'other'.")
            codes = _codes(values, levels)
            p = np.bincount(codes + 1, minlength=len(levels) + 1) / len(codes)  # -1 = other
            variance = float((p * (1 - p)).sum())
            spec[col] = {"kind": "categorical", "levels": levels,
                         "weight": float(1 / np.sqrt(variance)) if variance else 1.0}
            kept_categorical.append(col)
        if not kept_numeric and not kept_categorical:
            raise DataError("No usable feature for clustering: every candidate column is "
                            "constant or empty; choose features with --features.")
        self.numeric_, self.categorical_, self.spec_ = kept_numeric, kept_categorical, spec
        self.columns_ = kept_numeric + [f"{c}={lvl}" for c in kept_categorical
                                        for lvl in [*spec[c]["levels"], "other"]]
        self.notes_ = notes
        if self.transform != "none":
            logged = [c for c in kept_numeric if spec[c]["transform"] != "none"]
            if logged:
                self.notes_.append(f"{self.transform} applied to: {', '.join(logged)}.")
        self.notes_.append(f"Scaled with the {self.scaler} scaler.")
        return self

    def transform_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """The prepared matrix X (numeric block, then weighted one-hot blocks)."""
        missing = [c for c in self.numeric_ + self.categorical_ if c not in frame.columns]
        if missing:
            raise DataError(f"Columns {missing} needed by the fitted features are missing.")
        blocks = [self._numeric(frame, c)[:, None] for c in self.numeric_]
        for col in self.categorical_:
            s = self.spec_[col]
            codes = _codes(frame[col].astype("string"), s["levels"])
            onehot = np.zeros((len(frame), len(s["levels"]) + 1))
            onehot[np.arange(len(frame)), np.where(codes < 0, len(s["levels"]), codes)] = 1.0
            blocks.append(onehot * s["weight"])
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0))

    def category_codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Integer codes of the categorical columns (-1: other or missing)."""
        cols = [_codes(frame[c].astype("string"), self.spec_[c]["levels"])[:, None]
                for c in self.categorical_]
        return np.hstack(cols) if cols else np.empty((len(frame), 0), dtype=np.int64)

    @staticmethod
    def _filled(frame: pd.DataFrame, col: str, s: dict[str, Any]) -> np.ndarray:
        v = pd.to_numeric(frame[col], errors="coerce").astype(float)
        if "impute_from" in s and s["impute_from"] in frame.columns:
            v = v.fillna(pd.to_numeric(frame[s["impute_from"]], errors="coerce"))
        return v.fillna(s["impute"]).to_numpy()

    def _numeric(self, frame: pd.DataFrame, col: str) -> np.ndarray:
        s = self.spec_[col]
        v = self._filled(frame, col, s)
        if s["transform"] == "log1p":
            v = np.log1p(np.maximum(v, 0))
        elif s["transform"] == "yeo-johnson":
            v = stats.yeojohnson(v, lmbda=s["lambda"])
        return (v - s["center"]) / s["scale"]


def default_features(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Transaction features when present; otherwise the columns of a customer table whose
    role is usable (see :mod:`custseg.io._roles`: dates, years, flags, money, counts,
    rates, other numbers and categories), each other column left out with a note (ids,
    free text, personal data, constant or mostly missing columns). Returns (columns,
    notes)."""
    if all(c in frame.columns for c in ("recency", "frequency", "monetary")):
        cols = [c for c in TRANSACTION_FEATURES if c in frame.columns
                and frame[c].notna().any()]
        return cols, [f"Transaction features: {', '.join(cols)}."]
    candidates = [c for c in frame.columns if c not in NOT_FEATURES]
    roles, reasons = _roles(frame, candidates)
    cols, notes = [], []
    for col in candidates:
        role = roles[col]
        if role == "date" and not _is_numeric(frame[col]):
            notes.append(f"Left out {col}: dates as text; read the table with "
                         "custseg.read_customers to cluster on the days since them.")
        elif role in USABLE:
            cols.append(col)
        else:
            notes.append(f"Left out {col}: {_LEFT_OUT.get(role, role)}"
                         f"{' (' + reasons[col] + ')' if reasons.get(col) else ''}.")
    return cols, notes


#: How a left-out role is named in the notes.
_LEFT_OUT = {"id": "an identifier", "text": "free text", "personal": "personal data",
             "constant": "constant", "missing": "mostly missing",
             "outcome": "an outcome, reported per segment as a rate (name it in --features "
                        "to cluster on it)"}


def _roles(frame: pd.DataFrame, columns: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Role of each column (as read by custseg, else inferred) and, when inferred here,
    the reason."""
    known = dict(frame.attrs.get(ROLES_ATTR) or {})
    todo = [c for c in columns if c not in known]
    reasons: dict[str, str] = {}
    if todo:
        inferred, _ = infer_roles(frame[todo])
        for col, role in inferred.items():
            known[col] = role.role
            reasons[col] = role.reason
    return {c: known[c] for c in columns}, reasons


def choose_features(frame: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    unknown = [f for f in features if f not in frame.columns]
    if unknown:
        usable = [c for c in frame.columns if c not in NOT_FEATURES]
        raise ConfigError(f"Unknown feature(s) {', '.join(map(repr, unknown))}; available: "
                          f"{', '.join(usable)}.")
    return list(features), [f"Features as chosen: {', '.join(features)}."]


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _looks_like_id(col: str, values: pd.Series, n: int) -> bool:
    """Unique whole numbers under a name that says id (``CustomerNo``, ``member_no``)."""
    whole = values.dropna()
    return bool(id_like_name(col) and n >= 20 and whole.nunique() > 0.9 * n
                and (whole == whole.round()).all())


def _codes(values: pd.Series, levels: list[str]) -> np.ndarray:
    """Index of each value in ``levels`` (distinct); -1 for missing and unknown values."""
    return pd.Categorical(values, categories=levels).codes.astype(np.int64)


#: Customers the rank correlations of :func:`_drop_near_duplicates` are measured on at most
#: (a seeded sample past that): its standard error near the threshold is under 0.001, and
#: ranking every one of 5 million customers took 19 s.
RHO_SAMPLE = 100_000


def _drop_near_duplicates(frame: pd.DataFrame, cols: list[str], spec: dict,
                          protected: list[str]) -> tuple[list[str], list[str]]:
    """Drop a column that nearly duplicates an earlier kept one (protected ones stay), by
    Spearman's rho on at most :data:`RHO_SAMPLE` customers."""
    rows = frame if len(frame) <= RHO_SAMPLE else frame.sample(RHO_SAMPLE, random_state=0)
    on = "" if rows is frame else f" on a random {RHO_SAMPLE:,} of {len(frame):,} customers"
    ranks = rows[cols].apply(pd.to_numeric, errors="coerce").rank()
    rho = ranks.corr().abs()
    kept, notes = list(protected), []
    for col in cols:
        if col in protected:
            continue
        twin = next((k for k in kept if rho.loc[col, k] > NEAR_DUPLICATE), None)
        if twin is None:
            kept.append(col)
        else:
            notes.append(f"Dropped {col}: nearly duplicates {twin} (|Spearman rho| = "
                         f"{rho.loc[col, twin]:.2f}{on}).")
            spec.pop(col)
    return [c for c in cols if c in kept], notes


def _informative(prep: FeaturePrep, frame: pd.DataFrame, cols: list[str], core: list[str],
                 spec: dict) -> tuple[list[str], list[str]]:
    """Keep a behavioural feature only when it separates the groups that recency,
    frequency and monetary form on their own (between-group share of its variance, eta
    squared, at least ``MIN_ETA2``); features that do not are mostly noise to k-means."""
    from sklearn.cluster import KMeans

    from custseg.cluster._evaluate import silhouettes

    rows = frame if len(frame) <= 20_000 else frame.sample(20_000, random_state=0)
    base = np.column_stack([prep._numeric(rows, c) for c in core])
    fits = [KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(base)
            for k in range(2, min(7, len(rows)))]
    fits = [lab for lab in fits if len(np.unique(lab)) > 1]
    if not fits:
        return cols, []
    pick = (slice(None) if len(rows) <= 3000
            else np.random.RandomState(0).permutation(len(rows))[:3000])
    sils = silhouettes(base[pick], [lab[pick] for lab in fits])
    labels = fits[int(np.argmax(sils))]  # the first of equal bests, as before
    kept, notes = [], []
    for col in cols:
        if col in core:
            kept.append(col)
            continue
        v = prep._numeric(rows, col)
        total = v.var()
        between = sum((labels == g).mean() * (v[labels == g].mean() - v.mean()) ** 2
                      for g in np.unique(labels))
        eta2 = between / total if total else 0.0
        if eta2 >= MIN_ETA2:
            kept.append(col)
        else:
            notes.append(f"Left out {col}: adds little to the recency-frequency-monetary "
                         f"groups (explains {eta2:.0%} of its variance; needs "
                         f"{MIN_ETA2:.0%}); name it in --features to use it.")
            spec.pop(col)
    return kept, notes


def behaviour_and_table_features(frame: pd.DataFrame, table_columns: list[str],
                                 max_missing: float = 0.5) -> tuple[list[str], list[str]]:
    """Clustering features with ``--cluster-on all``: the transaction features present,
    then the customer table's usable columns (``table_columns``), leaving out those
    missing for more than ``max_missing`` of the customers (no row in the customer table).
    Returns (columns, notes)."""
    cols = [c for c in TRANSACTION_FEATURES if c in frame.columns and frame[c].notna().any()]
    notes = []
    for col in table_columns:
        if col not in frame.columns:
            continue
        share = float(frame[col].isna().mean())
        if share > max_missing:
            notes.append(f"Left out {col}: missing for {share:.0%} of the customers (not in "
                         "the customer table, or empty there).")
        else:
            cols.append(col)
    return cols, notes
