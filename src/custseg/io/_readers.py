"""Readers: bring any supported input into DuckDB as a relation of raw rows.

Text files are sniffed (encoding, delimiter) and read with every column as text, so that
custseg itself parses numbers and dates and counts what it cannot parse. DuckDB reads
UTF-8 itself; any other encoding is transcoded to a temporary UTF-8 file first, in chunks.
Parquet is scanned in place (out-of-core), without the index columns pandas adds. Excel
and SQL results are streamed into a DuckDB table.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from custseg.core.config import Config
from custseg.core.exceptions import ConfigError, InputError
from custseg.io._parse import lit, q

_PARQUET_MAGIC = b"PAR1"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"
_DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 1 << 16
_CHUNK_BYTES = 1 << 20
#: Encoding tried when a file is not UTF-8 (Excel on Windows). Latin-1 reads any byte, so
#: it is never guessed; it is used only when asked for.
FALLBACK_ENCODING = "cp1252"
_UTF16 = ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be")
_ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "cp1252": "Windows-1252",
                   "latin-1": "Latin-1", "utf-16": "UTF-16", "utf-16-le": "UTF-16LE",
                   "utf-16-be": "UTF-16BE", "utf-32": "UTF-32"}
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


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
    #: How the input was read, for the audit notes (e.g. ``pandas_index``).
    notes: dict[str, str] = field(default_factory=dict)
    #: How its rows are prepared before cleaning (:class:`custseg.io._formats.Prep`; set
    #: by ``Engine.prepare``), and the columns its cleaned lines keep: line attributes
    #: (``line_attr_i``) and customer attributes (``cust_attr_i``).
    prep: Any = None
    attributes: list[str] = field(default_factory=list)
    customer_attributes: list[str] = field(default_factory=list)


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
            raise InputError("A database input needs --db URL and --sql \"select ...\", or "
                             "--db URL and the names of its tables (orders order_items ...).")
        source = _load_sql(con, db, sql, relation)
        if source.rows == 0:
            raise InputError(f"The --sql query on {_redact(db)} returned no rows; check its "
                             "table and WHERE clause.")
        return source
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
    index = pandas_index_columns(path)
    exclude = f" EXCLUDE ({', '.join(q(c) for c in index)})" if index else ""
    try:
        con.execute(f'CREATE OR REPLACE VIEW "{relation}" AS SELECT *{exclude} FROM '
                    f"read_parquet({lit(target)})")
        source = _describe(con, relation, str(path), "parquet")
    except duckdb.Error as exc:
        raise InputError(f"{path} is not a readable Parquet file ({_first_line(exc)}); "
                         "export it again or convert it to CSV.") from None
    if index:
        source.notes["pandas_index"] = pandas_index_note(index)
    if not path.is_dir():
        try:
            names = con.execute("SELECT name FROM parquet_schema(?) WHERE name <> "
                                "'schema' AND num_children IS NULL", [str(path)]).fetchall()
            source.duplicates = duplicate_names([n[0] for n in names], source.columns)
        except duckdb.Error:
            pass
    return source


def pandas_index_columns(path: Path) -> list[str]:
    """The unnamed pandas index columns (``__index_level_0__``) a Parquet file (or the first
    file of a folder) stores, from the ``pandas`` key of its schema metadata: they number
    the rows of the DataFrame it was saved from and are not data."""
    import pyarrow.parquet as pq

    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    try:
        schema = pq.read_schema(files[0])
        meta = json.loads((schema.metadata or {}).get(b"pandas", b"{}"))
    except Exception:  # unreadable or not written by pandas: reading reports the damage
        return []
    return [c for c in meta.get("index_columns", []) if isinstance(c, str)
            and _PANDAS_INDEX.fullmatch(c) and c in schema.names]


def pandas_index_note(columns: list[str]) -> str:
    return (f"{', '.join(columns)}: the index pandas stored with the Parquet file; not read "
            "as data")


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
        home = con.execute("SELECT current_database()").fetchone()[0]
        try:
            con.execute(f"ATTACH {lit(duck_path)} AS custseg_src (READ_ONLY)")
            con.execute("USE custseg_src")
            con.execute(f'CREATE OR REPLACE TABLE "{home}".main."{relation}" AS {query}')
        except duckdb.Error as exc:
            raise InputError(f"The --sql query failed on {duck_path}: {_first_line(exc)}") from None
        finally:
            con.execute(f'USE "{home}"')
            con.execute("DETACH DATABASE IF EXISTS custseg_src")
        return _describe(con, relation, name, "sql")

    if re.match(r"postgres(ql)?(\+\w+)?://", url):
        return _load_postgres(con, url, query, relation)

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
                created = _append_chunk(con, relation, chunk, created)
                if not rows:
                    break
    except sa.exc.SQLAlchemyError as exc:
        raise InputError(f"The --sql query failed on {_redact(url)}: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    return _describe(con, relation, name, "sql")


def _load_postgres(con, url: str, query: str, relation: str) -> Source:
    """The result of ``query`` on a PostgreSQL server, streamed into DuckDB in Arrow batches
    by the ADBC driver (the server's binary COPY: the result is never whole in memory)."""
    try:
        from adbc_driver_postgresql import dbapi
    except ImportError:
        raise ConfigError("Reading PostgreSQL needs its driver: "
                          "pip install 'custseg[postgres]'.") from None
    uri = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)
    where = _redact(url)
    stream = "custseg_postgres_stream"
    try:
        with dbapi.connect(uri) as conn, conn.cursor() as cur:
            cur.execute(query)
            con.register(stream, cur.fetch_record_batch())
            try:
                con.execute(f"CREATE OR REPLACE TABLE {q(relation)} AS SELECT * FROM {stream}")
            finally:
                con.unregister(stream)
    except dbapi.Error as exc:
        raise InputError(f"PostgreSQL at {where}: {_postgres_reason(exc)}") from None
    except duckdb.Error as exc:  # the stream broke off while DuckDB read it
        raise InputError(f"PostgreSQL at {where}: the result stopped arriving "
                         f"({_postgres_reason(exc)}); run the query again.") from None
    return _describe(con, relation, f"{where} query", "sql")


