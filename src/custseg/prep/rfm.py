"""RFM scoring: balanced quintile scores and the named segments.

Scores run 1..5 with 5 best (most recent, most frequent, highest spend). Equal values
always get equal scores; the cut points are chosen among the distinct values so that each
score holds as close to a fifth of the customers as ties allow, and a warning says when a
score is far from a fifth. The cut points are kept, so new customers can be scored against
them later without refitting.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd

from custseg.core.exceptions import ConfigError

N_SCORES = 5
#: Column scored -> True when a larger value is better.
RFM_COLUMNS = {"recency": False, "frequency": True, "monetary": True}


def balanced_edges(values: np.ndarray, n_bins: int = N_SCORES) -> list[float]:
    """Upper bounds of the first ``n_bins - 1`` bins, chosen among distinct values.

    A value ``v`` falls in bin ``searchsorted(edges, v, side="left")``. With heavy ties a
    bin takes the whole tie, and the remaining customers are shared evenly by the bins
    left, so no score is empty while distinct values remain.

    >>> balanced_edges(np.array([1, 1, 1, 1, 2, 3, 4, 5, 6, 7]))
    [1.0, 2.0, 4.0, 5.0]
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return []
    uniq, counts = np.unique(values, return_counts=True)
    cum = np.cumsum(counts)
    total = cum[-1]
    bins = min(n_bins, uniq.size)
    edges: list[float] = []
    start, placed = 0, 0
    for b in range(bins - 1):
        left = bins - b
        target = placed + (total - placed) / left
        stop = uniq.size - (left - 1)  # leave a distinct value for each later bin
        window = cum[start:stop]
        i = start + int(np.argmin(np.abs(window - target)))
        edges.append(float(uniq[i]))
        placed, start = cum[i], i + 1
    return edges


def score(values: pd.Series | np.ndarray, edges: list[float], higher_is_better: bool = True,
          n_scores: int = N_SCORES) -> np.ndarray:
    """Scores 1..n_scores from stored edges; fewer bins are spread over the full range."""
    values = np.asarray(values, dtype=float)
    k = len(edges) + 1
    bins = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    if k == 1:
        scores = np.full(values.shape, (n_scores + 1) // 2)
    else:
        scores = 1 + np.rint(bins * (n_scores - 1) / (k - 1)).astype(int)
    if not higher_is_better:
        scores = n_scores + 1 - scores
    return scores.astype(int)


def check_segment_map(segments: Mapping[str, list[str]]) -> dict[str, str]:
    """Code -> segment name; every one of the 125 cells must appear exactly once."""
    cells = {"".join(map(str, c)) for c in itertools.product(range(1, 6), repeat=3)}
    owner: dict[str, str] = {}
    for name, codes in segments.items():
        for code in codes:
            code = str(code)
            if code not in cells:
                raise ConfigError(f"RFM segment {name!r}: {code!r} is not a cell; cells are "
                                  "three digits 1-5 such as '545'.")
            if code in owner:
                raise ConfigError(f"RFM cell {code} is in both {owner[code]!r} and {name!r}; "
                                  "each cell must belong to one segment.")
            owner[code] = name
    missing = sorted(cells - set(owner))
    if missing:
        raise ConfigError(f"RFM segments leave {len(missing)} cell(s) unassigned, e.g. "
                          f"{', '.join(missing[:5])}; every one of the 125 cells needs a segment.")
    return owner


def fit_edges(features: pd.DataFrame) -> dict[str, list[float]]:
    """Balanced edges for recency, frequency and monetary."""
    return {col: balanced_edges(features[col].to_numpy()) for col in RFM_COLUMNS}


def score_warnings(features: pd.DataFrame, scored: pd.DataFrame) -> list[str]:
    """Say where ties kept a score far from a fifth of the customers."""
    warnings = []
    n = len(scored)
    if n < 2 * N_SCORES:
        return [f"Only {n} customers: RFM scores are rough with so few."] if n else []
    for col, letter in zip(RFM_COLUMNS, "rfm", strict=True):
        shares = scored[f"{letter}_score"].value_counts(normalize=True)
        distinct = features[col].nunique()
        if distinct < N_SCORES:
            used = ", ".join(str(s) for s in sorted(shares.index))
            warnings.append(f"{col} has only {distinct} distinct value(s), so "
                            f"{letter.upper()} scores use only {used}.")
            continue
        worst = (shares - 1 / N_SCORES).abs().idxmax()
        if abs(shares[worst] - 1 / N_SCORES) > 0.05:
            warnings.append(
                f"{col}: tied values keep {letter.upper()} score {worst} at "
                f"{shares[worst]:.0%} of customers (target 20%).")
    return warnings


def rfm_scores(features: pd.DataFrame, edges: Mapping[str, list[float]] | None = None,
               segments: Mapping[str, list[str]] | None = None) -> pd.DataFrame:
    """Add ``r_score, f_score, m_score, rfm_code, rfm_segment`` to a feature table.

    ``edges`` from :func:`fit_edges` (fitted on ``features`` when None); ``segments``
    maps names to codes (the eleven standard segments when None).
    """
    from custseg.core.config import default_rfm_segments

    edges = fit_edges(features) if edges is None else edges
    owner = check_segment_map(segments if segments is not None else default_rfm_segments())
    out = features.copy(deep=False)  # copy-on-write: the new columns leave features as is
    for col, letter in zip(RFM_COLUMNS, "rfm", strict=True):
        out[f"{letter}_score"] = score(out[col], edges[col], RFM_COLUMNS[col])
    # the 125 codes and their names looked up by number (text built per customer costs
    # seconds at millions of customers)
    number = (out["r_score"] * 100 + out["f_score"] * 10 + out["m_score"]).to_numpy()
    cells = sorted(owner)
    at = np.searchsorted(np.array([int(c) for c in cells]), number)
    for column, text in (("rfm_code", cells), ("rfm_segment", [owner[c] for c in cells])):
        out[column] = pd.Series(np.array(text, dtype=object)[at], index=out.index, dtype="str")
    return out


def segment_summary(scored: pd.DataFrame, segments: Mapping[str, list[str]]
                    ) -> list[dict[str, object]]:
    """Per named segment, in map order: size, share, revenue share and mean R, F, M."""
    n = len(scored)
    revenue = scored["monetary"].sum()
    # one grouping of the four columns read (not a take of every column per segment)
    columns = scored[["rfm_segment", "recency", "frequency", "monetary"]]
    stats = columns.groupby("rfm_segment", sort=False).agg(
        customers=("recency", "size"), sum_monetary=("monetary", "sum"),
        mean_recency=("recency", "mean"), mean_frequency=("frequency", "mean"),
        mean_monetary=("monetary", "mean"))
    out = []
    for name in segments:
        if name in stats.index:
            g = stats.loc[name]
            size = int(g["customers"])
            out.append({
                "name": name, "customers": size, "share": round(size / n, 4),
                "revenue_share": round(float(g["sum_monetary"] / revenue), 4) if revenue else 0.0,
                "mean_recency": round(float(g["mean_recency"]), 2),
                "mean_frequency": round(float(g["mean_frequency"]), 2),
                "mean_monetary": round(float(g["mean_monetary"]), 2),
            })
        else:
            out.append({"name": name, "customers": 0, "share": 0.0, "revenue_share": 0.0,
                        "mean_recency": None, "mean_frequency": None, "mean_monetary": None})
    return out
