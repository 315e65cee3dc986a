"""Segment profiles, plain-language names, descriptions and recommended actions.

A profile summarises a segment against all customers: size, revenue share, mean, median
and z-score of every numeric column (on a log scale for amounts and counts), top
countries, the mix of RFM segments and of categorical columns (demographics), and for
order lines its at-risk share and its buying rhythm (median recency against its typical
days between orders). Names come from rules kept as data (``data/segment_names.json``,
replaceable): each rule states conditions on the profile ("monetary is the top segment",
"recency within the segment's rhythm", "at-risk share at least ``at_risk_share``"), and
each name goes to the one segment that fits it best, so names are unique and agree with
the numbers. Segments no rule fits, and customer tables without transactions, are named
from their most distinguishing columns in plain words ("High income, low spending
score"); :func:`naming_clashes` says which segments would share a name or first action.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from custseg.core.money import column_unit, currency_in, money
from custseg.core.naming_rules import SPECIAL, check_rules, default_naming_rules, listed
from custseg.io._roles import ROLES_ATTR
from custseg.prep.lifecycle import MIN_GAP_DAYS, STAGES, STATE, typical_gaps
from custseg.prep.value_columns import COLUMNS  # predicted value: in its own block
from custseg.profile.labels import humanise

UNCLUSTERED = "Unclustered"
#: Columns that are labels or scores, never profiled as features.
NOT_PROFILED = ("customer_id", "segment", "segment_name", "r_score", "f_score", "m_score",
                "rfm_code", "rfm_segment", "repeat_purchase_value", "stage", "stage_reason",
                "days_before_last_purchase", *COLUMNS)
#: Transaction features that identify transaction data.
TRANSACTIONS = ("recency", "frequency", "monetary")
#: RFM segments that together make a segment's at-risk share.
AT_RISK = ("At Risk", "Can't Lose Them", "About To Sleep")
#: Buying rhythm: a segment's median recency over its typical days between orders (the
#: median ``mean_days_between_orders`` of its repeat buyers). Up to WITHIN it buys to its
#: rhythm ("loyal", "regular" allowed); above BEYOND it has clearly stopped ("lapsed"
#: allowed); in between it is overdue, neither.
WITHIN, BEYOND = 1.5, 3.0
#: A segment with a smaller share of repeat buyers has no rhythm of its own; it is
#: measured against the rhythm of all repeat buyers.
OWN_RHYTHM = 0.5
#: Smallest |z| of a feature worth words in a name; most features in one name.
NAME_Z = 0.3
MAX_WORDS = 4
#: Share of a segment with one level of a category for "mostly <level>".
MOSTLY = 0.6
TYPICAL = "Typical customers"
_MINOR = {"and", "of", "per", "the", "a", "an", "to", "at", "in", "on", "by", "with"}


# -------------------------------------------------------------------------- profiles
def _scale(values: pd.Series) -> pd.Series:
    """Log scale for non-negative skewed columns (amounts, counts), else as is."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    if v.min() >= 0 and v.skew() > 1:
        return np.log1p(v)
    return v


def outcome_columns(frame: pd.DataFrame, roles: Mapping[str, Any] | None = None
                    ) -> list[str]:
    """The columns of ``frame`` read as outcomes (``roles``: a run's ``columns``, or the
    roles the table was read with)."""
    found = roles or frame.attrs.get(ROLES_ATTR) or {}
    return [c for c, r in found.items() if c in frame.columns
            and (r.get("role") if isinstance(r, Mapping) else r) == "outcome"]


