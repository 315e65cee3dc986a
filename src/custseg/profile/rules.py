"""Each segment as a short rule over the original columns, for tools that cannot run custseg.

For every segment (one against the rest) a shallow decision tree is fitted on the unscaled
features the Segmenter used; of all the tree's nodes, the path that reproduces the segment
best (highest F1, fewer conditions on a tie) becomes the rule. Conditions on one column
merge into a range, thresholds are rounded to numbers a person would type (whole numbers
for counts and days below 100, else 2 significant digits), conditions that do not help are
dropped, and precision, recall and the share of other customers matched are then computed
on the rounded rule over every customer, so each printed number is true of the printed
rule. A missing value never matches a numeric condition; it matches "is not" / "not in".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from custseg.cluster._base import FitSample
from custseg.profile.labels import humanise

#: Customers the trees are fitted on (a seeded sample beyond that); rules are scored on all.
FIT_MAX = 50_000
MAX_DEPTH = 3
#: Smallest leaf, as a share of the segment's customers in the fitting sample.
MIN_LEAF_SHARE = 0.05
MAX_LEVELS = 20
#: Words after a number of these columns.
UNITS = {"recency": "days", "tenure": "days", "mean_days_between_orders": "days",
         "frequency": "orders", "distinct_products": "products"}
_SYMBOL = {"<=": "≤", ">=": "≥"}


label = humanise  # the words for a column (config ``[labels]`` first)


# ------------------------------------------------------------------------ evaluation
class _Columns:
    """The rule's columns as arrays, converted once: floats, or category codes."""

    def __init__(self, table: pd.DataFrame, numeric: Sequence[str],
                 categorical: Sequence[str]) -> None:
        self.n = len(table)
        self.numeric = {c: pd.to_numeric(table[c], errors="coerce").to_numpy(float)
                        for c in numeric}
        self.codes: dict[str, np.ndarray] = {}
        self.levels: dict[str, list[str]] = {}
        for c in categorical:
            codes, uniques = pd.factorize(table[c].astype("string"), sort=False)
            self.codes[c] = codes  # -1: missing
            self.levels[c] = [str(u) for u in uniques]

    def subset(self, rows: np.ndarray) -> _Columns:
        """The same columns for some rows only (levels shared)."""
        sub = object.__new__(_Columns)
        sub.n = len(rows)
        sub.numeric = {c: x[rows] for c, x in self.numeric.items()}
        sub.codes = {c: x[rows] for c, x in self.codes.items()}
        sub.levels = self.levels
        return sub

    def mask(self, cond: Mapping[str, Any]) -> np.ndarray:
        col, op, value = cond["feature"], cond["op"], cond["value"]
        if col in self.numeric:
            x = self.numeric[col]
            if op == "<=":
                return x <= value
            if op == ">=":
                return x >= value
            if op == "between":
                return (x >= value[0]) & (x <= value[1])
            if op == "==":
                return x == value
            raise ValueError(f"Operator {op!r} does not apply to numeric column {col!r}.")
        codes, levels = self.codes[col], self.levels[col]
        wanted = [value] if op in ("==", "!=") else list(value)
        hit = np.isin(codes, [levels.index(str(v)) for v in wanted if str(v) in levels])
        if op in ("==", "in"):
            return hit
        if op in ("!=", "not in"):
            return ~hit
        raise ValueError(f"Operator {op!r} does not apply to categorical column {col!r}.")

    def matches(self, conditions: Sequence[Mapping[str, Any]]) -> np.ndarray:
        out = np.ones(self.n, dtype=bool)
        for cond in conditions:
            out &= self.mask(cond)
        return out


def evaluate(table: pd.DataFrame, conditions: Sequence[Mapping[str, Any]]) -> pd.Series:
    """Which customers of ``table`` a rule's conditions match (a boolean Series)."""
    cols = {c["feature"] for c in conditions}
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(table[c])
               and not pd.api.types.is_bool_dtype(table[c])]
    data = _Columns(table, numeric, [c for c in cols if c not in numeric])
    return pd.Series(data.matches(conditions), index=table.index)


