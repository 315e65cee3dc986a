"""Naming rules, the config key ``naming_rules``: their form, checked when a config is
made, and the default rules (``data/segment_names.json``). :mod:`custseg.profile` applies
them."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from custseg.core.exceptions import ConfigError

#: Rule condition keys that are not features.
SPECIAL = ("rhythm", "at_risk", "one_time")
_RULE = re.compile(r"^(top|bottom|[<>]-?\d+(\.\d+)?)$")
_SHARE = re.compile(r"^[<>](0?\.\d+|0|1|1\.0+)$")
RHYTHMS = ("within", "between", "beyond", "unknown")
#: The states a rule's actions may be for (``for``; see custseg.prep.lifecycle).
STATES = ("engaged", "cooling", "lapsed")


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
        unknown = [key for key in rule if key not in ("name", "when", "actions", "for")
                   and not str(key).startswith("_")]
        if unknown:
            raise ConfigError(f"Naming rule {name!r}: unknown key {unknown[0]!r}; "
                              "allowed: name, when, actions, for.")
        states = rule.get("for", [])
        if not isinstance(states, list) or not set(states) <= set(STATES):
            raise ConfigError(f"Naming rule {name!r}: 'for' must list states its actions "
                              f"are for, of {list(STATES)}; got {states!r}.")
        when = rule.get("when", {})
        if not isinstance(when, dict):
            raise ConfigError(f"Naming rule {name!r}: 'when' must be a table of conditions, "
                              f"not {when!r}.")
        for key, conds in when.items():
            for cond in listed(conds):
                _check_condition(name, key, cond)
        actions = rule.get("actions", [])
        if not isinstance(actions, list) or not all(isinstance(a, str) and a for a in actions):
            raise ConfigError(f"Naming rule {name!r}: actions must be a list of texts.")
        if not (2 <= len(actions) <= 4):
            raise ConfigError(f"Naming rule {name!r} needs 2 to 4 actions; it has {len(actions)}.")
    return rules


def _check_condition(name: str, key: str, cond: Any) -> None:
    text = cond.replace(" ", "") if isinstance(cond, str) else None
    if key == "rhythm":
        if text not in RHYTHMS:
            raise ConfigError(f"Naming rule {name!r}: condition rhythm: {cond!r} must be "
                              "'within', 'between', 'beyond' or 'unknown', or a list of them.")
    elif key == "at_risk":
        if text not in ("high", "low", "any") and not (text and _SHARE.match(text)):
            raise ConfigError(f"Naming rule {name!r}: condition at_risk: {cond!r} must be "
                              "'high', 'low', 'any' (against at_risk_share) or '>S' / '<S' "
                              "(S a share between 0 and 1).")
    elif key == "one_time":
        if not (text and _SHARE.match(text)):
            raise ConfigError(f"Naming rule {name!r}: condition one_time: {cond!r} must be "
                              "'>S' or '<S' (S a share between 0 and 1).")
    elif not (text and _RULE.match(text)):
        raise ConfigError(
            f"Naming rule {name!r}: condition {key}: {cond!r} must be 'top', "
            "'bottom', '>Z' or '<Z' (Z a z-score, e.g. '>0.5'), or a list of them.")


def listed(conds) -> list:
    """A condition or a list of conditions, as a list."""
    return conds if isinstance(conds, list) else [conds]
