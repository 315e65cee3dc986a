"""SQL expressions that turn raw input values into typed canonical values.

Each builder returns a DuckDB expression that yields NULL for a value it cannot read, so
that cleaning can count such lines instead of failing or guessing. Formats that differ
between exports (day/month order, decimal comma) are decided from the data, once per
column, and reported.
"""

from __future__ import annotations

import contextlib
import re

import duckdb

from custseg.core.exceptions import DataError

_TEXT = ("VARCHAR",)
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL")
#: Text that means "no value" in an id column (case-insensitive), including empty.
_MISSING_RE = r"(?i:nan|none|null|na|n/a|#n/a|-|\?)?"

#: A number with optional sign, currency symbol or code, thousands separators, parentheses.
_NUMBER_RE = (r"^\(?\s*[-+]?\s*(?:[$€£¥₹]|[A-Za-z]{3})?\s*[-+]?\s*([0-9][0-9,.' ]*[0-9]|[0-9]|"
              r"[.,][0-9]+)\s*(?:[$€£¥₹%]|[A-Za-z]{3})?\s*\)?$")


def quiet_connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that prints nothing (no progress bar on long
    queries, which would break ``--quiet``)."""
    con = duckdb.connect()
    # in Jupyter without ipywidgets DuckDB refuses the setting (and shows no bar)
    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")
    return con


def settled(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """``con`` with its pending result, if any, finished: DuckDB 2 refuses other work on
    a connection while a result is left unread (after a ``fetchone``)."""
    finish = getattr(con, "complete", None)
    if finish is not None:
        finish()
    return con


def q(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote a string literal for DuckDB."""
    return "'" + value.replace("'", "''") + "'"


def _base(type_name: str) -> str:
    return re.sub(r"\(.*", "", type_name).upper()


# ------------------------------------------------------------------------------- ids
def id_expr(col: str, type_name: str) -> str:
    """Identifier as text: ``17850.0`` -> ``"17850"``, ``"007"`` stays ``"007"``."""
    base, c = _base(type_name), q(col)
    if (base in ("BOOLEAN", "BLOB", "BIT") or type_name.endswith("]")
            or base in ("STRUCT", "MAP", "UNION", "LIST")):
        raise DataError(f"Column {col!r} holds {type_name} values, which cannot be ids; map "
                        "the id column with --map customer_id=COLUMN (or invoice_id, "
                        "product_id).")
    if base in ("FLOAT", "DOUBLE", "REAL") or base.startswith("DECIMAL"):
        return (f"CASE WHEN {c} IS NULL OR NOT isfinite({c}::DOUBLE) THEN NULL "
                f"WHEN {c} = floor({c}) AND abs({c}::DOUBLE) < 1e18 "
                f"THEN CAST(CAST({c} AS BIGINT) AS VARCHAR) "
                f"ELSE CAST({c} AS VARCHAR) END")
    if base in _NUMERIC:
        return f"CAST({c} AS VARCHAR)"
    # Cheap tests find the rare values that need work (padding, "17850.0", "nan", ...);
    # the rest pass through untouched, which keeps large inputs fast.
    v = f"CAST({c} AS VARCHAR)"
    text = f"trim({v})"
    return (f"CASE WHEN NOT ({_odd_text(v)} OR contains({v}, '.') OR length({v}) <= 4) "
            f"THEN {v} WHEN regexp_full_match({text}, {lit(_MISSING_RE)}) THEN NULL "
            f"ELSE regexp_replace({text}, '^([0-9]+)\\.0+$', '\\1') END")


def _odd_text(v: str) -> str:
    return f"({v} = '' OR starts_with({v}, ' ') OR ends_with({v}, ' '))"


def text_expr(col: str) -> str:
    """Trimmed text, NULL when empty."""
    v = f"CAST({q(col)} AS VARCHAR)"
    return f"CASE WHEN NOT {_odd_text(v)} THEN {v} ELSE NULLIF(trim({v}), '') END"


# --------------------------------------------------------------------------- numbers
def decimal_comma(con: duckdb.DuckDBPyConnection, relation: str, col: str) -> bool:
    """True when the column writes decimals with a comma (``1.234,50``, ``12,5``)."""
    c = q(col)
    row = con.execute(
        f"""SELECT
              count(*) FILTER (regexp_matches({c}, '[0-9],[0-9]{{1,2}}\\s*[^0-9]*$')
                               OR regexp_matches({c}, '[0-9]\\.[0-9]{{3}},')),
              count(*) FILTER (regexp_matches({c}, '[0-9]\\.[0-9]{{1,2}}\\s*[^0-9]*$')
                               OR regexp_matches({c}, '[0-9],[0-9]{{3}}\\.'))
            FROM (SELECT {c} FROM {q(relation)} WHERE {c} IS NOT NULL LIMIT 200000)"""
    ).fetchone()
    return row[0] > 0 and row[0] > row[1]


