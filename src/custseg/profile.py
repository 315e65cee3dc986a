"""Segment profiles, plain-language names, descriptions and recommended actions.

A profile summarises a segment against all customers: size, revenue share, mean, median
and z-score of every numeric column (on a log scale for amounts and counts), top
countries, the mix of RFM segments and of categorical columns (demographics). Names come
from rules kept as data (``data/segment_names.json``, replaceable): each rule states
conditions on the profile ("monetary is the top segment", "recency z > 0.5"), and each
name goes to the one segment that fits it best, so names are unique and agree with the
numbers. Customer tables without transactions get names from their most distinguishing
columns ("Young high spenders").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import ConfigError

UNCLUSTERED = "Unclustered"
#: Columns that are labels or scores, never profiled as features.
NOT_PROFILED = ("customer_id", "segment", "segment_name", "r_score", "f_score", "m_score",
                "rfm_code", "rfm_segment")
#: Transaction features that identify transaction data.
TRANSACTIONS = ("recency", "frequency", "monetary")
_RULE = re.compile(r"^(top|bottom|[<>]-?\d+(\.\d+)?)$")


def default_naming_rules() -> list[dict[str, Any]]:
    text = resources.files("custseg").joinpath("data/segment_names.json").read_text("utf-8")
    return json.loads(text)["rules"]


def check_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate naming rules: a name, conditions in the known forms, 2 to 4 actions."""
    if not isinstance(rules, list) or not rules:
        raise ConfigError("naming_rules must be a non-empty list of {name, when, actions}.")
    for rule in rules:
        name = rule.get("name") if isinstance(rule, dict) else None
        if not isinstance(name, str) or not name:
            raise ConfigError(f"A naming rule has no name: {rule!r}.")
        for feature, conds in rule.get("when", {}).items():
            for cond in conds if isinstance(conds, list) else [conds]:
                if not isinstance(cond, str) or not _RULE.match(cond.replace(" ", "")):
                    raise ConfigError(
                        f"Naming rule {name!r}: condition {feature}: {cond!r} must be 'top', "
                        "'bottom', '>Z' or '<Z' (Z a z-score, e.g. '>0.5'), or a list of them.")
        actions = rule.get("actions", [])
        if not (2 <= len(actions) <= 4):
            raise ConfigError(f"Naming rule {name!r} needs 2 to 4 actions; it has {len(actions)}.")
    return rules


