"""Cleaning with an audit: every input row ends in exactly one status.

A row is either a ``purchase`` (used for the customer features) or dropped under one
reason; returns and cancellations are not purchases but feed ``return_rate``. Rules are
applied in the order of :data:`REASONS`, so each row is counted once, and always
``rows_in == rows_used + sum(dropped.values())``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from custseg.core.config import Config
from custseg.core.exceptions import DataError, MappingError
from custseg.io import Source
from custseg.io._formats import KEEP, REASON, Prep
from custseg.io._mapping import is_row_number, row_number_name
from custseg.io._parse import (
    date_expr,
    decimal_comma,
    finite,
    id_expr,
    lit,
    number_expr,
    q,
    text_expr,
)

#: Drop reasons in the order rules apply, with what each means.
REASONS: dict[str, str] = {
    "malformed_line": "text line with a different number of fields than the header",
    "missing_customer_id": "no customer id",
    "unparseable_date": "order date missing or not readable as a date",
    "unparseable_number": "quantity, unit price or amount missing or not a number",
    "after_as_of": "dated on or after the as-of date",
    "duplicate": "exact copy of another line (equal in every input column but row numbers)",
    "test_order": "a test order, as the export format marks it",
    "unpaid": "an order never paid (pending, failed, voided), as the export format marks it",
    "refunded": "line of a refunded order, as the export format marks it; counted in "
                "return_rate",
    "cancellation": "line of a cancellation invoice; counted in return_rate",
    "return": "negative quantity (or negative line total): a return; counted in return_rate",
    "zero_quantity": "quantity is 0",
    "non_positive_price": "unit price (or line total when there is no price) is 0 or below",
}
#: Statuses decided before duplicates are collapsed: every copy counts under them.
_BEFORE_DUPLICATES = ("missing_customer_id", "unparseable_date", "unparseable_number",
                      "after_as_of")
RETURN_STATUSES = ("cancellation", "return", "refunded")
#: Reasons a preparation (an export format's ``[[drop]]``) may give a line.
PREPARED_REASONS = ("test_order", "unpaid", "refunded", "cancellation")
_DUP_HASHES = "custseg_duplicate_hashes"
#: Values of a candidate row-number column looked at before the whole input is.
ROW_NUMBER_SAMPLE = 10_000
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT",
                  "UINTEGER")


@dataclass
class Audit:
    """What happened to every input row."""

    rows_in: int
    rows_used: int
    dropped: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "rows_used": self.rows_used,
                "dropped": dict(self.dropped), "warnings": list(self.warnings),
                "notes": dict(self.notes)}


def clean_lines(con: duckdb.DuckDBPyConnection, source: Source, mapping: dict[str, str],
                config: Config, table: str = "lines") -> Audit:
    """Parse and classify every raw row into DuckDB table ``table``.

    The table holds one row per distinct input line: ``customer_id, invoice_id,
    invoice_date, quantity, value, product_id, description, category, country,
    discounted, line_attr_1 .. line_attr_k, n, status`` where ``n`` is how many identical
    copies the input had, ``value`` is quantity x unit price (or the line total), less a
    prepared line discount and partial refunds (``source.prep``, a
    :class:`~custseg.io._formats.Prep`), ``discounted`` whether the line had a discount or
    a coupon (absent when the mapping has neither) and ``line_attr_i`` the text of the
    i-th of ``source.attributes``.
    """
    plan = plan_cleaning(con, source, mapping, config, prep=source.prep,
                         attributes=source.attributes,
                         customer_attributes=source.customer_attributes)
    drop_duplicates = config.cleaning["duplicates"]
    numbers = row_number_columns(con, source, mapping) if drop_duplicates else []
    dedupe = _distinct_lines(con, source, plan.parse, drop_duplicates, numbers, plan.parsed)
    con.execute(f"DROP TABLE IF EXISTS {q(table)}")
    create_status_type(con)
    con.execute(f"CREATE TABLE {q(table)} AS {plan.lines_sql(f'({dedupe})')}")
    con.execute(f"DROP TABLE IF EXISTS {_DUP_HASHES}")
    counts = con.execute(
        f"SELECT status, count(*), sum(n) FROM {q(table)} GROUP BY status").fetchall()
    audit = audit_from_counts(counts, source, plan)
    if numbers:
        audit.notes["row_numbers"] = row_numbers_note(numbers)
    check_unreadable(source, mapping, audit, config,
                     lambda col, fld: _unreadable_values(con, source, col, fld, config),
                     lambda sql: con.execute(sql).df(), table)
    return audit


#: A line's statuses: ``purchase`` and the drop reasons.
STATUSES = ("purchase", *REASONS)


def create_status_type(con: duckdb.DuckDBPyConnection) -> None:
    """The ENUM ``line_status`` (:data:`STATUSES`) the statuses are cast to."""
    statuses = ", ".join(lit(s) for s in STATUSES)
    con.execute("DROP TYPE IF EXISTS line_status")
    con.execute(f"CREATE TYPE line_status AS ENUM ({statuses})")


@dataclass
class CleaningPlan:
    """How raw rows become classified lines, decided once from the data (or a sample).

    ``parse`` is a SELECT list over the raw columns giving the canonical columns;
    :meth:`lines_sql` turns a relation of parsed distinct lines (with ``n``) into the
    classified lines. Both are DuckDB SQL, so every engine reads values identically.
    """

    parse: str
    value_sql: str
    cancel_sql: str
    invoice_sql: str
    status_sql: str
    warnings: list[str]
    notes: dict[str, str]
    #: The parsed columns (``parse``'s names), and the extra ones of the lines table with
    #: their types (``discounted``, ``line_attr_i``).
    parsed: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()

    def lines_sql(self, distinct: str) -> str:
        extra = "".join(f"{name}, " for name, _ in self.extra)
        return f"""
        SELECT customer_id, {self.invoice_sql} AS invoice_id, invoice_date, quantity, value,
               product_id, description, category, country, {extra}n,
               {self.status_sql} AS status
        FROM (SELECT *, {self.value_sql} AS value, {self.cancel_sql} AS is_cancel
              FROM (SELECT * REPLACE ({in_range("invoice_date")} AS invoice_date)
                    FROM {distinct} AS distinct_lines) AS dated) AS valued"""


def plan_cleaning(con: duckdb.DuckDBPyConnection, source: Source, mapping: dict[str, str],
                  config: Config, *, prep: Prep | None = None,
                  attributes: list[str] | None = None,
                  customer_attributes: list[str] | None = None) -> CleaningPlan:
    """Decide the parse (date formats, decimal comma, cancellations) from ``source``.
    A source prepared by :class:`~custseg.io._formats.Prep` carries its drop reasons
    and kept shares in columns :data:`~custseg.io._formats.REASON` and ``KEEP``."""
    rules = config.cleaning
    rel, types = source.relation, source.types
    warnings = list(source.warnings) + _duplicate_columns(source, mapping, config)
    notes: dict[str, str] = dict(source.notes)

    date_sql, date_note, date_warn = date_expr(con, rel, mapping["invoice_date"],
                                               types[mapping["invoice_date"]], config.dayfirst,
                                               start_date=config.start_date)
    notes["invoice_date"] = f"{mapping['invoice_date']}: {date_note}"
    warnings += date_warn

    def num_of(col: str, fld: str | None = None) -> str:
        comma = types[col] == "VARCHAR" and decimal_comma(con, rel, col)
        if comma and fld:
            notes[fld] = f"{col}: decimal comma (1.234,50)"
        return number_expr(col, types[col], comma)

    def num(fld: str) -> str:
        return num_of(mapping[fld], fld)

    has_price, has_qty = "unit_price" in mapping, "quantity" in mapping
    qty_sql = num("quantity") if has_qty else ("1.0" if has_price else "CAST(NULL AS DOUBLE)")
    if has_price and not has_qty:
        warnings.append("No quantity column: each line counts as quantity 1.")
    if has_price:
        price_sql = num("unit_price")
        value_sql, needed = "quantity * unit_price", ["quantity", "unit_price"]
        if "amount" in mapping:
            notes["amount"] = f"{mapping['amount']} ignored: unit price x quantity is used"
    else:
        price_sql = "CAST(NULL AS DOUBLE)"
        value_sql, needed = "amount", ["amount"] + (["quantity"] if has_qty else [])
    amount_sql = num("amount") if "amount" in mapping and not has_price else "CAST(NULL AS DOUBLE)"

    cust_sql = id_expr(mapping["customer_id"], types[mapping["customer_id"]])
    if prep is not None and prep.lower_key:
        cust_sql = f"lower({cust_sql})"
        notes["customer_id"] = (f"{mapping['customer_id']}: e-mail addresses, compared in "
                                "lower case")
    if "invoice_id" in mapping:
        inv_sql = id_expr(mapping["invoice_id"], types[mapping["invoice_id"]])
        cancel_sql, cancel_note = _cancellation_rule(con, rel, inv_sql, config)
        notes["cancellation"] = cancel_note
        if cancel_note.startswith("none marked: every"):
            warnings.append(f"Column {mapping['invoice_id']!r}: every invoice id is 'C' + "
                            "digits, which marks a cancellation in Online Retail-style "
                            "exports; with no plain invoice ids they are read as ordinary "
                            "orders. If they are cancellations, set cancellation_pattern in "
                            "the config.")
    else:
        inv_sql, cancel_sql = None, "false"
        notes["invoice_id"] = "no invoice column: each customer-day counts as one order"
    product_sql = (id_expr(mapping["product_id"], types[mapping["product_id"]])
                   if "product_id" in mapping else "CAST(NULL AS VARCHAR)")
    country_sql, description_sql, category_sql = (
        text_expr(mapping[f]) if f in mapping else "CAST(NULL AS VARCHAR)"
        for f in ("country", "description", "category"))

    as_of = dt.date.fromisoformat(config.as_of) if config.as_of else None
    columns = {
        "customer_id": cust_sql, "invoice_date": date_sql, "quantity": qty_sql,
        "unit_price": price_sql, "amount": amount_sql, "product_id": product_sql,
        "description": description_sql, "category": category_sql, "country": country_sql,
        "raw_invoice": inv_sql or "CAST(NULL AS VARCHAR)"}
    prepared = REASON in source.columns
    if prepared:
        columns["pre_status"] = f"CAST({q(REASON)} AS VARCHAR)"
        columns["keep"] = f"TRY_CAST({q(KEEP)} AS DOUBLE)"
    if prep is not None and prep.less and prep.less in types:
        columns["less"] = finite(f"({num_of(prep.less)})")
        value_sql = f"({value_sql} - coalesce(less, 0))"
        notes["value"] = f"{prep.less} taken off each line's value"
    if prep is not None and prep.rate and prep.rate in types and has_price:
        columns["rate"] = finite(f"({num_of(prep.rate)})")
        value_sql = f"({value_sql}) * (1 - coalesce(rate, 0))"
        notes["value"] = f"quantity x unit price x (1 - {prep.rate}), a discount rate"
    if prepared:
        value_sql = f"({value_sql}) * coalesce(keep, 1)"
    extra: list[tuple[str, str]] = []
    flags = []
    if "discount" in mapping:
        discount = finite(f"({num('discount')})")
        flags.append(f"coalesce({discount}, 0) <> 0")
    if "coupon" in mapping:  # a code, or an amount taken off with a coupon (0: none)
        code = text_expr(mapping["coupon"])
        flags.append(f"CASE WHEN TRY_CAST({code} AS DOUBLE) IS NOT NULL THEN "
                     f"TRY_CAST({code} AS DOUBLE) <> 0 ELSE {code} IS NOT NULL END")
    if flags:
        columns["discounted"] = " OR ".join(f"({f})" for f in flags)
        extra.append(("discounted", "BOOLEAN"))
    for prefix, cols in (("line_attr", attributes), ("cust_attr", customer_attributes)):
        for i, col in enumerate(cols or [], start=1):
            columns[f"{prefix}_{i}"] = text_expr(col)
            extra.append((f"{prefix}_{i}", "VARCHAR"))
    parse = ", ".join(f"{sql} AS {name}" for name, sql in columns.items())
    return CleaningPlan(
        parse=parse, value_sql=value_sql, cancel_sql=cancel_sql,
        invoice_sql="raw_invoice" if inv_sql else "strftime(invoice_date, '%Y-%m-%d')",
        status_sql=_status_case(rules, needed, has_qty, has_price, as_of, prepared),
        warnings=warnings, notes=notes, parsed=tuple(columns), extra=tuple(extra))


def audit_from_counts(counts, source: Source, plan: CleaningPlan) -> Audit:
    """The audit from ``(status, distinct lines, input rows)`` counts of the lines table."""
    dropped = dict.fromkeys(REASONS, 0)
    rows_used = 0
    for status, distinct_rows, rows in counts:
        if status in _BEFORE_DUPLICATES:
            dropped[status] += int(rows)
            continue
        dropped["duplicate"] += int(rows - distinct_rows)
        if status == "purchase":
            rows_used = int(distinct_rows)
        else:
            dropped[status] += int(distinct_rows)
    dropped["malformed_line"] = source.rejected
    return Audit(rows_in=source.rows + source.rejected, rows_used=rows_used,
                 dropped=dropped, warnings=list(plan.warnings), notes=dict(plan.notes))


#: Order dates outside [first, last) are read as unparseable (a year 20111 or 0211 is a
#: typo, and such dates cannot be held by the DataFrames the results are returned in).
DATE_RANGE = ("1900-01-01", "2200-01-01")


def in_range(expr: str) -> str:
    """``expr`` (a TIMESTAMP; appears twice, so pass a column) or NULL out of range."""
    first, last = DATE_RANGE
    return (f"CASE WHEN {expr} >= TIMESTAMP '{first}' AND {expr} < TIMESTAMP '{last}' "
            f"THEN {expr} END")


def _duplicate_columns(source: Source, mapping: dict[str, str], config: Config) -> list[str]:
    """Refuse a field read from a column whose name is not unique; warn about the others."""
    warnings = []
    chosen = set(config.mapping.values())
    for name, columns in source.duplicates.items():
        used = [(f, c) for f, c in mapping.items() if c in columns and c not in chosen]
        if used:
            fld, col = used[0]
            raise MappingError(
                f"{source.name} has {len(columns)} columns named {name!r} (read as "
                f"{', '.join(map(repr, columns))}), so {fld} is ambiguous: rename the "
                f"columns, or choose one with --map {fld}={columns[-1]}.")
        warnings.append(f"{source.name} has {len(columns)} columns named {name!r}; they are "
                        f"read as {', '.join(map(repr, columns))}.")
    return warnings


def _status_case(rules: dict[str, bool], needed: list[str], has_qty: bool, has_price: bool,
                 as_of: dt.date | None, prepared: bool = False) -> str:
    """The CASE giving each distinct line its status, rules in the order of REASONS."""
    bad_number = " OR ".join(f"NOT coalesce(isfinite({f}), false)" for f in needed)
    neg = "quantity < 0" if has_qty else "value < 0"

    def rule(name: str, cond: str, status: str) -> str:
        return f"WHEN {cond} THEN '{status}'::line_status" if rules[name] else ""

    prepared_rules = [
        f"WHEN pre_status = '{r}' THEN '{r}'::line_status" if r in ("test_order", "unpaid")
        else rule("returns", f"pre_status = '{r}'", r)
        for r in PREPARED_REASONS] if prepared else []
    return "\n".join(filter(None, [
        "CASE",
        "WHEN customer_id IS NULL THEN 'missing_customer_id'::line_status",
        "WHEN invoice_date IS NULL THEN 'unparseable_date'::line_status",
        f"WHEN {bad_number} THEN 'unparseable_number'::line_status",
        f"WHEN invoice_date >= {lit(as_of.isoformat())}::TIMESTAMP "
        "THEN 'after_as_of'::line_status" if as_of else "",
        *prepared_rules,
        rule("returns", "is_cancel", "cancellation"),
        rule("returns", neg, "return"),
        rule("zero_quantity", "quantity = 0" if has_qty else "false", "zero_quantity"),
        rule("non_positive_price", "unit_price <= 0" if has_price else "value <= 0",
             "non_positive_price"),
        "ELSE 'purchase'::line_status END",
    ]))


def row_number_candidates(source: Source, mapping: dict[str, str]) -> list[str]:
    """Columns that may merely number the rows: not mapped to a field, integer or text,
    and named like a row number (:func:`row_number_name`) or first. Only these are
    checked (a row number elsewhere under another name stays in the duplicate rule), so
    the check reads a few columns, not every one."""
    mapped = set(mapping.values())
    return [c for i, c in enumerate(source.columns)
            if c not in mapped and source.types.get(c) in ("VARCHAR", *_INTEGER_TYPES)
            and row_number_name(c, first=i == 0)]


def integer_sql(col: str, typ: str, text: str = "VARCHAR") -> tuple[str, str]:
    """``col`` as a BIGINT (NULL when it is not a number), and the condition that the
    value is written as that plain integer (text may say ``1.5`` or ``1e3``); ``text`` is
    the dialect's text type."""
    if typ in _INTEGER_TYPES:
        return f"CAST({q(col)} AS BIGINT)", "true"
    x = f"try_cast({q(col)} AS BIGINT)"
    return x, f"CAST({x} AS {text}) = trim({q(col)})"