def build_profiles(segments: pd.DataFrame, outcomes: list[str] | None = None
                   ) -> dict[int, dict[str, Any]]:
    """Profile of every segment id (including -1, unclustered) of a labelled table;
    ``outcomes`` (by default :func:`outcome_columns`) as rates against all customers
    (``outcomes``), not as features."""
    n = len(segments)
    outcomes = outcome_columns(segments) if outcomes is None else outcomes
    rates = {c: float(pd.to_numeric(segments[c], errors="coerce").mean()) for c in outcomes}
    by_outcome = (segments[outcomes].apply(pd.to_numeric, errors="coerce")
                  .groupby(segments["segment"]).mean() if outcomes else None)
    numeric = [c for c in segments.columns if c not in NOT_PROFILED and c not in outcomes
               and pd.api.types.is_numeric_dtype(segments[c])
               and not pd.api.types.is_bool_dtype(segments[c])]
    categorical = [c for c in segments.columns if c not in NOT_PROFILED and c not in numeric
                   and c not in outcomes and c != "country" and segments[c].nunique() <= 20]
    flags = [c for c in numeric if segments[c].nunique() == 2
             and set(segments[c].dropna().unique()) <= {0, 1}]
    revenue = float(segments["monetary"].sum()) if "monetary" in segments else None
    spend, basket = (
        np.sort(pd.to_numeric(segments[c], errors="coerce").dropna().to_numpy())
        if c in segments else None for c in ("monetary", "avg_order_value"))
    rhythmic = all(c in segments for c in ("recency", "frequency", "mean_days_between_orders"))
    if rhythmic:
        gaps = pd.to_numeric(segments["mean_days_between_orders"], errors="coerce")
        all_gap = _num(gaps[gaps >= MIN_GAP_DAYS].median(), 2)
        # each customer's typical gap, as his lifecycle stage reads it
        typical = typical_gaps(segments)[0].groupby(segments["segment"]).median()
    # every column's statistics per segment at once (one pass each, not one per segment)
    by = segments["segment"]
    values = segments[numeric]
    means, medians = values.groupby(by).mean(), values.groupby(by).median()
    # one scaled column at a time (all of them at once: 1.6 GB at 5M customers)
    scaled_means, overall = {}, {}
    for c in numeric:
        scaled = _scale(segments[c])
        scaled_means[c] = scaled.groupby(by).mean()
        overall[c] = (scaled.mean(), scaled.std(), values[c].mean())
    scaled_means = pd.DataFrame(scaled_means, columns=numeric)
    profiles: dict[int, dict[str, Any]] = {}
    # the loop takes each segment's rows of the columns it reads only (a take of every
    # column of millions of customers costs seconds)
    read = [c for c in ("segment", "monetary", "avg_order_value", "country", "rfm_segment",
                        "frequency", "recency", "mean_days_between_orders", "stage", *categorical)
            if c in segments]
    for seg_id, rows in segments[read].groupby("segment", sort=True):
        p: dict[str, Any] = {"customers": len(rows), "share": round(len(rows) / n, 4)}
        if revenue is not None:
            p["revenue_share"] = round(float(rows["monetary"].sum()) / revenue, 4) \
                if revenue else 0.0
        for key, column, every in (("value_rank", "monetary", spend),
                                   ("basket_rank", "avg_order_value", basket)):
            if every is not None and len(every):  # share of all customers below its median
                median = rows[column].median()
                p[key] = (round(float(np.searchsorted(every, median)) / len(every), 4)
                          if median == median else None)
        feats = {}
        for c in numeric:
            mean, std, all_mean = overall[c]
            z = (scaled_means.at[seg_id, c] - mean) / std if std and std == std else 0.0
            feats[c] = {"mean": _num(means.at[seg_id, c]), "median": _num(medians.at[seg_id, c]),
                        "z": _num(z, 2), "all_mean": _num(all_mean)}
        p["features"] = feats
        if flags:
            p["flags"] = flags
        if "country" in segments:
            top = rows["country"].value_counts(normalize=True).head(3)
            p["top_countries"] = [{"country": str(k), "share": round(float(v), 4)}
                                  for k, v in top.items()]
        if "rfm_segment" in segments:
            mix = rows["rfm_segment"].value_counts(normalize=True)
            p["rfm_mix"] = {str(k): round(float(v), 4) for k, v in mix.items()}
            p["at_risk_share"] = round(float(sum(mix.get(s, 0.0) for s in AT_RISK)), 4)
        if "stage" in segments:
            p.update(stage_mix(rows["stage"]))
        if outcomes:
            p["outcomes"] = {c: {"rate": _num(by_outcome.at[seg_id, c]),
                                 "all": _num(rates[c])} for c in outcomes}
        if rhythmic:
            p["one_time_share"] = round(float((rows["frequency"] <= 1).mean()), 4)
            p["rhythm"] = _rhythm(rows, all_gap)
            p["typical_gap"] = _num(typical.get(seg_id), 1)
        if categorical:
            p["categories"] = {c: {str(k): round(float(v), 4) for k, v in
                                   rows[c].value_counts(normalize=True).head(5).items()}
                               for c in categorical}
        profiles[int(seg_id)] = p
    return profiles


def stage_mix(stage: pd.Series) -> dict[str, Any]:
    """A group's lifecycle stages (``stages``: share of each, most engaged first;
    ``stage_counts``: customers in each) and its largest state (``state``: engaged,
    cooling or lapsed; ``state_share``: its share)."""
    counts = stage.value_counts()
    shares = counts / counts.sum()
    states = stage.map(STATE).value_counts(normalize=True)
    return {"stages": {s: round(float(shares[s]), 4) for s in STAGES if s in shares},
            "stage_counts": {s: int(counts[s]) for s in STAGES if s in counts},
            "state": str(states.index[0]), "state_share": round(float(states.iloc[0]), 4)}


def _rhythm(rows: pd.DataFrame, all_gap: float | None) -> dict[str, Any]:
    """Median recency against the typical days between orders: the segment's own (median
    over its repeat buyers) when at least OWN_RHYTHM of it are repeat buyers, else that of
    all repeat buyers."""
    gaps = pd.to_numeric(rows["mean_days_between_orders"], errors="coerce")
    gaps = gaps[gaps >= MIN_GAP_DAYS]  # orders of one day say nothing of a rhythm
    own = len(gaps) > 0 and len(gaps) >= OWN_RHYTHM * len(rows)
    gap = _num(gaps.median(), 2) if own else all_gap
    recency = _num(pd.to_numeric(rows["recency"], errors="coerce").median(), 2)
    out: dict[str, Any] = {"median_recency": recency, "typical_gap": gap, "ratio": None,
                           "status": "unknown",
                           "basis": "segment" if own else "all repeat buyers"}
    if gap and gap > 0 and recency is not None:
        ratio = recency / gap
        # ... and customer by customer (each repeat buyer against its own gap, the others
        # against the yardstick): a segment is within or beyond its rhythm only when its
        # median customer is too, so that half Champions are never called lapsed.
        own_gaps = pd.to_numeric(rows["mean_days_between_orders"], errors="coerce")
        each = (pd.to_numeric(rows["recency"], errors="coerce")
                / own_gaps.where(own_gaps > 0, gap)).median()
        out["ratio"] = round(ratio, 2)
        out["customer_ratio"] = _num(each, 2)
        both = [ratio] + ([float(each)] if each == each else [])
        out["status"] = ("within" if max(both) <= WITHIN else "beyond" if min(both) > BEYOND
                         else "between")
    return out