def _scores(matched: np.ndarray, positive: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and the share of the others matched."""
    hits, pos = int((matched & positive).sum()), int(positive.sum())
    n_match, others = int(matched.sum()), int((~positive).sum())
    precision = hits / n_match if n_match else 0.0
    recall = hits / pos if pos else 0.0
    return precision, recall, (n_match - hits) / others if others else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


# ------------------------------------------------------------------------- rounding
def _round_sig(x: float, digits: int = 2) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    step = 10 ** (math.floor(math.log10(abs(x))) - digits + 1)
    return round(round(x / step) * step, 10)


def _person_value(x: float, integer: bool, upper: bool) -> float | int:
    """A threshold a person would type: ``x ≤ t`` (upper) or ``x > t`` (lower) of a tree
    becomes ``≤ v`` / ``≥ v``; exact for whole numbers below 100."""
    if integer and abs(x) < 100:
        return int(math.floor(x) if upper else math.floor(x) + 1)
    v = _round_sig(x)
    return int(v) if integer or float(v).is_integer() else v


# ------------------------------------------------------------------------ the rules
def segment_rules(table: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str], *,
                  segment: str = "segment", seed: int = 0, fit_max: int = FIT_MAX,
                  labels: Mapping[str, str] | None = None) -> dict[int, dict[str, Any]]:
    """``{segment id: rule}`` for every segment but -1 (unclustered) of a labelled table.

    A rule is ``{"text", "conditions": [{"feature", "op", "value"}], "precision",
    "recall", "others", "customers"}``: recall is the share of the segment the rule
    matches, ``others`` the share of all other customers it matches, ``customers`` how
    many it matches in all.
    """
    numeric = [c for c in numeric if c in table.columns]
    categorical = [c for c in categorical if c in table.columns]
    if not numeric and not categorical:
        return {}
    data = _Columns(table, numeric, categorical)
    shape = {c: _shape(x) for c, x in data.numeric.items()}
    seg = table[segment].to_numpy()
    fit_rows = FitSample.draw(len(table), fit_max, np.random.default_rng(seed)).indices
    sample = data.subset(fit_rows)
    X, names = _design(sample)
    out: dict[int, dict[str, Any]] = {}
    for seg_id in sorted(int(s) for s in pd.unique(seg) if s != -1):
        positive = seg == seg_id
        y = positive[fit_rows]
        if not y.any() or y.all():
            conditions: list[dict[str, Any]] = []
        else:
            conditions = _best_path(X, y, names, sample, shape, seed)
        matched = data.matches(conditions)
        precision, recall, others = _scores(matched, positive)
        out[seg_id] = {"text": rule_text(conditions, labels), "conditions": conditions,
                       "precision": round(precision, 4), "recall": round(recall, 4),
                       "others": round(others, 4), "customers": int(matched.sum())}
    return out


def _design(data: _Columns) -> tuple[np.ndarray, list[tuple[str, str | None]]]:
    """The tree's inputs: raw numbers (NaN kept) and one-hot frequent levels."""
    blocks, names = [], []
    for c, x in data.numeric.items():
        blocks.append(x)
        names.append((c, None))
    for c, sub in data.codes.items():
        counts = np.bincount(sub[sub >= 0], minlength=len(data.levels[c]))
        for code in np.argsort(-counts, kind="stable")[:MAX_LEVELS]:
            if counts[code]:
                blocks.append((sub == code).astype(float))
                names.append((c, data.levels[c][code]))
    return np.column_stack(blocks), names


def _shape(x: np.ndarray) -> dict[str, Any]:
    """Whether a column holds whole numbers, and its smallest and largest value."""
    present = x[~np.isnan(x)]
    if not len(present):
        return {"integer": False, "min": math.nan, "max": math.nan}
    return {"integer": bool(np.all(present == np.round(present))),
            "min": float(present.min()), "max": float(present.max())}


def _best_path(X, y, names, sample: _Columns, shape, seed) -> list[dict[str, Any]]:
    """The best conjunction among the node paths of a shallow tree; a second tree on the
    columns without missing values too, since a split of missing from present values
    (a one-order customer has no gap between orders) cannot be written as a condition
    and would hide the one that can (``frequency >= 2``)."""
    complete = ~np.isnan(X).any(axis=0)
    designs = [np.arange(X.shape[1])]
    if complete.any() and not complete.all():
        designs.append(np.flatnonzero(complete))
    best, best_key = [], (-1.0, 0)
    for cols in designs:
        for path in _tree_paths(X[:, cols], y, seed):
            path = [(int(cols[f]), left, thr) for f, left, thr in path]
            conditions = _simplify(_conditions(path, names, shape, sample.levels), sample, y)
            p, r, _ = _scores(sample.matches(conditions), y)
            key = (round(_f1(p, r), 4), -len(conditions))
            if key > best_key:
                best, best_key = conditions, key
    return best


def _tree_paths(X, y, seed) -> list[list[tuple[int, bool, float]]]:
    """The path (feature, goes left, threshold) to every node of a seeded shallow tree."""
    from sklearn.tree import DecisionTreeClassifier

    leaf = max(1, int(MIN_LEAF_SHARE * y.sum()))
    tree = DecisionTreeClassifier(max_depth=MAX_DEPTH, min_samples_leaf=leaf,
                                  class_weight="balanced", random_state=seed).fit(X, y)
    t = tree.tree_
    paths: dict[int, list[tuple[int, bool, float]]] = {0: []}
    stack = [0]
    while stack:
        node = stack.pop()
        if t.children_left[node] == -1:
            continue
        f, thr = int(t.feature[node]), float(t.threshold[node])
        paths[t.children_left[node]] = paths[node] + [(f, True, thr)]
        paths[t.children_right[node]] = paths[node] + [(f, False, thr)]
        stack += [t.children_left[node], t.children_right[node]]
    return list(paths.values())


def _conditions(path, names, shape, all_levels) -> list[dict[str, Any]]:
    """Merge a tree path's splits per column into rounded conditions; the shorter of "not
    in" and "in" for categories (they differ only in missing values, and the scores are
    computed on the rule as written)."""
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    equal: dict[str, str] = {}
    unequal: dict[str, list[str]] = {}
    order: list[str] = []
    for f, left, thr in path:
        col, level = names[f]
        if not math.isfinite(thr):  # a split of missing from present values: left out
            continue
        if col not in order:
            order.append(col)
        if level is None:
            if left:
                highs[col] = min(highs.get(col, math.inf), thr)
            else:
                lows[col] = max(lows.get(col, -math.inf), thr)
        elif left:  # one-hot <= 0.5: not this level
            unequal.setdefault(col, []).append(level)
        else:
            equal[col] = level
    conditions = []
    for col in order:
        if col in equal:
            conditions.append({"feature": col, "op": "==", "value": equal[col]})
        elif col in unequal:
            levels = sorted(unequal[col])
            rest = sorted(set(all_levels[col]) - set(levels))
            if len(rest) == 1:  # "is not Male" of a two-level column reads "is Female"
                conditions.append({"feature": col, "op": "==", "value": rest[0]})
            elif 0 < len(rest) < len(levels):
                conditions.append({"feature": col, "op": "in", "value": rest})
            elif len(levels) == 1:
                conditions.append({"feature": col, "op": "!=", "value": levels[0]})
            else:
                conditions.append({"feature": col, "op": "not in", "value": levels})
        else:
            whole, least, most = shape[col]["integer"], shape[col]["min"], shape[col]["max"]
            lo = _person_value(lows[col], whole, upper=False) if col in lows else None
            hi = _person_value(highs[col], whole, upper=True) if col in highs else None
            if lo is not None and lo <= least:
                lo = None  # at or below the smallest value: no condition
            if hi is not None and hi >= most:
                hi = None
            # at the largest or smallest value, or a one-value range: "is 1", "is 0"
            same = (lo if lo is not None and lo in (most, hi)
                    else hi if hi is not None and hi == least else None)
            if lo is None and hi is None:
                continue
            if same is not None:
                conditions.append({"feature": col, "op": "==", "value": same})
            elif lo is not None and hi is not None:
                conditions.append({"feature": col, "op": "between", "value": [lo, hi]})
            elif hi is not None:
                conditions.append({"feature": col, "op": "<=", "value": hi})
            else:
                conditions.append({"feature": col, "op": ">=", "value": lo})
    return conditions


def _simplify(conditions, sample: _Columns, y) -> list[dict[str, Any]]:
    """Drop, one at a time, conditions whose removal does not lower F1 on the sample."""
    conditions = list(conditions)
    score = _f1(*_scores(sample.matches(conditions), y)[:2])
    changed = True
    while changed and conditions:
        changed = False
        for i in range(len(conditions)):
            trial = conditions[:i] + conditions[i + 1:]
            s = _f1(*_scores(sample.matches(trial), y)[:2])
            if s >= score:
                conditions, score, changed = trial, s, True
                break
    return conditions


# ----------------------------------------------------------------------------- words
def _fmt(v: float | int) -> str:
    if isinstance(v, int) or float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:g}"


def _unit(col: str, words: str) -> str:
    unit = UNITS.get(col)
    return f" {unit}" if unit and unit not in words else ""


def rule_text(conditions: Sequence[Mapping[str, Any]],
              labels: Mapping[str, str] | None = None) -> str:
    """``"recency ≤ 45 days and frequency ≥ 5 orders"``; ``"every customer"`` when empty."""
    if not conditions:
        return "every customer"
    parts = []
    for c in conditions:
        col, op, v = c["feature"], c["op"], c["value"]
        words = label(col, labels)
        if op in ("<=", ">="):
            parts.append(f"{words} {_SYMBOL[op]} {_fmt(v)}{_unit(col, words)}")
        elif op == "between":
            parts.append(f"{words} between {_fmt(v[0])} and {_fmt(v[1])}{_unit(col, words)}")
        elif op == "==" and not isinstance(v, str):
            parts.append(f"{words} = {_fmt(v)}{_unit(col, words)}")
        elif op == "==":
            parts.append(f"{words} is {v}")
        elif op == "!=":
            parts.append(f"{words} is not {v}")
        else:
            parts.append(f"{words} {op} {{{', '.join(map(str, v))}}}")
    return " and ".join(parts)
