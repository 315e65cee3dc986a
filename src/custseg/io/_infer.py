"""Which column of order lines plays which role, read from a sample of the values, with
names as one piece of evidence.

A person looking at an export knows at once which column is the date and which the
customer, from the values. This module does the same, in three steps:

1. :mod:`custseg.io._evidence` describes every column (numbers, dates, codes, text) and
   what its name says in seven languages.
2. Each column gets a score for each role from that evidence, and the roles are chosen
   *jointly*, one column per role: the date parses in one format and spreads over time;
   the customer key repeats across lines and is the same on every line of an order; an
   order key groups lines of one date and one customer; a product varies within orders;
   quantities are mostly small whole numbers; a unit price times the quantity gives the
   line total where both are there, and a lone money column is a unit price or a line
   total as the values say (:func:`value_reading`).
3. Where two readings are close, :class:`~custseg.core.exceptions.MappingError` names
   both and the ``--map`` that decides: a role is never picked silently.

The other columns are then customer attributes (the same on every line of a customer:
gender, age, city) or line attributes (varying by line: category, channel, store,
payment method), see :func:`attributes`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from custseg.core.money import currency_in, currency_of_values
from custseg.io._evidence import Profile, not_paid_money, says, says_not, words
from custseg.io._mapping import FIELDS, normalize, row_number_name
from custseg.io._roles import id_like_name, is_personal

#: Fields of an order line that have a column, in the order they are reported.
ROLE_FIELDS = tuple(FIELDS)
#: Two readings whose scores differ by less than this are too close to choose between.
CLOSE = 0.08
#: A role is taken only from this score up.
MIN_SCORE = 0.35
#: Key candidates looked at in the joint choice of customer, order and product.
TOP_KEYS = 7
#: Customers (or orders) with several lines needed before "the same on every line"
#: counts as evidence.
MIN_GROUPS = 5
#: Words that name a product category itself (others, such as group or line, may
#: name other things).
_CATEGORY_WORDS = {"category", "categories", "categoria", "categorie", "kategorie", "categ",
                   "subcategory", "subcategoria", "souscategorie", "unterkategorie",
                   "sottocategoria", "subcategorie", "warengruppe", "productgroep",
                   "department", "departamento", "rayon", "reparto", "afdeling"}
#: Fewer values than this say nothing of their shape (negative, below 1): names decide.
FEW = 10
#: A quantity needs more than its values (small whole numbers are many things): this
#: score, which a name saying quantity gives.
QUANTITY_SCORE = 0.5


@dataclass
class Choice:
    """The column chosen for a field, how sure (0..1) and why, in words."""

    field: str
    column: str
    confidence: float
    reason: str
    runner_up: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"column": self.column, "confidence": self.confidence,
                               "reason": self.reason}
        if self.runner_up:
            out["runner_up"] = self.runner_up
        return out


@dataclass
class Reading:
    """The roles of an order-line table's columns and the evidence behind them."""

    mapping: dict[str, str]
    evidence: dict[str, Choice]
    value: str  # how a line's value is computed, in words
    customer_attributes: list[str] = field(default_factory=list)
    line_attributes: list[str] = field(default_factory=list)
    #: ``"e-mail addresses"`` or ``"names"`` when the customer key is personal data.
    personal_key: str | None = None
    notes: list[str] = field(default_factory=list)
    #: Two readings too close to choose between: the one-line questions to ask.
    questions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Columns filled on one line of each order only (carried down to its other lines).
    order_level: list[str] = field(default_factory=list)
    #: The currency of the amounts (ISO code, or a shared sign such as "$") and where it
    #: was read (see :func:`currency_of`); None when nothing names one.
    currency: str | None = None
    currency_from: str = ""
    #: The export format recognised by its header (``data/formats``), if any.
    format: Any = None
    prep: Any = None  # how the rows are prepared before cleaning (io._formats.Prep)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": self.format.name if self.format is not None else None,
            "fields": {f: c.to_dict() for f, c in self.evidence.items()},
            "value": self.value,
            "customer_attributes": list(self.customer_attributes),
            "line_attributes": list(self.line_attributes)}
        if self.personal_key:
            out["personal_key"] = self.personal_key
        if self.order_level:
            out["order_level"] = list(self.order_level)
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass
class _Scored:
    score: float
    reasons: list[str]
    #: The least score whatever else the values say: a column named exactly as the field
    #: is named in the exports custseg knows (``CustomerID``, ``InvoiceNo``) keeps it.
    floor: float = -1.0

    def text(self) -> str:
        return "; ".join(r for r in self.reasons if r)

    @property
    def value(self) -> float:
        return max(self.score, self.floor)


#: The score a column named exactly as a field keeps (see :attr:`_Scored.floor`).
EXACT_FLOOR = 0.45


def _exact(name: str, fld: str) -> bool:
    """The column's name is one of the field's usual names (``data`` of io._mapping)."""
    return normalize(name) in FIELDS.get(fld, ())


def _floored(s: _Scored, name: str, fld: str) -> _Scored:
    if _exact(name, fld):
        s.floor = EXACT_FLOOR
    return s


