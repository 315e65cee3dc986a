"""Lifecycle stages: where each customer of an order history stands, read from his own
rhythm and from a churn risk that passed the holdout.

A customer's typical gap is his mean days between orders (``mean_days_between_orders``:
days from the first to the last order over orders - 1); a one-time buyer's, or one whose
orders all fell on one day, is the repeat buyers' median. His silence is his recency in
those gaps. The stages, decided in this order (thresholds: :class:`~custseg.core.config.
LifecycleConfig`):

- **lapsed**: silent for more than ``lapsed_gaps`` gaps;
- **new**: one purchase day, within ``active_gaps`` gaps;
- **reactivated**: back within ``active_gaps`` gaps, after a silence of more than
  ``reactivated_gaps`` of his earlier gaps (``days_before_last_purchase``);
- **active**: within ``active_gaps`` gaps;
- **at risk**: between the two, and at risk by the checked churn risk;
- **cooling**: between the two otherwise (every such customer when no model passed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from custseg.core.config import LifecycleConfig
from custseg.core.exceptions import ConfigError

#: The stages, from the most engaged to the least.
STAGES = ("new", "active", "reactivated", "cooling", "at risk", "lapsed")

#: What a stage is to a marketer deciding on one action: still buying in rhythm
#: (engaged), overdue (cooling), or gone quiet (lapsed).
STATE = {"new": "engaged", "active": "engaged", "reactivated": "engaged",
         "cooling": "cooling", "at risk": "cooling", "lapsed": "lapsed"}

#: A typical gap shorter than a day (orders of one day) says nothing of a rhythm.
MIN_GAP_DAYS = 1.0


def typical_gaps(features: pd.DataFrame) -> tuple[pd.Series, float | None]:
    """Each customer's typical days between orders (the repeat buyers' median for the
    others), and that median (None without repeat buyers)."""
    own = pd.to_numeric(features["mean_days_between_orders"], errors="coerce").astype(float)
    own = own.where(own >= MIN_GAP_DAYS)
    median = float(own.median()) if own.notna().any() else None
    return own.fillna(np.nan if median is None else median), median


def stages(features: pd.DataFrame, config: LifecycleConfig | None = None,
           at_risk: pd.Series | None = None) -> pd.DataFrame:
    """``stage`` and ``stage_reason`` of each customer (the features' index); ``at_risk``:
    who the checked churn risk puts at risk (None: no model passed its check)."""
    c = config or LifecycleConfig()
    if not c.active_gaps < c.lapsed_gaps:
        raise ConfigError(f"lifecycle.active_gaps ({c.active_gaps}) must be below "
                          f"lifecycle.lapsed_gaps ({c.lapsed_gaps}).")
    gap, median = typical_gaps(features)
    recency = features["recency"].astype(float)
    days = features["purchase_days"].astype(float)
    if median is None:  # nobody bought twice: one purchase each, no rhythm to read
        stage = pd.Series("new", index=features.index, dtype="str")
        reason = [f"one purchase, {r} days ago; nobody bought twice, so there is no rhythm "
                  "to be overdue against" for r in _whole(recency)]
        return pd.DataFrame({"stage": stage, "stage_reason": pd.Series(
            reason, index=features.index, dtype="str")})
    silence = recency / gap
    one = days <= 1
    before = pd.to_numeric(features["days_before_last_purchase"], errors="coerce").astype(
        float) if "days_before_last_purchase" in features else pd.Series(np.nan, features.index)
    span = (features["tenure"] - features["recency"]).astype(float)
    earlier = ((span - before) / (days - 2)).where(days >= 3)
    earlier = earlier.where(earlier >= MIN_GAP_DAYS, median)
    risky = (at_risk.reindex(features.index).fillna(False).astype(bool)
             if at_risk is not None else pd.Series(False, index=features.index))
    within, beyond = silence <= c.active_gaps, silence > c.lapsed_gaps
    back = ~one & within & (before > c.reactivated_gaps * earlier)
    named = np.array(["lapsed", "new", "reactivated", "active", "at risk", "cooling"],
                     dtype=object)  # the stages by code: one pointer a customer, not 44 bytes
    stage = named[np.select([beyond, one & within, back, within, risky], range(5), default=5)]
    # Each reason is written for its own customers, each in one pass of f-strings (a chain
    # of Series additions made a Series of strings per step: 2.9 GB at 5M customers), and
    # kept as text in one buffer (the str dtype), not as millions of Python strings.
    reason = np.full(len(stage), "", dtype=object)
    whose = (" of their typical ", " of the repeat buyers' typical ")
    quiet = (~within & (stage != "reactivated")).to_numpy()
    reason[quiet] = [f"silent {r} days: {s}{whose[o]}{g}-day gaps" for r, s, o, g in zip(
        _whole(recency[quiet]), _tenths(silence[quiet]), one[quiet].tolist(),
        _whole(gap[quiet]), strict=True)]
    risk = stage == "at risk"
    reason[risk] = [f"{r}; at risk by the checked churn risk" for r in reason[risk]]
    mine = stage == "active"
    reason[mine] = [f"last purchase {r} days ago; they buy about every {g} days"
                    for r, g in zip(_whole(recency[mine]), _whole(gap[mine]), strict=True)]
    mine = stage == "new"
    reason[mine] = [f"first and only purchase {r} days ago (repeat buyers buy every {g} days)"
                    for r, g in zip(_whole(recency[mine]), _whole(gap[mine]), strict=True)]
    mine = stage == "reactivated"
    earlier_whose = (" of the repeat buyers' typical ", " of their earlier ")
    reason[mine] = [f"back {r} days ago after {b} silent days, {t}{earlier_whose[w]}{e}-day gaps"
                    for r, b, t, w, e in zip(
                        _whole(recency[mine]), _whole(before[mine]),
                        _tenths(before[mine] / earlier[mine]), (days[mine] >= 3).tolist(),
                        _whole(earlier[mine]), strict=True)]
    return pd.DataFrame({"stage": pd.Series(stage, index=features.index, dtype="str"),
                         "stage_reason": pd.Series(reason, index=features.index, dtype="str")})


def _whole(values: pd.Series) -> list[str]:
    """Each value rounded to a whole number, as text ("<NA>" where missing)."""
    return values.round().astype("Int64").astype(str).tolist()


def _tenths(values: pd.Series) -> list[str]:
    """Each value rounded to tenths, as text."""
    return values.round(1).astype(str).tolist()


def stage_table(frame: pd.DataFrame, gap: pd.Series) -> list[dict]:
    """Per stage (in :data:`STAGES` order, those with customers): customers, their share,
    their share of revenue, and their median recency and typical gap (``gap``: from
    :func:`typical_gaps`)."""
    total, revenue = len(frame), float(frame["monetary"].sum())
    rows = []
    for name in STAGES:
        mine = frame["stage"] == name
        n = int(mine.sum())
        if not n:
            continue
        rows.append({"stage": name, "state": STATE[name], "customers": n,
                     "share": round(n / total, 4),
                     "revenue_share": (round(float(frame.loc[mine, "monetary"].sum())
                                             / revenue, 4) if revenue > 0 else None),
                     "median_recency": float(frame.loc[mine, "recency"].median()),
                     "median_gap_days": (round(float(gap[mine].median()), 1)
                                         if gap[mine].notna().any() else None)})
    return rows
