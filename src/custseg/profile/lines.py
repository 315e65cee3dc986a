"""Segment profiles from the order lines: what each segment buys more often than all
customers do, its best-sellers, its monthly trend and cohort retention.

The inputs are the small tables :func:`custseg.engines.lines.segment_lines` computes in
the engine; these functions only reshape them for the summary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Mapping
from typing import Any

import pandas as pd


def month_text(index: int) -> str:
    """``year * 12 + month - 1`` as ``YYYY-MM``.

    >>> month_text(2011 * 12 + 11)
    '2011-12'
    """
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _item(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"item": str(row.label)}
    if row.kind == "products" and row.label != row.item:
        out["id"] = str(row.item)
    return {**out, "buyers": int(row.buyers), "support": round(float(row.support), 4),
            "lift": round(float(row.lift), 3), "revenue": round(float(row.revenue), 2)}


def over_represented(items: pd.DataFrame) -> dict[Hashable, dict[str, list[dict[str, Any]]]]:
    """Segment -> kind (products, categories, countries) -> its listed items, highest lift
    first; every kind computed is present, empty when nothing stands out."""
    kinds = list(dict.fromkeys(items["kind"]))
    out: dict[Hashable, dict[str, list[dict[str, Any]]]] = {}
    for segment, rows in items.groupby("segment", sort=False):
        listed = rows[rows["listed"].astype(bool)].sort_values(
            ["lift", "item"], ascending=[False, True], kind="stable")
        out[segment] = {kind: [_item(r) for r in listed[listed["kind"] == kind].itertuples()]
                        for kind in kinds}
    return out


def best_sellers(items: pd.DataFrame) -> dict[Hashable, list[dict[str, Any]]]:
    """Segment -> its products with the most revenue (product, id, revenue, customers)."""
    rows = items[(items["kind"] == "products") & items["best_seller"].astype(bool)]
    out: dict[Hashable, list[dict[str, Any]]] = {}
    for segment, group in rows.groupby("segment", sort=False):
        out[segment] = [
            {"product": str(r.label), **({"id": str(r.item)} if r.label != r.item else {}),
             "revenue": round(float(r.revenue), 2), "customers": int(r.buyers)}
            for r in group.sort_values(["revenue", "item"], ascending=[False, True],
                                       kind="stable").itertuples()]
    return out


def monthly_trend(months: pd.DataFrame) -> list[dict[str, Any]]:
    """Revenue and active customers per segment and month, months in order."""
    per = months.groupby(["month", "segment"], sort=True).agg(
        revenue=("revenue", "sum"), active_customers=("customers", "sum")).reset_index()
    return [{"month": month_text(int(r.month)), "segment": int(r.segment),
             "revenue": round(float(r.revenue), 2), "active_customers": int(r.active_customers)}
            for r in per.itertuples(index=False)]


def cohort_retention(months: pd.DataFrame, *, as_of: dt.date, max_cohorts: int,
                     names: Mapping[Hashable, str] | None = None) -> dict[str, Any]:
    """The ``cohorts`` block: for each of the latest ``max_cohorts`` monthly cohorts (month
    of the first purchase), the share of its customers buying 0, 1, 2, ... months later;
    with ``names`` (segment -> name) also per segment."""
    first = sorted(months["cohort"].unique())
    kept = first[-max_cohorts:]
    shown = months[months["cohort"].isin(kept)]
    rows = _retention(shown.groupby(["cohort", "month"], as_index=False)["customers"].sum())
    if names is not None:
        for segment, group in shown.groupby("segment", sort=False):
            per = group.groupby(["cohort", "month"], as_index=False)["customers"].sum()
            rows += [{"segment": names[segment], **r} for r in _retention(per)]
    partial = month_text(as_of.year * 12 + as_of.month - 1) if as_of.day != 1 else None
    return {"by_segment": names is not None, "cohorts": len(kept),
            "left_out": len(first) - len(kept), "partial_month": partial, "rows": rows}


def _retention(per: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of one table of (cohort, month, customers): shares of the cohort's size, the
    customers buying in its first month."""
    size = per[per["month"] == per["cohort"]].set_index("cohort")["customers"]
    per = per.assign(size=per["cohort"].map(size)).sort_values(["cohort", "month"])
    return [{"cohort": month_text(int(r.cohort)), "months_since": int(r.month - r.cohort),
             "customers": int(r.customers), "share": round(float(r.customers / r.size), 4)}
            for r in per.itertuples(index=False)]
