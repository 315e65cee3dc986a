"""Known export formats (Shopify, WooCommerce, Stripe, Square, Etsy, Amazon), declared
as data in ``data/formats/*.toml``, one small file each.

A format is recognised when the header holds every one of its ``anchors``. Its
declaration says which column is the customer, the order and the date (a list: the
first one filled on a line, so the paid date before the created date), how a line's
value is computed (``[value] less``: a column taken off it; ``refunded``: an order's
refunded amount, taken off its lines in proportion), which order-level fields are filled
on an order's first row only (``[order_level] columns``, ``*`` for any ending), which
lines are refunds, cancellations, unpaid or test orders (``[[drop]]``: a ``reason`` and
a column that ``is`` one of some values, ``contains`` one of some words, or is
``filled``) and what time zone the dates are in. Adding the next format is adding one
file and its fixture.

:class:`Prep` turns that into one SQL query over the raw rows, in plain SQL that DuckDB
and Spark both run (window functions, ``CASE``, ``TRY_CAST``), so the engines prepare
the rows alike before cleaning.
"""

from __future__ import annotations

import fnmatch
import functools
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from custseg.io._parse import lit, q

#: Columns the prepared rows add: the drop reason of a line (NULL: none) and the share of
#: its value kept after an order's partial refunds (NULL: all of it).
REASON, KEEP = "_custseg_reason", "_custseg_keep"
#: Drop reasons a format may give (they are cleaning's reasons too).
DROP_REASONS = ("test_order", "unpaid", "refunded", "cancellation")


@dataclass(frozen=True)
class Drop:
    reason: str
    column: str
    is_: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    filled: bool = False

    def sql(self, text: str) -> str:
        v = f"lower(trim(CAST({q(self.column)} AS {text})))"
        if self.filled:
            return f"coalesce({v}, '') <> ''"
        if self.is_:
            return f"{v} IN ({', '.join(lit(x.lower()) for x in self.is_)})"
        return " OR ".join(f"{v} LIKE {lit('%' + x.lower() + '%')}" for x in self.contains)


@dataclass(frozen=True)
class ExportFormat:
    """One declared export format (see the module's text)."""

    key: str
    name: str
    docs: str
    anchors: tuple[str, ...]
    fields: dict[str, tuple[str, ...]]
    order_level: tuple[str, ...] = ()
    drops: tuple[Drop, ...] = ()
    less: str | None = None
    refunded: str | None = None
    key_in_parentheses: bool = False
    time_zone: str = ""
    no_customer: str | None = None

    def present(self, columns: list[str]) -> dict[str, list[str]]:
        """Field -> the declared columns the input has, in the declared order."""
        have = {c.strip().lower(): c for c in columns}
        out = {}
        for fld, cols in self.fields.items():
            found = [have[c.lower()] for c in cols if c.lower() in have]
            if found:
                out[fld] = found
        return out


@functools.cache
def formats() -> tuple[ExportFormat, ...]:
    """Every declared format, from ``data/formats/*.toml``."""
    folder = resources.files("custseg").joinpath("data/formats")
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            found.append(_format(entry.name.removesuffix(".toml"),
                                 tomllib.loads(entry.read_text("utf-8"))))
    return tuple(found)


def _format(key: str, raw: dict[str, Any]) -> ExportFormat:
    def cols(v: str | list[str]) -> tuple[str, ...]:
        return (v,) if isinstance(v, str) else tuple(v)

    value = raw.get("value", {})
    return ExportFormat(
        key=key, name=raw["name"], docs=raw.get("docs", ""), anchors=tuple(raw["anchors"]),
        fields={f: cols(v) for f, v in raw.get("fields", {}).items()},
        order_level=tuple(raw.get("order_level", {}).get("columns", ())),
        drops=tuple(Drop(d["reason"], d["column"], tuple(d.get("is", ())),
                         tuple(d.get("contains", ())), bool(d.get("filled", False)))
                    for d in raw.get("drop", ())),
        less=value.get("less"), refunded=value.get("refunded"),
        key_in_parentheses=bool(raw.get("key", {}).get("inside_parentheses", False)),
        time_zone=raw.get("time_zone", ""), no_customer=raw.get("no_customer"))


def recognise(columns: list[str]) -> ExportFormat | None:
    """The declared format whose anchors the header holds (the one with most anchors)."""
    have = {c.strip().lower() for c in columns}
    found = [f for f in formats() if all(a.lower() in have for a in f.anchors)]
    return max(found, key=lambda f: len(f.anchors)) if found else None


