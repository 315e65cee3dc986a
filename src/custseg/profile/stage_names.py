"""Names and actions of segments made stage first (``--strategy stages``), and how well a
segment's first action fits its customers.

A segment's lifecycle group says what conversation to have (welcome, keep, remind, win
back); its value tier how much to spend on it: "high" when its median spend is in the top
third of all customers' spend, "low" in the bottom third. Words and actions are data
(``data/stage_names.json``); the actions carry the segment's own numbers (its typical gap,
its silence, its basket), and segments of one group and tier are told apart by what
distinguishes them ("Regulars: wide product range").
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from custseg.core.money import money
from custseg.prep.lifecycle import STATE
from custseg.profile.labels import humanise
from custseg.profile.profiles import (
    MOSTLY,
    Phrase,
    _action,
    _compose,
    _context,
    _phrase,
    describe,
    level_text,
)
from custseg.profile.rules import UNITS

#: Value tiers by the share of all customers spending less than the segment's median.
HIGH_TIER, LOW_TIER = 2 / 3, 1 / 3
#: A segment where at least this share bought once is named for its one-time buyers.
ONE_TIME = 0.5
#: Features the name already says (tier, stage): not used to tell segments apart.
_SAID = ("monetary", "recency", "tenure", "frequency", "purchase_days",
         "mean_days_between_orders")
#: ... and for one-time buyers, whose one basket is their spend.
_ONCE = ("avg_order_value",)
#: A level held by this share of a segment names it without "mostly".
ALL = 0.995
#: Least difference of z-scores (numbers) or of shares (a category's level) between
#: segments of one name worth words.
APART_Z, APART_SHARE = 0.3, 0.2


@cache
def stage_words() -> dict[str, Any]:
    text = resources.files("custseg").joinpath("data/stage_names.json").read_text("utf-8")
    return json.loads(text)["groups"]


def tier(profile: Mapping[str, Any], by: str = "value_rank") -> str:
    """"high", "mid" or "low": where the segment's median spend falls among all
    customers' (``value_rank``: the share of all customers who spent less; ``by``
    "basket_rank": its median order value among all customers')."""
    rank = profile.get(by)
    if rank is None:
        return "mid"
    return "high" if rank >= HIGH_TIER else "low" if rank <= LOW_TIER else "mid"


def stage_names(profiles: Mapping[int, dict[str, Any]], groups: Mapping[int, str], *,
                labels: Mapping[str, str] | None = None,
                roles: Mapping[str, Any] | None = None, currency: str | None = None,
                levels: Mapping[int, tuple[str, str | None]] | None = None
                ) -> dict[int, dict[str, Any]]:
    """``{segment id: {"name", "description", "actions", "action_for"}}`` for segments
    whose lifecycle group is ``groups[id]``; names unique, first actions too; amounts in
    ``currency``. ``levels[id]`` is ``(column, level)`` for a segment its group was split
    into by a category's level (None: the other levels together)."""
    words = stage_words()
    out: dict[int, dict[str, Any]] = {}
    for i, p in profiles.items():
        if i == -1:
            continue
        spec = words[groups[i]]
        one_time = "one_time" in spec and (p.get("one_time_share") or 0) >= ONE_TIME
        # one order each: their spend is their first basket, set against all baskets
        by_basket = one_time or groups[i] == "new"
        level = tier(p, "basket_rank" if by_basket else "value_rank")
        unrhythmic = "no_rhythm" in spec and p.get("typical_gap") is None
        one_time = one_time or unrhythmic
        entry = (spec["no_rhythm"] if unrhythmic else spec["one_time"] if one_time
                 else spec["tiers"][level])
        name = entry["name"]
        if one_time and level != "mid":
            name = f"{'High' if level == 'high' else 'Low'}-value {name[0].lower()}{name[1:]}"
        numbers = _numbers(p, currency)
        actions = [a.format(**numbers) for a in entry["actions"]]
        if levels and i in levels:
            name, actions = _by_level(name, actions, *levels[i], labels)
        out[i] = {"name": name, "actions": actions, "action_for": list(spec["for"]),
                  "stage_group": groups[i], "by_basket": by_basket}
    _tell_apart(profiles, out, labels, roles, currency)
    transactional = True
    for i in out:
        out[i]["description"] = (describe(profiles[i], transactional, labels, currency)
                                 + _tier_words(profiles[i], out[i].pop("by_basket")))
    return out


