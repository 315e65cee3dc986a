"""Several tables of one shop (orders, order items, customers) read as one table of order
lines.

Shops and databases keep orders, their items and their customers apart. Given several
tables, custseg finds the keys that join them: a column of one table whose values are
found in a column of another that is unique there (an item's ``order_id`` in the orders'
``order_id``), by name first and by the overlap of the values. The table on the many
side of every join (the items) is the root; the others are joined to it, each as far as
its key reaches, and the overlap is reported in words ("98.7% of items match an order").

A customer table may map an order's customer record to the person behind it: one
public marketplace gives every order a new ``customer_id`` and the person a
``customer_unique_id``. Where a joined table's key has a coarser companion column named
as a customer, that column is the person, and the person is the customer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from custseg.core.exceptions import InputError
from custseg.io._evidence import says, words
from custseg.io._mapping import normalize
from custseg.io._parse import q
from custseg.io._readers import Source, _describe
from custseg.io._roles import id_like_name

#: Share of one table's key values found in the other's for a join.
MIN_OVERLAP = 0.5
_KEY_TYPES = ("VARCHAR", "BIGINT", "INTEGER", "HUGEINT", "SMALLINT", "UBIGINT", "UINTEGER",
              "DOUBLE")


@dataclass
class Join:
    """``many``'s column ``left`` found in ``one``'s unique column ``right``."""

    many: str  # table name
    left: str
    one: str
    right: str
    overlap: float  # share of ``many``'s rows whose key is in ``one``

    def words(self) -> str:
        return (f"{self.overlap:.1%} of {self.many}'s rows match a row of {self.one} "
                f"({self.left} = {self.right})")


@dataclass
class Combined:
    """The joined tables: the root, the joins made, the person key when there is one."""

    root: str
    joins: list[Join]
    person: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"root": self.root, "joins": [j.words() for j in self.joins]}
        if self.person:
            out["person_key"] = self.person
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def table_name(source: Source) -> str:
    """A short name for a table: its file's stem (``olist_orders_dataset``)."""
    return source.name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _key_columns(source: Source) -> list[str]:
    return [c for c in source.columns
            if source.types.get(c, "").split("(")[0] in _KEY_TYPES
            and (words(c)[-1:] in (["id"], ["key"], ["no"], ["nr"], ["number"], ["code"])
                 or says(c, "customer_id") or says(c, "invoice_id") or says(c, "product_id"))]


def _unique(con: duckdb.DuckDBPyConnection, source: Source, cols: list[str]
            ) -> dict[str, tuple[int, int]]:
    """Column -> (distinct values, values present) of ``source``."""
    if not cols:
        return {}
    parts = ", ".join(f"count(DISTINCT {q(c)}), count({q(c)})" for c in cols)
    row = con.execute(f"SELECT {parts} FROM {q(source.relation)}").fetchone()
    return {c: (int(row[2 * i]), int(row[2 * i + 1])) for i, c in enumerate(cols)}


def find_joins(con: duckdb.DuckDBPyConnection, sources: list[Source]) -> list[Join]:
    """Every key of one table found in a unique key of another: by the same name (letters
    and digits compared), or by the values of two id-like columns."""
    keys = {table_name(s): _key_columns(s) for s in sources}
    stats = {table_name(s): _unique(con, s, keys[table_name(s)]) for s in sources}
    by = {table_name(s): s for s in sources}
    found = []
    for many in by:
        for one in by:
            if many == one:
                continue
            for left in keys[many]:
                for right in keys[one]:
                    distinct, present = stats[one][right]
                    if not present or distinct != present:
                        continue  # not a key of ``one``
                    same_name = normalize(left) == normalize(right)
                    if not same_name and not (set(words(left)) & set(words(right)) - {"id"}):
                        continue
                    overlap = _overlap(con, by[many], left, by[one], right)
                    # a key of the same name joins however few rows match (a table of
                    # returned orders lists some orders); another needs its values
                    if overlap >= MIN_OVERLAP or (same_name and overlap > 0):
                        found.append(Join(many, left, one, right, overlap))
    return found