# ------------------------------------------------------------------------------ roles
def read_roles(profiles: dict[str, Profile], sample: pd.DataFrame, *,
               given: dict[str, str] | None = None, skip: frozenset[str] = frozenset(),
               source: str = "input") -> Reading:
    """The role of each column of order lines (``sample``: rows custseg decides on,
    ``profiles``: their :func:`~custseg.io._evidence.profile`); ``given`` roles
    (``--map``, an export format's) are kept as they are, and ``skip`` fields are not
    looked for (an export format says how its lines are valued)."""
    given = dict(given or {})
    given.update({f: "" for f in skip if f not in given})
    frame = sample.reset_index(drop=True)
    cols = [c for c in frame.columns if c in profiles]
    free = [c for c in cols if c not in given.values() and profiles[c].present]
    evidence: dict[str, Choice] = {f: Choice(f, c, 1.0, "given with --map")
                                   for f, c in given.items() if c}
    codes = _Codes(frame, profiles)

    questions: list[str] = []
    date = given.get("invoice_date") or _choose_date(profiles, free, codes, evidence, source,
                                                     questions)
    keys = _choose_keys(profiles, [c for c in free if c != date], codes, date, given,
                        evidence, source, questions)
    if date is None and (keys.get("customer_id") or given.get("customer_id")):
        # order lines whose dates are day numbers, without --start-date: say so
        questions += [p.date_note for p in profiles.values() if "--start-date" in p.date_note]
    taken = {date, *keys.values(), *given.values()}
    money = _choose_money(profiles, [c for c in free if c not in taken], codes, keys,
                          given, evidence, source, questions)
    taken |= set(money.values())
    texts = _choose_texts(profiles, [c for c in free if c not in taken], codes, keys, given,
                          evidence)
    taken |= set(texts.values())
    mapping = {**given, "invoice_date": date, **keys, **money, **texts}
    mapping.update(_named_only(cols, taken, mapping, evidence))
    taken |= set(mapping.values())
    mapping = {f: mapping[f] for f in ROLE_FIELDS if mapping.get(f)}
    given = {f: c for f, c in given.items() if c}
    value = value_words(mapping, evidence)
    customer = mapping.get("customer_id")
    personal = None
    if customer:
        p = profiles[customer]
        personal = ("e-mail addresses" if p.email_share >= 0.5 else
                    "names" if p.word_share >= 0.5 and p.code_share < 0.5 else None)
    cust_attrs, line_attrs = attributes(profiles, [c for c in cols if c not in taken],
                                        codes, customer, mapping.get("invoice_id"))
    currency, read_from, mixed = currency_of(
        profiles, [mapping[f] for f in ("unit_price", "amount") if f in mapping],
        [c for c in cols if c not in taken])
    return Reading(mapping=mapping, evidence={f: evidence[f] for f in mapping},
                   value=value, customer_attributes=cust_attrs, line_attributes=line_attrs,
                   personal_key=personal, questions=questions, warnings=mixed,
                   currency=currency, currency_from=read_from,
                   order_level=order_level(profiles, cols, codes, mapping.get("invoice_id")))


def currency_of(profiles: dict[str, Profile], money: list[str], free: list[str]
                ) -> tuple[str | None, str, list[str]]:
    """The currency of the amounts, where it was read, and a warning when lines are in
    several currencies. Evidence, strongest first: a column of currency codes ("EUR" on
    every line), the amounts' own signs or codes ("£2.10", "9,90 BRL"), the money
    columns' names ("Sales (EUR)", "price_usd")."""
    for col in free:
        text = profiles[col].text.dropna()
        if text.empty or not text.str.fullmatch(r"[A-Z]{3}|[a-z]{3}").all():
            continue
        one, seen = currency_of_values(text.str.upper())
        if not seen or sum(seen.values()) < len(text):
            continue
        if one is None or len(seen) > 1:
            parts = ", ".join(f"{c} {n / len(text):.0%}" for c, n in seen.items())
            return None, "", [f"Column {col!r} names {len(seen)} currencies ({parts} of the "
                              "sampled lines): their amounts are added as they are; keep "
                              "one currency's lines or convert them first, and set currency "
                              "in the config to name it"]
        return one, f"column {col!r}", []
    for col in money:
        one, _ = currency_of_values(profiles[col].text.dropna())
        if one:
            return one, f"the values of {col!r}", []
    for col in money:
        if one := currency_in(col, lower_codes=True):
            return one, f"the name {col!r}", []
    return None, "", []


#: Fields a column named exactly so takes when its values give no evidence either way
#: (empty, unreadable or one value): cleaning then says what is wrong with them (every
#: customer id missing, a price of '#DIV/0!', every quantity 0), rather than the reading
#: saying no column was found.
NAMED_ONLY = ("customer_id", "invoice_date", "unit_price", "quantity")  # a price first


def _named_only(cols: list[str], taken: set, mapping: dict[str, str | None],
                evidence: dict[str, Choice]) -> dict[str, str]:
    """The :data:`NAMED_ONLY` fields still unfilled, each to a free column named exactly
    so (a quantity only beside a unit price, a unit price only without a line total)."""
    out: dict[str, str] = {}
    for fld in NAMED_ONLY:
        if mapping.get(fld) or (fld == "quantity" and not mapping.get("unit_price")
                                and not out.get("unit_price")):
            continue
        if fld == "unit_price" and mapping.get("amount"):
            continue
        col = next((c for c in cols if c not in taken and c not in out.values()
                    and _exact(c, fld)), None)
        if col is not None:
            out[fld] = col
            evidence[fld] = Choice(fld, col, EXACT_FLOOR, "named exactly so; its values "
                                   "tell nothing either way (empty, unreadable or one value)")
    return out