# ----------------------------------------------------------------------------- names
class _Context(NamedTuple):
    labels: Mapping[str, str]
    roles: Mapping[str, str]
    at_risk_share: float
    overall: Mapping[str, Mapping[str, float]]  # category column -> level -> share of all
    flags: tuple[str, ...] = ()  # 0/1 columns (of the profile being named)
    rhythm: str | None = None  # its rhythm status


class Phrase(NamedTuple):
    """Words for one feature of a segment: ``level`` ("high", "many", or None when
    ``words`` say it all) and ``words``; ``column``, ``z`` and ``role`` for actions."""
    level: str | None
    words: str
    column: str
    z: float
    role: str


def name_segments(profiles: Mapping[int, dict[str, Any]],
                  rules: list[dict[str, Any]] | None = None, *,
                  at_risk_share: float = 0.3, labels: Mapping[str, str] | None = None,
                  roles: Mapping[str, Any] | None = None, currency: str | None = None
                  ) -> dict[int, dict[str, Any]]:
    """``{segment id: {"name", "description", "actions"}}``, names unique within the run.

    ``labels`` (config ``[labels]``) names columns in words; ``roles`` (``{column: role}``
    or ``{column: {"role": role, "used_as": ...}}``, role "money", "count", "rate",
    "flag", "date" (days since), "year", "age", ...) chooses the wording of customer-table
    columns; ``currency`` is written with amounts."""
    ids = [i for i in profiles if i != -1]
    ctx = _context(profiles, at_risk_share, labels, roles)
    transactional = _transactional(profiles, ids)
    rules = check_rules(rules or default_naming_rules())
    named = ({} if not ids else _by_rules(profiles, ids, rules, ctx) if transactional
             else _by_columns(profiles, ids, ctx, currency))
    out = {}
    for i in profiles:
        if i == -1:
            out[i] = {"name": UNCLUSTERED, "actions": [
                "Look at them one by one: they fit no segment", "Exclude them from "
                "segment-wide campaigns until more data places them"]}
        else:
            out[i] = named[i]
        out[i]["description"] = describe(profiles[i], transactional, ctx.labels, currency,
                                         ctx.roles)
    return _no_repeats(out)


def _no_repeats(named: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Each action on one card only: a later card keeps its first action (what its
    customers call for), for its own segment by name when an earlier card said it, and
    drops the others an earlier card says."""
    seen: set[str] = set()
    for i in sorted(named, key=lambda i: (i == -1, i)):
        actions = named[i]["actions"]
        if not actions:
            continue
        first = actions[0] if actions[0] not in seen else \
            f"{actions[0]} ({named[i]['name']})"
        fresh = [first, *(a for a in actions[1:] if a not in seen)]
        named[i]["actions"] = fresh
        seen.update(fresh)
    return named


def naming_clashes(profiles: Mapping[int, dict[str, Any]],
                   rules: list[dict[str, Any]] | None = None, *,
                   at_risk_share: float = 0.3, labels: Mapping[str, str] | None = None,
                   roles: Mapping[str, Any] | None = None) -> list[str]:
    """One line per pair of segments that would share a name or a first action before
    names are made unique (empty: every segment is distinct in words).

    Order lines: each segment's first fitting rule (ignoring that a rule names one segment
    only), or for a segment no rule fits the words of its two most distinguishing
    features (in any order). Customer tables: those words; their first actions are not
    compared, as segments led by the same feature differ in their second. Cheap: no data
    is read."""
    ids = sorted(i for i in profiles if i != -1)
    if not ids:
        return []
    ctx = _context(profiles, at_risk_share, labels, roles)
    transactional = _transactional(profiles, ids)
    rules = check_rules(rules or default_naming_rules())
    means = _means(profiles, ids)
    keys: dict[int, tuple[Any, str, str | None]] = {}  # (what to compare, name, action)
    for i in ids:
        rule = None
        if transactional:
            rule = next((r for r in rules
                         if _fit(r.get("when", {}), profiles[i], means, ctx) is not None), None)
        if rule is not None:
            keys[i] = (rule["name"].lower(), rule["name"], rule["actions"][0])
        else:
            picked = _pick(_ranked(profiles[i], ctx), 2)
            action = _actions(picked, profiles[i], ctx, True)[0] if transactional else None
            keys[i] = (_key(picked), _compose(picked), action)
    out = []
    seen: dict[Any, int] = {}
    for i in ids:
        if keys[i][0] in seen:
            out.append(f"segments {seen[keys[i][0]]} and {i} would share the name "
                       f"{keys[i][1]!r}")
        else:
            seen[keys[i][0]] = i
    seen = {}
    for i in ids:
        action = keys[i][2]
        if action is not None and action.lower() in seen:
            out.append(f"segments {seen[action.lower()]} and {i} would share the first "
                       f"action {action!r}")
        elif action is not None:
            seen[action.lower()] = i
    return out


def _context(profiles, at_risk_share, labels, roles) -> _Context:
    flat = {str(c): _role_of(r) for c, r in (roles or {}).items()}
    overall: dict[str, dict[str, float]] = {}
    for p in profiles.values():
        for column, mix in (p.get("categories") or {}).items():
            for level, share in mix.items():
                col = overall.setdefault(column, {})
                col[level] = col.get(level, 0.0) + p["share"] * share
    return _Context(dict(labels or {}), flat, float(at_risk_share), overall)


def _role_of(role: Any) -> str:
    """A column's role; what its values became decides ("used_as": a birth year used as
    "age in 2014" is an age, a date used as "days since ..." counts days)."""
    if not isinstance(role, Mapping):
        return str(role or "")
    used = str(role.get("used_as") or "").lower()
    if used.startswith("age"):
        return "age"
    if used.startswith("days since"):
        return "date"
    return str(role.get("role") or "")


def _transactional(profiles, ids) -> bool:
    first = profiles[ids[0]] if ids else {"features": {}}
    return all(f in first["features"] for f in TRANSACTIONS)


def _means(profiles, ids) -> dict[str, dict[int, float | None]]:
    return {f: {i: profiles[i]["features"][f]["mean"] for i in ids}
            for f in profiles[ids[0]]["features"]}


def _by_rules(profiles, ids, rules, ctx: _Context) -> dict[int, dict[str, Any]]:
    """Each rule in turn names the free segment that fits it best; segments left over
    are named from their most distinguishing features."""
    means = _means(profiles, ids)
    free, result = set(ids), {}
    for rule in rules:
        fits = [(score, i) for i in sorted(free)
                if (score := _fit(rule.get("when", {}), profiles[i], means, ctx)) is not None]
        if fits:
            _, best = max(fits)
            result[best] = {"name": rule["name"], "actions": list(rule["actions"]),
                            "action_for": rule.get("for") or _states_of(rule)}
            free.discard(best)
    rest = sorted(free)
    taken = {r["name"].lower() for r in result.values()}
    for i, (name, picked) in _distinct_names(profiles, ids, rest, ctx, taken).items():
        status = (profiles[i].get("rhythm") or {}).get("status")
        said = any(p.column == "recency" and p.z > 0 for p in picked)
        if status == "beyond" and not said:
            name += ", now lapsed"
        elif _at_risk(profiles[i], ctx) and not said:
            name += ", slipping away"
        result[i] = {"name": name, "actions": _actions(picked, profiles[i], ctx, True),
                     "action_for": (["lapsed"] if status == "beyond" else ["cooling", "lapsed"]
                                    if _at_risk(profiles[i], ctx) else None)}
    return result


#: The state a rule's rhythm condition says its actions are for.
_RHYTHM_STATE = {"within": "engaged", "between": "cooling", "beyond": "lapsed"}


def _states_of(rule: dict[str, Any]) -> list[str] | None:
    """The states (engaged, cooling, lapsed) a naming rule's actions are for, from its
    conditions: its rhythm, or an at-risk share it requires (cooling and lapsed); None
    when they name neither (the action then fits whatever state the segment is in)."""
    when = rule.get("when", {})
    states = [_RHYTHM_STATE[r] for r in listed(when.get("rhythm", [])) if r in _RHYTHM_STATE]
    if not states and when.get("at_risk") == "high":
        states = ["cooling", "lapsed"]
    return states or None


def _at_risk(profile: dict[str, Any], ctx: _Context) -> bool:
    return _risk(profile) >= ctx.at_risk_share


def _risk(profile: dict[str, Any]) -> float:
    """Share of RFM At Risk, Can't Lose Them and About To Sleep customers (0 without RFM)."""
    if profile.get("at_risk_share") is not None:
        return float(profile["at_risk_share"])
    return float(sum((profile.get("rfm_mix") or {}).get(s, 0.0) for s in AT_RISK))