def _postgres_reason(exc: BaseException) -> str:
    """The server's or libpq's own words, without the driver's wrapping.

    >>> _postgres_reason(RuntimeError('IO: Failed to prepare query: ERROR:  relation "x" '
    ...                               'does not exist\\nLINE 1: select * from x ^ Query was: '
    ...                               'select * from x. SQLSTATE: 42P01'))
    'relation "x" does not exist'
    """
    text = " ".join(str(exc).replace("\\n", " ").split())
    for cut in (" LINE ", " Query was:", " SQLSTATE:"):
        text = text.split(cut)[0]
    said = re.search(r"\b(?:FATAL|ERROR): (.*)", text)
    if said:
        return said.group(1).rstrip(". ")
    return re.sub(r"^(\w+ )?(IO|INVALID_ARGUMENT|NOT_FOUND|INTERNAL|UNKNOWN): ", "", text)[:300]


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
def check_encoding(name: str) -> str:
    """The canonical name of a requested text encoding (any codec Python knows)."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ConfigError(f"--encoding {name!r} is not an encoding Python knows; pass e.g. "
                          "utf-8, cp1252 (Windows-1252), latin-1 or utf-16.") from None
    if not getattr(info, "_is_text_encoding", True):
        raise ConfigError(f"--encoding {name!r} is not a text encoding; pass e.g. utf-8, "
                          "cp1252 (Windows-1252), latin-1 or utf-16.")
    return {"iso8859-1": "latin-1"}.get(info.name, info.name)


def encoding_label(encoding: str) -> str:
    """``Windows-1252`` for ``cp1252``: the name people know an encoding by."""
    return _ENCODING_NAMES.get(encoding, encoding)


def guess_encoding(head: bytes) -> str:
    """The likely encoding of a text file from its first bytes.

    UTF-32 or UTF-16 by their byte-order mark, or UTF-16 by the NUL bytes of mostly-ASCII
    text; else UTF-8 when the bytes are valid UTF-8 (a later byte may still prove it
    wrong), else Windows-1252.
    """
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096 - len(head[:4096]) % 2]
    if len(sample) >= 4 and b"\x00" in sample:
        even, odd = sample[0::2].count(0) / (len(sample) / 2), sample[1::2].count(0) / (
            len(sample) / 2)
        if odd > 0.4 and even < 0.05:
            return "utf-16-le"
        if even > 0.4 and odd < 0.05:
            return "utf-16-be"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return FALLBACK_ENCODING


def sniff_text(head: bytes, encoding: str | None = None, delimiter: str | None = None
               ) -> tuple[str, str]:
    """Guess (encoding, delimiter) of a delimited text file from its first bytes.

    The encoding is :func:`guess_encoding`'s unless given. The delimiter is ``","``,
    ``";"``, ``"\\t"``, ``"|"`` or ``"whitespace"`` (runs of spaces or tabs).
    """
    encoding = check_encoding(encoding) if encoding else guess_encoding(head)
    if delimiter is not None:
        return encoding, delimiter
    text = _decode_head(head, encoding)
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


#: A header field that is really a value: a number (``00001``, ``-3``, ``11.77``,
#: ``1.234,50``) or a date (``19970101``, ``1997-01-01``, ``1/1/1997``).
_VALUE = re.compile(r"^\s*([+-]?\d+([.,]\d+)*|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"
                    r"([ T]\d{1,2}:\d{2}(:\d{2})?)?)\s*$")


#: A whole date with a four-digit year (``21-07-2015``, ``2015-07-21``, ``7/21/2015``).
_FULL_DATE = re.compile(r"^\s*(\d{1,2}[-/.]\d{1,2}[-/.]\d{4}|\d{4}[-/.]\d{1,2}[-/.]\d{1,2})"
                        r"([ T]\d{1,2}:\d{2}(:\d{2})?)?\s*$")


def header_fields(text: str, delimiter: str) -> list[str]:
    """The fields of the first non-empty line of ``text``."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if delimiter == "whitespace":
        return first.split()
    try:
        return next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
    except csv.Error:
        return []


