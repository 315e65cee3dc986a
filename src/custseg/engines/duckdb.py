"""The DuckDB engine: embedded, out-of-core; the default.

Every row of the input is held by one in-memory DuckDB connection that spills to disk
past ``config.memory_limit``; cleaning and features are the SQL of :mod:`custseg.prep`.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

from custseg.core.config import Config
from custseg.core.exceptions import ConfigError, CustsegError
from custseg.engines.base import duckdb_failure
from custseg.io import Source, load_source
from custseg.prep.cleaning import Audit, clean_lines
from custseg.prep.features import DUCKDB, customer_features_table

#: ``memory_limit = "auto"``: this share of the memory available at the start, within
#: these bounds (the rest stays for the customer table in pandas and the clustering).
AUTO_MEMORY_SHARE, AUTO_MEMORY_MIN, AUTO_MEMORY_MAX = 0.5, 1 << 30, 4 << 30


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


def memory_limit(setting: str) -> str:
    """DuckDB's memory limit for a ``memory_limit`` setting ("auto": see
    :data:`AUTO_MEMORY_SHARE`)."""
    if setting.strip().lower() != "auto":
        return setting
    free = available_memory()
    limit = AUTO_MEMORY_MIN if free is None else int(free * AUTO_MEMORY_SHARE)
    return f"{min(max(limit, AUTO_MEMORY_MIN), AUTO_MEMORY_MAX) >> 20}MB"


def connect(config: Config | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that spills to disk past ``config.memory_limit``."""
    config = config or Config()
    con = duckdb.connect(":memory:")
    temp = config.temp_directory or os.path.join(tempfile.gettempdir(), "custseg-duckdb")
    try:
        con.execute(f"SET memory_limit = '{memory_limit(config.memory_limit)}'")
        con.execute("SET temp_directory = '" + temp.replace("'", "''") + "'")
        if config.threads:
            con.execute(f"SET threads = {int(config.threads)}")
    except duckdb.Error as exc:
        raise ConfigError(f"Invalid engine setting ({str(exc).splitlines()[0]}); "
                          "memory_limit looks like '4GB', threads is a positive integer.") from None
    con.execute("SET enable_progress_bar = false")
    # Results are sorted explicitly where order matters; this saves memory on large inputs.
    con.execute("SET preserve_insertion_order = false")
    return con


class DuckDBEngine:
    """Reads, cleans and aggregates in one DuckDB connection (:attr:`sample` holds every
    row, not a sample)."""

    name = "duckdb"
    dialect = DUCKDB
    parquet_from = None

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.sample = connect(self.config)
        self.source: Source | None = None

    def describe(self) -> str:
        return "duckdb"

    def read(self, input: str | Path | None = None, *, db: str | None = None,
             sql: str | None = None, frame: pd.DataFrame | None = None) -> Source:
        self.source = load_source(self.sample, input, config=self.config, db=db, sql=sql,
                                  frame=frame)
        return self.source

    def whole(self, source: Source) -> Source:
        return source

    def clean(self, source: Source, mapping: dict[str, str], config: Config) -> Audit:
        return clean_lines(self.sample, source, mapping, config)

    def features(self, as_of: dt.date, has_products: bool) -> pd.DataFrame:
        return customer_features_table(self.sample, as_of, has_products)

    def query(self, sql: str) -> pd.DataFrame:
        return self.sample.execute(sql).df()

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self.sample.register(name, frame)

    def unregister(self, name: str) -> None:
        self.sample.unregister(name)

    def cluster_backend(self) -> None:
        return None

    def failure(self, exc: BaseException) -> CustsegError | None:
        return duckdb_failure(exc, self.source, self.config)

    def close(self) -> None:
        self.sample.close()


__all__ = ["DuckDBEngine", "connect"]