def row_number_columns(con: duckdb.DuckDBPyConnection, source: Source,
                       mapping: dict[str, str]) -> list[str]:
    """The :func:`row_number_candidates` that number the rows (:func:`is_row_number`):
    they take no part in the duplicate rule.

    Candidates whose first :data:`ROW_NUMBER_SAMPLE` values are not all different plain
    integers are ruled out at once; one aggregate pass over the whole input checks the
    others, and a second (an exact distinct count in a bitmap of ``rows`` bits) those
    that pass it.
    """
    rel = q(source.relation)
    candidates = [c for c in row_number_candidates(source, mapping)
                  if _plain_unique_sample(con, rel, c, source.types[c])]
    if not candidates:
        return []
    exprs = [integer_sql(c, source.types[c]) for c in candidates]
    stats = ", ".join(f"count({x}), min({x}), max({x})" for x, _ in exprs)
    row = con.execute(f"SELECT count(*), {stats} FROM {rel}").fetchone()
    rows, found = int(row[0]), []
    for i, (col, (x, plain)) in enumerate(zip(candidates, exprs, strict=True)):
        count, low, high = row[1 + 3 * i: 4 + 3 * i]

        def distinct(x=x, plain=plain, low=low, high=high) -> int:
            n, odd = con.execute(f"SELECT bit_count(bitstring_agg({x}, {low}, {high})), "
                                 f"count(*) FILTER (NOT ({plain})) FROM {rel}").fetchone()
            return 0 if odd else int(n)

        if is_row_number(rows, int(count), low, high, distinct):
            found.append(col)
    return found


