"""The DuckDB engine: embedded, out-of-core; the default.

Every row of the input is held by one DuckDB connection that spills to disk past
``config.memory_limit``; cleaning and features are the SQL of :mod:`custseg.prep`. Its
tables (the raw rows of a text file, the classified lines) live in a scratch database
file, deleted on close: DuckDB compresses tables it writes to a file (an in-memory
table is not), so 100 million classified lines take 1.4 GB, not about 9 GB, and stay in
its buffer instead of being read back from spill files by every query. Classified lines
that fit in a share of the memory limit stay in memory instead (:func:`lines_in_memory`):
compressing them into the file costs more than it saves there.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import weakref
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from custseg.core.config import Config
from custseg.core.exceptions import ConfigError, CustsegError
from custseg.engines.base import duckdb_failure, needs_preparing, prepared_source
from custseg.io import Source, load_source
from custseg.io._infer import Reading
from custseg.io._parse import lit, q, quiet_connect, settled
from custseg.io._readers import _describe
from custseg.io._tables import combine
from custseg.prep.cleaning import Audit, clean_lines
from custseg.prep.features import (
    DUCKDB,
    arrow_frame,
    arrow_of,
    customer_features_table,
    features_sql,
    orders_sql,
    pairs_sql,
    restricted_sql,
)

#: ``memory_limit = "auto"``: this share of the memory available at the start, within
#: these bounds (the rest stays for the customer table in pandas and the clustering).
AUTO_MEMORY_SHARE, AUTO_MEMORY_MIN, AUTO_MEMORY_MAX = 0.5, 1 << 30, 4 << 30
#: The name of the scratch database (:func:`attach_scratch`).
SCRATCH = "custseg_scratch"
#: The raw rows as an export format prepares them (:meth:`DuckDBEngine.prepare`).
PREPARED = "raw_prepared"
#: Each customer's distinct products (:func:`~custseg.prep.features.pairs_sql`), made
#: with the first features from the lines and kept for the later ones and the lift.
PAIRS = "custseg_pairs"
#: Each customer's invoices summed (:func:`~custseg.prep.features.orders_sql`), made with
#: the first features and read by the later ones, the holdout's labels and the months.
ORDERS = "custseg_orders"
#: The classified lines stay in memory when, at about ``LINE_BYTES`` each (89 measured on
#: Online Retail's columns) and ``TEXT_BYTES`` more for a description or a category (36
#: measured for Online Retail's descriptions), they take at most ``IN_MEMORY_SHARE`` of
#: the memory limit (see :func:`lines_in_memory`).
IN_MEMORY_SHARE, LINE_BYTES, TEXT_BYTES = 0.6, 100, 40
_UNITS = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
          "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``; else physical memory), or
    None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def is_auto(setting: str) -> bool:
    """Whether a ``memory_limit`` setting is "auto" (custseg sizes it)."""
    return setting.strip().lower() == "auto"


def memory_limit(setting: str) -> str:
    """DuckDB's memory limit for a ``memory_limit`` setting ("auto": see
    :data:`AUTO_MEMORY_SHARE`)."""
    if not is_auto(setting):
        return setting
    free = available_memory()
    limit = AUTO_MEMORY_MIN if free is None else int(free * AUTO_MEMORY_SHARE)
    return f"{min(max(limit, AUTO_MEMORY_MIN), AUTO_MEMORY_MAX) >> 20}MB"


def temp_folder(config: Config) -> str:
    """Where DuckDB spills, and where the scratch database goes."""
    return config.temp_directory or os.path.join(tempfile.gettempdir(), "custseg-duckdb")


def connect(config: Config | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that spills to disk past ``config.memory_limit``."""
    config = config or Config()
    con = quiet_connect()
    temp = temp_folder(config)
    try:
        con.execute(f"SET memory_limit = '{memory_limit(config.memory_limit)}'")
        con.execute("SET temp_directory = '" + temp.replace("'", "''") + "'")
        if config.threads:
            con.execute(f"SET threads = {int(config.threads)}")
    except duckdb.Error as exc:
        raise ConfigError(f"Invalid engine setting ({str(exc).splitlines()[0]}); "
                          "memory_limit looks like '4GB', threads is a positive integer.") from None
    # Results are sorted explicitly where order matters; this saves memory on large inputs.
    con.execute("SET preserve_insertion_order = false")
    return con


def attach_scratch(con: duckdb.DuckDBPyConnection, config: Config) -> Path:
    """Attach a new scratch database file as the connection's default database (tables
    created without a database name go there); its path, for :func:`remove_scratch`."""
    folder = Path(temp_folder(config))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"custseg-{os.getpid()}-", suffix=".duckdb",
                                    dir=folder)
    except OSError as exc:
        raise ConfigError(f"Cannot write the scratch database in {folder} ({exc.strerror}); "
                          "set temp_directory in the config to a writable folder.") from None
    os.close(fd)
    os.unlink(name)  # DuckDB creates the file; an empty one is not a database
    _remove_stale(folder)
    con.execute(f"ATTACH {lit(name)} AS {SCRATCH}")
    con.execute(f"USE {SCRATCH}")
    return Path(name)


