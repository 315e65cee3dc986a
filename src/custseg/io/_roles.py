"""Column roles of a customer table: what each column holds, why custseg thinks so, and
how it becomes a clustering feature.

Roles used as features: ``date`` (days since it, to a reference day), ``year`` (a birth
year becomes an age, another year the years since), ``flag`` (two values, as 0/1),
``money``, ``count``, ``rate`` (a share 0..1 or a percentage), ``number`` (another
measure) and ``category`` (a few levels). Left out, each with its reason: ``id``,
``text`` (free or high-cardinality text), ``personal`` (names, e-mails, phones,
addresses), ``constant`` and ``missing`` (more than ``max_missing`` of the values missing
or unreadable, such as ``#DIV/0!``).

Numbers and dates written as text are read with the same DuckDB expressions as order
lines (:func:`~custseg.io._parse.number_expr`, :func:`~custseg.io._parse.date_expr`), so
currency signs, thousands separators, decimal commas and day/month order are decided
from the data the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from custseg.io._mapping import is_row_number, normalize, row_number_name
from custseg.io._parse import date_expr, decimal_comma, number_expr, q, quiet_connect

ROLES = ("id", "date", "year", "flag", "money", "count", "rate", "number", "category", "text",
         "personal", "constant", "missing", "outcome")
#: Roles that become clustering features.
USABLE = ("date", "year", "flag", "money", "count", "rate", "number", "category")
#: Usable roles whose prepared values are numbers.
NUMERIC_ROLES = ("date", "year", "flag", "money", "count", "rate", "number")
#: Roles whose values are not log-transformed (bounded or binary).
NOT_LOGGED = ("flag", "rate")
#: ``DataFrame.attrs`` key holding ``{column: role}`` of a customer table read by custseg.
ROLES_ATTR = "custseg_roles"
#: Most levels of a ``category``.
MAX_LEVELS = 20

_BLANK = {"", "nan", "none", "null", "na", "n/a", "nat", "-", "--", "?", "."}
_SHEET_ERROR = re.compile(r"^#(div/0!|value!|ref!|name\?|num!|null!|n/a|spill!|calc!|"
                          r"getting_data|error!?)$", re.IGNORECASE)
_PLAIN_DECIMAL = re.compile(r"^\s*[-+]?\d*[.,]\d+\s*$")
_FLAG_PAIRS = ({"yes", "no"}, {"y", "n"}, {"true", "false"}, {"t", "f"}, {"1", "0"},
               {"ja", "nein"}, {"oui", "non"}, {"si", "no"}, {"sí", "no"})
_FLAG_ON = {"yes", "y", "true", "t", "1", "ja", "oui", "si", "sí"}

# Words in column names (whole tokens of the split name, or substrings of its
# normalised form for the longer ones).
_ID_TOKENS = {"id", "no", "nr", "nbr", "num", "number", "code", "key", "ref", "uid", "uuid"}
_MONEY_TOKENS = {"amt", "mnt", "usd", "eur", "gbp", "chf", "jpy", "inr", "$", "€", "£",
                 "k$", "spend", "spent", "paid", "fee", "fees", "cash", "sum", "ltv", "clv"}
_MONEY_WORDS = ("amount", "balance", "payment", "purchase", "spending", "sales", "revenue",
                "income", "salary", "price", "cost", "value", "limit", "total", "credit",
                "debit", "advance", "wage", "earning", "profit", "margin", "budget",
                "deposit", "loan", "debt", "turnover", "monetary", "wealth", "umsatz",
                "betrag", "montant", "importe")
_COUNT_TOKENS = {"n", "nb", "num", "no", "nr", "cnt", "count", "qty", "trx", "txn", "times",
                 "visits", "orders", "items", "units", "kids", "children"}
_COUNT_WORDS = ("count", "number", "quantity", "visit", "orders", "transaction", "trx",
                "times", "tenure", "recency", "days", "months", "weeks")
_MEASURE_TOKENS = {"score", "rating", "index", "rank", "age", "grade"}
_RATE_TOKENS = {"pct", "prc", "percent", "percentage", "rate", "ratio", "share", "%",
                "proportion", "prop", "frac", "fraction"}
_RATE_WORDS = ("percent", "ratio", "share", "proportion", "fraction")
_FREQUENCY_WORDS = ("frequency", "freq")
_CODE_TOKENS = {"code", "type", "class", "group", "status", "level", "tier", "grade",
                "category", "cat", "segment", "cluster", "kind", "band", "region", "zone",
                "education", "edu", "marital", "gender", "sex", "plan", "channel"}
_YEAR_TOKENS = {"year", "yr", "yob", "jahr", "annee", "ano", "anno"}
_BIRTH_WORDS = ("birth", "born", "yob", "geburt", "naissance", "nacimiento")
_DATE_TOKENS = {"date", "dt", "day", "since", "joined", "signup", "created", "registered",
                "enrolled", "enrolment", "enrollment", "datum", "fecha"}


@dataclass
class Role:
    """What a column holds (``role``), why (``reason``) and how it is used (``used_as``)."""

    role: str
    reason: str
    used_as: str | None = None
    #: Parsed values (floats, or timestamps for dates) aligned with the table's rows.
    values: pd.Series | None = field(default=None, repr=False)
    #: Birth year (an age) or another year (years since); dates: the format note.
    detail: str | None = None
    #: A code among the numbers (``-1``: never; ``999``: not given), read as missing in
    #: ``values`` and kept as its own 0/1 column ``"{column} not given"`` (``coded``).
    sentinel: float | None = None
    coded: pd.Series | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, str]:
        out = {"role": self.role, "reason": self.reason}
        if self.used_as:
            out["used_as"] = self.used_as
        return out


def name_tokens(name: str) -> list[str]:
    """Lower-case words of a column name: ``"NumWebPurchases"`` -> num, web, purchases;
    ``"CUST_ID"`` -> cust, id; ``"Annual Income (k$)"`` -> annual, income, k$."""
    words = []
    for part in re.split(r"[\s_\-./()\[\]:]+", str(name)):
        words += re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|k\$|[$€£%]", part)
    return [w.lower() for w in words if w]


def _says(name: str, tokens: set[str] = frozenset(), words: tuple[str, ...] = ()) -> bool:
    toks = set(name_tokens(name))
    norm = normalize(name)
    return bool(toks & tokens) or any(w in norm for w in words) or any(
        t in str(name).lower() for t in tokens if not t.isalnum())


def id_like_name(name: str) -> bool:
    """A name that says identifier: ``member_no``, ``CUST_ID``, ``ID``, ``customerKey``."""
    toks = name_tokens(name)
    return bool(toks) and (toks[-1] in _ID_TOKENS or toks[0] == "id"
                           or normalize(name).endswith("id"))


def blank(values: pd.Series) -> pd.Series:
    """True where a value is missing: NaN, empty, ``n/a``, ``null``, ``-`` ..."""
    text = values.astype("string").str.strip().str.lower()
    return values.isna() | text.isin(_BLANK).fillna(True)


def sheet_error(values: pd.Series) -> pd.Series:
    """True where a value is a spreadsheet error (``#DIV/0!``, ``#VALUE!``, ``#N/A``)."""
    return values.astype("string").str.strip().str.match(_SHEET_ERROR).fillna(False)


def plain_decimal(values: pd.Series) -> pd.Series:
    """True where a text value is a plain decimal number (``40.900749``): never a phone."""
    return values.astype("string").str.match(_PLAIN_DECIMAL).fillna(False)


# ------------------------------------------------------------------------------ roles
def _numbers_rows(series: pd.Series, first: bool) -> bool:
    """A column that only numbers the rows: first or named like a row number, every value
    a different whole number, consecutive from its minimum to its maximum (any order)."""
    if not row_number_name(str(series.name), first):
        return False
    values = pd.to_numeric(series, errors="coerce")
    whole = values[values == values.round()]
    return is_row_number(len(values), len(whole), whole.min() if len(whole) else None,
                         whole.max() if len(whole) else None, whole.nunique)


def infer_roles(frame: pd.DataFrame, *, key: str | None = None, max_missing: float = 0.5,
                dayfirst: bool | None = None, source: str = "the table",
                con: duckdb.DuckDBPyConnection | None = None
                ) -> tuple[dict[str, Role], list[str]]:
    """The role of every column of a customer table (``key``: the id column), and
    warnings about values that could not be read. Text columns are parsed in DuckDB."""

    own = con is None
    con = con or quiet_connect()
    roles: dict[str, Role] = {}
    warnings: list[str] = []
    n = len(frame)
    try:
        for col in frame.columns:
            if col == key:
                roles[col] = Role("id", "the customer id")
                continue
            if is_personal(col):
                roles[col] = Role("personal", "the name says personal data (names, contacts, "
                                  "addresses)")
                continue
            if _numbers_rows(frame[col], first=col == frame.columns[0]):
                roles[col] = Role("id", "numbers the rows (unique consecutive whole numbers, "
                                  "like a saved pandas index): not data")
                continue
            series = frame[col]
            gone = blank(series)
            kind = looks_personal(series[~gone]) if not _is_number_dtype(series) else None
            if kind:
                roles[col] = Role("personal", f"the values are {kind}")
                continue
            role, warning = _role(con, series, gone, col, n, max_missing, dayfirst, source)
            roles[col] = as_outcome(role, col, series, gone)
            if warning:
                warnings.append(warning)
    finally:
        if own:
            con.close()
    return roles, warnings


#: Words of a column name that say what happened to a customer (an outcome), not what he
#: is: a yes/no column so named is reported per segment as a rate, not clustered on.
_OUTCOME_TOKENS = {"churn", "churned", "churners", "exited", "attrition", "attrited",
                   "response", "responded", "converted", "conversion", "cancelled",
                   "canceled", "cancellation", "default", "defaulted", "target", "outcome",
                   "subscribed", "accepted", "deposit", "renewed", "redeemed", "retained"}
_OUTCOME_NAMES = {"y", "label", "outcome", "target"}


def outcome_name(column: str) -> bool:
    """A name that says an outcome: ``Churn``, ``y``, ``Exited``, ``AcceptedCmp1``,
    ``Attrition_Flag``, ``converted``."""
    return (str(column).strip().lower() in _OUTCOME_NAMES
            or bool(set(name_tokens(column)) & _OUTCOME_TOKENS))


def as_outcome(role: Role, col: str, series: pd.Series, gone: pd.Series) -> Role:
    """``role``, or an ``outcome`` when the column is two-valued (a flag, or two levels of
    text: the rarer is the event) and its name says what happened to the customer."""
    if not outcome_name(col):
        return role
    if role.role == "flag":
        return Role("outcome", f"{role.reason}; the name says an outcome: reported per "
                    "segment as a rate, not clustered on", used_as=role.used_as,
                    values=role.values)
    text = series[~gone].astype(str).str.strip()
    if role.role == "category" and role.values is None and text.nunique() == 2:
        rare = str(text.value_counts().index[-1])
        values = (series.astype(str).str.strip() == rare).astype(float).where(~gone)
        return Role("outcome", f"two levels; the name says an outcome (1 = {rare!r}, the "
                    "rarer): reported per segment as a rate, not clustered on",
                    used_as=f"0/1 (1 = {rare})", values=values)
    return role


def _is_number_dtype(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _role(con, series: pd.Series, gone: pd.Series, col: str, n: int, max_missing: float,
          dayfirst: bool | None, source: str) -> tuple[Role, str | None]:
    present = series[~gone]
    if present.empty:
        return Role("missing", "every value is missing"), None
    if pd.api.types.is_datetime64_any_dtype(series):
        return _date_role(pd.to_datetime(series), "date column", n, max_missing, gone), None
    if pd.api.types.is_bool_dtype(series) or (series.dtype == object and present.map(
            type).eq(bool).all()):
        values = series.map({True: 1.0, False: 0.0}).astype(float)
        return _flag(values, "true/false", "true"), None
    if _is_number_dtype(series):
        values = pd.to_numeric(series, errors="coerce").astype(float)
        values = values.where(np.isfinite(values))
        return _numeric_role(values, col, n, max_missing, unreadable=0), None
    text = present.astype(str).str.strip()
    errors = sheet_error(present)
    numbers = _parse_numbers(con, series.where(~gone), col)
    readable = numbers.notna() & ~gone
    if readable.sum() >= 0.5 * ((~gone) & ~sheet_error(series)).sum() and readable.any():
        bad = series[~gone & numbers.isna()]
        role = _numeric_role(numbers, col, n, max_missing, unreadable=len(bad),
                             example=str(bad.iloc[0]).strip() if len(bad) else None)
        warning = None
        if len(bad) and role.role != "missing":
            shown = ", ".join(repr(v) for v in bad.astype(str).unique()[:3])
            warning = (f"Column {col!r} of {source}: {len(bad)} value(s) are not numbers "
                       f"(e.g. {shown}) and count as missing.")
        return role, warning
    share_bad = (gone.sum() + errors.sum()) / n
    if share_bad > max_missing:
        return _missing(share_bad, series[~gone & sheet_error(series)]), None
    text = text[~errors]
    lower = set(text.str.lower().unique())
    if len(lower) == 1:
        return Role("constant", f"one value only ({next(iter(text))!r})"), None
    pair = next((p for p in _FLAG_PAIRS if lower == p), None)
    if pair is not None:
        on = next(iter(pair & _FLAG_ON))
        values = series.astype("string").str.strip().str.lower().map(
            lambda v: np.nan if pd.isna(v) else (1.0 if v in _FLAG_ON else 0.0)).astype(float)
        values[gone] = np.nan
        return _flag(values, "/".join(sorted(pair, key=lambda v: v not in _FLAG_ON)), on), None
    dates, note, date_warnings = _parse_dates(con, series.where(~gone), col, dayfirst)
    parsed = int(dates.notna().sum())
    if parsed and parsed >= 0.8 * len(text):
        role = _date_role(dates, note, n, max_missing, gone)
        bad = series[~gone & dates.isna()]
        warning = None
        if role.role == "date" and len(bad):
            shown = ", ".join(repr(v) for v in bad.astype(str).unique()[:3])
            warning = (f"Column {col!r} of {source}: {len(bad)} value(s) are not dates "
                       f"(e.g. {shown}) and count as missing.")
        elif role.role == "date" and date_warnings:
            warning = " ".join(w.replace(f"Column {col!r}", f"Column {col!r} of {source}", 1)
                               for w in date_warnings)
        return role, warning
    return _text_role(text, col, n), None


def _missing(share: float, errors: pd.Series) -> Role:
    shown = ", ".join(repr(v) for v in errors.astype(str).str.strip().unique()[:2])
    return Role("missing", f"{share:.0%} of the values are missing or unreadable"
                + (f" (e.g. {shown})" if shown else "") + "; not imputed")


def _flag(values: pd.Series, pair: str, on: str) -> Role:
    return Role("flag", f"two values ({pair})", used_as=f"0/1 (1 = {on})", values=values)


def _text_role(text: pd.Series, col: str, n: int) -> Role:
    counts = text.value_counts()
    distinct = len(counts)
    if text.str.len().mean() > 40:
        return Role("text", f"free text (values of {text.str.len().mean():.0f} characters on "
                    "average)")
    if distinct <= MAX_LEVELS:
        return Role("category", f"{distinct} levels")
    covered = counts.iloc[:MAX_LEVELS].sum() / len(text)
    if covered >= 0.9 and distinct <= 0.5 * max(len(text), 1):
        return Role("category", f"{distinct} levels, the {MAX_LEVELS} most frequent hold "
                    f"{covered:.0%} of the values (the rest grouped as 'other')")
    if id_like_name(col) and distinct == len(text):
        return Role("id", f"an identifier ({distinct} distinct values)")
    return Role("text", f"free text or too many levels for a category ({distinct} distinct "
                "values)")


# ----------------------------------------------------------------------------- numbers
def _numeric_role(values: pd.Series, col: str, n: int, max_missing: float,
                  unreadable: int = 0, example: str | None = None) -> Role:
    """The role of a column of numbers (NaN: missing or unreadable)."""
    share_bad = values.isna().sum() / n
    if share_bad > max_missing:
        what = (f"; {unreadable:,} unreadable, such as {example!r}" if unreadable and example
                else "")
        return Role("missing", f"{share_bad:.0%} of the values are missing or unreadable"
                    f"{what}; not imputed")
    code = sentinel(values)
    if code is not None:
        value, count = code
        role = _numeric_role(values.where(values != value), col, n, 1.0)
        if role.values is None or role.role not in NUMERIC_ROLES:
            role = Role("missing", "no other values to use")
        elif role.values.notna().sum() / n < 1 - max_missing:
            role = Role("missing", f"{role.values.notna().mean():.0%} other values, too few "
                        "to use")
        role.reason = (f"{_fmt(value)} on {count / n:.0%} of the rows stands apart from the "
                       f"other values: a code (never, not given), not a number; kept as the "
                       f"0/1 column '{coded_name(col)}' (1 = {_fmt(value)}); the rest: "
                       f"{role.reason}")
        role.sentinel = value
        role.coded = (values == value).astype(float).where(values.notna())
        return role
    v = values.dropna()
    distinct = v.nunique()
    if distinct <= 1:
        return Role("constant", f"one value only ({_fmt(v.iloc[0])})")
    whole = bool((v == v.round()).all())
    lo, hi = float(v.min()), float(v.max())
    span = f"{_fmt(lo)} to {_fmt(hi)}"
    if whole and set(v.unique()) <= {0.0, 1.0}:
        return Role("flag", "two values (0/1)", used_as="0/1", values=values)
    if whole and _says(col, _YEAR_TOKENS, ("year",) + _BIRTH_WORDS) and lo >= 1800 and hi <= 2100:
        birth = _says(col, words=_BIRTH_WORDS)
        return Role("year", f"{'birth ' if birth else ''}years ({lo:.0f} to {hi:.0f})",
                    used_as="age" if birth else "years since", values=values,
                    detail="birth" if birth else "year")
    if whole and _says(col, _DATE_TOKENS, ("date",)) and lo >= 18000101 and hi <= 21001231:
        dates = pd.to_datetime(v.astype(np.int64).astype(str), format="%Y%m%d",
                               errors="coerce")
        if dates.notna().mean() >= 0.9:
            full = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
            full[v.index] = dates.to_numpy()
            return _date_role(full, "numbers read as YYYYMMDD", n, max_missing,
                              values.isna())
    if whole and id_like_name(col) and distinct == len(v) and len(v) >= 20:
        return Role("id", f"an identifier (unique whole numbers, {span})")
    if whole and distinct <= MAX_LEVELS and _says(col, _CODE_TOKENS):
        return Role("category", f"{distinct} integer codes (the name says a code or a class)",
                    values=values)
    if whole and "code" in name_tokens(col):
        return Role("text", f"codes with {distinct} distinct values (too many for a category)")
    frequency = _says(col, words=_FREQUENCY_WORDS)
    if lo >= 0 and hi <= 1 and (not whole or frequency):
        return Role("rate", f"shares between 0 and 1 ({span})", values=values)
    if lo >= 0 and hi <= 100 and (_says(col, _RATE_TOKENS, _RATE_WORDS)
                                  or (frequency and not whole)):
        return Role("rate", f"shares or percentages ({span}; the name says a rate, share or "
                    "frequency)", values=values)
    money = _says(col, _MONEY_TOKENS, _MONEY_WORDS)
    count = _says(col, _COUNT_TOKENS, _COUNT_WORDS)
    measure = _says(col, _MEASURE_TOKENS)
    if whole and lo >= 0:
        if money and not count and not measure:
            return Role("money", f"amounts (whole numbers {span}; the name says money)",
                        values=values)
        if measure:
            return Role("number", f"a measure (whole numbers {span}; the name says a score "
                        "or an age)", values=values)
        return Role("count", f"counts (whole numbers {span})", values=values)
    if money and not measure:
        return Role("money", f"amounts ({span}; the name says money)", values=values)
    median = float(v.abs().median())
    if lo >= 0 and hi >= 100 and hi >= 20 * max(median, 1e-9):
        return Role("money", f"amounts (decimals over a wide range, {span})", values=values)
    return Role("number", f"a measure ({span})", values=values)


#: A code among numbers is on at least this share of the rows (and MIN_CODED rows)...
CODED_SHARE, MIN_CODED = 0.01, 5
#: ... and the other values take at least this many distinct values.
MIN_OTHERS = 3


def coded_name(column: str) -> str:
    """The 0/1 column of a code among numbers (``-1`` in ``pdays``): ``"pdays not given"``
    (the reason of ``column``'s role names the code)."""
    return f"{column} not given"


def sentinel(values: pd.Series) -> tuple[float, int] | None:
    """A code written among numbers, and on how many rows: the one negative value below
    numbers that are otherwise never negative (``-1``, ``-999``), or a largest value that
    is all nines and over twice every other (``999``, ``9999``), on at least
    :data:`CODED_SHARE` of the rows; the others with :data:`MIN_OTHERS` distinct values."""
    v = values.dropna()
    if v.empty:
        return None
    lo, hi = float(v.min()), float(v.max())
    for value in (lo, hi):
        rest = v[v != value]
        count = len(v) - len(rest)
        if (count < max(MIN_CODED, CODED_SHARE * len(values)) or rest.nunique() < MIN_OTHERS
                or value != round(value)):
            continue
        below = value == lo and value < 0 and float(rest.min()) >= 0
        nines = (value == hi and value >= 99 and set(str(int(value))) == {"9"}
                 and float(rest.max()) * 2 < value)
        if below or nines:
            return value, count
    return None


def _fmt(x: float) -> str:
    x = float(x)
    return f"{x:,.0f}" if x.is_integer() or abs(x) >= 100 else f"{x:.4g}"


def _parse_numbers(con, text: pd.Series, col: str) -> pd.Series:
    """Numbers of a text column as floats (NaN where unreadable), as order lines read them."""
    rel = _register(con, text, col)
    comma = decimal_comma(con, rel, col)
    expr = number_expr(col, "VARCHAR", comma=comma)
    got = con.execute(f"SELECT CASE WHEN isfinite(x) THEN x END AS x FROM (SELECT {expr} AS x, "
                      f"_custseg_i FROM {q(rel)}) ORDER BY _custseg_i").df()["x"]
    return pd.Series(pd.to_numeric(got, errors="coerce").to_numpy(dtype=float),
                     index=text.index)


def _parse_dates(con, text: pd.Series, col: str, dayfirst: bool | None
                 ) -> tuple[pd.Series, str, list[str]]:
    """Dates of a text column (NaT where unreadable), the format note and warnings."""
    rel = _register(con, text, col)
    expr, note, warnings = date_expr(con, rel, col, "VARCHAR", dayfirst)
    got = con.execute(f"SELECT {expr} AS d FROM {q(rel)} ORDER BY _custseg_i").df()["d"]
    dates = pd.to_datetime(got, errors="coerce")
    dates.index = text.index
    return dates, note, warnings


def _register(con, text: pd.Series, col: str) -> str:
    """The column's values as DuckDB table ``rel`` (row number ``_custseg_i``, text column
    ``col``)."""
    rel = "_custseg_roles_column"
    frame = pd.DataFrame({"_custseg_i": np.arange(len(text)),
                          "_custseg_v": text.astype("string").str.strip().astype(object)})
    con.register(rel + "_frame", frame)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {q(rel)} AS SELECT _custseg_i, "
                f"CAST(_custseg_v AS VARCHAR) AS {q(col)} FROM {q(rel + '_frame')}")
    con.unregister(rel + "_frame")
    return rel


# ------------------------------------------------------------------------------- dates
def _date_role(dates: pd.Series, note: str, n: int, max_missing: float, gone: pd.Series
               ) -> Role:
    share_bad = dates.isna().sum() / n
    if share_bad > max_missing:
        return Role("missing", f"{share_bad:.0%} of the dates are missing or unreadable; not "
                    "imputed")
    if dates.dropna().nunique() <= 1:
        return Role("constant", f"one date only ({dates.dropna().iloc[0].date()})")
    return Role("date", f"dates ({note})", used_as="days since", values=dates, detail=note)


def reference_day(roles: dict[str, Role], as_of: str | None) -> dt.date | None:
    """``as_of``, else the day after the latest date of the date columns (None: no dates)."""
    if as_of:
        return dt.date.fromisoformat(as_of)
    latest = [r.values.max() for r in roles.values() if r.role == "date"
              and r.values is not None and r.values.notna().any()]
    if not latest:
        return None
    return (max(latest).normalize() + pd.Timedelta(days=1)).date()


#: Text that says a value was not given, in the languages custseg reads: missing, never a
#: level of its own.
NOT_GIVEN = frozenset({
    "unknown", "n/a", "na", "n.a.", "none", "not available", "not known", "not given",
    "not specified", "unspecified", "missing", "null", "?", "-", "--", "desconocido",
    "desconocida", "no disponible", "inconnu", "inconnue", "non renseigné", "unbekannt",
    "keine angabe", "sconosciuto", "desconhecido", "não informado", "onbekend"})


def apply_roles(frame: pd.DataFrame, roles: dict[str, Role], as_of: str | None = None
                ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table with each usable column as it is clustered on (dates as days since the
    reference day, years as ages or years since, flags 0/1, numbers as floats, integer
    codes as text), constant and missing columns dropped. Returns the table and a
    description: reference day and year and notes."""
    out = frame.copy()
    ref = reference_day(roles, as_of)
    ref_year = ref.year if ref else dt.date.today().year
    notes = []
    coded = {}
    for col, role in roles.items():
        if col not in out.columns:
            continue
        if role.coded is not None:
            out[coded_name(col)] = role.coded
            coded[coded_name(col)] = "flag"
        if role.role in ("constant", "missing", "personal"):
            out = out.drop(columns=col)
        elif role.role == "date":
            days = (pd.Timestamp(ref) - role.values.dt.normalize()).dt.days.astype(float)
            out[col] = days
            role.used_as = f"days since, to {ref.isoformat()}"
            ahead = int((days < 0).sum())
            if ahead:
                notes.append(f"{col}: {ahead} date(s) after the reference day {ref}; their "
                             "days since are negative.")
        elif role.role == "year":
            out[col] = float(ref_year) - role.values
            role.used_as = f"{role.used_as} in {ref_year}"
        elif role.role == "category" and role.values is not None:
            out[col] = role.values.map(lambda x: pd.NA if pd.isna(x) else str(int(x))).astype(
                "string")
        elif role.role == "category" and not pd.api.types.is_numeric_dtype(out[col]):
            text = out[col].astype("string").str.strip().str.lower()
            unknown = text.isin(NOT_GIVEN)
            if unknown.any():
                words = sorted(set(out.loc[unknown, col].astype(str)))
                out.loc[unknown, col] = None
                notes.append(f"{col}: {', '.join(repr(w) for w in words[:3])} "
                             f"({int(unknown.sum()):,} rows) read as not given, not as a "
                             "level.")
        elif (role.role in NUMERIC_ROLES or role.role == "outcome") and role.values is not None:
            out[col] = role.values.astype(float)
    if ref is None and any(r.role == "year" for r in roles.values()):
        notes.append(f"Years counted to {ref_year} (the current year: the table has no dates; "
                     "pass --as-of for another).")
    out.attrs[ROLES_ATTR] = {**{c: r.role for c, r in roles.items() if c in out.columns},
                             **coded}
    return out, {"reference_day": ref.isoformat() if ref else None,
                 "reference_year": ref_year, "notes": notes}


def roles_of(frame: pd.DataFrame, columns: list[str] | None = None,
             max_missing: float = 0.5) -> dict[str, str]:
    """``{column: role}`` of a table: as custseg read it (``frame.attrs``), else inferred
    from the values (for ``columns`` only when given)."""
    known = dict(frame.attrs.get(ROLES_ATTR) or {})
    wanted = [c for c in (columns if columns is not None else frame.columns)
              if c in frame.columns and c not in known]
    if wanted:
        inferred, _ = infer_roles(frame[wanted], max_missing=max_missing)
        known.update({c: r.role for c, r in inferred.items()})
    return known


# ------------------------------------------------------------------ personal data
_PII = re.compile(
    r"(^|first|last|full|given|family|sur|middle|maiden|customer|contact|client|member|user"
    r"|account|billing|shipping|recipient|buyer|cardholder|holder|owner|person|display)name$"
    r"|^names?$|e?mail|phone|mobile|telephone|^tel$|fax|address|street|postcode|postalcode"
    r"|zipcode|zip$|iban|creditcard|cardnumber|ssn|passport|birthdate|dateofbirth|^dob$"
    r"|^(nom|prenom|nombre|apellidos?|vorname|nachname|familienname|cognome|naam|voornaam"
    r"|achternaam|telefon|telefono|telephone|adresse|direccion|indirizzo|strasse|correo)$"
)
_EMAIL_VALUE = re.compile(r"^\s*[^@\s]+@[^@\s]+\.[A-Za-z]{2,}\s*$")
_PHONE_VALUE = re.compile(r"^\s*(\+|00)?[\d\s().-]{6,}\s*$")


def is_personal(column: str) -> bool:
    """True for columns that hold people's names, contacts or addresses."""
    return bool(_PII.search(normalize(column)))


def looks_personal(values: pd.Series) -> str | None:
    """``"e-mail addresses"`` or ``"phone numbers"`` when most of the (text) values are
    such, else None. Numbers are never phone numbers: a phone has 7-15 digits with
    separators or a leading ``+``, and is never a plain decimal such as ``40.900749``."""
    sample = values.dropna().astype(str).head(500)
    if sample.empty or pd.api.types.is_numeric_dtype(values):
        return None
    if sample.str.match(_EMAIL_VALUE).mean() > 0.5:
        return "e-mail addresses"
    digits = sample.str.count(r"\d")
    phone = (sample.str.match(_PHONE_VALUE) & digits.between(7, 15) & ~plain_decimal(sample)
             & (sample.str.strip().str.startswith(("+", "(", "0")) | digits.ge(9))
             & sample.str.contains(r"[\s()+-]|\d[.]\d+[.]\d"))
    if phone.mean() > 0.5:
        return "phone numbers"
    return None
