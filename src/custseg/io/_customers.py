"""Customer tables: one row per customer with demographics or other attributes."""

from __future__ import annotations

import re

import duckdb
import pandas as pd

from custseg.core.config import Config
from custseg.core.exceptions import DataError, MappingError
from custseg.io._mapping import FIELDS, _list, normalize
from custseg.io._parse import id_expr, q
from custseg.io._readers import Source, damaged_parquet, load_source
from custseg.io._roles import (
    NUMERIC_ROLES,
    ROLES_ATTR,
    USABLE,
    apply_roles,
    id_like_name,
    infer_roles,
    is_personal,
)


def find_key(columns: list[str], key: str | None = None, source: str = "customer table", *,
             con: duckdb.DuckDBPyConnection | None = None, relation: str | None = None,
             types: dict[str, str] | None = None, required: bool = True) -> str | None:
    """The customer id column of a customer table: ``key`` when given, a column named as
    a customer id, else (with ``con``) the first column whose name says id (``member_no``,
    ``CUST_ID``, ``ID``), or the first column when it holds codes, that is unique on every
    row. None when there is none and not ``required``."""
    if key is not None:
        if key not in columns:
            raise MappingError(f"{source} has no column {key!r} (customers_key); columns "
                               f"present: {_list(columns)}.")
        return key
    norm = {c: normalize(c) for c in columns}
    for syn in FIELDS["customer_id"] + ("id",):
        for c in columns:
            if norm[c] == syn:
                return c
    found = unique_key(con, relation, columns, types or {}) if con and relation else None
    if found is None and con and relation:
        found = email_key(con, relation, columns)
    if found is None and required:
        raise MappingError(f"No customer id column in {source}. Columns present: "
                           f"{_list(columns)}. Name it with the config key customers_key.")
    return found


_INTEGER = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT")


def unique_key(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str],
               types: dict[str, str]) -> str | None:
    """The first text or integer column unique on every row whose name says id, or the
    first column when its values are codes (``C10001``); None when there is none."""
    def kind(c: str) -> str:
        return re.sub(r"\(.*", "", types.get(c, "VARCHAR")).upper()

    usable = [c for c in columns if kind(c) in ("VARCHAR",) + _INTEGER and not is_personal(c)]
    named = [c for c in usable if id_like_name(c)]
    first = [columns[0]] if columns and columns[0] in usable and columns[0] not in named else []
    candidates = named + first
    if not candidates:
        return None
    parts = []
    for c in candidates:
        v = f"trim(CAST({q(c)} AS VARCHAR))"
        parts.append(f"count(DISTINCT {q(c)}), count({q(c)}), "
                     f"count(*) FILTER (regexp_full_match({v}, '[-+]?[0-9]*[.,][0-9]+')), "
                     f"count(*) FILTER (regexp_full_match({v}, '[A-Za-z]{{0,4}}[-_]?[0-9]+'))")
    row = con.execute(f"SELECT count(*), {', '.join(parts)} FROM {q(relation)}").fetchone()
    rows = row[0]
    for i, c in enumerate(candidates):
        distinct, present, decimals, codes = row[1 + 4 * i: 5 + 4 * i]
        if not rows or distinct != rows or present != rows or decimals:
            continue
        if c in named or codes == rows:
            return c
    return None


def email_key(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str]
              ) -> str | None:
    """A column of e-mail addresses, each on one row, filled on most rows: the key of a
    shop's customer export that has no customer id (Shopify's)."""
    for c in columns:
        if "mail" not in normalize(c):
            continue
        v = f"lower(trim(CAST({q(c)} AS VARCHAR)))"
        distinct, present, emails, rows = con.execute(
            f"SELECT count(DISTINCT {v}), count(NULLIF({v}, '')), count(*) FILTER "
            f"(regexp_full_match({v}, '[^@ ]+@[^@ ]+[.][a-z]+')), count(*) "
            f"FROM {q(relation)}").fetchone()
        if present and distinct == present == emails and present >= 0.5 * rows:
            return c
    return None


