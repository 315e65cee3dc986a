"""How an input's columns are read: a known export format by its header
(:mod:`custseg.io._formats`), else each column's role from the values
(:mod:`custseg.io._infer`); ``--map`` decides over both. Decided on a sample of rows
(:mod:`custseg.io._peek`) before the input is read whole, so a mapping error comes at
once.
"""

from __future__ import annotations

import duckdb
import numpy as np

from custseg.core.config import Config
from custseg.core.exceptions import MappingError
from custseg.io._evidence import lexicon_raw, plain, profile, says
from custseg.io._formats import Drop, Prep, format_prep, recognise
from custseg.io._infer import Choice, Reading, read_roles
from custseg.io._mapping import FIELDS, MONEY, REQUIRED, _list
from custseg.io._parse import quiet_connect
from custseg.io._peek import Peek
from custseg.io._roles import id_like_name


def reading_of(look: Peek, config: Config, con: duckdb.DuckDBPyConnection | None = None
               ) -> Reading:
    """The roles of the sampled input's columns, its export format and how its rows are
    prepared. Ambiguities and missing roles are left in the reading (see
    :func:`check_orders`): a customer table has no order date, and that is no error."""
    own = con is None
    con = con or quiet_connect()
    try:
        _check_map(look, config)
        fmt = recognise(look.columns)
        declared: dict[str, str] = {}
        skip: frozenset[str] = frozenset()
        if fmt is not None:
            declared = {f: cols[0] for f, cols in fmt.present(look.columns).items()
                        if f in FIELDS and f not in config.mapping}
            value = {"quantity", "unit_price", "amount"}
            skip = frozenset(value - set(declared) - set(config.mapping)
                             if value & set(declared) else ())
        given = {**declared, **config.mapping}
        profiles = profile(con, look.frame, dayfirst=config.dayfirst,
                           start_date=config.start_date)
        reading = read_roles(profiles, look.frame, given=given, skip=skip, source=look.name)
    finally:
        if own:
            con.close()
    for f, col in declared.items():
        if f in reading.evidence:
            reading.evidence[f] = Choice(f, col, 1.0, f"the {fmt.name}'s {f} column")
    reading.format = fmt
    if fmt is not None:
        if "customer_id" not in reading.mapping and fmt.no_customer:
            reading.questions.insert(0, f"{look.name} is an {fmt.name}: {fmt.no_customer}.")
        prep = format_prep(fmt, look.columns, reading.mapping)
        reading.notes.append(f"Recognised as the {fmt.name} by its header; dates: "
                             f"{fmt.time_zone}.")
    else:
        prep = Prep(order=reading.mapping.get("invoice_id"), carry=list(reading.order_level),
                    drops=status_drops(look))
        if reading.order_level:
            reading.notes.append(f"{', '.join(reading.order_level)}: filled on one line of "
                                 "each order only, carried down to its other lines.")
        for d in prep.drops:
            reading.notes.append(f"{d.column}: lines whose value is "
                                 f"{', '.join(map(repr, d.is_))} are dropped as {d.reason}.")
    used = {*reading.mapping.values(), *reading.line_attributes,
            *reading.customer_attributes, *(d.column for d in prep.drops),
            *(c for c in (prep.refund or ()) if c), prep.less}
    prep.carry = [c for c in prep.carry if c in used]
    prep.lower_key = reading.personal_key == "e-mail addresses"
    discount = reading.mapping.get("discount")
    if discount and "unit_price" in reading.mapping and fmt is None and is_rate(profiles[discount]):
        prep.rate = discount
        reading.value += f" x (1 - {discount}), a discount rate"
    reading.prep = prep
    return reading


def is_rate(p) -> bool:
    """Numbers between 0 and 1, not all whole (a discount of 0.15 is 15%)."""
    v = p.values()
    return bool(len(v) and v.min() >= 0 and v.max() < 1 and (v != np.round(v)).any())


_YES = {"yes", "y", "true", "1", "x", "oui", "si", "sí", "ja", "j", "sim", "s", "wahr", "vrai"}