def number_expr(col: str, type_name: str, comma: bool = False) -> str:
    """DOUBLE or NULL; may be inf or NaN, so wrap a column of it in :func:`finite`.

    Text may carry ``$``, ``EUR``, thousands separators or accounting parentheses.
    """
    base, c = _base(type_name), q(col)
    if base in _NUMERIC or base.startswith("DECIMAL"):
        return f"CAST({c} AS DOUBLE)"
    if base not in _TEXT:
        return "CAST(NULL AS DOUBLE)"
    core = f"regexp_extract(trim({c}), {lit(_NUMBER_RE)}, 1)"
    if comma:
        digits = f"replace(replace(replace(replace({core}, '.', ''), ' ', ''), '''', ''), ',', '.')"
    else:
        digits = f"replace(replace(replace({core}, ',', ''), ' ', ''), '''', '')"
    sign = (f"CASE WHEN regexp_matches(trim({c}), '^\\(.*\\)$|^[^0-9]*-') THEN -1 ELSE 1 END")
    messy = f"CASE WHEN {core} <> '' THEN TRY_CAST({digits} AS DOUBLE) * ({sign}) END"
    if comma:
        return messy
    # Plain numbers take the fast cast; only the others go through the expression above.
    return f"COALESCE(TRY_CAST({c} AS DOUBLE), {messy})"


def finite(expr: str) -> str:
    """NULL for infinite or NaN values (``expr`` appears twice: pass a column)."""
    return f"CASE WHEN isfinite({expr}) THEN {expr} END"


# ----------------------------------------------------------------------------- dates
_TIMES = ("%H:%M:%S", "%H:%M", "%I:%M:%S %p", "%I:%M %p", "%H:%M:%S.%f")
_FAMILIES = {
    # name: (regex on the value, separator); ISO and compact are handled separately.
    "slash": (r"^\d{1,2}/\d{1,2}/(\d{2}|\d{4})([ T].*)?$", "/"),
    "dot": (r"^\d{1,2}\.\d{1,2}\.(\d{2}|\d{4})([ T].*)?$", "."),
    "dash": (r"^\d{1,2}-\d{1,2}-(\d{2}|\d{4})([ T].*)?$", "-"),
}
_SAMPLE = 1_000_000
_ISO = r"^\d{4}-\d{1,2}-\d{1,2}([ T].*)?$"
_YMD_SLASH = r"^\d{4}/\d{1,2}/\d{1,2}([ T].*)?$"
_COMPACT = r"^\d{8}$"
_DAY_MONTH_NAME = r"^\d{1,2}[- ./][A-Za-z]{3,9}[- ./,]+\d{2,4}([ T].*)?$"
_MONTH_NAME_DAY = r"^[A-Za-z]{3,9}\.? \d{1,2},? \d{4}([ T].*)?$"
#: Separators around the month name: 09-Dec-2011, 9 Dec 2011, 09.Dec.2011, 9 Dec, 2011.
_NAME_SEPS = (("-", "-"), (" ", " "), (".", "."), (" ", ", "), ("/", "/"))


