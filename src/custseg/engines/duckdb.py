"""The DuckDB engine: an embedded, out-of-core connection set up from the config."""

from __future__ import annotations

import os
import tempfile

import duckdb

from custseg.core.config import Config
from custseg.core.exceptions import ConfigError


def connect(config: Config | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that spills to disk past ``config.memory_limit``."""
    config = config or Config()
    con = duckdb.connect(":memory:")
    temp = config.temp_directory or os.path.join(tempfile.gettempdir(), "custseg-duckdb")
    try:
        con.execute(f"SET memory_limit = '{config.memory_limit}'")
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