def _plain_unique_sample(con, rel: str, col: str, typ: str) -> bool:
    x, plain = integer_sql(col, typ)
    n, good, distinct = con.execute(
        f"SELECT count(*), count(*) FILTER ({x} IS NOT NULL AND {plain}), count(DISTINCT {x}) "
        f"FROM (SELECT {q(col)} FROM {rel} LIMIT {ROW_NUMBER_SAMPLE})").fetchone()
    return n == good == distinct


def row_numbers_note(columns: list[str]) -> str:
    names = ", ".join(columns)
    return (f"{names} {'numbers' if len(columns) == 1 else 'number'} the rows (unique "
            "consecutive integers): left out of the duplicate rule")


def _distinct_lines(con: duckdb.DuckDBPyConnection, source: Source, parse: str,
                    drop_duplicates: bool, row_numbers: list[str] = (),
                    parsed: tuple[str, ...] = ()) -> str:
    """SELECT of the parsed distinct lines with ``n``, the copies of each in the input.

    Exact duplicates are lines equal in every input column but the ``row_numbers``
    columns (:func:`row_number_columns`). A first pass keeps the 64-bit
    hashes of all raw columns that occur more than once (a small table); lines with any
    other hash are unique and stream straight through, and only the few others are
    grouped, on their parsed values plus the hash. Two different lines merge only if
    their parsed values are equal and their raw hashes collide (odds about 1 in 2**64 per
    such pair).
    """
    rel = q(source.relation)
    if not drop_duplicates:
        return f"SELECT {parse}, 1 AS n FROM {rel}"
    h = "__custseg_hash"
    raw_hash = f"hash({', '.join(q(c) for c in source.columns if c not in row_numbers)})"
    cols = ", ".join(parsed)
    repeated_hashes(con, rel, raw_hash, source.rows, h)
    hashed = f"(SELECT *, {raw_hash} AS {h} FROM {rel})"
    repeated = f"{h} IN (SELECT {h} FROM {_DUP_HASHES})"
    return (f"SELECT {parse}, 1 AS n FROM {hashed} WHERE NOT {repeated} "
            f"UNION ALL SELECT {cols}, CAST(count(*) AS INTEGER) AS n FROM "
            f"(SELECT {parse}, {h} FROM {hashed} WHERE {repeated}) GROUP BY {cols}, {h}")