def date_expr(con: duckdb.DuckDBPyConnection, relation: str, col: str, type_name: str,
              dayfirst: bool | None = None, *, start_date: str | None = None
              ) -> tuple[str, str, list[str]]:
    """TIMESTAMP expression for a date column, a note on the format, and warnings.
    ``start_date`` is the date of day 1 of a column of day numbers (``DAY 1..711``)."""
    base, c = _base(type_name), q(col)
    if base == "TIMESTAMP WITH TIME ZONE" or base == "TIMESTAMPTZ":
        return (f"CAST(timezone('UTC', {c}) AS TIMESTAMP)",
                "timestamps with time zone, read in UTC", [])
    if base.startswith("TIMESTAMP") or base == "DATE":
        return f"CAST({c} AS TIMESTAMP)", f"{base.lower()} column", []
    sample = f"(SELECT {c} FROM {q(relation)} WHERE {c} IS NOT NULL LIMIT {_SAMPLE})"
    if base in _NUMERIC or base.startswith("DECIMAL"):
        return _numeric_dates(con, sample, c, f"CAST({c} AS DOUBLE)", col, start_date)
    if base not in _TEXT:
        raise DataError(f"Column {col!r} has type {type_name}, which is not a date; "
                        "map the order date with --map invoice_date=COLUMN.")
    t = f"trim({c})"
    plain, numeric = con.execute(
        f"SELECT count(*), count(*) FILTER (regexp_full_match({t}, '[0-9]+([.][0-9]+)?') "
        f"AND NOT regexp_full_match({t}, {lit(_COMPACT[1:-1])})) FROM {sample}").fetchone()
    if plain and numeric == plain:  # digits only, not YYYYMMDD: days or seconds counted
        return _numeric_dates(con, sample, c, f"TRY_CAST({t} AS DOUBLE)", col, start_date)
    # Formats are recognised on the first million values; only an ambiguous day/month
    # order is checked on the whole column.
    counts = con.execute(
        f"""SELECT count(*) FILTER (regexp_matches({t}, {lit(_ISO)})),
                   count(*) FILTER (regexp_matches({t}, {lit(_YMD_SLASH)})),
                   count(*) FILTER (regexp_matches({t}, {lit(_COMPACT)})),
                   count(*) FILTER (regexp_matches({t}, {lit(_DAY_MONTH_NAME)})),
                   count(*) FILTER (regexp_matches({t}, {lit(_MONTH_NAME_DAY)})),
                   {", ".join(f"count(*) FILTER (regexp_matches({t}, {lit(rx)}))"
                              for rx, _ in _FAMILIES.values())},
                   count(*) FILTER (regexp_matches({t}, '[0-9]/[0-9]+/[0-9]{{2}}($|[ T])')
                                    OR regexp_matches({t}, '[0-9][.-][0-9]+[.-][0-9]{{2}}($|[ T])'))
            FROM {sample}"""
    ).fetchone()
    iso, ymd, compact, day_name, name_day, *fam_counts, two_digit_years = counts
    parts, notes, warnings = [], [], []
    if iso:
        expr, note = _iso(con, sample, t)
        parts.append(expr)
        notes.append(note)
    if ymd:
        parts.append(_strptime(con, sample, t, "%Y/%m/%d", two_digit=False))
        notes.append("YYYY/MM/DD")
    if compact:
        parts.append(f"try_strptime({t}, '%Y%m%d')")
        notes.append("YYYYMMDD")
    if day_name:
        four = _ranked(con, sample, t, [f"%d{a}%b{b}%Y" for a, b in _NAME_SEPS]
                       + [f"%d{a}%B{b}%Y" for a, b in _NAME_SEPS])
        two = _ranked(con, sample, t, [f"%d{a}%b{b}%y" for a, b in _NAME_SEPS])
        parts.append(f"CASE WHEN regexp_matches({t}, '\\d{{4}}($|[ T])') THEN {four} "
                     f"ELSE {two} END")
        notes.append("DD-Mon-YYYY")
    if name_day:
        parts.append(_ranked(con, sample, t, ["%b %d, %Y", "%B %d, %Y", "%b %d %Y",
                                              "%B %d %Y", "%b. %d, %Y"]))
        notes.append("Mon DD, YYYY")
    for (_name, (rx, sep)), n in zip(_FAMILIES.items(), fam_counts, strict=True):
        if not n:
            continue
        first, second = _part_maxima(con, sample, t, rx)
        if dayfirst is None and first <= 12 and second <= 12:
            first, second = _part_maxima(con, q(relation), t, rx)
        if dayfirst is not None:
            day_first, why = dayfirst, "as told (--dayfirst)" if dayfirst else "as told"
        elif first > 12 >= second:
            day_first, why = True, f"decided from the data: first part reaches {first}"
        elif second > 12 >= first:
            day_first, why = False, f"decided from the data: second part reaches {second}"
        else:
            day_first = sep != "/"
            why = "ambiguous in the data, assumed"
            order = "day/month" if day_first else "month/day"
            if first > 12 and second > 12:
                warnings.append(f"Column {col!r} mixes day/month and month/day dates; read "
                                f"{sep}-dates as {order}, the rest as the other order.")
            else:
                flag = "--no-dayfirst" if day_first else "--dayfirst"
                warnings.append(f"Column {col!r}: dates such as 01{sep}02{sep}2011 are ambiguous "
                                f"and were read as {order}; pass {flag} if that is wrong.")
        order = ("%d", "%m") if day_first else ("%m", "%d")
        fmt = f"{order[0]}{sep}{order[1]}{sep}%Y"
        parts.append(_strptime(con, sample, t, fmt, two_digit=bool(two_digit_years)))
        if first > 12 and second > 12:
            swapped = f"{order[1]}{sep}{order[0]}{sep}%Y"
            parts.append(_strptime(con, sample, t, swapped, two_digit=bool(two_digit_years)))
        label = "DD{0}MM{0}YYYY" if day_first else "MM{0}DD{0}YYYY"
        notes.append(f"{label.format(sep)} ({why})")
    if not parts:
        return "CAST(NULL AS TIMESTAMP)", "no known date format", []
    if len(notes) > 1:
        warnings.append(f"Column {col!r} mixes date formats ({', '.join(notes)}); each value "
                        "was read in the format it is written in.")
    expr = parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"
    return expr, ", ".join(notes), warnings