@dataclass
class Prep:
    """How raw rows are prepared before cleaning: order-level fields carried down from
    an order's filled row, several columns read as one field (the first filled), the
    drop reason of a line and the share of its value kept after partial refunds."""

    order: str | None = None
    carry: list[str] = field(default_factory=list)
    #: column -> the columns it is read from, first filled first (the first is itself)
    coalesce: dict[str, list[str]] = field(default_factory=dict)
    drops: list[Drop] = field(default_factory=list)
    #: (quantity, unit price or amount, refunded) columns of the partial-refund share
    refund: tuple[str | None, str, str] | None = None
    less: str | None = None  # a column taken off every line's value
    rate: str | None = None  # a discount rate (0..1): price x quantity x (1 - rate)
    key: str | None = None  # the customer column, read from "Name (key)" when set
    lower_key: bool = False  # the customer key in lower case (e-mail addresses)

    @property
    def empty(self) -> bool:
        """Nothing to do before cleaning (``less`` and ``lower_key`` act in cleaning)."""
        return not (self.carry or self.coalesce or self.drops or self.refund or self.key)

    def select(self, relation: str, columns: list[str], types: dict[str, str],
               text: str = "VARCHAR") -> str:
        """The prepared rows: every column of ``relation`` (carried down and coalesced
        ones as text) and :data:`REASON`, :data:`KEEP`."""
        def blank_null(c: str) -> str:
            return f"NULLIF(trim(CAST({q(c)} AS {text})), '')"

        inner = []
        for c in columns:
            if c in self.carry and self.order:
                inner.append(f"coalesce({blank_null(c)}, max({blank_null(c)}) OVER "
                             f"(PARTITION BY {q(self.order)})) AS {q(c)}")
            else:
                inner.append(q(c))
        outer = []
        for c in columns:
            if c in self.coalesce:
                outer.append(f"coalesce({', '.join(blank_null(x) for x in self.coalesce[c])})"
                             f" AS {q(c)}")
            elif c == self.key:
                v = blank_null(c)
                # no backslashes: Spark SQL reads them as escapes in literals, DuckDB not
                outer.append(f"CASE WHEN {v} LIKE '%(%)' THEN trim(regexp_extract({v}, "
                             f"'[(]([^()]*)[)]$', 1)) ELSE {v} END AS {q(c)}")
            else:
                outer.append(q(c))
        reason = " ".join(f"WHEN {d.sql(text)} THEN {lit(d.reason)}" for d in self.drops)
        outer.append(f"CASE {reason} END AS {REASON}" if reason
                     else f"CAST(NULL AS {text}) AS {REASON}")
        outer.append(f"{self._keep(text)} AS {KEEP}")
        return (f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} "
                f"FROM {q(relation)}) AS carried")

    def _keep(self, text: str) -> str:
        if not self.refund or not self.order:
            return "CAST(NULL AS DOUBLE)"
        qty, money, refunded = self.refund

        def num(c: str) -> str:
            return f"TRY_CAST(NULLIF(trim(CAST({q(c)} AS {text})), '') AS DOUBLE)"

        gross = f"{num(money)} * coalesce({num(qty)}, 1)" if qty else num(money)
        if self.less:
            gross = f"({gross} - coalesce({num(self.less)}, 0))"
        total = f"sum({gross}) OVER (PARTITION BY {q(self.order)})"
        back = f"coalesce({num(refunded)}, 0)"
        return (f"CASE WHEN {back} > 0 AND {total} > 0 THEN "
                f"greatest(0.0, 1.0 - {back} / {total}) END")


def format_prep(fmt: ExportFormat, columns: list[str], mapping: dict[str, str]) -> Prep:
    """The preparation a recognised format asks for, over the input's ``columns``."""
    present = fmt.present(columns)
    have = set(columns)
    order = mapping.get("invoice_id")
    carry = [c for c in columns if any(fnmatch.fnmatchcase(c, p) for p in fmt.order_level)]
    prep = Prep(order=order, carry=carry if order else [])
    for fld, cols in present.items():
        if len(cols) > 1 and mapping.get(fld) == cols[0]:
            prep.coalesce[cols[0]] = cols
    prep.drops = [d for d in fmt.drops if d.column in have]
    if fmt.less and fmt.less in have:
        prep.less = fmt.less
    value_col = mapping.get("unit_price") or mapping.get("amount")
    if fmt.refunded and fmt.refunded in have and order and value_col:
        prep.refund = (mapping.get("quantity"), value_col, fmt.refunded)
    if fmt.key_in_parentheses and "customer_id" in mapping:
        prep.key = mapping["customer_id"]
    return prep