#: Up to this many rows the repeated hashes are found in a sorted list of them (8 bytes a
#: row), sorted by DuckDB over its threads: 4-5x faster than DuckDB's grouping by as many
#: distinct keys (100M rows: about 7 s against 30 s on two cores; 21.7M: 1.3 s against
#: 2.3 s, and against 1.9 s sorting in NumPy on one core). Above, DuckDB groups them,
#: spilling to disk.
SORT_HASHES_UP_TO = 250_000_000


def repeated_hashes(con: duckdb.DuckDBPyConnection, rel: str, raw_hash: str, rows: int,
                    name: str) -> None:
    """Temp table :data:`_DUP_HASHES` (column ``name``): the values of ``raw_hash`` over
    ``rel`` that occur more than once."""
    if rows > SORT_HASHES_UP_TO:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_DUP_HASHES} AS SELECT {name} FROM "
                    f"(SELECT {raw_hash} AS {name} FROM {rel}) GROUP BY {name} "
                    "HAVING count(*) > 1")
        return
    hashes = con.execute(f"SELECT {raw_hash} AS h FROM {rel} ORDER BY h").fetchnumpy()["h"]
    repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    del hashes
    table = pa.table({name: pa.array(repeated, type=pa.uint64())})
    con.register("custseg_repeated", table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_DUP_HASHES} AS "
                    "SELECT * FROM custseg_repeated")
    finally:
        con.unregister("custseg_repeated")


