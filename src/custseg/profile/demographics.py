"""How each segment's customers differ from the rest in the customer table's columns.

Every segment is compared with all other customers on every column tested: numbers with
the Kruskal-Wallis test (effect size epsilon squared), categories and two-valued numbers
(0/1 flags) with the chi-squared test of the segment-vs-rest by level table (effect size
Cramér's V). The p-values of all tests
of a run are corrected together with Holm's method; a difference is reported when its
corrected p-value is below ``alpha`` and its effect is at least small (epsilon squared
0.01, V 0.1), since with many customers tiny differences are significant too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from custseg.cluster._prepare import _looks_like_id
from custseg.prep.uplift import holm

ALPHA = 0.05
MIN_EPSILON2 = 0.01
MIN_CRAMERS_V = 0.1
#: Categorical columns with more levels than this are not tested (ids, free text).
MAX_LEVELS = 20


def kruskal_two(values: np.ndarray, in_group: np.ndarray, ranks: np.ndarray | None = None,
                tie: float | None = None) -> tuple[float, float, float]:
    """Kruskal-Wallis of one group against the rest: (H, p, epsilon squared).

    ``ranks`` and ``tie`` (the tie correction) can be computed once per column and reused
    for every segment; the result equals :func:`scipy.stats.kruskal` of the two groups.
    """
    n = len(values)
    if ranks is None:
        ranks = stats.rankdata(values)
    if tie is None:
        tie = stats.tiecorrect(ranks)
    n1 = int(in_group.sum())
    n2 = n - n1
    if n1 == 0 or n2 == 0 or tie == 0:
        return 0.0, 1.0, 0.0
    r1 = float(ranks[in_group].sum())
    r2 = n * (n + 1) / 2 - r1
    h = (12 / (n * (n + 1)) * (r1 * r1 / n1 + r2 * r2 / n2) - 3 * (n + 1)) / tie
    h = max(h, 0.0)
    return h, float(stats.chi2.sf(h, 1)), h / (n - 1) if n > 1 else 0.0


def chi2_two(values: pd.Series, in_group: np.ndarray) -> tuple[float, float, float, pd.DataFrame]:
    """Chi-squared test of the segment-vs-rest by level table: (chi2, p, Cramér's V, table).

    Missing values are left out; no continuity correction."""
    codes, levels = _codes(values)
    counts = _level_counts(codes, in_group.astype(np.int64), 2, len(levels))
    table = pd.DataFrame(counts[::-1], index=["segment", "rest"], columns=levels)
    chi2, p, v = _chi2(table.to_numpy())
    return chi2, p, v, table


def _codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1: missing) and the levels as text, sorted."""
    codes, uniques = pd.factorize(values)
    levels = [str(u) for u in uniques]
    order = np.argsort(levels, kind="stable")
    rank = np.empty(len(levels) + 1, dtype=np.int64)
    rank[order] = np.arange(len(levels))
    rank[-1] = -1  # code -1 (missing) stays -1
    return rank[codes], [levels[i] for i in order]


def _level_counts(codes: np.ndarray, groups: np.ndarray, n_groups: int,
                  n_levels: int) -> np.ndarray:
    """Customers per group (rows, 0..n_groups-1) and level (columns); missing left out."""
    keep = codes >= 0
    flat = groups[keep] * n_levels + codes[keep]
    return np.bincount(flat, minlength=n_groups * n_levels).reshape(n_groups, n_levels)


def _chi2(table: np.ndarray) -> tuple[float, float, float]:
    """(chi2, p, Cramér's V) of a table, over its non-empty rows and columns."""
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return 0.0, 1.0, 0.0
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    v = float(np.sqrt(chi2 / (table.sum() * (min(table.shape) - 1))))
    return float(chi2), float(p), v


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _num(x: float) -> str:
    return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def demographic_differences(table: pd.DataFrame, numeric: Sequence[str],
                            categorical: Sequence[str], *, segment: str = "segment",
                            alpha: float = ALPHA, min_epsilon2: float = MIN_EPSILON2,
                            min_cramers_v: float = MIN_CRAMERS_V,
                            labels: Mapping[str, str] | None = None
                            ) -> tuple[dict[int, list[dict[str, Any]]], dict[str, Any]]:
    """Significant differences of every segment (but -1) from all other customers.

    Returns ``{segment id: [{"column", "test", "p_value", "p_adjusted", "effect",
    "effect_size", "text"}, ...]}`` (largest effect first) and a description of the tests
    (how many, the correction, the columns tested and skipped with why). Entries are
    ordered strongest first (Cramér's V against the square root of epsilon squared).
    """
    from custseg.profile.rules import label

    seg = table[segment].to_numpy()
    ids = sorted(int(s) for s in pd.unique(seg) if s != -1)
    skipped: dict[str, str] = {}
    found: list[dict[str, Any]] = []
    tested: list[str] = []
    flags: dict[str, tuple[float, float]] = {}  # two-valued numbers (0/1): tested as categories
    for col in numeric:
        x = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
        present = ~np.isnan(x)
        values, groups = x[present], seg[present]
        low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)
        if low == high:
            skipped[col] = "constant"
            continue
        if np.all((values == low) | (values == high)):
            flags[col] = (low, high)
            continue
        tested.append(col)
        ranks = stats.rankdata(values)
        tie = stats.tiecorrect(ranks)
        for seg_id in ids:
            inside = groups == seg_id
            _, p, eps = kruskal_two(values, inside, ranks, tie)
            if inside.sum() and (~inside).sum():
                found.append({"segment": seg_id, "column": col, "test": "kruskal",
                              "p_value": p, "effect": "epsilon_squared", "effect_size": eps,
                              "median": float(np.median(values[inside])),
                              "rest_median": float(np.median(values[~inside]))})
    index = {seg_id: i for i, seg_id in enumerate(ids)}
    group = pd.Series(seg).map(index).fillna(len(ids)).to_numpy(np.int64)  # others: last
    for col in [*categorical, *flags]:
        if col in flags:
            x = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
            low, high = flags[col]
            codes = np.where(x == high, 1, np.where(x == low, 0, -1))
            levels = [f"{low:g}", f"{high:g}"]
        else:
            codes, levels = _codes(table[col])
        if len(levels) < 2:
            skipped[col] = "constant"
            continue
        if len(levels) > MAX_LEVELS:
            skipped[col] = f"{len(levels)} levels (more than {MAX_LEVELS})"
            continue
        tested.append(col)
        counts = _level_counts(codes, group, len(ids) + 1, len(levels))
        total = counts.sum(axis=0)
        for seg_id in ids:
            mine = counts[index[seg_id]]
            pair = np.vstack([mine, total - mine])
            if mine.sum() == 0 or pair[1].sum() == 0:
                continue
            _, p, v = _chi2(pair)
            shares = pair / pair.sum(axis=1, keepdims=True)
            # the level most over-represented in the segment; a flag's larger value
            at = 1 if col in flags else int(np.argmax(shares[0] - shares[1]))
            found.append({"segment": seg_id, "column": col, "test": "chi2", "p_value": p,
                          "effect": "cramers_v", "effect_size": v, "level": levels[at],
                          "flag": col in flags, "share": float(shares[0, at]),
                          "rest_share": float(shares[1, at])})
    adjusted = holm([f["p_value"] for f in found])
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for f, p_adj in zip(found, adjusted, strict=True):
        big = f["effect_size"] >= (min_epsilon2 if f["test"] == "kruskal" else min_cramers_v)
        if p_adj >= alpha or not big:
            continue
        words = label(f["column"], labels)
        if f["test"] == "kruskal":
            text = (f"{words}: median {_num(f['median'])} vs {_num(f['rest_median'])} "
                    f"({_p_text(p_adj)}, ε² = {f['effect_size']:.2f})")
        else:
            what = f"{words} = {f['level']}:" if f["flag"] else f"{words}: {f['level']}"
            text = (f"{what} {f['share']:.0%} vs {f['rest_share']:.0%} "
                    f"({_p_text(p_adj)}, V = {f['effect_size']:.2f})")
        entry = {k: v for k, v in f.items() if k != "segment"}
        entry.update(p_value=float(f"{f['p_value']:.4g}"), p_adjusted=float(f"{p_adj:.4g}"),
                     effect_size=round(f["effect_size"], 4), text=text)
        out[f["segment"]].append(entry)
    for entries in out.values():  # strongest first: V and the root of epsilon² compare
        entries.sort(key=lambda e: -(e["effect_size"] ** 0.5 if e["test"] == "kruskal"
                                     else e["effect_size"]))
    info = {"tests": len(found), "correction": "holm", "alpha": alpha,
            "min_effect": {"epsilon_squared": min_epsilon2, "cramers_v": min_cramers_v},
            "columns": tested, "skipped": skipped}
    return out, info


