"""What an engine does for the jobs, and the steps every engine shares.

An engine reads an input, classifies its lines (cleaning), aggregates them into the
customer feature table and answers SQL over the classified lines (table ``lines``) in
its dialect. Decisions that depend on the data (the column mapping, date formats, a
customer table or order lines) are made by DuckDB on the rows in :attr:`Engine.sample`,
so every engine decides alike. The functions below run on any engine; the data guards
among them (lines dated in the future, customers whose every line was dropped) therefore
hold on every engine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from custseg.core.config import Config
from custseg.core.exceptions import ConfigError, CustsegError
from custseg.io import Source
from custseg.io._infer import Reading
from custseg.io._parse import q
from custseg.io._readers import damaged_parquet
from custseg.prep.cleaning import Audit
from custseg.prep.features import EXACT

if TYPE_CHECKING:  # importing custseg.cluster loads scikit-learn: only on first use
    from custseg.cluster._base import Backend


class Engine(Protocol):
    """The seam between the jobs and what computes them (see :mod:`custseg.engines`)."""

    #: The key of the engine in ``config.engine``.
    name: str
    #: SQL pieces of the engine's dialect (see :data:`custseg.prep.features.DUCKDB`).
    dialect: Mapping[str, str]
    #: DuckDB holding the raw rows (all of them, or a sample) that decisions are made on.
    sample: duckdb.DuckDBPyConnection
    #: Runs of at least this many customers write segments.parquet, not .csv (None: never).
    parquet_from: int | None
    #: The table of each customer's distinct products
    #: (:func:`~custseg.prep.features.pairs_sql`) once :meth:`features` has made it; None
    #: while it has not, or when the engine keeps none.
    pairs: str | None
    #: The table of the purchase and return lines summed per invoice
    #: (:func:`~custseg.prep.features.orders_sql`) once :meth:`features` has made it, which
    #: the later passes read in place of the lines (:func:`purchases`); None while it has
    #: not, or when the engine keeps none.
    orders: str | None

    def describe(self) -> str:
        """The engine as summary.json names it (``duckdb``, ``spark (local[*])``)."""
        ...

    def read(self, input: str | Path | None = None, *, db: str | None = None,
             sql: str | None = None, frame: pd.DataFrame | None = None) -> Source:
        """Read one input; its rows (or a sample) become ``source.relation`` in
        :attr:`sample`."""
        ...

    def whole(self, source: Source) -> Source:
        """The source with every row in :attr:`sample` (a customer table is read whole)."""
        ...

    def prepare(self, source: Source, reading: Reading) -> Source:
        """The source with its rows prepared as ``reading.prep`` says (an export format's
        carried-down order fields, drop reasons, partial refunds; see
        :class:`custseg.io._formats.Prep`), and the line and customer attributes its
        cleaned lines keep."""
        ...

    def clean(self, source: Source, mapping: dict[str, str], config: Config) -> Audit:
        """Classify every line into table ``lines`` (see
        :func:`custseg.prep.cleaning.clean_lines`) and count the audit."""
        ...

    def features(self, as_of: dt.date, has_products: bool, has_discounts: bool = False,
                 customers: str | None = None) -> pd.DataFrame:
        """The customer feature table from ``lines``: one row per customer, by id (with
        ``discount_share`` when ``has_discounts``); with ``customers`` (a registered
        table's name), only the customers in its column ``customer_id``."""
        ...

    def release(self) -> None:
        """The passes over every line (features at each date, the holdout's labels) are
        done: give back the memory the later, smaller queries do not need."""
        ...

    def query(self, sql: str) -> pd.DataFrame:
        """Run SQL over ``lines`` and registered tables."""
        ...

    def register(self, name: str, frame: pd.DataFrame) -> None:
        ...

    def unregister(self, name: str) -> None:
        ...

    def cluster_backend(self) -> Backend | None:
        """Where the final clustering runs; None: in this process."""
        ...

    def failure(self, exc: BaseException) -> CustsegError | None:
        """The engine's own error (out of memory, a damaged file) as one line, else None."""
        ...

    def close(self) -> None:
        ...


def duckdb_failure(exc: BaseException, source: Source | None, config: Config
                   ) -> CustsegError | None:
    """A DuckDB error of the rows in :attr:`Engine.sample` as one line, else None."""
    if isinstance(exc, duckdb.OutOfMemoryException):
        return ConfigError(f"DuckDB ran out of memory within memory_limit="
                           f"{config.memory_limit!r}; raise memory_limit in the config "
                           "(e.g. '4GB') or free disk space for spilling.")
    if isinstance(exc, duckdb.Error) and source is not None and source.format == "parquet":
        return damaged_parquet(source.name, exc)
    return None


def prepared_source(source: Source, described: Source, reading: Reading) -> Source:
    """``described`` (the prepared rows) with what ``source`` knew of the input (its
    name, rejected lines, details, warnings and notes) and what ``reading`` says its lines
    keep."""
    return dataclasses.replace(
        described, name=source.name, format=source.format, rows=source.rows,
        rejected=source.rejected, details=dict(source.details),
        warnings=list(source.warnings), duplicates=dict(source.duplicates),
        notes=dict(source.notes), prep=reading.prep,
        attributes=list(reading.line_attributes),
        customer_attributes=list(reading.customer_attributes))


def needs_preparing(reading: Reading) -> bool:
    return reading.prep is not None and not reading.prep.empty


def timestamp(day: dt.date) -> str:
    """A midnight timestamp literal both DuckDB and Spark SQL read."""
    return f"TIMESTAMP '{day.isoformat()} 00:00:00'"


def purchases(engine: Engine) -> tuple[str, str]:
    """Where a pass over the purchases reads (columns customer_id, invoice_date, status),
    and its exact money in SQL: the engine's :attr:`~Engine.orders` once made (their
    ``revenue``), else the lines (their ``value``)."""
    if engine.orders:
        return q(engine.orders), "sum(revenue)"
    return "lines", f"sum({EXACT})"


def default_as_of(engine: Engine) -> dt.date:
    """The day after the last dated line, so the latest buyers have recency 1."""
    last = engine.query("SELECT max(invoice_date) AS last FROM lines "
                        "WHERE status NOT IN ('unparseable_date')")["last"].iloc[0]
    return pd.Timestamp(last).date() + dt.timedelta(days=1)


def future_lines(engine: Engine, today: dt.date) -> tuple[dt.date | None, int, dt.date | None]:
    """(day after the last line dated up to ``today``, lines dated after ``today``, the
    first such date) over the dated classified lines."""
    cut = timestamp(today + dt.timedelta(days=1))
    row = engine.query(
        f"""SELECT max(CASE WHEN invoice_date < {cut} THEN invoice_date END) AS last,
                   coalesce(sum(CASE WHEN invoice_date >= {cut} THEN n END), 0) AS future,
                   min(CASE WHEN invoice_date >= {cut} THEN invoice_date END) AS first
            FROM lines WHERE invoice_date IS NOT NULL""").iloc[0]
    last, first = row["last"], row["first"]
    as_of = pd.Timestamp(last).date() + dt.timedelta(days=1) if pd.notna(last) else None
    return as_of, int(row["future"]), pd.Timestamp(first).date() if pd.notna(first) else None


def without_purchase(engine: Engine, feats: pd.DataFrame) -> pd.DataFrame:
    """Customers seen in the input whose every line was dropped (ids, sorted)."""
    seen = engine.query("SELECT DISTINCT customer_id FROM lines WHERE status NOT IN "
                        "('purchase', 'missing_customer_id')")["customer_id"]
    # Arrow's is_in: pandas' isin over str columns takes seconds per million ids.
    known = pc.is_in(pa.array(seen, type=pa.string()),
                     value_set=pa.array(feats["customer_id"], type=pa.string()))
    ids = sorted(seen[~known.to_numpy(zero_copy_only=False)].astype(object).tolist())
    return pd.DataFrame({"customer_id": pd.Series(ids, dtype=object),
                         "reason": "no_valid_purchase"})