def _fit(when: dict[str, Any], profile: dict[str, Any], means, ctx: _Context
         ) -> float | None:
    """How well a segment fits a rule's conditions (None: it does not). A rule without an
    ``at_risk`` condition fits only segments below the at-risk share."""
    score = 0.0
    rhythm = when.get("rhythm")
    if rhythm is not None:
        allowed = listed(rhythm)
        if (profile.get("rhythm") or {}).get("status") not in allowed:
            return None
    risk = _risk(profile)
    for cond in listed(when.get("at_risk", "low")):
        cond = cond.replace(" ", "")
        if cond == "high":
            if risk < ctx.at_risk_share:
                return None
            score += risk - ctx.at_risk_share
        elif cond == "low":
            if risk >= ctx.at_risk_share:
                return None
        elif cond != "any":
            margin = _margin(risk, cond)
            if margin is None:
                return None
            score += margin
    for cond in listed(when.get("one_time", [])):
        share = profile.get("one_time_share")
        margin = None if share is None else _margin(share, cond.replace(" ", ""))
        if margin is None:
            return None
        score += margin
    for feature, conds in when.items():
        if feature in SPECIAL:
            continue
        stats = profile["features"].get(feature)
        if stats is None or stats["z"] is None:
            return None
        for cond in listed(conds):
            cond = cond.replace(" ", "")
            if cond in ("top", "bottom"):
                values = [v for v in means[feature].values() if v is not None]
                target = max(values) if cond == "top" else min(values)
                if stats["mean"] != target:
                    return None
                score += abs(stats["z"])
            else:
                margin = _margin(stats["z"], cond)
                if margin is None:
                    return None
                score += margin
    return score




def _margin(value: float, cond: str) -> float | None:
    """By how much ``value`` passes '>x' or '<x' (None: it does not)."""
    limit = float(cond[1:])
    margin = value - limit if cond[0] == ">" else limit - value
    return margin if margin > 0 else None


