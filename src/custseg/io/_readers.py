"""Readers: bring any supported input into DuckDB as a relation of raw rows.

Text files are sniffed (encoding, delimiter) and read with every column as text, so that
custseg itself parses numbers and dates and counts what it cannot parse. Parquet is
scanned in place (out-of-core). Excel and SQL results are streamed into a DuckDB table.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ..config import Config
from ..exceptions import InputError
from ._parse import lit

_PARQUET_MAGIC = b"PAR1"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"
_DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 1 << 16


@dataclass
class Source:
    """Raw rows of one input, held by DuckDB under ``relation``."""

    name: str
    format: str
    relation: str
    columns: list[str]
    types: dict[str, str]
    rows: int
    rejected: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Header names that occur more than once (case-insensitively, as DuckDB compares
    #: names) -> the names the columns were given (``CustomerID``, ``CustomerID_1``).
    duplicates: dict[str, list[str]] = field(default_factory=dict)


def load_source(con: duckdb.DuckDBPyConnection, path: str | Path | None = None, *,
                config: Config | None = None, relation: str = "raw",
                db: str | None = None, sql: str | None = None,
                frame: pd.DataFrame | None = None) -> Source:
    """Register an input as DuckDB relation ``relation`` and describe it.

    Exactly one of ``path``, ``db`` + ``sql`` or ``frame`` is given.
    """
    config = config or Config()
    if frame is not None:
        con.register(f"{relation}_frame", _arrow_friendly(frame))
        con.execute(f'CREATE OR REPLACE TABLE "{relation}" AS SELECT * FROM "{relation}_frame"')
        con.unregister(f"{relation}_frame")
        return _describe(con, relation, "DataFrame", "dataframe")
    if db is not None or sql is not None:
        if not (db and sql):
            raise InputError("A database input needs both --db URL and --sql \"select ...\".")
        return _load_sql(con, db, sql, relation)
    if path is None:
        raise InputError("No input given: pass a file path, or --db URL with --sql QUERY.")
    path = Path(path)
    kind = sniff_format(path)
    if kind == "parquet":
        source = _load_parquet(con, path, relation)
    elif kind == "excel":
        source = _load_excel(con, path, relation, config.sheet)
    else:
        source = _load_text(con, path, relation, config)
    if source.rows == 0 and source.rejected == 0:
        raise InputError(f"{path} has a header but no data rows; export the data again.")
    return source


def sniff_format(path: Path) -> str:
    """``parquet``, ``excel`` or ``text``, from the file's first bytes (then its name)."""
    if path.is_dir():
        if any(path.glob("*.parquet")):
            return "parquet"
        raise InputError(f"{path} is a folder with no .parquet files; pass a file instead.")
    if not path.exists():
        raise InputError(f"{path} does not exist; check the path.")
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror}.") from None
    if not head:
        raise InputError(f"{path} is empty (0 bytes); export the data again.")
    if head.startswith(_PARQUET_MAGIC) or path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    if head.startswith(_ZIP_MAGIC):
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            return "excel"
        raise InputError(f"{path} is a zip archive; unzip it, or save the sheet as .xlsx.")
    if head.startswith(b"\x1f\x8b"):
        raise InputError(f"{path} is gzip-compressed; decompress it first (gunzip).")
    if head.startswith(_OLE_MAGIC):
        raise InputError(f"{path} is an old binary Excel (.xls) file; save it as .xlsx or CSV.")
    return "text"


# --------------------------------------------------------------------------- parquet
def _load_parquet(con, path: Path, relation: str) -> Source:
    target = str(path / "*.parquet") if path.is_dir() else str(path)
    try:
        con.execute(f'CREATE OR REPLACE VIEW "{relation}" AS SELECT * FROM '
                    f"read_parquet({lit(target)})")
        source = _describe(con, relation, str(path), "parquet")
    except duckdb.Error as exc:
        raise InputError(f"{path} is not a readable Parquet file ({_first_line(exc)}); "
                         "export it again or convert it to CSV.") from None
    if not path.is_dir():
        try:
            names = con.execute("SELECT name FROM parquet_schema(?) WHERE name <> "
                                "'schema' AND num_children IS NULL", [str(path)]).fetchall()
            source.duplicates = duplicate_names([n[0] for n in names], source.columns)
        except duckdb.Error:
            pass
    return source