# -------------------------------------------------------------------------- profiles
def _scale(values: pd.Series) -> pd.Series:
    """Log scale for non-negative skewed columns (amounts, counts), else as is."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    if v.min() >= 0 and v.skew() > 1:
        return np.log1p(v)
    return v


def build_profiles(segments: pd.DataFrame) -> dict[int, dict[str, Any]]:
    """Profile of every segment id (including -1, unclustered) of a labelled table."""
    n = len(segments)
    numeric = [c for c in segments.columns if c not in NOT_PROFILED
               and pd.api.types.is_numeric_dtype(segments[c])
               and not pd.api.types.is_bool_dtype(segments[c])]
    categorical = [c for c in segments.columns if c not in NOT_PROFILED and c not in numeric
                   and c != "country" and segments[c].nunique() <= 20]
    scaled = {c: _scale(segments[c]) for c in numeric}
    revenue = float(segments["monetary"].sum()) if "monetary" in segments else None
    profiles: dict[int, dict[str, Any]] = {}
    for seg_id, rows in segments.groupby("segment", sort=True):
        idx = rows.index
        p: dict[str, Any] = {"customers": len(rows), "share": round(len(rows) / n, 4)}
        if revenue is not None:
            p["revenue_share"] = round(float(rows["monetary"].sum()) / revenue, 4) \
                if revenue else 0.0
        feats = {}
        for c in numeric:
            col, sc = segments.loc[idx, c], scaled[c]
            std = sc.std()
            z = (sc.loc[idx].mean() - sc.mean()) / std if std and std == std else 0.0
            feats[c] = {"mean": _num(col.mean()), "median": _num(col.median()),
                        "z": _num(z, 2), "all_mean": _num(segments[c].mean())}
        p["features"] = feats
        if "country" in segments:
            top = rows["country"].value_counts(normalize=True).head(3)
            p["top_countries"] = [{"country": str(k), "share": round(float(v), 4)}
                                  for k, v in top.items()]
        if "rfm_segment" in segments:
            mix = rows["rfm_segment"].value_counts(normalize=True)
            p["rfm_mix"] = {str(k): round(float(v), 4) for k, v in mix.items()}
        if categorical:
            p["categories"] = {c: {str(k): round(float(v), 4) for k, v in
                                   rows[c].value_counts(normalize=True).head(5).items()}
                               for c in categorical}
        profiles[int(seg_id)] = p
    return profiles


# ----------------------------------------------------------------------------- names
def name_segments(profiles: Mapping[int, dict[str, Any]],
                  rules: list[dict[str, Any]] | None = None) -> dict[int, dict[str, Any]]:
    """``{segment id: {"name", "description", "actions"}}``, names unique within the run."""
    ids = [i for i in profiles if i != -1]
    first = profiles[ids[0]] if ids else {"features": {}}
    transactional = all(f in first["features"] for f in TRANSACTIONS)
    named = (_by_rules(profiles, ids, check_rules(rules or default_naming_rules()))
             if transactional else _by_columns(profiles, ids))
    out = {}
    for i in profiles:
        if i == -1:
            out[i] = {"name": UNCLUSTERED, "actions": [
                "Look at them one by one: they fit no segment", "Exclude them from "
                "segment-wide campaigns until more data places them"]}
        else:
            out[i] = named[i]
        out[i]["description"] = describe(profiles[i], transactional)
    return out


def _by_rules(profiles, ids, rules) -> dict[int, dict[str, Any]]:
    means = {f: {i: profiles[i]["features"][f]["mean"] for i in ids}
             for f in profiles[ids[0]]["features"]}
    free, result = set(ids), {}
    for rule in rules:
        fits = [(score, i) for i in sorted(free)
                if (score := _fit(rule.get("when", {}), profiles[i], means, i)) is not None]
        if fits:
            _, best = max(fits)
            result[best] = {"name": rule["name"], "actions": list(rule["actions"])}
            free.discard(best)
    for i in sorted(free):  # more segments than rules: describe them
        result[i] = {"name": _describing_name(profiles[i]),
                     "actions": ["Test offers tailored to what sets them apart",
                                 "Measure their response before scaling up"]}
    return _unique(result)


def _fit(when: dict[str, str], profile: dict[str, Any], means, seg: int) -> float | None:
    """How well a segment fits a rule's conditions (None: it does not)."""
    score = 0.0
    flat = [(f, c) for f, conds in when.items()
            for c in (conds if isinstance(conds, list) else [conds])]
    for feature, cond in flat:
        stats = profile["features"].get(feature)
        if stats is None or stats["z"] is None:
            return None
        cond = cond.replace(" ", "")
        if cond in ("top", "bottom"):
            values = [v for v in means[feature].values() if v is not None]
            target = max(values) if cond == "top" else min(values)
            if stats["mean"] != target:
                return None
            score += abs(stats["z"])
        else:
            limit = float(cond[1:])
            margin = stats["z"] - limit if cond[0] == ">" else limit - stats["z"]
            if margin <= 0:
                return None
            score += margin
    return score


_WORDS = [  # (pattern on the column name, high word, low word, is a noun for the people)
    (re.compile(r"spend|purchase|sales|revenue|monetary"), "high spenders", "low spenders", True),
    (re.compile(r"age"), "Older", "Young", False),
    (re.compile(r"income|salary|earn|wealth"), "High-income", "Low-income", False),
    (re.compile(r"frequen|visit|orders"), "frequent", "infrequent", False),
]


def _describing_name(profile: dict[str, Any]) -> str:
    """Name from the two most distinguishing numeric columns ("Young high spenders")."""
    feats = sorted(((abs(s["z"] or 0), c, s["z"] or 0) for c, s in profile["features"].items()),
                   reverse=True)
    adjectives, noun = [], "customers"
    for _, col, z in feats[:2]:
        if abs(z) < 0.25:
            continue
        for pattern, high, low, is_noun in _WORDS:
            if pattern.search(col.lower()):
                word = high if z > 0 else low
                if is_noun and noun == "customers":
                    noun = word
                else:
                    adjectives.append(word)
                break
        else:
            adjectives.append(f"{'high' if z > 0 else 'low'} {col}")
    if not adjectives and noun == "customers":
        return "Average customers"
    text = " ".join([*adjectives, noun])
    return text[0].upper() + text[1:]


def _by_columns(profiles, ids) -> dict[int, dict[str, Any]]:
    result = {}
    for i in ids:
        name = _describing_name(profiles[i])
        result[i] = {"name": name, "actions": _table_actions(profiles[i])}
    return _unique(result)