def _cancellation_rule(con, rel: str, inv_sql: str, config: Config) -> tuple[str, str]:
    """SQL condition on the raw invoice id marking cancellations, and a note on why."""
    if config.cancellation_pattern:
        pattern = config.cancellation_pattern
        return (f"regexp_full_match(raw_invoice, {lit(pattern)})",
                f"invoice ids matching {pattern!r} (from config)")
    digits, c_digits, total = con.execute(
        f"""SELECT count(*) FILTER (regexp_full_match(i, '[0-9]+')),
                   count(*) FILTER (regexp_full_match(i, '[Cc][0-9]+')), count(i)
            FROM (SELECT {inv_sql} AS i FROM {q(rel)} LIMIT 1000000)""").fetchone()
    # The convention holds when (nearly) every id is a number or "C" + a number.
    if digits and digits + c_digits >= 0.99 * total:
        # the first letter is checked first: a regular expression on every line costs more
        return ("CASE WHEN left(raw_invoice, 1) IN ('C', 'c') "
                "THEN regexp_full_match(raw_invoice, '[Cc][0-9]+') ELSE false END",
                "invoice ids 'C' + digits, since ordinary invoice ids are digits "
                "(the Online Retail convention)")
    if c_digits and c_digits == total:
        return "false", "none marked: every invoice id is 'C' + digits, none plain digits"
    return "false", "none marked: invoice ids do not follow the 'C' + number convention"