def has_header(text: str, delimiter: str) -> bool:
    """False when every field of the first line is a number or a date: that line is data
    (CDNOW's ``00001 19970101 1 11.77``), so the file has no header row.

    >>> has_header("00001 19970101  1   11.77", "whitespace")
    False
    >>> has_header("id,2019,2020", ",")
    True
    """
    fields = header_fields(text, delimiter)
    if len(fields) >= 2 and any(_FULL_DATE.match(f) for f in fields):
        return False  # a column is never named by a date: the first line is data
    return not (len(fields) >= 2 and all(_VALUE.match(f) for f in fields))


def headerless_names(count: int) -> list[str]:
    """Names of the columns of a file without a header: ``column1``, ``column2``, ..."""
    return [f"column{i}" for i in range(1, count + 1)]


def headerless_columns(head: bytes, encoding: str, delimiter: str) -> list[str] | None:
    """Column names for a file whose first line is data (:func:`has_header`), else None;
    one decision for both engines (a byte-order mark is not part of the first field)."""
    text = _decode_head(head, encoding)
    if has_header(text, delimiter):
        return None
    return headerless_names(len(header_fields(text, delimiter)))


def quoted_line_breaks(head: bytes, encoding: str, delimiter: str) -> bool:
    """Whether a quoted field of the file's first bytes holds a line break."""
    if delimiter == "whitespace" or '"' not in (text := _decode_head(head, encoding)):
        return False
    text = text[:text.rfind("\n") + 1]
    try:
        return any("\n" in f or "\r" in f for row in csv.reader(io.StringIO(text),
                                                                delimiter=delimiter)
                   for f in row)
    except csv.Error:
        return False


def _decode_head(head: bytes, encoding: str) -> str:
    text = head.decode(encoding, errors="replace")
    return text.removeprefix("\ufeff").removeprefix("ï»¿")


@dataclass
class _Utf8Report:
    """How the bytes of a file read as UTF-8."""

    bad: int = 0  # bytes that are not valid UTF-8
    first: tuple[int, int, int] | None = None  # (offset, byte, line) of the first of them
    chars: int = 0  # valid non-ASCII UTF-8 characters


_LONE_BYTE = re.compile("[\udc80-\udcff]")
_NON_ASCII = re.compile("[^\x00-\x7f\udc80-\udcff]")


def _utf8_report(path: Path) -> _Utf8Report:
    """Read ``path`` once as UTF-8, in chunks (flat memory; ASCII chunks are skipped)."""
    report = _Utf8Report()
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    pos = lines = 0
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_CHUNK_BYTES)
            pending = decoder.getstate()[0]
            if chunk and not pending and chunk.isascii():
                pos, lines = pos + len(chunk), lines + chunk.count(b"\n")
                continue
            text = decoder.decode(chunk, final=not chunk)
            bad = len(_LONE_BYTE.findall(text))
            if bad and report.first is None:
                i = _LONE_BYTE.search(text).start()
                before = text[:i].encode("utf-8", "surrogateescape")
                report.first = (pos - len(pending) + len(before), ord(text[i]) - 0xDC00,
                                lines + before.count(b"\n") + 1)
            report.bad += bad
            report.chars += len(_NON_ASCII.findall(text))
            if not chunk:
                return report
            pos, lines = pos + len(chunk), lines + chunk.count(b"\n")


