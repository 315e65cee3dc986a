"""What the values of a column are, and what its name says: the evidence column roles
are read from (:mod:`custseg.io._infer`).

:func:`profile` reads every column of a sample of rows once: how many values are present
and distinct, whether they are numbers (and whole, small, with decimals like money),
dates (in one format, spread over time; epoch seconds, Excel serial days or ``YYYYMMDD``
numbers too), codes, e-mail addresses or free text. Numbers and dates are read by the
same DuckDB expressions cleaning uses (:mod:`custseg.io._parse`), so a column is not
taken for dates that cleaning then cannot read.

:func:`says` tells whether a column's name names a role, in English, Spanish,
Portuguese, German, French, Italian or Dutch (``data/column_words.json``).
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass, field
from importlib import resources

import duckdb
import numpy as np
import pandas as pd

from custseg.core.exceptions import DataError
from custseg.io._parse import (
    date_expr,
    finite,
    number_expr,
    numeric_date,
    q,
)

_BLANK = {"", "nan", "none", "null", "na", "n/a", "nat", "-", "--", "?", "#n/a"}
#: Values looked at for the shares of a column (evenly spread over the sample).
SHARE_VALUES = 2000


# ------------------------------------------------------------------------------- names
@functools.cache
def lexicon_raw() -> dict[str, dict[str, list[str]]]:
    """``data/column_words.json`` as it is written."""
    text = resources.files("custseg").joinpath("data/column_words.json").read_text("utf-8")
    return json.loads(text)


@functools.cache
def lexicon() -> dict[str, dict[str, frozenset[str]]]:
    """Role -> language (and ``not``) -> words, from ``data/column_words.json``."""
    return {role: {lang: frozenset(words) for lang, words in langs.items()
                   if not lang.startswith("_")}
            for role, langs in lexicon_raw().items() if not role.startswith("_")
            and role not in ("status_values", "glossary")}


def plain(text: str) -> str:
    """Lower case without accents: ``"Descripción"`` -> ``"descripcion"``."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


#: The last part of a field path that says nothing alone (``order_id/name``).
_GENERIC_LAST = {"name", "displayname", "id", "value", "code", "label", "title", "text"}
#: Words a compound may be made of besides the lexicon's (``PARTNERID``, ``CREATEDBY``).
_JOINERS = {"id", "no", "nr", "num", "number", "date", "name", "code", "key", "type", "by",
            "at", "of", "per", "each", "ordered", "sold", "line", "item", "unit", "first",
            "last", "full", "user", "web", "store", "sales"}


def words(name: str) -> list[str]:
    """The words of a column name, lower case without accents: ``"NumWebPurchases"`` ->
    num, web, purchases; ``"Lineitem quantity"`` -> lineitem, quantity; ``"CUST_ID"`` ->
    cust, id; ``"PARTNERID"`` -> partner, id (two known words run together). Of a field
    path (``order_line/order_id/date_order``) the last part, with the one before when the
    last says nothing alone (``order_id/name``)."""
    text = unicodedata.normalize("NFC", str(name))
    if text.strip("/").count("/") >= 2 or ("/" in text.strip("/") and "_" in text
                                           and " " not in text):
        parts = [p for p in text.split("/") if p.strip()]
        last = re.sub(r"[^0-9a-z]", "", plain(parts[-1]))
        text = "/".join(parts[-2:] if last in _GENERIC_LAST and len(parts) > 1 else parts[-1:])
    out = []
    for part in re.split(r"[^0-9A-Za-zÀ-ÿ]+", text):
        out += re.findall(r"[A-ZÀ-Þ]+(?=[A-ZÀ-Þ][a-zß-ÿ])|[A-ZÀ-Þ]?[a-zß-ÿ]+|[A-ZÀ-Þ]+|\d+", part)
    return [w for t in out if t for w in _split(plain(t))]


@functools.cache
def _known() -> frozenset[str]:
    every = set(_JOINERS)
    for langs in lexicon().values():
        for ws in langs.values():
            every |= {w for w in ws if " " not in w}
    return frozenset(every)


@functools.cache
def _split(token: str) -> tuple[str, ...]:
    """A token made of known words run together, split (``createdby`` -> created, by;
    ``contactlastname`` -> contact, last, name); else the token."""
    known = _known()
    if token in known or len(token) < 5 or not token.isalpha():
        return (token,)
    for i in range(len(token) - 2, 1, -1):
        head, tail = token[:i], token[i:]
        if head in known and (len(head) >= 3 or len(tail) >= 3):
            rest = (tail,) if tail in known else _split(tail)
            if all(r in known for r in rest):
                return (head, *rest)
    return (token,)