def check_unreadable(source: Source, mapping: dict[str, str], audit: Audit, config: Config,
                     unreadable: Callable[[str, str], tuple[list[str], int, int]],
                     query: Callable[[str], pd.DataFrame], table: str) -> None:
    """Name columns whose values could not be read; fail when a column is mostly unreadable,
    a strict rule forbids dropping, or no line is left.

    ``unreadable(column, field)`` gives up to 3 example values, the count of unreadable
    values and of non-empty values in the column; ``query(sql)`` runs SQL in the engine
    holding the classified lines as ``table``.
    """
    checks = [("unparseable_date", ["invoice_date"]),
              ("unparseable_number", ["quantity", "unit_price", "amount"]),
              ("missing_customer_id", ["customer_id"])]
    for reason, fields in checks:
        count = audit.dropped[reason]
        if not count:
            continue
        for fld in fields:
            col = mapping.get(fld)
            if col is None or (fld == "amount" and "unit_price" in mapping):
                continue
            if reason == "missing_customer_id":
                examples, bad, nonnull = [], count, source.rows
            else:
                examples, bad, nonnull = unreadable(col, fld)
            if not bad:
                continue
            shown = ", ".join(repr(e) for e in examples)
            strict_rule = "missing_customer" if reason == "missing_customer_id" else "unparseable"
            if not config.cleaning[strict_rule]:
                raise DataError(f"Column {col!r} of {source.name} has {bad} line(s) with "
                                f"{REASONS[reason]}" + (f" (e.g. {shown})" if shown else "")
                                + f"; cleaning rule {strict_rule!r} is off, so this is an error.")
            if reason != "missing_customer_id" and nonnull and bad > 0.5 * nonnull:
                raise DataError(
                    f"Column {col!r} of {source.name} is mapped to {fld} but "
                    f"{bad / nonnull:.0%} of its values cannot be read (e.g. {shown}); "
                    f"map the right column with --map {fld}=COLUMN"
                    + (" or pass --dayfirst" if fld == "invoice_date" else "") + ".")
            if reason != "missing_customer_id":
                audit.warnings.append(
                    f"Column {col!r}: {bad} value(s) could not be read (e.g. {shown}); "
                    f"those lines are dropped as {reason}.")
    as_of = dt.date.fromisoformat(config.as_of) if config.as_of else None
    if audit.rows_used == 0 and as_of is not None and audit.dropped["after_as_of"]:
        first = query(f"SELECT min(invoice_date) AS first FROM {q(table)} "
                      "WHERE status = 'after_as_of'")["first"].iloc[0]
        if pd.notna(first) and first.date() >= as_of:
            raise DataError(f"The as-of date {as_of} is before every order of {source.name} "
                            f"(the first is dated {first.date()}); pass a later --as-of, or "
                            "none for the day after the last order.")
    if audit.rows_used == 0:
        reasons = ", ".join(f"{k}: {v}" for k, v in audit.dropped.items() if v)
        raise DataError(f"Every line of {source.name} was dropped ({reasons}); "
                        "check the column mapping (--map) and the as-of date.")