class _Undecodable(Exception):
    """A byte the encoding cannot decode, at ``offset`` on (1-based) ``line``."""

    def __init__(self, offset: int, byte: int, line: int) -> None:
        super().__init__(offset, byte, line)
        self.offset, self.byte, self.line = offset, byte, line

    def where(self) -> str:
        return f"byte 0x{self.byte:02X} at offset {self.offset:,}, line {self.line:,},"


def _transcode(path: Path, encoding: str, out: Any = None) -> None:
    """Decode ``path`` as ``encoding`` in chunks (flat memory), writing UTF-8 to the binary
    file ``out`` when given; :class:`_Undecodable` at the first byte it cannot decode."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    pos = lines = 0
    started = False
    with path.open("rb") as fh:
        if encoding in ("cp1252", "latin-1") and fh.read(3) == codecs.BOM_UTF8:
            pos = 3  # a UTF-8 byte-order mark, not the letters ï»¿
        fh.seek(pos)
        while True:
            chunk = fh.read(_CHUNK_BYTES)
            state = decoder.getstate()
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                probe = codecs.getincrementaldecoder(encoding)("replace")
                probe.setstate((b"", state[1]))
                line = lines + probe.decode(exc.object[:exc.start]).count("\n") + 1
                raise _Undecodable(pos - len(state[0]) + exc.start, exc.object[exc.start],
                                   line) from None
            if not started and text:
                text, started = text.removeprefix("\ufeff"), True
            if out is not None:
                out.write(text.encode("utf-8"))
            if not chunk:
                return
            pos, lines = pos + len(chunk), lines + text.count("\n")


@contextmanager
def _utf8_copy(path: Path, encoding: str, temp_dir: str | None) -> Iterator[Path]:
    """A temporary UTF-8 copy of ``path`` (in ``temp_dir`` or the system's), removed after."""
    folder = temp_dir or tempfile.gettempdir()
    try:
        os.makedirs(folder, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="custseg-", suffix=".utf8.csv", dir=folder)
    except OSError as exc:
        raise InputError(f"Cannot create a temporary UTF-8 copy of {path} in {folder} "
                         f"({exc.strerror}); set temp_directory in the config.") from None
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                _transcode(path, encoding, out)
        except OSError as exc:
            raise InputError(f"Cannot write a temporary UTF-8 copy of {path} to {folder} "
                             f"({exc.strerror}); free space there or set temp_directory in "
                             "the config.") from None
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _not_utf8(path: Path, report: _Utf8Report) -> tuple[str, str]:
    """After ``path`` proved not to be UTF-8: the encoding to read it with and a warning.

    A file that is mostly valid UTF-8 (more UTF-8 characters than bad bytes) is damaged or
    mixes encodings: reading it as Windows-1252 would garble its UTF-8 text, so it is an
    error.
    """
    bad = _Undecodable(*report.first)
    if report.chars > report.bad:
        raise InputError(
            f"{path}: {bad.where()} is not valid UTF-8, but the rest of the file is "
            f"({report.bad:,} such byte(s), {report.chars:,} UTF-8 characters): it is damaged "
            "or mixes encodings; fix it, or pass --encoding cp1252 (or latin-1) to read "
            "every byte as one character.")
    return FALLBACK_ENCODING, (
        f"{path.name} is not UTF-8 ({bad.where().rstrip(',')}); read it as Windows-1252 "
        "(cp1252), as Excel on Windows saves CSV. If that is wrong, pass the right encoding "
        "with --encoding (e.g. latin-1, utf-16).")


def _guessed_warning(path: Path, encoding: str) -> str:
    return (f"{path.name} is {encoding_label(encoding)} (by its "
            f"{'byte-order mark' if encoding in ('utf-16', 'utf-32') else 'NUL bytes'}); "
            f"read it as {encoding_label(encoding)}. If that is wrong, pass the right "
            "encoding with --encoding.")


def _undecodable_error(path: Path, bad: _Undecodable, encoding: str, requested: str | None,
                       fell_back: bool) -> InputError:
    tried = ("UTF-8 or Windows-1252" if fell_back else encoding_label(encoding)
             + (f" (--encoding {requested})" if requested else ""))
    return InputError(f"{path}: {bad.where()} is not valid {tried}; pass the file's "
                      "encoding with --encoding (latin-1 reads any byte).")


def text_encoding(path: Path, head: bytes, requested: str | None) -> tuple[str, list[str]]:
    """The encoding ``path`` is read with, checked over the whole file (one pass, flat
    memory), and the warnings; an InputError at a byte no candidate encoding can read.

    For readers that would not report a bad byte (Spark replaces it silently).
    """
    encoding = check_encoding(requested) if requested else guess_encoding(head)
    warnings: list[str] = []
    fell_back = False
    if encoding in ("utf-8", "utf-8-sig") or (encoding == FALLBACK_ENCODING and not requested):
        report = _utf8_report(path)
        if report.first is None and encoding != FALLBACK_ENCODING:
            return encoding, warnings
        if requested:
            raise _undecodable_error(path, _Undecodable(*report.first), encoding, requested,
                                     False)
        encoding, warning = _not_utf8(path, report)
        warnings.append(warning)
        fell_back = True
    elif not requested:
        warnings.append(_guessed_warning(path, encoding))
    try:
        _transcode(path, encoding)
    except _Undecodable as bad:
        raise _undecodable_error(path, bad, encoding, requested, fell_back) from None
    return encoding, warnings


class _NotUtf8(Exception):
    """DuckDB (or pandas) found bytes that are not UTF-8."""


def text_head(path: Path, config: Config) -> tuple[bytes, str, str, str, list[str] | None]:
    """The first bytes of a text file, checked (binary data, empty, JSON: one line
    each), and its encoding, delimiter, decoded text and column names when it has no
    header row."""
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    requested = check_encoding(config.encoding) if config.encoding else None
    encoding = requested or guess_encoding(head)
    if b"\x00" in head and encoding not in _UTF16:
        if guess_encoding(head) in _UTF16:
            raise InputError(f"{path} is {encoding_label(guess_encoding(head))} text, not "
                             f"{config.encoding}; drop --encoding, or pass --encoding utf-16.")
        raise InputError(f"{path} is not a text table (it holds binary data); pass a CSV, TSV, "
                         ".xlsx or Parquet file.")
    text = _decode_head(head, encoding)
    if not text.strip(" \t\r\n"):
        raise InputError(f"{path} is empty; export the data again.")
    if re.match(r'^\s*(\[\s*[{\["\d]|\{\s*")', text[:200]):
        raise InputError(f"{path} looks like JSON, not a table; export it as CSV, .xlsx or "
                         "Parquet.")
    encoding, delimiter = sniff_text(head, encoding, config.delimiter)
    return head, encoding, delimiter, text, headerless_columns(head, encoding, delimiter)


def _load_text(con, path: Path, relation: str, config: Config) -> Source:
    head, encoding, delimiter, text, names = text_head(path, config)
    rejected, encoding, warnings = _read_text_rows(con, path, relation, encoding, delimiter,
                                                   config.encoding, config.temp_directory,
                                                   names)
    source = _describe(con, relation, str(path), "csv", rejected=rejected)
    source.details.update(encoding=encoding, delimiter=delimiter)
    if names is not None:
        source.details["header"] = False
        source.warnings.append(
            f"{path.name} has no header row (its first line, "
            f"{' '.join(header_fields(text, delimiter))[:60]!r}, is data): its columns are "
            f"named {', '.join(names)}.")
    if len(source.columns) == 1:
        shown = source.columns[0] if len(source.columns[0]) <= 80 else (
            source.columns[0][:77] + "...")
        raise InputError(
            f"{path} read with delimiter {_delimiter_name(delimiter)} has a single column "
            f"({shown!r}), so its delimiter is wrong or not one of , ; tab |; pass the right "
            "one with --delimiter.")
    if delimiter != "whitespace" and names is None:
        source.duplicates = duplicate_names(_header(head, encoding, delimiter), source.columns)
    source.warnings.extend(warnings)
    if rejected:
        source.warnings.append(malformed_warning(path, rejected))
    if source.rows == 0 and rejected == 0:
        raise InputError(f"{path} has a header but no data rows; export the data again.")
    return source


def _read_text_rows(con, path: Path, relation: str, encoding: str, delimiter: str,
                    requested: str | None, temp_dir: str | None,
                    names: list[str] | None = None) -> tuple[int, str, list[str]]:
    """Read ``path`` into ``relation``: (malformed lines, encoding used, warnings).
    ``requested`` is the encoding as the user wrote it, if any; ``names`` the column names
    of a file without a header row.

    DuckDB reads UTF-8 itself (and proves it valid); a file in any other encoding, or
    found not to be UTF-8 after all, is read from a transcoded temporary copy.
    """
    warnings: list[str] = []
    fell_back = False
    try:
        if encoding in ("utf-8", "utf-8-sig"):
            try:
                return _read_rows(con, path, relation, delimiter, names), encoding, warnings
            except _NotUtf8:
                report = _utf8_report(path)
            if report.first is not None:  # else DuckDB alone disagrees: read a checked copy
                if requested:
                    raise _undecodable_error(path, _Undecodable(*report.first), encoding,
                                             requested, False)
                encoding, warning = _not_utf8(path, report)
                warnings.append(warning)
                fell_back = True
        elif encoding == FALLBACK_ENCODING and not requested:
            encoding, warning = _not_utf8(path, _utf8_report(path))
            warnings.append(warning)
            fell_back = True
        elif not requested:
            warnings.append(_guessed_warning(path, encoding))
        try:
            with _utf8_copy(path, encoding, temp_dir) as copy:
                return _read_rows(con, copy, relation, delimiter, names), encoding, warnings
        except _Undecodable as bad:
            raise _undecodable_error(path, bad, encoding, requested, fell_back) from None
        except _NotUtf8:
            raise InputError(f"Cannot read {path} as {encoding_label(encoding)} text; pass "
                             "its encoding with --encoding.") from None
    except duckdb.Error as exc:
        raise InputError(f"Cannot read {path} as delimited text ({_first_line(exc)}); "
                         "check the delimiter (--delimiter) or encoding.") from None


def _read_rows(con, path: Path, relation: str, delimiter: str,
               names: list[str] | None = None) -> int:
    """Read a UTF-8 text file into ``relation``; the count of malformed lines. ``names``:
    the file has no header row and its columns get these names."""
    if delimiter == "whitespace":
        _load_whitespace(con, path, relation, names)
        return 0
    return _read_csv_into(con, path, relation, delimiter, names)


def malformed_warning(path: Path, rejected: int) -> str:
    return (f"{rejected} line(s) of {path.name} do not have the header's number of columns; "
            "they are counted as malformed_line.")


def _read_csv_into(con, path: Path, relation: str, delimiter: str,
                   names: list[str] | None = None) -> int:
    header = "header=true" if names is None else (
        "header=false, names=[" + ", ".join(lit(n) for n in names) + "]")
    try:
        con.execute(
            f'CREATE OR REPLACE TABLE "{relation}" AS SELECT * FROM read_csv(?, delim=?, '
            f"{header}, all_varchar=true, encoding='utf-8', quote='\"', escape='\"', "
            "store_rejects=true, rejects_table='custseg_rejects', "
            "rejects_scan='custseg_scans', max_line_size=8388608)",
            [str(path), delimiter],
        )
    except duckdb.Error as exc:
        if "invalid unicode" in str(exc).lower():
            raise _NotUtf8 from None
        raise
    rejected, bad_unicode = con.execute(
        "SELECT count(DISTINCT line), count(*) FILTER "
        "(error_type IN ('INVALID UNICODE', 'INVALID ENCODING')) FROM custseg_rejects").fetchone()
    con.execute("DROP TABLE IF EXISTS custseg_rejects")
    con.execute("DROP TABLE IF EXISTS custseg_scans")
    if bad_unicode:
        raise _NotUtf8
    return int(rejected)


def _append_chunk(con, relation: str, chunk: pd.DataFrame, created: bool) -> bool:
    """Create ``relation`` from the first chunk of a stream, append the others; True."""
    con.register("custseg_chunk", chunk)
    if created:
        con.execute(f'INSERT INTO "{relation}" SELECT * FROM custseg_chunk')
    else:
        con.execute(f'CREATE OR REPLACE TABLE "{relation}" AS SELECT * FROM custseg_chunk')
    con.unregister("custseg_chunk")
    return True


def _load_whitespace(con, path: Path, relation: str, names: list[str] | None = None) -> None:
    created = False
    reader = pd.read_csv(path, sep=r"\s+", dtype=str, encoding="utf-8-sig", chunksize=200_000,
                         keep_default_na=False, na_values=[""], engine="python",
                         header=None if names else "infer", names=names)
    try:
        for chunk in reader:
            created = _append_chunk(con, relation, chunk, created)
    except UnicodeDecodeError:
        raise _NotUtf8 from None
    if not created:
        raise InputError(f"{path} has no data rows; export the data again.")


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
    text = _decode_head(head, encoding)
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