class _Codes:
    """Integer codes of the sample's columns (-1: blank) and which groups of rows share a
    value, for "the same on every line of ..." tests."""

    def __init__(self, frame: pd.DataFrame, profiles: dict[str, Profile]) -> None:
        self.profiles = profiles
        self.n = len(frame)
        self._codes: dict[str, np.ndarray] = {}
        for c, p in profiles.items():
            self._codes[c] = pd.factorize(p.text, use_na_sentinel=True)[0]

    def day(self, col: str) -> np.ndarray:
        """Codes of a date column's days."""
        key = f"\0day:{col}"
        if key not in self._codes:
            days = self.profiles[col].dates
            self._codes[key] = (pd.factorize(days.dt.normalize())[0] if days is not None
                                else self._codes[col])
        return self._codes[key]

    def codes(self, col: str) -> np.ndarray:
        return self._codes[col]

    def same_over_orders(self, key: str, other: str, order: str | None
                         ) -> tuple[float | None, int]:
        """As :meth:`same_within`, over the values of ``key`` with several ``order``
        values (customers of several orders: one order's lines share its fields)."""
        if order is None:
            return self.same_within(key, self._codes[other])
        k, o = self._codes[key], self._codes[order]
        ok = (k >= 0) & (o >= 0)
        orders = pd.Series(o[ok]).groupby(k[ok]).nunique()
        repeat = np.isin(k, orders.index[orders >= 2].to_numpy()) & ok
        if repeat.sum() < 2:
            return None, 0
        masked = np.where(repeat, self._codes[other], -1)
        same, groups = self.same_within(key, masked)
        return same, groups

    def equivalent(self, a: str, b: str) -> bool:
        """Whether two columns hold the same grouping of the rows (one value of ``b`` for
        each of ``a`` and back): either reads the same."""
        ab, n_ab = self.same_within(a, self._codes[b])
        ba, n_ba = self.same_within(b, self._codes[a])
        return bool(ab is not None and ba is not None and ab >= 0.99 and ba >= 0.99
                    and self.profiles[a].distinct == self.profiles[b].distinct)

    def numbers_lines(self, col: str, order: str) -> bool:
        """Whether whole numbers in ``col`` count the lines of each order (1, 2, 3 ...,
        as Olist's ``order_item_id``) on most orders of several lines."""
        values = self.profiles[col].numbers
        k = self._codes[order]
        ok = (k >= 0) & ~np.isnan(values) if values is not None else None
        if ok is None or ok.sum() < 2:
            return False
        frame = pd.DataFrame({"k": k[ok], "v": values[ok]})
        stats = frame.groupby("k")["v"].agg(["size", "min", "max", "nunique"])
        multi = stats[stats["size"] >= 2]
        if len(multi) < MIN_GROUPS:
            return False
        counted = ((multi["min"] == 1) & (multi["max"] == multi["size"])
                   & (multi["nunique"] == multi["size"]))
        return bool(counted.mean() >= 0.8)

    def same_within(self, key: str, other: np.ndarray) -> tuple[float | None, int]:
        """Of the values of ``key`` on several sampled rows, the share whose rows all hold
        one value of ``other`` (blanks aside), and how many there are (None: none)."""
        k = self._codes[key]
        ok = (k >= 0) & (other >= 0)
        if ok.sum() < 2:
            return None, 0
        k, o = k[ok], other[ok]
        size = np.bincount(k)
        pairs = np.unique(k.astype(np.int64) * (int(o.max()) + 1) + o)
        distinct = np.bincount(pairs // (int(o.max()) + 1), minlength=len(size))
        multi = size >= 2
        if not multi.any():
            return None, 0
        return float(np.mean(distinct[multi] == 1)), int(multi.sum())

    def varies_within(self, key: str, other: str) -> tuple[float | None, int]:
        """Of the values of ``key`` on several rows, the share whose rows hold more than
        one value of ``other``."""
        same, groups = self.same_within(key, self._codes[other])
        return (None if same is None else 1 - same), groups


def _fmt_share(x: float) -> str:
    return f"{x:.0%}"


# ------------------------------------------------------------------------------- date
def date_score(p: Profile, others: list[Profile]) -> _Scored:
    """How much a column looks like the order date."""
    if not p.is_date:
        return _Scored(0.0, [])
    reasons = [f"{_fmt_share(p.date_share)} of its values read as dates ({p.date_note})"]
    score = 0.45
    if p.days <= 1:
        score -= 0.3
        reasons.append("one day only")
    else:
        score += 0.2 * min(1.0, p.days / 20)
        reasons.append(f"{p.days:,} distinct days over {p.span_days:,.0f} days")
    numeric_kind = any(k in p.date_note for k in ("Unix", "Excel", "day numbers"))
    word, against = says(p.name, "invoice_date"), says_not(p.name, "invoice_date")
    if word:
        score += 0.3
        reasons.append(f"the name says {word!r}")
    elif numeric_kind:
        score *= 0.4  # counted days or seconds in a column whose name says nothing of dates
        reasons.append("numbers that would count dates, but the name does not say date")
    if against:
        score -= 0.35
        reasons.append(f"but the name says {against!r}")
    score *= 0.6 + 0.4 * p.present_share
    if p.present_share < 0.9:
        reasons.append(f"filled on {_fmt_share(p.present_share)} of lines")
    latest = max((o.dates.max() for o in others if o.is_date and o is not p
                  and o.dates is not None), default=None)
    if latest is not None and p.dates is not None and pd.notna(latest):
        gap = (latest - p.dates.median()).days / 365.25
        if gap > 15:
            score -= 0.35
            reasons.append(f"its dates lie {gap:.0f} years before the others' (birth dates?)")
    return _Scored(score, reasons)


def _choose_date(profiles: dict[str, Profile], free: list[str], codes: _Codes,
                 evidence: dict[str, Choice], source: str, questions: list[str]
                 ) -> str | None:
    dated = [profiles[c] for c in free if profiles[c].is_date]
    scored = {p.name: _floored(date_score(p, dated), p.name, "invoice_date") for p in dated}
    # The order date comes first: a ship, delivery or payment date is on or after it.
    for a, b in itertools.permutations(dated, 2):
        both = a.dates.notna() & b.dates.notna()
        if both.sum() >= 10 and scored[a.name].score > 0 and scored[b.name].score > 0:
            da, db = a.dates[both].dt.normalize(), b.dates[both].dt.normalize()
            if (da <= db).mean() >= 0.95 and (da < db).mean() >= 0.1:
                scored[a.name].score += 0.1
                scored[a.name].reasons.append(f"on or before {b.name!r} on "
                                              f"{_fmt_share((da <= db).mean())} of lines")
    for sc in scored.values():
        sc.score = sc.value
    ranked = sorted(scored.items(), key=lambda kv: -kv[1].score)
    if not ranked or ranked[0][1].score < MIN_SCORE:
        return None
    best, second = ranked[0], ranked[1] if len(ranked) > 1 else None
    _close("invoice_date", "the order date", best, second, source, questions)
    evidence["invoice_date"] = _choice("invoice_date", best, second)
    return best[0]


def _close(fld: str, what: str, best: tuple[str, _Scored], second: tuple[str, _Scored] | None,
           source: str, questions: list[str]) -> None:
    """Note the question to ask when the runner-up is too close to the best reading."""
    if second is None or second[1].value < MIN_SCORE:
        return
    if best[1].value - second[1].value < CLOSE:
        questions.append(
            f"{source}: cannot tell which column is {what}: {best[0]!r} "
            f"({best[1].text()}) or {second[0]!r} ({second[1].text()}); choose with "
            f"--map {fld}={best[0]} or --map {fld}={second[0]}.")


def _choice(fld: str, best: tuple[str, _Scored], second: tuple[str, _Scored] | None
            ) -> Choice:
    """The choice of ``best``: its confidence is its score, halved when the runner-up is
    as good and whole from a margin of 0.3."""
    score = float(np.clip(best[1].value, 0, 1))
    margin = best[1].value - (second[1].value if second and second[1].value > 0 else 0)
    confidence = round(score * float(np.clip(0.5 + margin / 0.6, 0.5, 1)), 2)
    runner = None
    if second and second[1].value >= MIN_SCORE / 2:
        runner = f"{second[0]} ({float(np.clip(second[1].value, 0, 1)):.2f})"
    return Choice(fld, best[0], confidence, best[1].text(), runner)


# ------------------------------------------------------------------------------- keys
def key_like(p: Profile) -> str | None:
    """What makes a column a possible key (customer, order, product), else None."""
    if p.present < 1 or p.is_date:
        return None
    if p.numbers is not None and p.number_share >= 0.95:
        if p.integer_share >= 0.99 and p.negative_share == 0:
            return "whole numbers"
        return None
    if p.email_share >= 0.8:
        return "e-mail addresses"
    if p.code_share >= 0.9 and p.mean_length <= 64:
        return "codes"
    if p.word_share >= 0.6 and p.mean_length <= 80:
        return "names"
    return None


def _start(score: float, what: str, name: str, fld: str) -> _Scored:
    """A key's score for ``fld`` from what its values are, and what its name says."""
    s = _Scored(score, [what])
    word = says(name, fld)
    if word:
        s.score += 0.35
        s.reasons.append(f"the name says {word!r}")
    return s


def _key_scores(p: Profile, kind: str, codes: _Codes, date: str | None
                ) -> dict[str, _Scored]:
    """Scores of one key-like column as customer, order and product, alone."""
    n_rows = p.present / max(p.distinct, 1)
    out = {}
    many = f"{p.distinct:,} distinct values, {n_rows:.1f} lines each"
    same_day, day_groups = (codes.same_within(p.name, codes.day(date)) if date
                            else (None, 0))
    # customer
    s = _start(0.3, f"{kind}, {many}", p.name, "customer_id")
    if kind == "e-mail addresses":
        s.score -= 0.05  # personal data: an id that says the same is better
    if kind == "names":
        s.score -= 0.15
    if p.distinct <= 12 and p.present >= 100:
        s.score -= 0.3
        s.reasons.append("too few values for customers")
    if same_day is not None and day_groups >= MIN_GROUPS and same_day < 0.8:
        s.reasons.append(f"{_fmt_share(1 - same_day)} of them buy on several days")
    out["customer_id"] = s
    # order
    s = _start(0.3, f"{kind}, {many}", p.name, "invoice_id")
    if kind in ("e-mail addresses", "names"):
        s.score -= 0.3
    if same_day is not None and day_groups >= MIN_GROUPS:
        if same_day >= 0.95:
            s.score += 0.15
            s.reasons.append(f"the lines of each share one date ({_fmt_share(same_day)})")
        elif same_day < 0.8:
            s.score -= 0.5
            s.reasons.append(f"its lines span several dates ({_fmt_share(1 - same_day)})")
    out["invoice_id"] = s
    # product
    s = _start(0.25, f"{kind}, {many}", p.name, "product_id")
    if kind in ("e-mail addresses", "names"):
        s.score -= 0.3
    if kind == "whole numbers" and p.numbers is not None:
        v = p.values()
        if len(v) and v.max() <= 100 and np.mean(v == 1) >= 0.3:
            s.score -= 0.4  # 1, 2, 3 within each order: a line number
            s.reasons.append("numbers the lines of an order (1, 2, 3 ...)")
    out["product_id"] = s
    if row_number_name(p.name) and p.distinct == p.present:
        for s in out.values():
            s.score -= 0.5
            s.reasons.append("numbers the rows")
    return {f: _floored(s, p.name, f) for f, s in out.items()}


def _choose_keys(profiles: dict[str, Profile], free: list[str], codes: _Codes,
                 date: str | None, given: dict[str, str], evidence: dict[str, Choice],
                 source: str, questions: list[str]) -> dict[str, str]:
    """Customer, order and product keys, chosen together (one column each)."""
    wanted = [f for f in ("customer_id", "invoice_id", "product_id") if f not in given]
    kinds = {c: key_like(profiles[c]) for c in free}
    cands = [c for c in free if kinds[c] and not is_personal_name(c)]
    alone = {c: _key_scores(profiles[c], kinds[c], codes, date) for c in cands}
    top = {f: sorted(cands, key=lambda c: -alone[c][f].value)[:TOP_KEYS] for f in wanted}
    options = {f: [None, *top[f]] for f in wanted}
    results = []
    for combo in itertools.product(*(options[f] for f in wanted)):
        chosen = dict(zip(wanted, combo, strict=True))
        used = [c for c in chosen.values() if c]
        if len(used) != len(set(used)):
            continue
        full = {**{f: given[f] for f in ("customer_id", "invoice_id", "product_id")
                   if f in given}, **chosen}
        total, detail = _keys_total(full, alone, profiles, codes, wanted)
        results.append((total, chosen, detail))
    if not results:
        return {}
    results.sort(key=lambda r: -r[0])
    best_total, best, detail = results[0]
    for f in wanted:
        col = best[f]
        rival = next((r for r in results[1:] if r[1][f] != col and r[1][f] is not None
                      and detail.get(f) is not None), None)
        if col is None:
            continue
        mine = detail[f]
        second = None
        if rival is not None:
            gap = best_total - rival[0]
            second = (rival[1][f], _Scored(mine.value - gap, rival[2][f].reasons
                                           if rival[2].get(f) else []))
        if second is not None and codes.equivalent(col, second[0]):
            mine.reasons.append(f"the same values as {second[0]!r}")
            second = None  # either reads the same
        if f != "product_id":
            _close(f, {"customer_id": "the customer", "invoice_id": "the order"}[f],
                   (col, mine), second, source, questions)
        evidence[f] = _choice(f, (col, mine), second)
    return {f: c for f, c in best.items() if c is not None}


def is_personal_name(col: str) -> bool:
    """A column named as a phone, an address or a person's name that is not the
    customer's: never a key. The customer's e-mail or name may be: it identifies the
    customer in shop exports and B2B order books (and is personal data, see
    :attr:`Reading.personal_key`)."""
    if not is_personal(col):
        return False
    part = {"first", "last", "given", "family", "surname", "middle", "maiden", "vorname",
            "nachname", "prenom", "apellido", "apellidos", "cognome", "voornaam",
            "achternaam"}
    return not says(col, "customer_id") or bool(part & set(words(col)))


def _keys_total(chosen: dict[str, str | None], alone, profiles, codes: _Codes,
                wanted: list[str]) -> tuple[float, dict[str, _Scored]]:
    """The joint score of a choice of customer, order and product columns."""
    detail: dict[str, _Scored] = {}
    for f in wanted:
        c = chosen.get(f)
        if c is None:
            continue
        base = alone[c][f]
        if base.value < MIN_SCORE:
            return -1.0, {}
        detail[f] = _Scored(base.score, list(base.reasons), base.floor)
    cust, order, product = (chosen.get("customer_id"), chosen.get("invoice_id"),
                            chosen.get("product_id"))
    if order and cust and "customer_id" in detail:
        several, groups = codes.varies_within(cust, order)
        if several is not None and groups >= MIN_GROUPS and several >= 0.2:
            detail["customer_id"].score += 0.1
            detail["customer_id"].reasons.append(
                f"{_fmt_share(several)} of them have several orders")
    if order and cust:
        same, groups = codes.same_within(order, codes.codes(cust))
        if same is not None and groups >= MIN_GROUPS:
            for f in ("customer_id", "invoice_id"):
                if f not in detail:
                    continue
                if same >= 0.95:
                    detail[f].score += 0.1
                    detail[f].reasons.append(
                        f"one customer per order ({_fmt_share(same)} of orders)"
                        if f == "invoice_id" else
                        f"the same on every line of an order ({_fmt_share(same)})")
                elif same < 0.8:
                    detail[f].score -= 0.4
                    detail[f].reasons.append(f"differs within {_fmt_share(1 - same)} of "
                                             f"{order!r}'s groups")
        p_c, p_o = profiles[cust], profiles[order]
        if "invoice_id" in detail and p_o.distinct * 1.5 < p_c.distinct:
            detail["invoice_id"].score -= 0.3
            detail["invoice_id"].reasons.append("fewer orders than customers")
    if product and order:
        varies, groups = codes.varies_within(order, product)
        if varies is not None and groups >= MIN_GROUPS and "product_id" in detail:
            if varies >= 0.5:
                detail["product_id"].score += 0.1
                detail["product_id"].reasons.append(
                    f"varies within {_fmt_share(varies)} of orders")
            elif varies < 0.1:
                detail["product_id"].score -= 0.3
                detail["product_id"].reasons.append("the same on every line of an order")
    if product and cust and "product_id" in detail:
        varies, groups = codes.varies_within(cust, product)
        if varies is not None and groups >= MIN_GROUPS:
            if varies >= 0.5:
                detail["product_id"].score += 0.1
                detail["product_id"].reasons.append(
                    f"{_fmt_share(varies)} of customers bought several")
            elif varies < 0.05:
                detail["product_id"].score -= 0.3
                detail["product_id"].reasons.append("the same on every line of a customer")
    if any(s.value < MIN_SCORE for s in detail.values()):
        return -1.0, {}  # a role the pairs speak against is better left empty
    total = sum(s.value for s in detail.values())
    return total, detail


# ------------------------------------------------------------------------------ money
def quantity_score(p: Profile) -> _Scored:
    """How much a column of numbers looks like the quantity of a line."""
    if not p.is_number:
        return _Scored(0.0, [])
    med, top = p.median, p.quantile(0.95)
    reasons = []
    score = 0.1
    few = p.present < FEW  # too few values for their shape to speak
    if med < 1 and not few:
        score -= 0.4
        reasons.append(f"mostly below 1 (median {med:g})")
    if p.integer_share >= 0.99:
        score += 0.2
        reasons.append(f"whole numbers (median {med:g}, 95% up to {top:g})")
    elif p.integer_share >= 0.8:
        score += 0.05
        reasons.append(f"mostly whole numbers ({_fmt_share(p.integer_share)})")
    else:
        score -= 0.2
        reasons.append("not whole numbers")
    if med <= 5 and top <= 1000:
        score += 0.15
    elif med > 50:
        score -= 0.3
        reasons.append(f"large (median {med:g})")
    if p.two_decimals >= 0.5 or p.money_text >= 0.3:
        score -= 0.4
        reasons.append("written as money")
    word, against = says(p.name, "quantity"), says_not(p.name, "quantity")
    if word:
        score += 0.35
        reasons.append(f"the name says {word!r}")
    elif says(p.name, "unit_price") or says(p.name, "amount") or against:
        score -= 0.2
    if p.numbers is not None and p.distinct / max(p.present, 1) > 0.9 and p.present > 50:
        score -= 0.3
        reasons.append("nearly every value different (an id?)")
    return _Scored(score, reasons)


def money_score(p: Profile, as_field: str) -> _Scored:
    """How much a column of numbers looks like money of a line: ``unit_price`` or
    ``amount`` (the line total)."""
    if not p.is_number:
        return _Scored(0.0, [])
    reasons = []
    score = 0.25
    if p.two_decimals >= 0.5 or p.money_text >= 0.3:
        score += 0.15
        reasons.append("written as money (two decimals or a currency)")
    elif p.integer_share < 0.99:
        score += 0.05
    med = p.median
    if p.integer_share >= 0.99 and med <= 5:
        score -= 0.15
    if p.negative_share > 0.3 and p.present >= FEW:
        score -= 0.3
        reasons.append(f"{_fmt_share(p.negative_share)} negative")
    word = says(p.name, as_field)
    other = says(p.name, "amount" if as_field == "unit_price" else "unit_price")
    if word:
        score += 0.3
        reasons.append(f"the name says {word!r}")
    elif other:
        score += 0.15
        reasons.append(f"the name says {other!r}")
    against = not_paid_money(p.name)
    if against:
        score -= 0.5
        reasons.append(f"but the name says {against!r}")
    if says(p.name, "quantity") and not word and not other:
        score -= 0.2
    if id_like_name(p.name) and not (says(p.name, "unit_price") or says(p.name, "amount")
                                     and not says(p.name, "invoice_id")):
        score -= 0.5
        reasons.append("the name says id")
    if p.integer_share >= 0.99 and p.distinct / max(p.present, 1) > 0.95 and p.present > 50 \
            and not (word or other):
        score -= 0.3
        reasons.append("nearly every value a different whole number (an id?)")
    if p.distinct <= 1 and not (word or other):
        score -= 0.3
        reasons.append("one value only")
    return _Scored(score, reasons)


def _choose_money(profiles: dict[str, Profile], free: list[str], codes: _Codes,
                  keys: dict[str, str], given: dict[str, str], evidence: dict[str, Choice],
                  source: str, questions: list[str]) -> dict[str, str]:
    """Quantity, unit price and line total, chosen together."""
    wanted = [f for f in ("quantity", "unit_price", "amount") if f not in given]
    numeric = [c for c in free if profiles[c].is_number]
    order = keys.get("invoice_id") or given.get("invoice_id")
    alone = {c: {f: _floored(score(profiles[c]), c, f) for f, score in (
        ("quantity", quantity_score), ("unit_price", lambda p: money_score(p, "unit_price")),
        ("amount", lambda p: money_score(p, "amount")))} for c in numeric}
    for c in numeric:
        if order and codes.numbers_lines(c, order):
            alone[c]["quantity"].score -= 0.5
            alone[c]["quantity"].reasons.append(f"numbers the lines of each {order!r} "
                                                "(1, 2, 3 ...)")
        if order and _order_level(codes, c, order, [
                o for o in numeric if alone[o]["amount"].score >= MIN_SCORE]):
            for f in ("unit_price", "amount"):
                alone[c][f].score -= 0.5
                alone[c][f].reasons.append(f"the same on every line of an {order!r} whose "
                                           "lines differ: the order's total")
    if order:  # a total that sums the order's lines is the order's, not a line's
        quantities = [c for c in numeric if alone[c]["quantity"].score >= QUANTITY_SCORE][:3]
        for t in numeric:
            for p in numeric:
                if p == t or alone[p]["unit_price"].score < MIN_SCORE:
                    continue
                q = next((q for q in [*quantities, None] if q not in (p, t)
                          and _order_sums(codes, profiles[q] if q else None, profiles[p],
                                          profiles[t], order) >= 0.8), "")
                if q != "":
                    for f in ("unit_price", "amount"):
                        alone[t][f].score -= 0.6
                        alone[t][f].floor = -1.0  # decisive, whatever its name
                        alone[t][f].reasons.append(
                            f"{t!r} is the sum of {p!r}{f' x {q!r}' if q else ''} over each "
                            f"{order!r}: the order's total, not a line's")
                    break
    floor = {"quantity": QUANTITY_SCORE}
    top = {f: [c for c in sorted(numeric, key=lambda c: -alone[c][f].value)[:5]
               if alone[c][f].value >= floor.get(f, MIN_SCORE)] for f in wanted}
    options = {f: [None, *top[f]] for f in wanted}
    group = keys.get("product_id") or given.get("product_id")
    results = []
    for combo in itertools.product(*(options[f] for f in wanted)):
        chosen = {**{f: given[f] for f in ("quantity", "unit_price", "amount") if f in given},
                  **dict(zip(wanted, combo, strict=True))}
        used = [c for c in chosen.values() if c]
        if len(used) != len(set(used)) or not (chosen.get("unit_price")
                                               or chosen.get("amount")):
            continue
        if not chosen.get("quantity") and chosen.get("unit_price") and chosen.get("amount"):
            continue  # without quantities a price and a total are one value: one column
        total, detail = _money_total(chosen, alone, profiles, wanted, group)
        results.append((total, chosen, detail))
    if not results:
        return {}
    results.sort(key=lambda r: -r[0])
    best_total, best, detail = results[0]
    rival = next((r for r in results[1:] if _value_columns(r[1]) != _value_columns(best)),
                 None)
    if rival is not None and best_total - rival[0] < CLOSE:
        questions.append(
            f"{source}: cannot tell how a line's value is written: "
            f"{_value_words(best)} ({_texts(detail)}) or {_value_words(rival[1])} "
            f"({_texts(rival[2])}); choose with --map "
            f"{' --map '.join(f'{f}={c}' for f, c in best.items() if c)}.")
    q, p, t = _value_columns(best)
    if q and p and t and "amount" in detail:
        # The line total is what was paid (after a discount, with a tax, where a price is
        # capped): it is the line's value; price x quantity only checks it.
        agree = _product_agrees(profiles[q], profiles[p], profiles[t])
        ratio = _constant_ratio(profiles[q], profiles[p], profiles[t])
        if agree < 0.8 and ratio is not None:
            detail["amount"].reasons.append(f"{t!r} is {p!r} x {q!r} x {ratio:.4g} on 95% "
                                            "of lines (a tax or a fee)")
        elif agree < 0.8:
            detail["amount"].reasons.append(f"{p!r} x {q!r} is {t!r} on only "
                                            f"{_fmt_share(agree)} of lines")
        detail["amount"].reasons.append(f"the line's value; {p!r} is not used")
        best = {**best, "unit_price": None}
    for f in wanted:
        col = best.get(f)
        if col is None or f not in detail:
            continue
        alt = next((r for r in results[1:] if r[1].get(f) not in (col, None)), None)
        second = None
        if alt is not None and f in alt[2]:
            second = (alt[1][f], _Scored(detail[f].value - (best_total - alt[0]),
                                         alt[2][f].reasons))
        evidence[f] = _choice(f, (col, detail[f]), second)
    return {f: c for f, c in best.items() if c is not None and f in wanted}


def _order_level(codes: _Codes, col: str, order: str, numeric: list[str]) -> bool:
    """Whether a money column holds one value per order while another money column
    varies within the orders (an order total beside line prices)."""
    same, groups = codes.same_within(order, codes.codes(col))
    if same is None or groups < MIN_GROUPS or same < 0.95:
        return False
    return any((codes.varies_within(order, other)[0] or 0) >= 0.3 for other in numeric
               if other != col)


def _value_columns(chosen: dict[str, str | None]) -> tuple:
    return tuple(chosen.get(f) for f in ("quantity", "unit_price", "amount"))


def _value_words(chosen: dict[str, str | None]) -> str:
    q, p, t = _value_columns(chosen)
    if p:
        return f"{q!r} x {p!r}" if q else f"{p!r} per line"
    return f"{t!r} as the line total" + (f" of {q!r} units" if q else "")


def _texts(detail: dict[str, _Scored]) -> str:
    return "; ".join(f"{f}: {s.text()}" for f, s in detail.items() if s.reasons)


def _money_total(chosen, alone, profiles, wanted, group) -> tuple[float, dict[str, _Scored]]:
    detail: dict[str, _Scored] = {}
    for f in wanted:
        c = chosen.get(f)
        if c is not None:
            s = alone[c][f]
            detail[f] = _Scored(s.score, list(s.reasons), s.floor)
    q, p, t = _value_columns(chosen)
    if q and p and t:
        agree = _product_agrees(profiles[q], profiles[p], profiles[t])
        if agree < 0.8 and _constant_ratio(profiles[q], profiles[p], profiles[t]):
            agree = 0.8
        for f in ("unit_price", "amount"):
            if f not in detail:
                continue
            if agree >= 0.8:
                detail[f].score += 0.4
                detail[f].reasons.append(f"{p!r} x {q!r} = {t!r} on {_fmt_share(agree)} of "
                                         "lines")
            elif agree < 0.3:
                detail[f].score -= 0.3
                detail[f].reasons.append(f"{p!r} x {q!r} is not {t!r} ({_fmt_share(agree)} "
                                         "of lines)")
    elif q and (p or t):
        money = p or t
        verdict, why = value_reading(profiles[money], profiles[q],
                                     profiles[group] if group else None)
        f = "unit_price" if p else "amount"
        if f in detail:
            if verdict == ("total" if p else "unit"):
                detail[f].score -= 0.5
                detail[f].reasons.append(why)
            elif verdict == ("unit" if p else "total"):
                detail[f].score += 0.3
                detail[f].reasons.append(why)
            elif verdict == "same":
                detail[f].reasons.append(why)
    floor = {"quantity": QUANTITY_SCORE}
    if any(sc.value < floor.get(f, MIN_SCORE) for f, sc in detail.items()):
        return -1.0, {}
    total = sum(s.value for s in detail.values())
    return total, detail


def _order_sums(codes: _Codes, q: Profile | None, p: Profile, t: Profile, order: str
                ) -> float:
    """Of the orders of several lines, the share whose total ``t`` (on each line, or on
    the first) is the sum of price x quantity (price without ``q``) over its lines."""
    k = codes.codes(order)
    qty = q.numbers if q is not None else np.ones(len(k))
    ok = (k >= 0) & ~np.isnan(qty) & ~np.isnan(p.numbers)
    if ok.sum() < 2:
        return 0.0
    keys, v, top = k[ok], qty[ok] * p.numbers[ok], t.numbers[ok]
    n = np.bincount(keys)
    sums = np.bincount(keys, weights=v)
    most = np.full(len(n), -np.inf)
    np.fmax.at(most, keys, top)  # the total on each line, or on the first (NaN skipped)
    multi = n >= 2
    if multi.sum() < MIN_GROUPS:
        return 0.0
    v, top = sums[multi], most[multi]
    return float((np.abs(top - v) <= 0.01 * np.abs(v) + 0.011).mean())


def _constant_ratio(q: Profile, p: Profile, t: Profile) -> float | None:
    """The factor by which the line total is price x quantity on 95% of lines (a tax of
    5%: 1.05), when there is one."""
    qq, pp, tt = q.numbers, p.numbers, t.numbers
    ok = ~(np.isnan(qq) | np.isnan(pp) | np.isnan(tt)) & (qq * pp > 0)
    if ok.sum() < 10:
        return None
    ratio = tt[ok] / (qq[ok] * pp[ok])
    mid = float(np.median(ratio))
    close = np.abs(ratio - mid) <= 0.005 * abs(mid)
    return mid if 0.5 <= mid <= 1.5 and close.mean() >= 0.95 else None


def _product_agrees(q: Profile, p: Profile, t: Profile) -> float:
    """Share of lines where unit price x quantity is the line total (within a cent or 1%)."""
    qq, pp, tt = q.numbers, p.numbers, t.numbers
    ok = ~(np.isnan(qq) | np.isnan(pp) | np.isnan(tt))
    if ok.sum() < 3:
        return 0.5
    prod, total = qq[ok] * pp[ok], tt[ok]
    close = np.abs(prod - total) <= np.maximum(0.011, 0.01 * np.abs(total))
    return float(close.mean())


def value_reading(money: Profile, quantity: Profile, group: Profile | None
                  ) -> tuple[str, str]:
    """Whether a lone money column is a unit price (``"unit"``) or a line total
    (``"total"``) of ``quantity`` units, ``"same"`` when the quantities are all 1 (both
    readings agree), or ``"unknown"``, with the reason in words.

    Within a product (or ``group``'s values), a unit price stays the same whatever the
    quantity while a line total grows with it: of the two, money or money / quantity,
    the one that varies less within groups that were bought in several quantities is
    the price. Without a group, a line total rises with the quantity (the slope of log
    money on log quantity is near 1) and a unit price does not (near 0).
    """
    m, qn = money.numbers, quantity.numbers
    ok = ~(np.isnan(m) | np.isnan(qn)) & (qn > 0) & (m > 0)
    if ok.sum() < 10:
        return "unknown", "too few lines to tell"
    mm, qq = np.log(m[ok]), np.log(qn[ok])
    if np.mean(qn[ok] == 1) >= 0.97:
        return "same", (f"{quantity.name!r} is 1 on {_fmt_share(np.mean(qn[ok] == 1))} of "
                        "lines, so unit price and line total agree")
    if group is not None:
        g = pd.Series(pd.factorize(group.text)[0][ok])
        frame = pd.DataFrame({"g": g.to_numpy(), "m": mm, "u": mm - qq, "q": qq})
        frame = frame[frame["g"] >= 0]
        varied = frame[frame.groupby("g")["q"].transform("nunique") > 1]
        if varied["g"].nunique() >= 5:
            spread = varied.groupby("g")[["m", "u"]].std().median()
            as_is, per_unit = float(spread["m"]), float(spread["u"])
            words = (f"within {group.name!r} bought in several quantities, {money.name!r} "
                     f"varies by {as_is:.2f} (log) and {money.name!r} / {quantity.name!r} "
                     f"by {per_unit:.2f}")
            if per_unit < 0.6 * as_is:
                return "total", f"{money.name!r} is the line total: {words}"
            if as_is < 0.6 * per_unit:
                return "unit", f"{money.name!r} is the unit price: {words}"
    if np.std(qq) > 0:
        slope = float(np.polyfit(qq, mm, 1)[0])
        words = f"log {money.name!r} rises {slope:.2f} per log {quantity.name!r}"
        if slope >= 0.6:
            return "total", f"{money.name!r} is the line total: {words}"
        if slope <= 0.3:
            return "unit", f"{money.name!r} is the unit price: {words}"
        return "unknown", words
    return "unknown", "the quantities do not vary"


def value_words(mapping: dict[str, str], evidence: dict[str, Choice]) -> str:
    """How a line's value is computed, in words."""
    q, p, t = (mapping.get(f) for f in ("quantity", "unit_price", "amount"))
    if p:
        how = f"{q} x {p}" if q else f"{p} (no quantity column: 1 unit a line)"
        if t:
            how += f" ({t} not used)"
        return how
    if t:
        return f"{t}, the line total" + (f" ({q} units, not multiplied)" if q else "")
    return "none"


# ------------------------------------------------------------------------------- text
def _choose_texts(profiles: dict[str, Profile], free: list[str], codes: _Codes,
                  keys: dict[str, str], given: dict[str, str],
                  evidence: dict[str, Choice]) -> dict[str, str]:
    """Description, category and country: text columns whose names say so."""
    out: dict[str, str] = {}
    product = keys.get("product_id") or given.get("product_id")
    for fld in ("description", "category", "country"):
        if fld in given:
            continue
        scored = []
        for c in free:
            if c in out.values():
                continue
            p = profiles[c]
            if p.is_number or p.is_date or not p.present or is_personal(c) or is_flag(p):
                continue
            word = says(c, fld)
            if not word:
                continue
            s = _Scored(0.5, [f"the name says {word!r}", f"{p.distinct:,} distinct values"])
            if fld == "description":
                if p.word_share < 0.3 and p.mean_length < 8:
                    continue
                if product:
                    same, groups = codes.same_within(product, codes.codes(c))
                    if same is not None and groups >= MIN_GROUPS and same >= 0.9:
                        s.score += 0.2
                        s.reasons.append(f"one per {product!r} ({_fmt_share(same)})")
            elif p.distinct > max(200, 0.5 * p.present):
                continue
            if fld == "category" and word in _CATEGORY_WORDS:
                s.score += 0.2 + (0.05 if word.startswith(("sub", "sous", "sott", "unter"))
                                  else 0)
            scored.append((c, s))
        if scored:
            scored.sort(key=lambda cs: -cs[1].score)
            out[fld] = scored[0][0]
            evidence[fld] = _choice(fld, scored[0], scored[1] if len(scored) > 1 else None)
    for fld in ("discount", "coupon"):
        if fld in given:
            continue
        for c in free:
            p = profiles[c]
            word = says(c, fld)
            if c in out.values() or not word or not p.present or p.is_date:
                continue
            if fld == "discount" and not p.is_number:
                continue
            out[fld] = c
            evidence[fld] = Choice(fld, c, 0.7, f"the name says {word!r}; "
                                   f"{'numbers' if p.is_number else 'codes'} on "
                                   f"{_fmt_share(p.present_share)} of lines")
            break
    return out


# -------------------------------------------------------------------------- attributes
def attributes(profiles: dict[str, Profile], rest: list[str], codes: _Codes,
               customer: str | None, order: str | None) -> tuple[list[str], list[str]]:
    """The other columns as customer attributes (the same on every line of a customer:
    gender, age, city) and line attributes (text varying by line: category, channel,
    store, payment method). Personal data, ids, dates (but birth dates), free text,
    statuses and columns of nearly one value are neither. Where too few customers have
    several lines for the values to tell, the name does."""
    cust, line = [], []
    for c in rest:
        p = profiles[c]
        if not p.present or p.present_share < 0.5 or p.distinct < 2 or is_personal(c):
            continue
        if p.email_share >= 0.5 or p.mean_length > 40:
            continue
        if says(c, "customer_id") and p.word_share >= 0.5:
            continue  # the customer's name
        top = p.text.value_counts(normalize=True).iloc[0]
        if top >= 0.97:
            continue  # nearly one value: says nothing
        if key_like(p) == "codes" and p.distinct > 0.5 * p.present and not p.is_number:
            continue  # an id of its own
        birth = says(c, "customer_attribute") in ("birth", "born", "dob", "nacimiento",
                                                  "geburt", "naissance", "nascita",
                                                  "geboorte", "nascimento", "geburtsdatum")
        if p.is_date and not birth:
            continue
        same, groups = (codes.same_over_orders(customer, c, order) if customer
                        else (None, 0))
        enough = customer is not None and groups >= max(MIN_GROUPS * 4,
                                                        0.1 * profiles[customer].distinct)
        named_id = id_like_name(c) and not says(c, "customer_attribute")
        if enough and same >= 0.95:
            cust.append(c)
        elif enough:
            if _line_attribute(p) and not named_id:
                line.append(c)
        elif named_id:
            continue  # a key of something else (a card, a store's own number)
        elif says(c, "customer_attribute") and not says(c, "line_attribute"):
            cust.append(c)
        elif _line_attribute(p) and (says(c, "line_attribute") or p.distinct <= 50):
            line.append(c)
    return cust, line


_FLAGS = {"true", "false", "yes", "no", "y", "n", "0", "1", "t", "f"}


def is_flag(p: Profile) -> bool:
    """Two values such as true/false or yes/no."""
    return p.distinct <= 2 and set(p.text.dropna().str.lower().unique()) <= _FLAGS


def _line_attribute(p: Profile) -> bool:
    """Text of a few levels whose name is not a status or an id (lift per segment is
    computed over it), not a true/false flag."""
    if p.is_number or p.is_date or p.distinct > 100 or is_flag(p):
        return False
    return not says_not(p.name, "line_attribute")


def order_level(profiles: dict[str, Profile], cols: list[str], codes: _Codes,
                order: str | None) -> list[str]:
    """Columns filled on exactly one line of each order with several lines (Shopify's
    order fields, filled on the order's first line only)."""
    if order is None:
        return []
    found = []
    k = codes.codes(order)
    size = np.bincount(k[k >= 0]) if (k >= 0).any() else np.array([])
    multi = size >= 2
    if multi.sum() < MIN_GROUPS:
        return []
    for c in cols:
        p = profiles[c]
        if c == order or not p.present or p.present_share > 0.9:
            continue
        filled = p.text.notna().to_numpy() & (k >= 0)
        per_order = np.bincount(k[filled], minlength=len(size))
        if np.mean(per_order[multi] == 1) >= 0.9:
            found.append(c)
    return found