def read_expr(con, source: Source, col: str, fld: str, config: Config) -> str:
    """The parsed value of column ``col`` read as ``fld`` (date or number), NULL when it
    cannot be read, as cleaning reads it."""
    rel, typ = source.relation, source.types[col]
    if fld == "invoice_date":
        expr, _, _ = date_expr(con, rel, col, typ, config.dayfirst)
        return in_range(f"({expr})")
    comma = typ == "VARCHAR" and decimal_comma(con, rel, col)
    return finite(f"({number_expr(col, typ, comma)})")


def _unreadable_values(con, source: Source, col: str, fld: str, config: Config
                       ) -> tuple[list[str], int, int]:
    rel = source.relation
    expr = read_expr(con, source, col, fld, config)
    bad, nonnull = con.execute(
        f"SELECT count(*) FILTER ({q(col)} IS NOT NULL AND ({expr}) IS NULL), "
        f"count({q(col)}) FROM {q(rel)}").fetchone()
    examples = [str(r[0]) for r in con.execute(
        f"SELECT DISTINCT CAST({q(col)} AS VARCHAR) FROM {q(rel)} "
        f"WHERE {q(col)} IS NOT NULL AND ({expr}) IS NULL ORDER BY 1 LIMIT 3").fetchall()]
    return examples, int(bad), int(nonnull)