def _by_level(name: str, actions: list[str], column: str, level: str | None, labels
              ) -> tuple[str, list[str]]:
    """The name and actions of a segment of a group split by ``column``'s levels: its
    level ("One-time buyers, lapsed: LG"), its stage's action built on it; the segment of
    the other levels: "...: other categories"."""
    if level is None:
        return f"{name}: other {_plural(humanise(column, labels))}", actions
    words = level_text(column, level, labels)
    return f"{name}: {words}", [_joined(actions[0], _built_on(words)), *actions[1:]]


def _built_on(level: str) -> str:
    return f"build it on {level}, with what goes with it, where and how they bought it"


def _plural(words: str) -> str:
    last = words.rsplit(" ", 1)[-1]
    if last.endswith("s"):
        return words
    return words[:-1] + "ies" if last.endswith("y") and last[-2:-1] not in "aeiou" \
        else words + "s"


def _joined(first: str, then: str) -> str:
    """One action from a stage's and what sets the segment apart: "Offer a second order
    ...; build the next offer on LG: ..."."""
    return f"{first}; {then[:1].lower()}{then[1:]}"


def _tell_apart(profiles, out: dict[int, dict[str, Any]], labels, roles,
                currency: str | None = None) -> None:
    """Segments sharing a name get the feature on which each differs most from the others
    of that name ("Regulars: big baskets", "Regulars: small baskets"), and its action;
    first actions shared by two cards then get their segment's name."""
    by_name: dict[str, list[int]] = {}
    for i in sorted(out):
        by_name.setdefault(out[i]["name"], []).append(i)
    ctx = _context(profiles, 1.0, labels, roles)
    for name, same in by_name.items():
        if len(same) < 2:
            continue
        used: set[str] = set()
        top = max(same, key=lambda i: profiles[i]["features"]["monetary"]["median"] or 0)
        for letter, i in zip(string.ascii_uppercase, same, strict=False):
            phrase = _apart(profiles, i, [j for j in same if j != i], ctx, used)
            if phrase is None:
                phrase = _spend_apart(profiles, i, same, used)
            if phrase is None:
                out[i]["name"] = f"{name}, group {letter}"
                continue
            words = _compose([phrase])
            used.add(words)
            out[i]["name"] = f"{name}: " + (phrase.words if phrase.role == "category"
                                            else f"{words[0].lower()}{words[1:]}")
            # an engaged segment that is not the best-paying of its name is led by what
            # sets it apart (a VIP tier is for the one that pays most); others by their
            # stage's action, which says when and how to reach them, built on it
            actions = out[i]["actions"]
            apart = (_built_on(phrase.words.removeprefix("mostly "))
                     if phrase.role == "category"
                     else _action(phrase) + _apart_numbers(profiles, i, same,
                                                                 phrase.column, currency))
            if i != top and out[i]["action_for"] == ["engaged"]:
                actions.insert(0, apart)
            else:
                actions[0] = _joined(actions[0], apart)
    seen: set[str] = set()
    for i in sorted(out):
        if out[i]["actions"][0] in seen:
            out[i]["actions"][0] += f" ({out[i]['name']})"
        seen.add(out[i]["actions"][0])


def _apart_numbers(profiles, i: int, same: list[int], column: str, currency: str | None
                   ) -> str:
    """The numbers behind what sets a segment apart: " (12 products, median, against 58
    in the others of its name)"; "" for a column without medians."""
    def median(j: int) -> float | None:
        return (profiles[j]["features"].get(column) or {}).get("median")

    mine, theirs = median(i), [m for j in same if j != i if (m := median(j)) is not None]
    if mine is None or not theirs:
        return ""
    other = sum(theirs) / len(theirs)
    if column in _MONEY:
        a, b = (money(mine, currency) + _MONEY[column],
                money(other, currency) + _MONEY[column])
    else:
        unit = f" {UNITS[column]}" if column in UNITS else ""
        a, b = f"{mine:,.3g}{unit}", f"{other:,.3g}{unit}"
    return f" ({a}, median, against {b} in the others of its name)"


#: Features in money, and the words after their amounts.
_MONEY = {"monetary": " spent", "avg_order_value": " per order"}


def _spend_apart(profiles, i: int, same: list[int], used: set[str]) -> Phrase | None:
    """"higher spend" or "lower spend" than the others of its name, when no other
    feature tells it apart (None when that is said already)."""
    def median(j: int) -> float:
        return profiles[j]["features"]["monetary"]["median"] or 0.0

    others = [median(j) for j in same if j != i]
    high = median(i) >= sum(others) / len(others)
    phrase = Phrase("higher" if high else "lower", "spend", "monetary", 1.0 if high else -1.0,
                    "number")
    return None if _compose([phrase]) in used else phrase