def _overlap(con, many: Source, left: str, one: Source, right: str) -> float:
    hit, rows = con.execute(
        f"SELECT count(*) FILTER (r.k IS NOT NULL), count(*) FROM {q(many.relation)} AS m "
        f"LEFT JOIN (SELECT DISTINCT CAST({q(right)} AS VARCHAR) AS k FROM "
        f"{q(one.relation)}) AS r ON CAST(m.{q(left)} AS VARCHAR) = r.k "
        f"WHERE m.{q(left)} IS NOT NULL").fetchone()
    return hit / rows if rows else 0.0


def combine(con: duckdb.DuckDBPyConnection, sources: list[Source], relation: str = "raw"
            ) -> tuple[Source, Combined]:
    """The tables joined into one relation of order lines, and how (see the module)."""
    names = [table_name(s) for s in sources]
    if len(set(names)) != len(names):
        raise InputError(f"Two of the tables have the same name ({', '.join(names)}); "
                         "rename one file.")
    joins = find_joins(con, sources)
    ones = {j.one for j in joins}
    roots = [n for n in names if n not in ones]
    if len(roots) != 1:
        size = {table_name(s): s.rows for s in sources}
        roots = sorted(roots or names, key=lambda n: -size[n])[:1]
    root = roots[0]
    by = {table_name(s): s for s in sources}
    chosen: list[Join] = []
    joined = {root}
    while True:  # join outward from the root, the best overlap first
        options = [j for j in joins if j.many in joined and j.one not in joined]
        if not options:
            break
        best = max(options, key=lambda j: (normalize(j.left) == normalize(j.right), j.overlap))
        chosen.append(best)
        joined.add(best.one)
    left_out = [n for n in names if n not in joined]
    if left_out:
        raise InputError(f"{', '.join(left_out)} share no key with {root} (no column of one "
                         "whose values are a unique column of the other); pass the tables "
                         "that join, or join them first.")
    select, seen, renamed = [], set(), []
    for name in [root, *(j.one for j in chosen)]:
        skip = {j.right for j in chosen if j.one == name}
        for c in by[name].columns:
            if c in skip:
                continue
            alias, i = c, 1
            while alias.lower() in seen:  # as DuckDB names a repeated header: Land_1
                alias, i = f"{c}_{i}", i + 1
            if alias != c:
                renamed.append(f"{name}'s {c} as {alias}")
            seen.add(alias.lower())
            select.append(f"{q(name)}.{q(c)} AS {q(alias)}")
    sql = f"SELECT {', '.join(select)} FROM {q(by[root].relation)} AS {q(root)}"
    for j in chosen:
        sql += (f" LEFT JOIN {q(by[j.one].relation)} AS {q(j.one)} ON "
                f"CAST({q(j.many)}.{q(j.left)} AS VARCHAR) = CAST({q(j.one)}.{q(j.right)} "
                "AS VARCHAR)")
    con.execute(f"CREATE OR REPLACE TABLE {q(relation)} AS {sql}")
    source = _describe(con, relation, " + ".join(s.name for s in sources), "tables")
    source.rejected = sum(s.rejected for s in sources)
    for s in sources:
        source.warnings += s.warnings
        source.notes.update(s.notes)
    info = Combined(root=root, joins=chosen)
    if renamed:
        info.notes.append("Columns of the same name in two tables: read " + ", ".join(renamed)
                          + ".")
    info.person = _person(con, by, chosen)
    if info.person:
        info.notes.append(f"{info.person} names the person behind each customer record: "
                          "the person is the customer.")
    return source, info


def _person(con, by: dict[str, Source], joins: list[Join]) -> str | None:
    """A column of a joined table, named as a customer, that groups its unique key's
    values (many customer records to one person)."""
    for j in joins:
        table = by[j.one]
        if not says(j.right, "customer_id"):
            continue
        others = [c for c in _key_columns(table) if c != j.right and says(c, "customer_id")
                  and id_like_name(c)]
        stats = _unique(con, table, [j.right, *others])
        records = stats[j.right][0]
        for c in others:  # an id named as a customer's, grouping the records
            distinct, present = stats[c]
            if present and 2 <= distinct < records:
                return c
    return None