#: A UTC offset after a time of day (``04:32:31 -0500``, ``10:00+01:00``, ``T10:00Z``).
_OFFSET = r"\d{2}:\d{2}(:\d{2}([.]\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})$"


def _iso(con: duckdb.DuckDBPyConnection, sample: str, t: str) -> tuple[str, str]:
    """ISO dates; times with a UTC offset are read in the data's own time zone: as
    written when every offset is within an hour of the others (one zone, with or
    without daylight saving time), else converted to the most frequent offset."""
    wall = f"TRY_CAST(regexp_replace({t}, '\\s*(Z|[+-]\\d{{2}}:?\\d{{2}}| UTC)$', '') AS TIMESTAMP)"
    offsets = con.execute(
        f"SELECT {_minutes(t)} AS m, count(*) AS n FROM {sample} "
        f"WHERE regexp_matches({t}, {lit(_OFFSET)}) GROUP BY m ORDER BY n DESC, m").fetchall()
    if not offsets:
        return wall, "ISO"
    shown = ", ".join(_utc(m) for m, _ in sorted(offsets)[:4])
    main = offsets[0][0]
    if max(m for m, _ in offsets) - min(m for m, _ in offsets) <= 60:
        return wall, (f"ISO with UTC offsets ({shown}: one time zone), times as written, "
                      "in the data's own time zone")
    converted = (f"CASE WHEN regexp_matches({t}, {lit(_OFFSET)}) THEN {wall} + "
                 f"to_minutes(CAST({main} - ({_minutes(t)}) AS BIGINT)) ELSE {wall} END")
    return converted, (f"ISO with UTC offsets ({shown}), converted to {_utc(main)}, the most "
                       "frequent")


def _minutes(t: str) -> str:
    """The UTC offset at the end of ``t`` in minutes (``Z``: 0)."""
    sign = f"CASE WHEN regexp_extract({t}, '([+-])\\d{{2}}:?\\d{{2}}$', 1) = '-' THEN -1 ELSE 1 END"
    hours = f"TRY_CAST(regexp_extract({t}, '[+-](\\d{{2}}):?\\d{{2}}$', 1) AS INTEGER)"
    mins = f"TRY_CAST(regexp_extract({t}, '[+-]\\d{{2}}:?(\\d{{2}})$', 1) AS INTEGER)"
    return f"coalesce(({sign}) * ({hours} * 60 + {mins}), 0)"


def _utc(minutes: int) -> str:
    """``-300`` -> ``UTC-05:00``."""
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


#: Numbers that are dates, by their range: (kind, low, high, words for the note).
NUMERIC_DATES = (
    ("unix_ms", 631_152_000_000, 4_102_444_800_000, "Unix milliseconds"),
    ("unix_s", 631_152_000, 4_102_444_800, "Unix seconds"),
    ("excel", 25_569, 73_051, "Excel serial days"),
)


