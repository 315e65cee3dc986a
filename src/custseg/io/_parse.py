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
              dayfirst: bool | None = None) -> tuple[str, str, list[str]]:
    """TIMESTAMP expression for a date column, a note on the format, and warnings."""
    base, c = _base(type_name), q(col)
    if base.startswith("TIMESTAMP") or base == "DATE":
        return f"CAST({c} AS TIMESTAMP)", f"{base.lower()} column", []
    if base in _NUMERIC:
        expr = f"try_strptime(CAST(CAST({c} AS BIGINT) AS VARCHAR), '%Y%m%d')"
        return expr, "numbers read as YYYYMMDD", []
    if base not in _TEXT:
        raise DataError(f"Column {col!r} has type {type_name}, which is not a date; "
                        "map the order date with --map invoice_date=COLUMN.")
    t = f"trim({c})"
    # Formats are recognised on the first million values; only an ambiguous day/month
    # order is checked on the whole column.
    sample = f"(SELECT {c} FROM {q(relation)} WHERE {c} IS NOT NULL LIMIT {_SAMPLE})"
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
        parts.append(f"TRY_CAST(replace({t}, 'Z', '') AS TIMESTAMP)")
        notes.append("ISO")
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