#: Words for the transaction features (and customer-table columns of the same name):
#: (level, words) when the segment is above, and below, all customers.
_TX_WORDS: dict[str, tuple[tuple[str | None, str], tuple[str | None, str]]] = {
    "recency": ((None, "long since last order"), (None, "ordered recently")),
    "frequency": (("many", "orders"), ("few", "orders")),
    "monetary": (("high", "spend"), ("low", "spend")),
    "tenure": ((None, "long-standing"), (None, "newly joined")),
    "avg_order_value": (("big", "baskets"), ("small", "baskets")),
    "avg_items_per_order": (("many", "items per order"), ("few", "items per order")),
    "distinct_products": (("wide", "product range"), ("narrow", "product range")),
    "return_rate": (("many", "returns"), ("few", "returns")),
    "discount_share": (("much", "spend on discounts and coupons"),
                       ("little", "spend on discounts and coupons")),
    "mean_days_between_orders": (("long", "gaps between orders"),
                                 ("short", "gaps between orders")),
}
_JOINED = re.compile(r"customer|join|enrol|signup|sign up|registration|since|first|created")


def _phrase(column: str, z: float, ctx: _Context) -> Phrase | None:
    """The words a marketer would use for one feature that is high (z > 0) or low; None
    for the recency of order lines where it would contradict the segment's rhythm
    ("ordered recently" only within it, "long since last order" only beyond it)."""
    high = z > 0
    if column == "recency" and ctx.rhythm is not None and column not in ctx.labels:
        if ctx.rhythm == "between" and high:
            return Phrase(None, "overdue", column, z, "transaction")
        if ctx.rhythm != ("beyond" if high else "within"):
            return None
    if column not in ctx.labels and column.lower() in _TX_WORDS:
        level, words = _TX_WORDS[column.lower()][0 if high else 1]
        return Phrase(level, words, column, z, "transaction")
    label = humanise(column, ctx.labels)
    words = label.split()
    role = ctx.roles.get(column) or _guess_role(column, words, ctx)
    if "age" in words or role == "age":
        return Phrase(None, "older" if high else "younger", column, z, "age")
    if role == "year":
        if "birth" in words:
            return Phrase(None, "younger" if high else "older", column, z, "age")
        return Phrase("later" if high else "earlier", label, column, z, role)
    if role == "date":  # days since the date
        if _JOINED.search(label):
            return Phrase(None, "long-standing" if high else "newly joined", column, z, role)
        return Phrase(None, f"long since {label}" if high else f"recent {label}", column, z,
                      role)
    if role == "flag" and column.endswith(NOT_GIVEN):  # a code's flag: pdays not given
        base = humanise(column.removesuffix(NOT_GIVEN), ctx.labels)
        return Phrase(None, f"mostly no {base}" if high else f"mostly with {base}", column,
                      z, "not given")
    if role == "flag":
        noun = _flag_noun(label)
        if noun != label:
            return Phrase("many" if high else "few", noun, column, z, role)
        return Phrase(None, f"mostly {label}" if high else f"rarely {label}", column, z, role)
    if role == "count" or words[:2] == ["number", "of"]:
        rest = " ".join(words[2:]) if words[:2] == ["number", "of"] and len(words) > 2 \
            else label
        return Phrase("many" if high else "few", rest, column, z, "count")
    return Phrase("high" if high else "low", label, column, z, role or "number")


def _guess_role(column: str, words: list[str], ctx: _Context) -> str:
    if column in ctx.flags:
        return "flag"
    if "year" in words:
        return "year"
    return ""


def _flag_noun(label: str) -> str:
    """The people a yes/no column picks out: "accepted campaign 3" -> "campaign 3
    responders"; the label itself when there is no such noun."""
    if m := re.match(r"(?:accepted|responded to|response to|redeemed) (.+)", label):
        return f"{m[1]} responders"
    if label in ("response", "responded", "responder", "accepted"):
        return "responders"
    if label.startswith("complain"):
        return "complainers"
    if label in ("churn", "churned", "left"):
        return "churners"
    return label


def _ranked(profile: dict[str, Any], ctx: _Context) -> list[Phrase]:
    """Phrases of the features that distinguish a segment, largest |z| first."""
    ctx = ctx._replace(flags=tuple(profile.get("flags", ())),
                       rhythm=(profile.get("rhythm") or {}).get("status"))
    feats = [(-abs(z), c, phrase) for c, s in profile["features"].items()
             if (z := s["z"]) is not None and abs(z) >= NAME_Z
             and (phrase := _phrase(c, z, ctx)) is not None]
    for column, mix in (profile.get("categories") or {}).items():
        if phrase := _category_phrase(column, mix, ctx):
            feats.append((-phrase.z, column, phrase))
    return [phrase for *_, phrase in sorted(feats, key=lambda f: f[:2])]


def _category_phrase(column: str, mix: Mapping[str, float], ctx: _Context) -> Phrase | None:
    """"mostly female": a level that at least MOSTLY of the segment has, well above its
    share of all customers (z of the share difference at least NAME_Z)."""
    if not mix:
        return None
    level, share = max(mix.items(), key=lambda kv: kv[1])
    base = ctx.overall.get(column, {}).get(level, share)
    if share < MOSTLY or not 0 < base < 1:
        return None
    z = (share - base) / (base * (1 - base)) ** 0.5
    if z < NAME_Z:
        return None
    return Phrase(None, f"mostly {level_text(column, level, ctx.labels)}", column,
                  round(z, 2), "category")