def damaged_parquet(name: str, exc: BaseException) -> InputError:
    """The error for a Parquet file whose data (not only its footer) is damaged: DuckDB
    reads the pages lazily, so this surfaces while cleaning."""
    return InputError(f"{name} is a damaged Parquet file: reading its data failed "
                      f"({_first_line(exc)[:200]}); export it again or convert it to CSV.")


# ----------------------------------------------------------------------------- excel
def _load_excel(con, path: Path, relation: str, sheet: str | None) -> Source:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True)
        sheets = book.sheetnames
    except Exception as exc:  # openpyxl raises many kinds for broken files
        raise InputError(f"{path} is not a readable .xlsx workbook ({_first_line(exc)}); "
                         "save it again from Excel, or as CSV.") from None
    try:
        if not sheets:
            raise InputError(f"{path} has no sheets; save it again from Excel, or as CSV.")
        if sheet is None:
            chosen = sheets[0]
        elif sheet in sheets:
            chosen = sheet
        elif sheet.isdigit() and int(sheet) < len(sheets):
            chosen = sheets[int(sheet)]
        else:
            raise InputError(f"{path} has no sheet {sheet!r}; sheets: "
                             f"{', '.join(map(repr, sheets))}. Pass one with --sheet.")
        header = [None if v is None else str(v) for row in
                  book[chosen].iter_rows(max_row=1, values_only=True) for v in row]
        frame = pd.read_excel(path, sheet_name=chosen, engine="openpyxl")
    except InputError:
        raise
    except Exception as exc:  # a damaged sheet: openpyxl and pandas raise many kinds
        raise InputError(f"{path} is not a readable .xlsx workbook ({_first_line(exc)}); "
                         "save it again from Excel, or as CSV.") from None
    finally:
        book.close()
    if frame.columns.empty:
        raise InputError(f"{path}: sheet {chosen!r} is empty; choose another with --sheet.")
    frame.columns = [str(c) for c in frame.columns]
    con.register(f"{relation}_frame", _arrow_friendly(frame))
    con.execute(f'CREATE OR REPLACE TABLE "{relation}" AS SELECT * FROM "{relation}_frame"')
    con.unregister(f"{relation}_frame")
    source = _describe(con, relation, str(path), "excel")
    source.details["sheet"] = chosen
    while header and header[-1] is None:
        header.pop()
    if None not in header:
        source.duplicates = duplicate_names(header, source.columns)
    if len(sheets) > 1 and sheet is None:
        source.warnings.append(
            f"{path.name} has {len(sheets)} sheets; read the first, {chosen!r} "
            "(choose another with --sheet)."
        )
    return source