def _compact(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", plain(name))


def _found(name: str, vocabulary: frozenset[str]) -> str | None:
    """The first word of ``vocabulary`` the name holds: as one of its words, or (words of
    five letters or more) at the start or end of one of them or of the whole name run
    together (``Kundennummer``, ``factuurdatum``, ``InvoiceNo``)."""
    toks = words(name)
    for t in toks:
        if t in vocabulary:
            return t
    pieces = [*toks, _compact(name)]
    for w in sorted(vocabulary, key=len, reverse=True):
        if len(w) >= 5 and any(p != w and (p.startswith(w) or p.endswith(w)) for p in pieces):
            return w
    return None


@functools.cache
def says(name: str, role: str) -> str | None:
    """The word by which ``name`` names ``role`` in one of the languages, else None
    (also None when a word of the role's ``not`` list is there)."""
    langs = lexicon()[role]
    vocabulary = frozenset().union(*(w for lang, w in langs.items() if lang != "not"))
    word = _found(name, vocabulary)
    if word is None or says_not(name, role):
        return None
    return word


@functools.cache
def says_not(name: str, role: str) -> str | None:
    """A word of the role's ``not`` list in ``name`` (a ship date is not the order date)."""
    banned = lexicon()[role].get("not", frozenset())
    return _found(name, banned) if banned else None


def not_paid_money(name: str) -> str | None:
    """A word saying a money column is not what the customer paid for the line
    (discount, tax, shipping, profit, cost, ...)."""
    return _found(name, lexicon()["money_not"]["all"])


# ----------------------------------------------------------------------------- profiles
@dataclass
class Profile:
    """What the sampled values of one column are."""

    name: str
    n: int  # rows in the sample
    present: int  # values that are not blank
    distinct: int
    text: pd.Series = field(repr=False)  # stripped text, NA where blank
    #: Numbers (NaN where blank or not a number), aligned with the sample's rows.
    numbers: np.ndarray | None = field(default=None, repr=False)
    number_share: float = 0.0  # of the present values
    integer_share: float = 0.0  # of the numbers
    negative_share: float = 0.0
    two_decimals: float = 0.0  # share of the numbers written with exactly two decimals
    money_text: float = 0.0  # share of values with a currency sign or code
    #: Dates (NaT where blank or not a date), aligned with the sample's rows.
    dates: pd.Series | None = field(default=None, repr=False)
    date_share: float = 0.0
    date_note: str = ""
    days: int = 0  # distinct days
    span_days: float = 0.0
    email_share: float = 0.0
    code_share: float = 0.0  # values that are codes (no spaces)
    mean_length: float = 0.0
    word_share: float = 0.0  # values of several words (letters and spaces)

    @property
    def present_share(self) -> float:
        return self.present / self.n if self.n else 0.0

    @property
    def is_number(self) -> bool:
        return self.numbers is not None and self.present > 0 and self.number_share >= 0.95

    @property
    def is_date(self) -> bool:
        """Dates on 90% of the values, or on half of them in a column named as a date
        (the rest are typos cleaning counts as unparseable_date)."""
        return self.dates is not None and self.present > 0 and (
            self.date_share >= 0.9 or (self.date_share >= 0.5 and _dated_name(self.name)))

    def values(self) -> np.ndarray:
        """The present numbers."""
        v = self.numbers[~np.isnan(self.numbers)] if self.numbers is not None else np.array([])
        return v

    @property
    def median(self) -> float:
        v = self.values()
        return float(np.median(np.abs(v))) if len(v) else float("nan")

    def quantile(self, p: float) -> float:
        v = self.values()
        return float(np.quantile(np.abs(v), p)) if len(v) else float("nan")


SAMPLE_TABLE = "custseg_peek"


def profile(con: duckdb.DuckDBPyConnection, sample: pd.DataFrame, *,
            dayfirst: bool | None = None, start_date: str | None = None
            ) -> dict[str, Profile]:
    """A :class:`Profile` of every column of ``sample`` (the rows custseg decides on).
    The shares of e-mails, codes, words and currencies and the decimal comma are counted
    in one DuckDB query over every column."""
    frame = sample.reset_index(drop=True)
    types = _register(con, frame)
    n = len(frame)
    texts = _texts(con, list(frame.columns), types)
    stats = _text_stats(con, list(frame.columns), n)
    profiles = {}
    number_cols = [c for c in frame.columns if stats[c]["present"]
                   and not types[c].startswith(("TIMESTAMP", "DATE"))]
    numbers = _numbers(con, number_cols, types,
                       {c: stats[c]["comma"] for c in number_cols})
    for c in frame.columns:
        t, st = texts[c], stats[c]
        present = int(t.notna().sum())
        p = Profile(name=c, n=n, present=present, distinct=int(t.nunique()), text=t)
        if present and st["present"]:
            share = {k: st[k] / st["present"] for k in ("email", "code", "words", "money")}
            p.mean_length = float(st["length"] or 0)
            p.code_share = share["code"]
            is_number = c in numbers and np.mean(~np.isnan(numbers[c][t.notna()])) >= 0.95
            if not is_number:
                p.email_share, p.word_share = share["email"], share["words"]
            if types[c] == "VARCHAR":
                p.money_text = share["money"]
        if c in numbers:
            _add_numbers(p, numbers[c])
            if st["present"]:
                p.two_decimals = st["cents"] / st["present"]
            if st["present"]:  # SKU-001 reads as -1 (SKU a currency code): not a number
                p.number_share = min(p.number_share, st["numeric"] / st["present"])
        kind = numeric_date(p.values(), c, start_date) if p.is_number else None
        # counted days or seconds only in a column named as a date: 70001 is an invoice
        # number as often as an Excel date (YYYYMMDD speaks for itself)
        numeric = kind == "yyyymmdd" or (kind is not None and _dated_name(c))
        if st["present"] and (st["dates"] >= 0.8 * st["present"] or numeric
                              or types[c].startswith(("TIMESTAMP", "DATE"))):
            _add_dates(con, p, c, types[c], t, dayfirst, start_date)
        profiles[c] = p
    con.execute(f"DROP TABLE IF EXISTS {SAMPLE_TABLE}")
    return profiles


#: Counted per column in :func:`_text_stats`. No Unicode classes (``\\pL``): RE2
#: compiles them slowly, once per expression of the query.
_LETTER = "A-Za-zÀ-ÿ"
_STATS = {
    "email": "regexp_full_match(t, '[^@\\s]+@[^@\\s]+\\.[A-Za-z]{2,}')",
    "code": f"length(t) <= 64 AND regexp_full_match(t, '#?[0-9{_LETTER}][0-9{_LETTER}_./:#-]*')",
    "words": f"regexp_matches(t, '[{_LETTER}]{{2,}}\\s+[{_LETTER}]{{2,}}')",
    "money": "regexp_matches(t, '[$€£¥₹]|\\b(USD|EUR|GBP|BRL|CHF|JPY|INR|MXN|ARS|CLP|COP)"
             "\\b|R\\$')",
    "dates": "regexp_matches(t, '\\d{1,4}[-/.]\\d{1,2}[-/.]\\d{1,4}|\\d{1,2}[-/. ][A-Za-z]{3,9}"
             "[-/., ]+\\d{2,4}|[A-Za-z]{3,9}\\.? \\d{1,2},? \\d{4}|^\\d{8}$')",
    # two decimals, as money is written (12.50, 1.234,50, $12.50)
    "cents": "regexp_matches(t, '[0-9][.,][0-9]{2}\\s*[^0-9.,]*$')",
    # written as a number: no letters, but a currency code apart (12 EUR, R$ 9,90)
    "numeric": "regexp_full_match(t, '(R\\$|[A-Z]{3} )?[^A-Za-z]*[0-9][^A-Za-z]*( [A-Z]{3})?')",
    "comma": "regexp_matches(t, '[0-9],[0-9]{1,2}\\s*[^0-9]*$') OR regexp_matches(t, "
             "'[0-9]\\.[0-9]{3},')",
    "point": "regexp_matches(t, '[0-9]\\.[0-9]{1,2}\\s*[^0-9]*$') OR regexp_matches(t, "
             "'[0-9],[0-9]{3}\\.')",
}


#: Columns per profiling query: DuckDB's planning time grows with the square of a
#: query's expressions (500 columns in one query: 23 s; in batches of 40: under 2 s).
BATCH_COLUMNS = 40


def _batches(columns: list[str]) -> list[range]:
    """The column positions, :data:`BATCH_COLUMNS` at a time."""
    return [range(i, min(i + BATCH_COLUMNS, len(columns)))
            for i in range(0, len(columns), BATCH_COLUMNS)]


def _text_stats(con: duckdb.DuckDBPyConnection, columns: list[str], rows: int
                ) -> dict[str, dict]:
    """Per column, over at most :data:`SHARE_VALUES` rows spread through the sample:
    values present, their mean length, how many match each of :data:`_STATS`, and
    whether decimals are written with a comma. The columns are unpivoted into one, so
    each regular expression is compiled once (RE2 takes milliseconds for some)."""
    blanks = ", ".join(f"'{b}'" for b in sorted(_BLANK))
    step = max(1, -(-rows // SHARE_VALUES))
    stats = ", ".join(f"count_if({sql}) AS {k}" for k, sql in _STATS.items())
    out = {c: dict.fromkeys(("present", "length", *_STATS), 0) for c in columns}
    for batch in _batches(columns):
        inner = ", ".join(
            f"CASE WHEN lower(trim(CAST({q(columns[i])} AS VARCHAR))) IN ({blanks}) THEN NULL "
            f"ELSE trim(CAST({q(columns[i])} AS VARCHAR)) END AS c{i}" for i in batch)
        got = con.execute(
            f"SELECT col, count(*), avg(length(t)), {stats} FROM (UNPIVOT (SELECT {inner} "
            f"FROM {SAMPLE_TABLE} WHERE _custseg_i % {step} = 0) ON COLUMNS(*) INTO NAME "
            "col VALUE t) GROUP BY col").fetchall()
        for row in got:
            st = out[columns[int(row[0][1:])]]
            st.update(zip(("present", "length", *_STATS), (v or 0 for v in row[1:]),
                          strict=True))
    for st in out.values():
        st["comma"] = st["comma"] > 0 and st["comma"] > st["point"]
    return out


def _dated_name(name: str) -> bool:
    """A name that speaks of a date or a time (in any language, or ``ts``, ``epoch``)."""
    return bool(_found(name, lexicon()["invoice_date"]["en"] | frozenset(
        w for lang, ws in lexicon()["invoice_date"].items() if lang != "not" for w in ws)
        | {"epoch", "unix", "ms", "millis", "birth", "born", "dob"}))


def _texts(con: duckdb.DuckDBPyConnection, columns: list[str], types: dict[str, str]
           ) -> dict[str, pd.Series]:
    """Every column as stripped text (None where blank), in one query: whole floats
    without their ``.0`` (``17850``), timestamps as ``YYYY-MM-DD HH:MM:SS``."""
    if not columns:
        return {}
    blanks = ", ".join(f"'{b}'" for b in sorted(_BLANK))
    exprs = {}
    for i, c in enumerate(columns):
        base = types[c].split("(")[0]
        if base in ("FLOAT", "DOUBLE", "REAL") or base.startswith("DECIMAL"):
            t = (f"CASE WHEN isfinite({q(c)}::DOUBLE) AND {q(c)} = floor({q(c)}) AND "
                 f"abs({q(c)}::DOUBLE) < 1e15 THEN CAST(CAST({q(c)} AS BIGINT) AS VARCHAR) "
                 f"ELSE CAST({q(c)} AS VARCHAR) END")
        elif base.startswith("TIMESTAMP") or base == "DATE":
            t = f"strftime(CAST({q(c)} AS TIMESTAMP), '%Y-%m-%d %H:%M:%S')"
        else:
            t = f"trim(CAST({q(c)} AS VARCHAR))"
        exprs[i] = f"CASE WHEN lower({t}) IN ({blanks}) THEN NULL ELSE {t} END AS c{i}"
    got = {}
    for batch in _batches(columns):
        got.update(con.execute(f"SELECT {', '.join(exprs[i] for i in batch)} FROM "
                               f"{SAMPLE_TABLE} ORDER BY _custseg_i").fetchnumpy())
    out = {}
    for i, c in enumerate(columns):
        values = got[f"c{i}"]
        if isinstance(values, np.ma.MaskedArray):  # (filled(None) would write '?')
            values = np.where(np.ma.getmaskarray(values), None, values.data.astype(object))
        out[c] = pd.Series(np.asarray(values, dtype=object))
    return out


def _register(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> dict[str, str]:
    """The sample as DuckDB table :data:`SAMPLE_TABLE` (row number ``_custseg_i``), with
    each column's DuckDB type."""
    safe = frame.copy()
    for c in safe.columns:
        if safe[c].dtype == object and pd.api.types.infer_dtype(safe[c], skipna=True) not in (
                "string", "empty"):
            safe[c] = safe[c].map(lambda v: v if v is None or isinstance(v, str)
                                  or (isinstance(v, float) and v != v) else str(v))
    safe.insert(0, "_custseg_i", np.arange(len(safe)))
    con.register("custseg_peek_frame", safe)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {SAMPLE_TABLE} AS "
                    "SELECT * FROM custseg_peek_frame")
    finally:
        con.unregister("custseg_peek_frame")
    return {r[0]: r[1] for r in con.execute(f"DESCRIBE {SAMPLE_TABLE}").fetchall()}


def _numbers(con, columns: list[str], types: dict[str, str], comma: dict[str, bool]
             ) -> dict[str, np.ndarray]:
    """Each column read as numbers by cleaning's expression (NaN where not a number);
    ``comma``: the columns that write decimals with a comma."""
    if not columns:
        return {}
    n = con.execute(f"SELECT count(*) FROM {SAMPLE_TABLE}").fetchone()[0]
    out: dict[str, np.ndarray] = {}
    typed = [c for c in columns if types[c] != "VARCHAR"]
    if typed:
        exprs = [f"{finite(f'({number_expr(c, types[c])})')} AS {q(c)}" for c in typed]
        got = {}
        for batch in _batches(typed):
            got.update(con.execute(f"SELECT {', '.join(exprs[i] for i in batch)} FROM "
                                   f"{SAMPLE_TABLE} ORDER BY _custseg_i").fetchnumpy())
        out.update({c: np.asarray(pd.to_numeric(pd.Series(got[c]), errors="coerce"),
                                  dtype=float) for c in typed})
    text = [c for c in columns if types[c] == "VARCHAR"]
    if text:  # unpivoted: each regular expression compiled once, not once a column
        inner = ", ".join(f"{q(c)} AS c{i}" for i, c in enumerate(text))
        flags = ", ".join(f"('c{i}', {str(comma.get(c, False)).lower()})"
                          for i, c in enumerate(text))
        x = (f"CASE WHEN comma THEN {number_expr('t', 'VARCHAR', True)} "
             f"ELSE {number_expr('t', 'VARCHAR', False)} END")
        got = con.execute(
            f"SELECT col, i, {finite(f'({x})')} AS x FROM (UNPIVOT (SELECT _custseg_i AS i, "
            f"{inner} FROM {SAMPLE_TABLE}) ON COLUMNS(* EXCLUDE (i)) INTO NAME col VALUE t) "
            f"JOIN (VALUES {flags}) AS f(name, comma) ON col = name").fetchnumpy()
        cols = np.asarray(got["col"], dtype=object)
        rows = np.asarray(got["i"], dtype=np.int64)
        vals = np.asarray(pd.to_numeric(pd.Series(got["x"]), errors="coerce"), dtype=float)
        for i, c in enumerate(text):
            arr = np.full(n, np.nan)
            mine = cols == f"c{i}"
            arr[rows[mine]] = vals[mine]
            out[c] = arr
    return out


def _add_numbers(p: Profile, values: np.ndarray) -> None:
    ok = ~np.isnan(values)
    if not p.present:
        return
    p.numbers = values
    p.number_share = float(ok.sum() / p.present)
    v = values[ok]
    if len(v):
        p.integer_share = float(np.mean(v == np.round(v)))
        p.negative_share = float(np.mean(v < 0))


def _add_dates(con, p: Profile, col: str, type_name: str, text: pd.Series,
               dayfirst: bool | None, start_date: str | None) -> None:
    """Dates of a column that holds them: timestamps, text in a date format, or numbers
    that count days or seconds (:func:`custseg.io._parse.numeric_date`)."""
    if not p.present:
        return
    base = type_name.split("(")[0]
    numbers = p.numbers is not None and p.number_share >= 0.95
    if numbers and not base.startswith(("TIMESTAMP", "DATE")) \
            and numeric_date(p.values(), col, start_date) is None:
        return
    try:
        expr, note, _ = date_expr(con, SAMPLE_TABLE, col, type_name, dayfirst,
                                  start_date=start_date)
        got = con.execute(f"SELECT {expr} AS d FROM {SAMPLE_TABLE} ORDER BY _custseg_i"
                          ).df()["d"]
    except DataError as exc:  # day numbers without --start-date
        p.date_note = str(exc)
        return
    except duckdb.Error:
        return
    dates = pd.to_datetime(got, errors="coerce")
    dates = dates.where((dates >= "1900-01-01") & (dates < "2200-01-01"))
    parsed = int(dates.notna().sum())
    if not parsed:
        return
    p.dates = dates
    p.date_share = parsed / p.present
    p.date_note = note
    day = dates.dropna().dt.normalize()
    p.days = int(day.nunique())
    p.span_days = float((day.max() - day.min()).days)


__all__ = ["Profile", "profile", "says", "says_not", "words"]