def level_text(column: str, level: str, labels: Mapping[str, str] | None = None) -> str:
    """A category's level as the data writes it (a brand keeps its capitals: "LG",
    "Food & Beverage"); a number with its column's words ("children 2"), a bare yes or no
    too ("no dependents", "with partner")."""
    level = str(level).strip()
    if level.lower() in _NO:
        return f"no {humanise(column, labels)}"
    if level.lower() in _YES:
        return f"with {humanise(column, labels)}"
    # a number or a letter says nothing without its column: "children 2", "gender F"
    return f"{humanise(column, labels)} {level}" if re.fullmatch(r"[\d.,-]+|\w", level) \
        else level


#: Levels that only say yes or no, in the languages custseg reads.
_NO = {"no", "n", "false", "não", "nao", "nein", "non"}
_YES = {"yes", "y", "true", "sí", "si", "sim", "ja", "oui"}
#: The end of a code's 0/1 column's name (see :func:`custseg.io._roles.coded_name`).
NOT_GIVEN = " not given"


def _pick(ranked: list[Phrase], n: int) -> list[Phrase]:
    """The first ``n`` phrases that keep the name free of repeated words."""
    chosen: list[Phrase] = []
    for phrase in ranked:
        if len(chosen) == n:
            break
        if not repeated_words(_compose([*chosen, phrase])):
            chosen.append(phrase)
    return chosen


def _compose(phrases: list[Phrase]) -> str:
    """"High income and wine spend, few web purchases": phrases of one level share it."""
    if not phrases:
        return TYPICAL
    groups: dict[str | None, list[str]] = {}
    parts: list[tuple[str | None, list[str]]] = []
    for p in phrases:
        if p.level is None:
            parts.append((None, [p.words]))
        elif p.level in groups:
            groups[p.level].append(p.words)
        else:
            groups[p.level] = [p.words]
            parts.append((p.level, groups[p.level]))
    text = ", ".join(words[0] if level is None else f"{level} {_join(words)}"
                     for level, words in parts)
    return text[0].upper() + text[1:]


def _join(labels: list[str]) -> str:
    """"wine spend" and "meat product spend" -> "wine and meat product spend"."""
    if len(labels) == 1:
        return labels[0]
    split = [label.split() for label in labels]
    head = 0
    while all(len(s) > head + 1 for s in split) and len({s[head] for s in split}) == 1:
        head += 1
    tail = 0
    while all(len(s) > head + tail + 1 for s in split) and len({s[-1 - tail] for s in split}) == 1:
        tail += 1
    mids = [" ".join(s[head:len(s) - tail]) for s in split]
    body = ", ".join(mids[:-1]) + " and " + mids[-1]
    return " ".join([*split[0][:head], body, *split[0][len(split[0]) - tail:]])


def repeated_words(name: str) -> list[str]:
    """Words (other than "and", "of", ...) a name uses more than once, a plural counting
    as its singular ("purchases", "purchase")."""
    counts = Counter(w[:-1] if len(w) > 3 and w.endswith("s") else w
                     for w in re.findall(r"[a-z0-9]+", name.lower()) if w not in _MINOR)
    return sorted(w for w, n in counts.items() if n > 1)


def _distinct_names(profiles, all_ids, ids, ctx: _Context, taken: set[str] = frozenset()
                    ) -> dict[int, tuple[str, list[Phrase]]]:
    """Names of ``ids`` from their one or two most distinguishing features. Segments whose
    words clash (in any order, with each other or with ``taken``) get their next feature,
    up to MAX_WORDS; then, where one of them is the extreme of all segments (``all_ids``)
    on a feature it is named for, a superlative ("oldest", "highest income"); segments
    still alike get "group A", "group B"."""
    ranked = {i: _ranked(profiles[i], ctx) for i in ids}
    want = dict.fromkeys(ids, 2)
    while True:
        picked = {i: _pick(ranked[i], want[i]) for i in ids}
        keys = {i: _key(picked[i]) for i in ids}
        counts = Counter(keys.values())
        clash = [i for i in ids if counts[keys[i]] > 1 or _compose(picked[i]).lower() in taken]
        grow = [i for i in clash if want[i] < MAX_WORDS
                and len(_pick(ranked[i], want[i] + 1)) > len(picked[i])]
        if not grow:
            break
        for i in grow:
            want[i] += 1
    for i in clash:
        others = {_key(p) for j, p in picked.items() if j != i}
        if _key(picked[i]) not in others and _compose(picked[i]).lower() not in taken:
            continue
        for pos, phrase in enumerate(picked[i]):
            best = _superlative(phrase)
            if best is None or not _extreme(profiles, all_ids, i, phrase):
                continue
            trial = [*picked[i][:pos], best, *picked[i][pos + 1:]]
            text = _compose(trial)
            if _key(trial) not in others and text.lower() not in taken \
                    and not repeated_words(text):
                picked[i] = trial
                break
    names = {i: _compose(picked[i]) for i in ids}
    return {i: (n, picked[i]) for i, n in _unique(names, picked, taken).items()}


def _unique(names: dict[int, str], picked: dict[int, list[Phrase]], taken: set[str]
            ) -> dict[int, str]:
    """Letters for segments whose words are still the same: "..., group A", "group B"."""
    groups: dict[Any, list[int]] = {}
    for i in sorted(names):
        key = names[i].lower() if names[i].lower() in taken else _key(picked[i])
        groups.setdefault(key, []).append(i)
    out = dict(names)
    for key, members in groups.items():
        if len(members) > 1 or key in taken:
            for letter, i in zip(string.ascii_uppercase, members, strict=False):
                out[i] = f"{names[i]}, group {letter}"
    return out


def _key(picked: list[Phrase]) -> frozenset:
    return frozenset((p.level, p.words) for p in picked)