def customer_table_differences(table: pd.DataFrame, customer_table: Mapping[str, Any],
                               clustered: Sequence[str], *, segment: str = "segment",
                               labels: Mapping[str, str] | None = None
                               ) -> tuple[dict[int, list[dict[str, Any]]], dict[str, Any]]:
    """:func:`demographic_differences` over the columns of a customer table (as described
    by :func:`~custseg.io._customers.load_customers`), in ``table`` under their own names or,
    when they clash with a transaction feature, as ``<name>_customer``.

    Columns used for clustering are not tested: segments differ in them by construction,
    so their p-values would mean nothing (they are listed as skipped)."""
    def present(col: str) -> str | None:
        for name in (f"{col}_customer", col):
            if name in table.columns and name != segment:
                return name
        return None

    numeric, categorical, skipped = [], [], {}
    for kind, out in (("numeric", numeric), ("categorical", categorical)):
        for col in customer_table.get(kind, []):
            name = present(col)
            if name is None:
                continue
            if name in clustered:
                skipped[name] = "used for clustering"
            elif kind == "numeric" and _looks_like_id(
                    name, pd.to_numeric(table[name], errors="coerce"), len(table)):
                skipped[name] = "an identifier"
            else:
                out.append(name)
    found, info = demographic_differences(table, numeric, categorical, segment=segment,
                                          labels=labels)
    info["skipped"] = {**skipped, **info["skipped"]}
    return found, info
