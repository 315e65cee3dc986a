"""What to do first: the three to five segment actions with the most money at stake, read
from a finished run's summary (``first_actions`` in ``summary.json``).

The stake of a segment depends on who its action is for:

- new and one-time buyers still within reach (at least half of the segment bought once,
  and it is not lapsed): a second order from each, at the segment's median order value
  (from past orders, whatever the value models say);
- cooling segments, when the value prediction passed its check on the data's own past
  (the ``clv`` block is fitted and ``clv.holdout.reason`` is null): the predicted value
  of all its customers, who are slipping past their own rhythm and take it with them if
  they lapse (few of them are yet called at risk, which is why it is time to act);
- the others, when the prediction passed: the predicted value of its customers at risk,
  which leaves with them;
- the others, when no prediction passed: one order from each of its overdue or lapsed
  customers, at its median order value (from past orders; a segment most of whose
  customers are still buying in rhythm has nothing at stake then).

Each entry names its stake's kind in words, the segment's action and the ``custseg
export`` command that writes its audience file (``RUN_DIR``: the run's folder).

    segments (value, profile, actions), clv  ->  rule, [segment, name, customers, stake,
                                                  stake_kind, stake_words, action, audience]
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import pandas as pd

from custseg.core import summary as sm
from custseg.core.config import CampaignConfig
from custseg.core.money import money
from custseg.prep.lifecycle import STATE
from custseg.profile.profiles import stage_mix

#: At most this many actions are listed, and at least FEW when as many segments have a stake.
MOST = 5
FEW = 3
#: A fourth and fifth action are listed when their stake is at least this share of the
#: first one's.
NEXT_SHARE = 0.1
#: A segment where at least this share of the customers bought once is one of one-time
#: buyers.
ONCE_SHARE = 0.5
#: ... and from this share on, its stake is worded as a second order from each.
ALL_ONCE = 0.95
#: The placeholder of the run's folder in the audience commands (see :func:`in_folder`).
RUN_DIR = "RUN_DIR"
#: The share of a segment's customers the audience command holds back, to measure the
#: action against (``custseg export --holdout``).
HOLDOUT = f"{CampaignConfig().holdout:.0%}"

#: The kinds of stake, as ``FirstAction.stake_kind`` names them.
AT_RISK_VALUE = "at_risk_value"
COOLING_VALUE = "cooling_value"
SECOND_ORDER = "second_order"
PAST_ORDERS = "past_orders"


@dataclass(frozen=True)
class _Group:
    """What the ranking reads of one segment (a run's segment or a named RFM segment)."""

    segment: int | str  # as custseg export takes it: a run's segment id, an RFM name
    name: str
    customers: int
    value: sm.SegmentValue | None
    actions: list[str]
    facts: dict[str, Any]  # profile-like: one_time_share, state, stage_counts, features


def first_actions(summary: sm.RunSummary | sm.RfmSummary,
                  facts: dict[str, dict[str, Any]] | None = None) -> sm.FirstActions:
    """The actions to take first, ranked by the money at stake (see the module), and the
    rule in one sentence. A run's segments are read with their profile; named RFM segments
    with ``facts`` (:func:`group_facts` of the customers by ``rfm_segment``)."""
    clv = summary.get("clv")
    checked = checked_value(clv)
    horizon = clv.horizon_days if clv else None
    currency = summary.currency.code if summary.get("currency") else None
    missing = None if checked else (
        "no value prediction passed its check" if clv else "value predictions are off")
    found = [entry for group in _groups(summary, facts or {})
             if (entry := _entry(group, missing, horizon, currency)) is not None]
    found.sort(key=lambda e: -e.stake)  # stable: equal stakes keep the segments' order
    return sm.FirstActions(rule=ranking_rule(missing, horizon), actions=_chosen(found))


def checked_value(clv: sm.Clv | None) -> bool:
    """Whether the run's predicted value passed its check on the data's own past."""
    return bool(clv is not None and clv.fitted and clv.holdout is not None
                and clv.holdout.reason is None)


def ranking_rule(missing: str | None, horizon: int | None) -> str:
    """The ranking rule in one sentence; ``missing``: why there is no checked value
    prediction (None: there is one)."""
    listed = (f"the {_WORDS[FEW]} largest stakes are listed, and a {_ORDINALS[FEW + 1]} and "
              f"{_ORDINALS[MOST]} when theirs is at least {NEXT_SHARE:.0%} of the first's")
    second = ("for new and one-time buyers still within reach, a second order from each at "
              "their segment's median order value")
    if missing is None:
        return (f"Ranked by the money at stake: for customers at risk, and for all those "
                f"of a cooling segment, the value the prediction (checked on the data's own "
                f"past) expects from them over the next {horizon:,} days, which leaves with "
                f"them if they go; {second}; {listed}.")
    return (f"Ranked by the money at stake in past orders, as {missing}: {second}, and for "
            f"the others one order from each of their overdue or "
            f"lapsed customers at their segment's median order value; {listed}.")


_WORDS = {3: "three", 4: "four", 5: "five"}
_ORDINALS = {4: "fourth", 5: "fifth"}


def _chosen(ranked: list[sm.FirstAction]) -> list[sm.FirstAction]:
    if not ranked:
        return []
    least = NEXT_SHARE * ranked[0].stake
    return ranked[:FEW] + [e for e in ranked[FEW:MOST] if e.stake >= least]


def _groups(summary: sm.RunSummary | sm.RfmSummary, facts: dict[str, dict[str, Any]]
            ) -> list[_Group]:
    if isinstance(summary, sm.RunSummary):
        return [_Group(segment=s.id, name=s.name, customers=s.size,
                       value=s.get("value"), actions=s.actions, facts=s.profile)
                for s in summary.segments if s.id != -1]
    return [_Group(segment=s.name, name=s.name, customers=s.customers, value=s.get("value"),
                   actions=s.get("actions") or [], facts=facts.get(s.name, {}))
            for s in summary.rfm_segments if s.customers]


def _entry(group: _Group, missing: str | None, horizon: int | None, currency: str | None
           ) -> sm.FirstAction | None:
    """A segment's entry, or None when it has nothing at stake (or no action); ``missing``
    as for :func:`ranking_rule`."""
    if not group.actions:
        return None
    facts = group.facts
    once = float(facts.get("one_time_share") or 0.0)
    state = facts.get("state")
    basket = (facts.get("features") or {}).get("avg_order_value", {}).get("median")
    basket_words = money(basket, currency, cents=True)
    action = group.actions[0]
    value = group.value
    if once >= ONCE_SHARE and state != "lapsed":
        if basket is None:
            return None
        stake, kind = group.customers * basket, SECOND_ORDER
        words = (f"a second order from each of its {group.customers:,} customers at their "
                 f"median order value, {basket_words}" if once >= ALL_ONCE else
                 f"one more order from each of its {group.customers:,} customers "
                 f"({once:.0%} have bought only once) at their median order value, "
                 f"{basket_words}")
    elif (missing is None and value is not None and value.mean_predicted_value is not None
          and state == "cooling"):
        stake, kind = value.predicted_value, COOLING_VALUE
        words = (f"the predicted value of its {value.valued:,} cooling customers over the "
                 f"next {horizon:,} days, which leaves with them if they lapse")
    elif missing is None and value is not None and value.mean_predicted_value is not None:
        stake, kind = value.at_risk_value, AT_RISK_VALUE
        words = (f"the predicted value of its {value.at_risk:,} customers at risk over the "
                 f"next {horizon:,} days")
        if state == "engaged":  # its first action grows those buying: take the at-risk one
            action = next((a for a in group.actions if _for_at_risk(a, value)), None)
    else:
        overdue = sum(n for stage, n in (facts.get("stage_counts") or {}).items()
                      if STATE.get(stage) != "engaged")
        if basket is None or state == "engaged":
            return None
        stake, kind = overdue * basket, PAST_ORDERS
        why = missing or "no predicted value in money"
        words = (f"one order from each of its {overdue:,} overdue or lapsed customers at "
                 f"their median order value, {basket_words} (past orders: {why})")
    if action is None or not stake or stake != stake or stake <= 0:
        return None
    return sm.FirstAction(segment=group.segment, name=group.name, customers=group.customers,
                          stake=round(float(stake), 2), stake_kind=kind, stake_words=words,
                          action=action, audience=audience_command(group.segment, group.name))


def _for_at_risk(action: str, value: sm.SegmentValue) -> bool:
    """Whether an action is the one a segment's at-risk customers call for (as
    :func:`custseg.jobs.value.with_value_action` words it: "12 customers (3%) with ...")."""
    return action.startswith(f"{value.at_risk:,} customers (")


def audience_command(segment: int | str, name: str) -> str:
    """The command that writes a segment's audience file, with :data:`RUN_DIR` for the
    run's folder."""
    return (f"custseg export {RUN_DIR} --segment {_quoted(str(segment))} --holdout {HOLDOUT} "
            f"--out {slug(name)}.csv")


def in_folder(command: str, folder: str) -> str:
    """An audience command for the run in ``folder``."""
    return command.replace(RUN_DIR, _quoted(folder) if re.search(r"[^\w./-]", folder)
                           else folder, 1)


def slug(name: str) -> str:
    """A file name for a segment's name: "High-value, cooling" -> "high-value-cooling"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower().replace("'", "")).strip("-")
    return words[:60].rstrip("-") or "segment"


def _quoted(text: str) -> str:
    """``text`` in double quotes for a POSIX shell."""
    return '"' + re.sub(r'(["\\$`])', r"\\\1", text) + '"'


def group_facts(customers: pd.DataFrame, column: str) -> dict[str, dict[str, Any]]:
    """What :func:`first_actions` reads of a run segment's profile, for each group of
    ``column`` (the named RFM segments): the share of one-time buyers, the lifecycle
    stages (``stage_counts``, the largest ``state``) and the median order value."""
    out: dict[str, dict[str, Any]] = {}
    for name, rows in customers.groupby(column, sort=True, observed=True):
        facts: dict[str, Any] = {}
        if "frequency" in rows:
            facts["one_time_share"] = round(float((rows["frequency"] <= 1).mean()), 4)
        if "stage" in rows:
            facts.update(stage_mix(rows["stage"]))
        if "avg_order_value" in rows:
            median = pd.to_numeric(rows["avg_order_value"], errors="coerce").median()
            if median == median:
                facts["features"] = {"avg_order_value": {"median": round(float(median), 2)}}
        out[str(name)] = facts
    return out