_SUPERLATIVES = {
    "high": "highest", "low": "lowest", "many": "most", "few": "fewest", "big": "biggest",
    "small": "smallest", "wide": "widest", "narrow": "narrowest", "long": "longest",
    "short": "shortest", "later": "latest", "earlier": "earliest", "older": "oldest",
    "younger": "youngest", "long-standing": "longest-standing", "newly joined": "newest",
    "ordered recently": "ordered most recently",
    "long since last order": "longest since last order",
}


def _superlative(phrase: Phrase) -> Phrase | None:
    if phrase.level is not None:
        best = _SUPERLATIVES.get(phrase.level)
        return phrase._replace(level=best) if best else None
    best = _SUPERLATIVES.get(phrase.words)
    return phrase._replace(words=best) if best else None


def _extreme(profiles, ids, i: int, phrase: Phrase) -> bool:
    """Whether segment ``i`` has the highest (z > 0) or lowest mean of ``ids`` on the
    phrase's feature."""
    means = [profiles[j]["features"].get(phrase.column, {}).get("mean") for j in ids]
    means = [m for m in means if m is not None]
    mine = profiles[i]["features"].get(phrase.column, {}).get("mean")
    if mine is None or not means:
        return False
    return mine == (max(means) if phrase.z > 0 else min(means))


def _by_columns(profiles, ids, ctx: _Context, currency: str | None = None
                ) -> dict[int, dict[str, Any]]:
    out = {}
    for i, (name, picked) in _distinct_names(profiles, ids, ids, ctx).items():
        by_action = {_action(p): p for p in picked}
        out[i] = {"name": name, "actions": [
            a + _evidence(by_action[a], profiles[i], ctx, currency) if a in by_action else a
            for a in _actions(picked, profiles[i], ctx, False)]}
    return out


def _evidence(p: Phrase, profile: dict[str, Any], ctx: _Context, currency: str | None
              ) -> str:
    """The numbers behind a customer-table action: " (100% of them, 57% of all
    customers)", " (total charges €4,969 on average, €2,283 for all customers)"."""
    if p.role == "category":
        mix = (profile.get("categories") or {}).get(p.column) or {}
        if not mix:
            return ""
        level, share = max(mix.items(), key=lambda kv: kv[1])
        base = ctx.overall.get(p.column, {}).get(level)
        return "" if base is None else f" ({share:.0%} of them, {base:.0%} of all customers)"
    stats = profile["features"].get(p.column) or {}
    mean, everyone = stats.get("mean"), stats.get("all_mean")
    if mean is None or everyone is None:
        return ""
    if p.role == "not given":  # said as who has the value on record
        return f" ({1 - mean:.0%} of them have one, {1 - everyone:.0%} of all customers)"
    if p.column in profile.get("flags", ()) or p.role == "flag":
        return f" ({mean:.0%} of them, {everyone:.0%} of all customers)"
    unit = currency if ctx.roles.get(p.column) == "money" else None
    return (f" ({humanise(p.column, ctx.labels)} {_with_unit(mean, p.column, unit)} on "
            f"average, {_with_unit(everyone, p.column, unit)} for all customers)")


_TX_ACTIONS = {  # transaction feature: (action when high, action when low)
    "recency": ("Send a reminder with products related to past orders",
                "Follow up while they are engaged: recommend related products"),
    "frequency": ("Reward their frequent orders with points or member prices",
                  "Give an incentive for the next order"),
    "monetary": ("Offer premium and complementary products",
                 "Promote value packs and entry-level products"),
    "tenure": ("Thank long-standing customers with a loyalty reward",
               "Send an onboarding series that introduces the range"),
    "avg_order_value": ("Upsell complementary items to their big baskets",
                        "Cross-sell bundles and multi-buy offers to lift the basket"),
    "avg_items_per_order": ("Offer volume prices and reorder shortcuts",
                            "Suggest add-on items at checkout"),
    "distinct_products": ("Recommend new arrivals across the range",
                          "Introduce them to a second product category"),
    "return_rate": ("Check sizing, descriptions and quality of what they return",
                    "Ask them for reviews of what they kept"),
    "discount_share": ("Reach them with sales and coupons: most of what they buy is "
                       "discounted", "Lead with new and full-price products, not discounts"),
    "mean_days_between_orders": ("Remind them around their usual buying cycle",
                                 "Offer a subscription or reorder shortcut"),
}
_INCOME = re.compile(r"income|salary|earn|wealth")
_SPENDING = re.compile(r"spend|purchase|sales|revenue|amount|payment")
_BUDGET = {  # (high income, high spend)
    (True, True): "Reward them with premium perks, early access and personal service",
    (True, False): "Win a larger share of their budget with premium, personal offers",
    (False, True): "Keep them with value perks and member prices on what they buy",
    (False, False): "Use value packs and low-cost reminders to raise engagement",
}
_REACTIVATE = ["Win them back with one clear comeback offer; stop if it does not convert",
               "Show what is new since their last order"]
_WIN_BACK = ["Win them back now with a personal, time-limited offer",
             "Remind them of what they bought, with related products",
             "Ask what made them buy less (short survey)"]