def _table_actions(profile: dict[str, Any]) -> list[str]:
    actions = []
    z = {c: s["z"] or 0 for c, s in profile["features"].items()}
    spend = next((v for c, v in z.items() if _WORDS[0][0].search(c.lower())), None)
    income = next((v for c, v in z.items() if _WORDS[2][0].search(c.lower())), None)
    age = next((v for c, v in z.items() if _WORDS[1][0].search(c.lower())), None)
    if spend is not None and spend > 0.25:
        actions += ["Reward them with loyalty perks and early access",
                    "Upsell premium products that match their spending"]
    elif spend is not None and spend < -0.25:
        if income is not None and income > 0.25:
            actions.append("Win a larger share of their budget with premium, personal offers")
        actions.append("Use promotions and reminders to raise engagement")
    if age is not None and abs(age) > 0.25:
        actions.append("Reach them on social and mobile channels" if age < 0 else
                       "Reach them by email and personal service")
    actions += ["Test offers tailored to what sets them apart",
                "Ask a few of them what they need (short survey)"]
    return actions[:4]


def _unique(result: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    seen: dict[str, int] = {}
    for i in sorted(result):
        name = result[i]["name"]
        if name in seen:
            seen[name] += 1
            result[i]["name"] = f"{name} ({seen[name]})"
        else:
            seen[name] = 1
    return result


# ----------------------------------------------------------------------- descriptions
def describe(profile: dict[str, Any], transactional: bool) -> str:
    """One or two sentences with numbers."""
    head = f"{profile['customers']:,} customers ({profile['share']:.0%})"
    f = profile["features"]
    if transactional:
        text = head
        if "revenue_share" in profile:
            text += f" bringing {profile['revenue_share']:.0%} of revenue"
        text += (f"; {f['frequency']['mean']:.1f} orders on average, the last "
                 f"{f['recency']['median']:.0f} days ago (median)")
        if "avg_order_value" in f and f["avg_order_value"]["mean"] is not None:
            text += f", {f['avg_order_value']['median']:,.2f} per order (median)"
        return text + "."
    top = sorted(((abs(s["z"] or 0), c, s) for c, s in f.items()), reverse=True)[:3]
    parts = [f"{c} {s['mean']:,.1f} on average (all customers: {s['all_mean']:,.1f})"
             for _, c, s in top]
    return head + ("; " + "; ".join(parts) if parts else "") + "."


def _num(v, digits: int = 4) -> float | None:
    return None if v is None or pd.isna(v) else round(float(v), digits)


# ------------------------------------------------------------- from the order lines
def line_profiles(con, labels: pd.DataFrame, top: int = 5
                  ) -> tuple[dict[int, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Top products per segment and the monthly trend, computed in the engine from the
    cleaned ``lines`` table and ``labels`` (customer_id, segment).

    ``con`` is a DuckDB connection, or :class:`custseg.engines.spark.SparkLines`."""
    con.register("custseg_labels", labels[["customer_id", "segment"]])
    month = ("date_format(invoice_date, 'yyyy-MM')" if getattr(con, "dialect", "") == "spark"
             else "strftime(invoice_date, '%Y-%m')")
    try:
        products = con.execute(f"""
            SELECT segment, product_id, revenue, customers FROM (
                SELECT *, row_number() OVER (PARTITION BY segment
                                             ORDER BY revenue DESC, product_id) AS rank
                FROM (SELECT segment, product_id,
                             CAST(sum(CAST(value AS DECIMAL(38, 6))) AS DOUBLE) AS revenue,
                             count(DISTINCT customer_id) AS customers
                      FROM lines JOIN custseg_labels USING (customer_id)
                      WHERE status = 'purchase' AND product_id IS NOT NULL
                      GROUP BY segment, product_id) AS per_product) AS ranked
            WHERE rank <= {int(top)}
            ORDER BY segment, revenue DESC, product_id""").df()
        trend = con.execute(f"""
            SELECT segment, {month} AS month,
                   CAST(sum(CAST(value AS DECIMAL(38, 6))) AS DOUBLE) AS revenue,
                   count(DISTINCT customer_id) AS active_customers
            FROM lines JOIN custseg_labels USING (customer_id)
            WHERE status = 'purchase'
            GROUP BY ALL ORDER BY month, segment""").df()
    finally:
        con.unregister("custseg_labels")
    tops: dict[int, list[dict[str, Any]]] = {}
    for row in products.itertuples(index=False):
        tops.setdefault(int(row.segment), []).append(
            {"product": str(row.product_id), "revenue": round(float(row.revenue), 2),
             "customers": int(row.customers)})
    months = [{"month": r.month, "segment": int(r.segment), "revenue": round(float(r.revenue), 2),
               "active_customers": int(r.active_customers)} for r in trend.itertuples(index=False)]
    return tops, months