def load_customers(con: duckdb.DuckDBPyConnection, path=None, config: Config | None = None, *,
                   frame: pd.DataFrame | None = None, db: str | None = None,
                   sql: str | None = None, row_ids: bool = True) -> tuple[pd.DataFrame, dict]:
    """Read a customer table into pandas, keyed by text ``customer_id``.

    Every column gets a role (see :mod:`custseg.io._roles`) and is returned as it is
    clustered on: dates as days since the reference day, birth years as ages, flags as
    0/1, numbers as floats; personal, constant and mostly-missing columns are left out.
    Without an id column (and with ``row_ids``) customers are numbered by row. Returns the
    table (its ``attrs["custseg_roles"]`` maps column -> role) and a description: source,
    key, ``columns`` (column -> role and reason), numeric and categorical columns, what was
    left out, the reference day, notes and warnings.
    """
    config = config or Config()
    source: Source = load_source(con, path, config=config, relation="customers_raw",
                                 frame=frame, db=db, sql=sql)
    return customers_from_source(con, source, config, row_ids=row_ids)


def customers_from_source(con: duckdb.DuckDBPyConnection, source: Source, config: Config, *,
                          row_ids: bool = True) -> tuple[pd.DataFrame, dict]:
    """:func:`load_customers` of a customer table already read as ``source``."""
    key = find_key(source.columns, config.customers_key, source.name, con=con,
                   relation=source.relation, types=source.types, required=not row_ids)
    named_personal = [c for c in source.columns if c != key and is_personal(c)]
    keep = [c for c in source.columns if c not in named_personal and c != key]
    cols = ", ".join(q(c) for c in keep)
    id_sql = f"{id_expr(key, source.types[key])} AS customer_id" if key else ""
    select = ", ".join(p for p in (id_sql, cols) if p) or "1 AS _no_column"
    try:
        table = con.execute(f"SELECT {select} FROM {q(source.relation)}").df()
    except duckdb.Error as exc:
        if source.format == "parquet":
            raise damaged_parquet(source.name, exc) from None
        raise
    warnings, notes = list(source.warnings), []
    if key is None:
        table = table.drop(columns="_no_column", errors="ignore")
        table.insert(0, "customer_id", [str(i) for i in range(1, len(table) + 1)])
        notes.append(f"{source.name} has no customer id column (a column unique on every row "
                     f"whose name says id): customers are numbered by row, 1 to {len(table)}.")
    missing = int(table["customer_id"].isna().sum())
    if missing:
        warnings.append(f"{missing} row(s) of {source.name} have no customer id and are ignored.")
        table = table[table["customer_id"].notna()]
    dupes = int(table["customer_id"].duplicated().sum())
    if dupes:
        warnings.append(f"{dupes} customer id(s) repeat in {source.name}; the first row of each "
                        "is used.")
        table = table.drop_duplicates("customer_id", keep="first")
    if table.empty:
        raise DataError(f"{source.name} has no customers with an id in column {key!r}.")
    table = table.reset_index(drop=True)
    roles, role_warnings = infer_roles(table[keep], max_missing=config.max_missing,
                                       dayfirst=config.dayfirst, source=source.name, con=con)
    personal = list(named_personal)
    for c, role in roles.items():
        if role.role == "personal":
            personal.append(c)
            kind = role.reason.removeprefix("the values are ")
            warnings.append(f"Column {c!r} of {source.name} holds {kind}: personal data, "
                            "left out.")
    warnings += role_warnings
    table, ref = apply_roles(table, roles, config.as_of)
    notes += ref.pop("notes")
    columns: dict[str, dict[str, str]] = {}
    for c in source.columns:
        if c == key:
            how = "customers_key" if config.customers_key else "unique on every row"
            columns[c] = {"role": "id", "reason": f"the customer id ({how})"}
        elif c in named_personal:
            columns[c] = {"role": "personal", "reason": "the name says personal data (names, "
                          "contacts, addresses)"}
        else:
            columns[c] = roles[c].to_dict()
    table.attrs[ROLES_ATTR] = {"customer_id": "id", **{c: r.role for c, r in roles.items()
                                                        if c in table.columns}}
    numeric = [c for c in table.columns if roles.get(c) and roles[c].role in NUMERIC_ROLES]
    categorical = [c for c in table.columns if roles.get(c) and roles[c].role == "category"]
    info = {"path": source.name, "format": source.format, "rows": source.rows, "key": key,
            "customers": len(table), "numeric": numeric, "categorical": categorical,
            "columns": columns, "usable_columns": numeric + [c for c in table.columns
                                                             if c in categorical],
            "left_out": {c: f"{v['role']}: {v['reason']}" for c, v in columns.items()
                         if v["role"] not in USABLE and c != key},
            "personal_columns_left_out": personal, **ref, "notes": notes,
            "warnings": warnings}
    return table, info