def numeric_date(values, col: str, start_date: str | None = None) -> str | None:
    """How a column of numbers counts dates, from their range: ``yyyymmdd``
    (``20111209``), ``unix_ms``, ``unix_s``, ``excel`` (days since 1899-12-30, a
    fraction is the time of day) or ``day_number`` (whole numbers from 0 or 1 up, in a
    column whose name says day: ``DAY 1..711``); None when they are not dates.

    >>> numeric_date([19970101, 19980630], "date"), numeric_date([43831.5, 44000], "x")
    ('yyyymmdd', 'excel')
    >>> numeric_date([1, 2, 711], "DAY"), numeric_date([1, 2, 711], "units")
    ('day_number', None)
    """
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if not len(v):
        return None
    lo, hi = float(v.min()), float(v.max())
    whole = bool(np.all(v == np.round(v)))
    if whole and lo >= 19000101 and hi <= 21001231:
        month, day = (v // 100) % 100, v % 100
        if np.all((month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)):
            return "yyyymmdd"
    for kind, low, high, _ in NUMERIC_DATES:
        if lo >= low and hi <= high:
            return kind
    name = re.sub(r"[^a-z]", " ", col.lower()).split()
    if whole and lo >= 0 and lo <= 31 and 31 < hi <= 40_000 and any(
            w in ("day", "days", "dia", "tag", "jour", "giorno", "dag") for w in name):
        return "day_number"
    return None


def _numeric_dates(con: duckdb.DuckDBPyConnection, sample: str, c: str, number: str,
                   col: str, start_date: str | None) -> tuple[str, str, list[str]]:
    """Dates counted by numbers (:func:`numeric_date`): the expression and its note."""
    values = [r[0] for r in con.execute(
        f"SELECT DISTINCT {number} FROM {sample} LIMIT 100000").fetchall() if r[0] is not None]
    kind = numeric_date(values, col, start_date)
    n = f"({number})"
    if kind == "yyyymmdd":
        return (f"try_strptime(CAST(CAST({n} AS BIGINT) AS VARCHAR), '%Y%m%d')",
                "numbers read as YYYYMMDD", [])
    if kind == "unix_ms":
        return (f"make_timestamp(CAST({n} * 1000 AS BIGINT))",
                "Unix milliseconds, read in UTC", [])
    if kind == "unix_s":
        return (f"make_timestamp(CAST({n} * 1000000 AS BIGINT))", "Unix seconds, read in UTC",
                [])
    if kind == "excel":
        return (f"make_timestamp(CAST(round(({n} - 25569) * 86400000000) AS BIGINT))",
                "Excel serial days (day 1 = 1900-01-01)", [])
    if kind == "day_number":
        if start_date is None:
            raise DataError(f"Column {col!r} counts days ({int(min(values))} to "
                            f"{int(max(values))}), not dates; pass --start-date YYYY-MM-DD, "
                            "the date of day 1.")
        return (f"CAST(DATE {lit(start_date)} AS TIMESTAMP) + "
                f"to_days(CAST({n} AS INTEGER) - 1)",
                f"day numbers, day 1 = {start_date} (--start-date)", [])
    return "CAST(NULL AS TIMESTAMP)", "numbers that are not dates", []


def _part_maxima(con: duckdb.DuckDBPyConnection, source: str, t: str, rx: str
                 ) -> tuple[int, int]:
    """Largest first and second number of the dates matching ``rx`` (day/month order)."""
    return con.execute(
        f"""SELECT max(TRY_CAST(regexp_extract({t}, '^(\\d+)', 1) AS INT)),
                   max(TRY_CAST(regexp_extract({t}, '^\\d+[/.-](\\d+)', 1) AS INT))
            FROM {source} WHERE regexp_matches({t}, {lit(rx)})""").fetchone()


def _ranked(con: duckdb.DuckDBPyConnection, sample: str, t: str, date_fmts: list[str]) -> str:
    """try_strptime over the date formats (with their time variants) that occur in the
    sample, most frequent first (each failed format costs time on every row)."""
    full = [f"{d}{sep}{tm}" for d in date_fmts for sep, times in ((" ", _TIMES),
                                                                   ("T", _TIMES[:2]))
            for tm in times] + list(date_fmts)
    hits = con.execute("SELECT " + ", ".join(
        f"count(try_strptime({t}, {lit(f)}))" for f in full)
        + f" FROM (SELECT * FROM {sample} LIMIT 20000)").fetchone()
    used = [f for f, n in sorted(zip(full, hits, strict=True), key=lambda x: -x[1]) if n]
    used = used or full
    if len(used) == 1:
        return f"try_strptime({t}, {lit(used[0])})"
    return f"try_strptime({t}, [{', '.join(lit(f) for f in used)}])"


def _strptime(con: duckdb.DuckDBPyConnection, sample: str, t: str, date_fmt: str,
              two_digit: bool) -> str:
    """Dates of one numeric layout (``%m/%d/%Y`` ...), two-digit years kept apart."""
    four = _ranked(con, sample, t, [date_fmt])
    if not two_digit:
        return four
    # %Y would read "11" as the year 11: pick the format by the year's length.
    two = _ranked(con, sample, t, [date_fmt.replace("%Y", "%y")])
    four_digit_year = f"regexp_matches({t}, '^\\d+[/.-]\\d+[/.-]\\d{{4}}')"
    return f"CASE WHEN {four_digit_year} THEN {four} ELSE {two} END"