def status_drops(look: Peek) -> list[Drop]:
    """The values of a status column (``order_status``, ``Estado``, ``Statut``) that say
    an order was cancelled, refunded or never paid (``data/column_words.json``,
    ``status_values``), each a drop reason; none when such values would be most lines."""
    stems = {r: v for r, v in lexicon_raw()["status_values"].items() if not r.startswith("_")}
    drops = []
    for col in look.columns:
        named = next((r for r, ss in stems.items() if any(x in plain(col) for x in ss)), None)
        if not named and not says(col, "status"):
            continue
        values = look.frame[col].dropna().astype(str).str.strip()
        counts = values.value_counts()
        if named and 0 < len(counts) <= 3:  # a flag: Returned (yes), Retoure (Ja)
            yes = [v for v in counts.index if plain(v) in _YES]
            if yes and counts[yes].sum() < 0.5 * len(look.frame):
                drops.append(Drop(named, col, is_=tuple(yes)))
            continue
        if not says(col, "status") or values.empty or len(counts) > 30:
            continue
        found: dict[str, list[str]] = {}
        for value in counts.index:
            reason = next((r for r, ss in stems.items()
                           if any(x in plain(value) for x in ss)), None)
            if reason:
                found.setdefault(reason, []).append(value)
        dropped = sum(counts[v] for vs in found.values() for v in vs)
        if found and dropped < 0.5 * len(values):
            drops += [Drop(r, col, is_=tuple(vs)) for r, vs in found.items()]
    return drops


def _check_map(look: Peek, config: Config) -> None:
    """``--map`` names known fields and columns the input has."""
    for fld, col in config.mapping.items():
        if fld not in FIELDS:
            raise MappingError(f"Unknown field {fld!r} in --map; fields are: "
                               f"{', '.join(FIELDS)}.")
        if col not in look.columns:
            from custseg.io._mapping import _closest

            raise MappingError(f"--map {fld}={col}: {look.name} has no column {col!r}; "
                               f"columns present: {_list(look.columns)}"
                               f"{_closest(col, look.columns)}.")


def check_orders(reading: Reading, look: Peek) -> None:
    """Raise the first question of an order-line reading, or the missing field, in one
    line naming the columns and the ``--map`` that decides."""
    if reading.questions:
        raise MappingError(reading.questions[0])
    for fld in REQUIRED:
        if fld not in reading.mapping:
            raise MappingError(missing_message(fld, look))
    if not any(f in reading.mapping for f in MONEY):
        raise MappingError(missing_message("unit_price", look))


_WANTED = {
    "customer_id": "no column repeats across lines like a customer key and is named so",
    "invoice_date": "no column reads as dates in one format",
    "unit_price": "no column of numbers reads as a price or a line total",
}


def missing_message(fld: str, look: Peek) -> str:
    also = " or amount (a line total)" if fld == "unit_price" else ""
    why = _WANTED[fld]
    named = [c for c in look.columns if says(c, fld)]
    if named and fld in ("customer_id", "invoice_date"):
        shown = ", ".join(repr(str(v)[:30]) for v in look.frame[named[0]].dropna().head(2))
        why = (f"{named[0]!r} is named so, but its values ({shown}) cannot be "
               + ("ids (customer keys)" if fld == "customer_id" else "read as dates"))
    return (f"No column for {fld}{also} in {look.name}: {why}. Columns present: "
            f"{_list(look.columns)}. Name it with --map {fld}=COLUMN"
            + (". If it has one row per customer rather than order lines, pass "
               "--input-kind table." if fld == "invoice_date" else "."))


def looks_like_customer_table(look: Peek, reading: Reading) -> bool:
    """A customer table (one row per customer): a column different on every sampled row
    and named as an id (``member_no``, ``CUST_ID``, ``ID``) or read as the customer, when
    there is no order date or no customer column that repeats (a sign-up date is not an
    order date); or no customer, order or date column at all."""
    frame = look.frame.apply(lambda col: col.map(lambda v: v if v is None or isinstance(
        v, (str, int, float)) else str(v)) if col.dtype == object else col)
    customer = reading.mapping.get("customer_id")
    repeats = customer is not None and frame[customer].nunique() > 1 and (
        frame[customer].nunique() < frame[customer].notna().sum())
    for c in frame.columns:
        values = frame[c].dropna()
        unique_id = len(values) >= 0.95 * len(frame) and values.nunique() == len(values) \
            and (id_like_name(c) or customer == c)
        if not unique_id:
            continue
        if repeats:
            break  # a customer column that repeats over the rows: order lines
        if "invoice_date" not in reading.mapping:
            return True
        # a sign-up date beside an id on every row: no customer column that repeats and
        # nothing of an order line (an order key, a product, a quantity)
        lines = any(f in reading.mapping for f in ("invoice_id", "product_id", "quantity"))
        if len(frame) >= 20 and not repeats and (
                customer is None or frame[customer].nunique() == 1 or not lines):
            return True
    if "invoice_date" in reading.mapping:
        return False
    return not any(f in reading.mapping for f in ("customer_id", "invoice_id"))