def _apart(profiles, i: int, others: list[int], ctx, used: set[str]):
    """The phrase of the feature on which segment ``i`` differs most from ``others`` (in
    z-scores against all customers), not yet ``used``; None when none differs."""
    mine = profiles[i]["features"]
    said = _SAID + (_ONCE if (profiles[i].get("one_time_share") or 0) >= ONE_TIME else ())
    found = []
    for column, stats in mine.items():
        z = stats.get("z")
        theirs = [profiles[j]["features"].get(column, {}).get("z") for j in others]
        if column in said or z is None or any(t is None for t in theirs):
            continue
        gap = z - sum(theirs) / len(theirs)
        if abs(gap) >= APART_Z:
            found.append((-abs(gap), column, gap))
    for column, mix in (profiles[i].get("categories") or {}).items():
        for level, share in mix.items():
            theirs = [(profiles[j].get("categories") or {}).get(column, {}).get(level, 0.0)
                      for j in others]
            gap = share - sum(theirs) / len(theirs)
            if share >= MOSTLY and gap >= APART_SHARE:
                found.append((-gap / APART_SHARE * APART_Z, column, (level, share)))
    for _, column, gap in sorted(found):
        if isinstance(gap, tuple):  # a level of a category, and its share
            words = level_text(column, gap[0], ctx.labels)
            phrase = Phrase(None, words if gap[1] >= ALL else f"mostly {words}", column, 1.0,
                            "category")
        else:
            phrase = _phrase(column, gap, ctx._replace(
                flags=tuple(profiles[i].get("flags", ()))))
        if phrase is not None and _compose([phrase]) not in used:
            return phrase
    return None


def _numbers(p: Mapping[str, Any], currency: str | None = None) -> dict[str, str]:
    """The placeholders of an action from a segment's profile."""
    f = p["features"]
    gap = p.get("typical_gap")

    def days(v) -> str:
        return "?" if v is None else f"{v:,.0f}"

    return {"gap": days(gap), "late": days(None if gap is None else 1.5 * gap),
            "recency": days(f.get("recency", {}).get("median")),
            "basket": money(f.get("avg_order_value", {}).get("median"), currency),
            "spend": money(f.get("monetary", {}).get("median"), currency),
            "orders": f"{(f.get('frequency', {}).get('mean') or 0):.1f}"}


def _tier_words(p: Mapping[str, Any], by_basket: bool) -> str:
    rank = p.get("basket_rank" if by_basket else "value_rank")
    if rank is None:
        return ""
    what = "order value" if by_basket else "spend"
    return f" Its median {what} is above that of {rank:.0%} of all customers."


# ----------------------------------------------------------------------- action fit
def action_fit(profile: Mapping[str, Any], states: list[str] | None) -> float | None:
    """Share of a segment whose own state (engaged, cooling, lapsed; from each customer's
    stage) is one its first action is for; ``states`` None (an action that names no
    stage): its largest state. None without stages."""
    fit = _fit(profile, states)
    return None if fit is None else round(fit, 4)


def _fit(profile: Mapping[str, Any], states: list[str] | None) -> float | None:
    counts = profile.get("stage_counts")
    if not counts:
        return None
    states = states or [profile["state"]]
    return sum(n for s, n in counts.items() if STATE[s] in states) / sum(counts.values())


def misfit(profile: Mapping[str, Any], states: list[str] | None, least: float
           ) -> str | None:
    """Why a segment's first action misses more than ``1 - least`` of it, naming the
    others by state and stage (None when it fits at least ``least``)."""
    fit = _fit(profile, states)
    if fit is None or fit >= least:
        return None
    target = states or [profile["state"]]
    by_state: dict[str, list[tuple[str, float]]] = {}
    total = sum(profile["stage_counts"].values())
    for stage, n in profile["stage_counts"].items():
        if STATE[stage] not in target:
            by_state.setdefault(STATE[stage], []).append((stage, n / total))
    others = "; ".join(
        f"{sum(v for _, v in parts):.0%} {state} ({', '.join(s for s, _ in parts)})"
        for state, parts in sorted(by_state.items(), key=lambda kv: -sum(v for _, v in kv[1])))
    return (f"has a first action for {' or '.join(target)} customers that fits "
            f"{fit:.0%} of it, under {least:.0%}: the others are {others}")