def _actions(picked: list[Phrase], profile: dict[str, Any], ctx: _Context,
             transactional: bool) -> list[str]:
    """Up to 4 actions, from the features that name the segment (at-risk: win back), each
    specific to one of them: no filler."""
    status = (profile.get("rhythm") or {}).get("status")
    actions = []
    if transactional and status == "beyond":
        actions = list(_REACTIVATE)
    elif transactional and _at_risk(profile, ctx):
        actions = list(_WIN_BACK[:2])
    income = next((p for p in picked if _INCOME.search(p.words)), None)
    spend = next((p for p in picked if _SPENDING.search(p.words)), None)
    if income and spend:  # the two together say more than either
        actions.append(_BUDGET[(income.z > 0, spend.z > 0)])
    for p in sorted(picked[:3], key=lambda p: p.role == "category"):
        actions.append(_action(p))
    return list(dict.fromkeys(actions))[:4]


def _action(p: Phrase) -> str:
    high = p.z > 0
    if p.role == "transaction":
        return _TX_ACTIONS[p.column.lower()][0 if high else 1]
    if p.role == "age":
        return ("Reach them by email and personal service" if p.words == "older" else
                "Reach them on social and mobile channels")
    if p.role == "date":
        return ("Thank them for staying with a loyalty reward" if high else
                "Welcome them with an onboarding series")
    if p.role == "category":
        return f"Shape message and channel for a group that is {p.words}"
    if p.role == "not given":
        base = p.words.split(" ", 2)[2]
        return (f"Treat them as new to it: most have no {base} on record" if high else
                f"Build on their {base} history: nearly all of them have one on record")
    if p.role == "flag" and p.words == "complainers":
        return ("Resolve their complaints before any offer" if high else
                "Ask them for reviews and referrals")
    if p.role == "flag" and p.level is None:  # "mostly housing": the column's own words
        label = p.words.split(" ", 1)[1]
        return (f"Build the next offer around their {label}" if high else
                f"Find out why so few of them have {label}, and offer it where it fits")
    if p.role == "flag":
        return (f"Build the next offer on what {p.words} have in common" if high else
                f"Try a different kind of offer: {p.words} are rare here")
    if p.role == "count":
        return (f"Keep their {p.words} coming with member perks" if high else
                f"Give them a reason for more {p.words}")
    if _INCOME.search(p.words):
        return ("Lead with premium, personal offers" if high else
                "Lead with value offers and flexible payment")
    if _SPENDING.search(p.words):
        return (f"Reward their high {p.words} with loyalty perks and early access" if high
                else f"Lift their {p.words} with bundles and targeted promotions")
    return (f"Build an offer around their high {p.words}" if high else
            f"Find out what keeps their {p.words} low")


# ----------------------------------------------------------------------- descriptions
def describe(profile: dict[str, Any], transactional: bool,
             labels: Mapping[str, str] | None = None, currency: str | None = None,
             roles: Mapping[str, str] | None = None) -> str:
    """One or two sentences with numbers, amounts in ``currency``: of order lines, and of
    a customer table's columns whose ``roles`` are money (a unit in a column's name
    wins)."""
    head = f"{profile['customers']:,} customers ({profile['share']:.0%})"
    f = profile["features"]
    if transactional:
        text = head
        if "revenue_share" in profile:
            text += f" bringing {profile['revenue_share']:.0%} of revenue"
        text += (f"; {f['frequency']['mean']:.1f} orders on average, the last "
                 f"{f['recency']['median']:.0f} days ago (median)")
        rhythm = profile.get("rhythm") or {}
        if rhythm.get("ratio") is not None:
            whose = ("their" if rhythm["basis"] == "segment"
                     else "all repeat buyers'")
            text += (f", {rhythm['ratio']:.1f}x {whose} typical {rhythm['typical_gap']:.0f} "
                     "days between orders")
        if "avg_order_value" in f and f["avg_order_value"]["mean"] is not None:
            text += (f", {money(f['avg_order_value']['median'], currency, cents=True)} per "
                     "order (median)")
        if profile.get("at_risk_share"):
            text += f"; {profile['at_risk_share']:.0%} at risk by RFM"
        return text + "".join(f"; {o}" for o in _outcome_parts(profile, labels)) + "."
    top = sorted(((abs(s["z"] or 0), c, s) for c, s in f.items()), reverse=True)[:3]
    flags = set(profile.get("flags", ()))
    parts = [f"{s['mean']:.0%} {humanise(c, labels)} (all customers: {s['all_mean']:.0%})"
             if c in flags else f"{humanise(c, labels)} {_with_unit(s['mean'], c, unit)} on "
             f"average (all customers: {_with_unit(s['all_mean'], c, unit)})"
             for _, c, s in top
             for unit in [currency if (roles or {}).get(c) == "money" else None]]
    parts += _outcome_parts(profile, labels)
    return head + ("; " + "; ".join(parts) if parts else "") + "."


def _with_unit(value: float, column: str, currency: str | None = None) -> str:
    """A number with the money unit its column's name gives ("60.2 k$", "€1,250"), else
    ``currency``."""
    unit = column_unit(column) or currency
    if unit is None:
        return f"{value:,.1f}"
    # a currency ("EUR", "€") is written as money; a scaled unit ("k$") after the number
    return money(value, unit, cents=False) if currency_in(unit) == unit or unit in "€£$¥" \
        else f"{value:,.1f} {unit}"


def _outcome_parts(profile: dict[str, Any], labels: Mapping[str, str] | None) -> list[str]:
    """Each outcome's rate in the segment against all customers': "42% churn against 27%
    overall"."""
    return [f"{o['rate']:.0%} {humanise(c, labels)} against {o['all']:.0%} overall"
            for c, o in (profile.get("outcomes") or {}).items()
            if o["rate"] is not None and o["all"] is not None]


def _num(v, digits: int = 4) -> float | None:
    return None if v is None or pd.isna(v) else round(float(v), digits)