def limit_bytes(con: duckdb.DuckDBPyConnection) -> int | None:
    """The connection's memory limit in bytes (None: unknown or unlimited).

    >>> con = quiet_connect(); _ = con.execute("SET memory_limit = '3GiB'")
    >>> limit_bytes(con) == 3 << 30
    True
    """
    text = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    number, _, unit = str(text).strip().partition(" ")
    try:
        return int(float(number) * _UNITS[unit])
    except (KeyError, ValueError):
        return None


def lines_in_memory(con: duckdb.DuckDBPyConnection, rows: int,
                    mapping: dict[str, str], auto: bool = False) -> bool:
    """Make the in-memory database the default (the scratch database's tables still found
    by name) when ``rows`` classified lines, with the text columns of ``mapping``, fit in
    :data:`IN_MEMORY_SHARE` of the memory limit; whether it did.

    With ``auto`` (``memory_limit = "auto"``) the limit is first raised to hold them when
    :data:`AUTO_MEMORY_SHARE` of the memory available allows it (21.7M lines: 5 GB of a
    24 GB machine's 22 GB free): the lines are then written in 4.6 s, not 7.3 s into the
    file. Lines past that go to the file, under the limit :func:`memory_limit` gave."""
    limit = limit_bytes(con)
    texts = sum(field in mapping for field in ("description", "category"))
    needed = rows * (LINE_BYTES + texts * TEXT_BYTES) / IN_MEMORY_SHARE
    if limit is not None and auto and needed > limit:
        free = available_memory()
        if free is not None and needed <= AUTO_MEMORY_SHARE * free:
            megabytes = -int(-needed // 10**6)  # DuckDB's MB: 10**6 bytes
            con.execute(f"SET memory_limit = '{megabytes}MB'")
            limit = megabytes * 10**6  # read back, the setting is rounded to 0.1 GiB
    if limit is None or needed > limit:
        return False
    con.execute("USE memory")
    con.execute(f"SET search_path = 'memory.main,{SCRATCH}.main'")
    return True


def release_memory(con: duckdb.DuckDBPyConnection, auto: bool) -> None:
    """With ``auto`` (a limit custseg sized, the lines in the scratch file), lower the
    limit to :data:`AUTO_MEMORY_MIN`: DuckDB drops the file's cached blocks and gives the
    memory back, for the customer table in pandas and the clustering (102M lines: the
    4 GB buffer beside them made the run's peak). Lines kept in memory stay there."""
    limit = limit_bytes(con)
    if auto and (limit is None or limit > AUTO_MEMORY_MIN):
        con.execute(f"SET memory_limit = '{AUTO_MEMORY_MIN >> 20}MiB'")


def fetched_lean(con: duckdb.DuckDBPyConnection, sql: str, spare: bool) -> pd.DataFrame:
    """The result of ``sql`` as a frame (:func:`~custseg.prep.features.frame_of`); with
    ``spare`` (a limit custseg sized, the lines in the scratch file), converted while
    DuckDB's limit is down at :data:`AUTO_MEMORY_MIN`, so that its cached blocks of the
    file are given back as in :func:`release_memory`; then up again for the queries that
    follow. At 102M lines the features of 5M customers become a frame beside a 4 GB
    buffer otherwise: the run's peak."""
    limit = limit_bytes(con) if spare else None
    table = arrow_of(con, sql)  # held by Arrow now, outside DuckDB's limit
    if limit is None or limit <= AUTO_MEMORY_MIN:
        return arrow_frame(con, table)
    try:
        con.execute(f"SET memory_limit = '{AUTO_MEMORY_MIN >> 20}MiB'")
        return arrow_frame(con, table)
    finally:
        con.execute(f"SET memory_limit = '{limit >> 20}MiB'")


def register_table(con: duckdb.DuckDBPyConnection, name: str,
                   frame: pd.DataFrame | pa.Table) -> None:
    """``frame`` as temporary table ``name``: a table, not a view of the frame, so that
    with its row count known the join planner builds on the customers, not on the lines
    (the per-segment queries at 100 million lines: 38 s over a view, 5 s over the table)."""
    view = f"{name}_frame"
    settled(con).register(view, frame)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {q(name)} AS SELECT * FROM {q(view)}")
    finally:
        con.unregister(view)


def drop_table(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop temporary table ``name`` (:func:`register_table`) if it is there."""
    con.execute(f"DROP TABLE IF EXISTS temp.{q(name)}")


def remove_scratch(path: Path) -> None:
    for file in (path, path.with_name(path.name + ".wal")):
        file.unlink(missing_ok=True)


def _remove_stale(folder: Path) -> None:
    """Remove the scratch databases of runs that were killed (their process is gone)."""
    for path in folder.glob("custseg-*-*.duckdb"):
        pid = path.name.split("-")[1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            remove_scratch(path)
        except OSError:  # alive, another user's
            continue


class DuckDBEngine:
    """Reads, cleans and aggregates in one DuckDB connection (:attr:`sample` holds every
    row, not a sample)."""

    name = "duckdb"
    dialect = DUCKDB
    parquet_from = None

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.sample = connect(self.config)
        self._scratch = attach_scratch(self.sample, self.config)
        # removed however the engine ends (closed, collected, or at the interpreter's exit)
        self._removal = weakref.finalize(self, remove_scratch, self._scratch)
        self.source: Source | None = None
        self.pairs: str | None = None
        self.orders: str | None = None
        self.in_memory = False  # whether clean kept the lines in memory

    def describe(self) -> str:
        return "duckdb"

    def read(self, input: str | Path | list | None = None, *, db: str | None = None,
             sql: str | None = None, frame: pd.DataFrame | None = None) -> Source:
        if db and not sql and input is not None:  # tables of the database, by name
            names = list(input) if isinstance(input, (list, tuple)) else [input]
            tables = [load_source(self.sample, db=db, sql=f"SELECT * FROM {q(str(name))}",
                                  relation=f"raw_{i}", config=self.config)
                      for i, name in enumerate(names)]
            for table, name in zip(tables, names, strict=True):
                table.name = str(name)
            if len(tables) == 1:
                self.source = tables[0]
                return self.source
            input = tables
        if isinstance(input, (list, tuple)):  # several tables of one shop, joined
            tables = [path if isinstance(path, Source) else
                      load_source(self.sample, path, config=self.config, relation=f"raw_{i}")
                      for i, path in enumerate(input)]
            self.source, info = combine(self.sample, tables)
            self.source.details["tables"] = info.to_dict()
            return self.source
        self.source = load_source(self.sample, input, config=self.config, db=db, sql=sql,
                                  frame=frame)
        return self.source

    def whole(self, source: Source) -> Source:
        return source

    def prepare(self, source: Source, reading: Reading) -> Source:
        if not needs_preparing(reading):
            return prepared_source(source, source, reading)
        self.sample.execute(f"CREATE OR REPLACE TABLE {PREPARED} AS "
                            + reading.prep.select(source.relation, source.columns,
                                                  source.types))
        return prepared_source(source, _describe(self.sample, PREPARED, source.name,
                                                 source.format), reading)

    def clean(self, source: Source, mapping: dict[str, str], config: Config) -> Audit:
        self.in_memory = lines_in_memory(self.sample, source.rows, mapping,
                                         auto=is_auto(self.config.memory_limit))
        self.pairs = self.orders = None
        return clean_lines(self.sample, source, mapping, config)

    def features(self, as_of: dt.date, has_products: bool, has_discounts: bool = False,
                 customers: str | None = None) -> pd.DataFrame:
        if self.orders is None:  # once, for every date, the holdout's labels and the months
            self.sample.execute(f"CREATE OR REPLACE TABLE {ORDERS} AS "
                                + orders_sql("lines", has_discounts))
            self.orders = ORDERS
        if has_products and self.pairs is None:  # once, for every date and the lift
            self.sample.execute(f"CREATE OR REPLACE TABLE {PAIRS} AS {pairs_sql('lines')}")
            self.pairs = PAIRS
        if customers is None:  # every customer: a large frame at scale
            return fetched_lean(
                self.sample, features_sql("lines", as_of, has_products,
                                          has_discounts=has_discounts, pairs=self.pairs,
                                          orders=self.orders),
                is_auto(self.config.memory_limit) and not self.in_memory)
        lines, orders = "custseg_lines_of", "custseg_orders_of"
        pairs = self.pairs and "custseg_pairs_of"
        views = {lines: "lines", orders: self.orders, **({pairs: self.pairs} if pairs else {})}
        for view, table in views.items():
            self.sample.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS "
                                + restricted_sql(table, customers))
        try:
            return customer_features_table(self.sample, as_of, has_products, lines=lines,
                                           has_discounts=has_discounts, pairs=pairs,
                                           orders=orders)
        finally:
            for view in views:
                self.sample.execute(f"DROP VIEW IF EXISTS {view}")

    def release(self) -> None:
        release_memory(self.sample, is_auto(self.config.memory_limit) and not self.in_memory)

    def query(self, sql: str) -> pd.DataFrame:
        return self.sample.execute(sql).df()

    def register(self, name: str, frame: pd.DataFrame) -> None:
        register_table(self.sample, name, frame)

    def unregister(self, name: str) -> None:
        drop_table(self.sample, name)

    def cluster_backend(self) -> None:
        return None

    def failure(self, exc: BaseException) -> CustsegError | None:
        return duckdb_failure(exc, self.source, self.config)

    def close(self) -> None:
        self.sample.close()
        self._removal()


__all__ = ["DuckDBEngine", "connect"]