# ------------------------------------------------------------------------------- sql
def _load_sql(con, url: str, query: str, relation: str) -> Source:
    name = f"{_redact(url)} query"
    duck_path = _duckdb_path(url)
    if duck_path is not None:
        if not Path(duck_path).exists():
            raise InputError(f"DuckDB database {duck_path} does not exist; check --db.")
        try:
            con.execute(f"ATTACH {lit(duck_path)} AS custseg_src (READ_ONLY)")
            con.execute("USE custseg_src")
            con.execute(f'CREATE OR REPLACE TABLE memory.main."{relation}" AS {query}')
        except duckdb.Error as exc:
            raise InputError(f"The --sql query failed on {duck_path}: {_first_line(exc)}") from None
        finally:
            con.execute("USE memory")
            con.execute("DETACH DATABASE IF EXISTS custseg_src")
        return _describe(con, relation, name, "sql")

    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except Exception as exc:
        raise InputError(f"--db {_redact(url)} is not a database URL this machine can open "
                         f"({_first_line(exc)}); e.g. sqlite:///shop.db or duckdb:///shop.duckdb."
                         ) from None
    if url.startswith("sqlite") and engine.url.database and not Path(engine.url.database).exists():
        raise InputError(f"SQLite database {engine.url.database} does not exist; check --db.")
    created = False
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(sa.text(query))
            keys = list(result.keys())
            while True:
                rows = result.fetchmany(100_000)
                if not rows and created:
                    break
                chunk = _arrow_friendly(pd.DataFrame.from_records(rows, columns=keys))
                con.register("custseg_chunk", chunk)
                if not created:
                    con.execute(f'CREATE OR REPLACE TABLE "{relation}" AS '
                                "SELECT * FROM custseg_chunk")
                    created = True
                else:
                    con.execute(f'INSERT INTO "{relation}" SELECT * FROM custseg_chunk')
                con.unregister("custseg_chunk")
                if not rows:
                    break
    except sa.exc.SQLAlchemyError as exc:
        raise InputError(f"The --sql query failed on {_redact(url)}: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    return _describe(con, relation, name, "sql")


def _duckdb_path(url: str) -> str | None:
    if url.startswith("duckdb:///"):
        return url[len("duckdb:///"):]
    if url.startswith("duckdb://"):
        return url[len("duckdb://"):]
    if "://" not in url and url.lower().endswith((".duckdb", ".ddb")):
        return url
    return None


def _redact(url: str) -> str:
    """Hide a password in a database URL."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)


# ------------------------------------------------------------------------------ text
def sniff_text(head: bytes, encoding: str | None = None, delimiter: str | None = None
               ) -> tuple[str, str]:
    """Guess (encoding, delimiter) of a delimited text file from its first bytes.

    The delimiter is ``","``, ``";"``, ``"\\t"``, ``"|"`` or ``"whitespace"`` (runs of
    spaces or tabs).
    """
    if encoding is None:
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"
        else:
            try:
                codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
                encoding = "utf-8"
            except UnicodeDecodeError:
                encoding = "latin-1"
    if delimiter is not None:
        return encoding, delimiter
    text = head.decode(encoding if encoding != "utf-8" else "utf-8-sig", errors="replace")
    lines = [ln for ln in text.splitlines()[:-1] or text.splitlines() if ln.strip()][:50]
    best, best_key = None, (0, 0.0)
    for delim in _DELIMITERS:
        counts = [len(row) for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delim)]
        if not counts or counts[0] < 2:
            continue
        consistent = sum(c == counts[0] for c in counts) / len(counts)
        key = (1 if consistent >= 0.9 else 0, consistent * counts[0])
        if key > best_key:
            best, best_key = delim, key
    if best is None:
        widths = [len(ln.split()) for ln in lines]
        if widths and widths[0] > 1 and sum(w == widths[0] for w in widths) / len(widths) >= 0.9:
            best = "whitespace"
    return encoding, best or ","


def _load_text(con, path: Path, relation: str, config: Config) -> Source:
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{path} is not a text table (it holds binary data); pass a CSV, TSV, "
                         ".xlsx or Parquet file.")
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise InputError(f"{path} is empty; export the data again.")
    if re.match(rb'^(\xef\xbb\xbf)?\s*(\[\s*[{\["\d]|\{\s*")', head[:200]):
        raise InputError(f"{path} looks like JSON, not a table; export it as CSV, .xlsx or "
                         "Parquet.")
    encoding, delimiter = sniff_text(head, config.encoding, config.delimiter)
    warnings: list[str] = []
    if encoding == "latin-1" and config.encoding is None:
        warnings.append(f"{path.name} is not valid UTF-8; read it as Latin-1 (pass --encoding "
                        "if it is another encoding).")
    if delimiter == "whitespace":
        _load_whitespace(con, path, relation, encoding)
        rejected = 0
    else:
        try:
            rejected = _read_csv_into(con, path, relation, encoding, delimiter)
        except duckdb.Error as exc:
            if "unicode" in str(exc).lower() and encoding == "utf-8" and config.encoding is None:
                warnings.append(f"{path.name} is not valid UTF-8 throughout; read it as Latin-1.")
                encoding = "latin-1"
                rejected = _read_csv_into(con, path, relation, encoding, delimiter)
            else:
                raise InputError(f"Cannot read {path} as delimited text ({_first_line(exc)}); "
                                 "check the delimiter (--delimiter) or encoding.") from None
    source = _describe(con, relation, str(path), "csv", rejected=rejected)
    source.details.update(encoding=encoding, delimiter=delimiter)
    if len(source.columns) == 1:
        shown = source.columns[0] if len(source.columns[0]) <= 80 else (
            source.columns[0][:77] + "...")
        raise InputError(
            f"{path} read with delimiter {_delimiter_name(delimiter)} has a single column "
            f"({shown!r}), so its delimiter is wrong or not one of , ; tab |; pass the right "
            "one with --delimiter.")
    if delimiter != "whitespace":
        source.duplicates = duplicate_names(_header(head, encoding, delimiter), source.columns)
    source.warnings.extend(warnings)
    if rejected:
        source.warnings.append(malformed_warning(path, rejected))
    if source.rows == 0 and rejected == 0:
        raise InputError(f"{path} has a header but no data rows; export the data again.")
    return source


def malformed_warning(path: Path, rejected: int) -> str:
    return (f"{rejected} line(s) of {path.name} do not have the header's number of columns; "
            "they are counted as malformed_line.")


def _read_csv_into(con, path: Path, relation: str, encoding: str, delimiter: str) -> int:
    con.execute(
        f'CREATE OR REPLACE TABLE "{relation}" AS SELECT * FROM read_csv(?, delim=?, '
        "header=true, all_varchar=true, encoding=?, quote='\"', escape='\"', "
        "store_rejects=true, rejects_table='custseg_rejects', rejects_scan='custseg_scans', "
        "max_line_size=8388608)",
        [str(path), delimiter, encoding],
    )
    rejected, bad_unicode = con.execute(
        "SELECT count(DISTINCT line), count(*) FILTER "
        "(error_type IN ('INVALID UNICODE', 'INVALID ENCODING')) FROM custseg_rejects").fetchone()
    con.execute("DROP TABLE IF EXISTS custseg_rejects")
    con.execute("DROP TABLE IF EXISTS custseg_scans")
    if bad_unicode and encoding == "utf-8":
        raise duckdb.InvalidInputException("Invalid unicode in the file")
    return int(rejected)


def _load_whitespace(con, path: Path, relation: str, encoding: str) -> None:
    created = False
    reader = pd.read_csv(path, sep=r"\s+", dtype=str, encoding=encoding, chunksize=200_000,
                         keep_default_na=False, na_values=[""], engine="python")
    for chunk in reader:
        con.register("custseg_chunk", chunk)
        if not created:
            con.execute(f'CREATE OR REPLACE TABLE "{relation}" AS SELECT * FROM custseg_chunk')
            created = True
        else:
            con.execute(f'INSERT INTO "{relation}" SELECT * FROM custseg_chunk')
        con.unregister("custseg_chunk")
    if not created:
        raise InputError(f"{path} has no data rows; export the data again.")


# ---------------------------------------------------------------------------- common
def _describe(con, relation: str, name: str, fmt: str, rejected: int = 0) -> Source:
    described = con.execute(f'DESCRIBE "{relation}"').fetchall()
    columns = [row[0] for row in described]
    types = {row[0]: row[1] for row in described}
    rows = con.execute(f'SELECT count(*) FROM "{relation}"').fetchone()[0]
    return Source(name=name, format=fmt, relation=relation, columns=columns, types=types,
                  rows=int(rows), rejected=rejected)


def _arrow_friendly(frame: pd.DataFrame) -> pd.DataFrame:
    """Text for object columns of mixed Python types, so Arrow can hold them."""
    frame = frame.copy()
    frame.columns = _unique([str(c) for c in frame.columns])
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].map(lambda v: v if v is None or isinstance(v, str)
                                        or v != v else str(v))
    return frame


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}_{seen[n]}")
        else:
            seen[n] = 0
            out.append(n)
    return out


def duplicate_names(header: list[str], columns: list[str]) -> dict[str, list[str]]:
    """Header names present more than once (compared case-insensitively, as DuckDB does)
    -> the names the columns got, when ``header`` and ``columns`` line up."""
    if len(header) != len(columns):
        return {}
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        groups.setdefault(name.lower(), []).append(i)
    return {header[ix[0]]: [columns[i] for i in ix] for ix in groups.values() if len(ix) > 1}


def _header(head: bytes, encoding: str, delimiter: str) -> list[str]:
    text = head.decode("utf-8-sig" if encoding == "utf-8" else encoding, errors="replace")
    try:
        return next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error:
        return []


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", "whitespace": "whitespace", " ": "space"}.get(delimiter,
                                                                      repr(delimiter))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
