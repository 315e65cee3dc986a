"""The RFM job: read -> map -> clean -> features -> RFM -> outputs, and the same steps as
library functions over pandas DataFrames.
"""

from __future__ import annotations

import datetime as dt
import html
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from custseg.core import summary as sm
from custseg.core.config import Config
from custseg.core.exceptions import ConfigError, MappingError
from custseg.core.version import __version__
from custseg.engines.duckdb import connect
from custseg.io import detect_mapping, guess_from_values, load_source, resolve_mapping
from custseg.io._customers import find_key, load_customers
from custseg.io._parse import q
from custseg.io._readers import damaged_parquet
from custseg.outputs.rundir import write_run
from custseg.prep import privacy
from custseg.prep.checks import customer_warnings, future_lines, future_warning
from custseg.prep.cleaning import Audit, clean_lines
from custseg.prep.features import FEATURES, customer_features_table, default_as_of
from custseg.prep.rfm import (
    check_segment_map,
    fit_edges,
    rfm_scores,
    score_warnings,
    segment_summary,
)

_ROUND = {"monetary": 2, "avg_order_value": 2, "avg_items_per_order": 3, "return_rate": 4,
          "mean_days_between_orders": 2}


@dataclass
class RfmResult:
    """Outputs of a job: one row per customer, the excluded ids, the summary."""

    segments: pd.DataFrame
    excluded: pd.DataFrame
    summary: sm.Summary
    out_dir: Path | None = None
    lines_db: Any = None  # the engine's lines (a DuckDB connection), open with keep_lines
    segmenter: Any = None  # the fitted Segmenter of custseg run
    id_salt: str | None = None  # with --hash-ids: outputs carry hashed customer ids

    def _repr_html_(self) -> str:
        """In a notebook: the report when one was written, else a table of segments."""
        report = self.out_dir / "report.html" if self.out_dir else None
        if report is not None and report.exists():
            doc = html.escape(report.read_text(encoding="utf-8"), quote=True)
            return (f'<iframe srcdoc="{doc}" style="width:100%;height:900px;border:0">'
                    "</iframe>")
        if "segments" in self.summary:
            rows = [(s.name, s.size, s.description) for s in self.summary["segments"]]
        else:
            rows = [(s.name, s.customers, f"{s.share:.1%} of customers")
                    for s in self.summary.get("rfm_segments", []) if s.customers]
        body = "".join(f"<tr><td>{html.escape(str(a))}</td><td>{b:,}</td>"
                       f"<td>{html.escape(str(c))}</td></tr>" for a, b, c in rows)
        return ("<table><tr><th>segment</th><th>customers</th><th></th></tr>"
                f"{body}</table>")


Reporter = Callable[[str, str], None]  # (stage, "start" | "done")


@contextmanager
def _stage(name: str, timings: dict[str, float], reporter: Reporter | None) -> Iterator[None]:
    if reporter:
        reporter(name, "start")
    start = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - start, 3)
    if reporter:
        reporter(name, "done")


def run_rfm(input: str | Path | None = None, *, out_dir: str | Path | None = None,
            customers: str | Path | None = None, config: Config | None = None,
            db: str | None = None, sql: str | None = None, frame: pd.DataFrame | None = None,
            reporter: Reporter | None = None, keep_lines: bool = False) -> RfmResult:
    """Segment the customers of a transactions input with RFM.

    Reads ``input`` (a file, ``db`` + ``sql``, or a DataFrame ``frame``), cleans it with an
    audit, computes the customer features and RFM segments, and writes ``segments.csv``,
    ``excluded_customers.csv`` and ``summary.json`` to ``out_dir`` when given (all at once:
    a failed run leaves no folder behind). With ``keep_lines`` the DuckDB connection
    holding the cleaned ``lines`` table stays open as ``result.lines_db`` (close it).
    """
    config = config or Config()
    segment_map = config.segments
    check_segment_map(segment_map)
    timings: dict[str, float] = {}
    con = connect(config)
    source = None
    try:
        if config.engine == "spark":
            feats, excluded, as_of, source, mapping, audit, lines = _spark_steps(
                con, input, config, timings, reporter, db=db, sql=sql, frame=frame)
        else:
            with _stage("read", timings, reporter):
                source = load_source(con, input, config=config, db=db, sql=sql, frame=frame)
                mapping = _mapping_or_hint(con, source, config)
            with _stage("clean", timings, reporter):
                audit = clean_lines(con, source, mapping, config)
                if not config.as_of:
                    config, audit = _ignore_future(con, source, mapping, config, audit)
            with _stage("features", timings, reporter):
                as_of = (dt.date.fromisoformat(config.as_of) if config.as_of
                         else default_as_of(con))
                feats = customer_features_table(con, as_of, "product_id" in mapping)
                excluded = _without_purchase(con, feats)
        customer_info = None
        if customers is not None:
            with _stage("customer_table", timings, reporter):
                feats, excluded, customer_info = _join_customers(con, feats, excluded,
                                                                 customers, config)
        with _stage("rfm", timings, reporter):
            edges = fit_edges(feats)
            scored = rfm_scores(feats, edges, segment_map)
            audit.warnings.extend(score_warnings(feats, scored))
            audit.warnings.extend(customer_warnings(feats, mapping["customer_id"],
                                                    hide_ids=config.hash_ids))
            segments_summary = segment_summary(scored, segment_map)
    except BaseException as exc:
        con.close()
        if isinstance(exc, duckdb.OutOfMemoryException):
            raise ConfigError(f"DuckDB ran out of memory within memory_limit="
                              f"{config.memory_limit!r}; raise memory_limit in the config "
                              "(e.g. '4GB') or free disk space for spilling.") from None
        if isinstance(exc, duckdb.Error) and source is not None and source.format == "parquet":
            raise damaged_parquet(source.name, exc) from None
        raise
    if config.engine == "spark":
        con.close()
        con = lines
        if not keep_lines:
            lines.close()
    elif not keep_lines:
        con.close()
    scored = _rounded(scored)
    summary = sm.RfmSummary(
        custseg_version=__version__,
        input=sm.Input(path=source.name, rows=source.rows + source.rejected,
                       format=source.format, **source.details),
        mapping=mapping,
        engine=f"spark ({config.spark_master})" if config.engine == "spark" else "duckdb",
        audit=sm.Audit(**audit.to_dict()),
        customers=int(len(scored)),
        excluded_customers={k: int(v) for k, v in excluded["reason"].value_counts()
                            .sort_index().items()},
        as_of=as_of.isoformat(),
        features={f.name: f.description for f in FEATURES},
        rfm_edges=edges,
        rfm_segments=[sm.RfmSegment(**row) for row in segments_summary],
        timings_s=timings,  # the write stage's own time is added after the file is written
        customer_table=sm.UNSET if customer_info is None else customer_info,
        columns=sm.UNSET if customer_info is None else customer_info["columns"],
        customer_ids=privacy.DESCRIPTION if config.hash_ids else sm.UNSET)
    result = RfmResult(segments=scored, excluded=excluded, summary=summary,
                       lines_db=con if keep_lines else None, id_salt=privacy.salt_for(config))
    if out_dir is not None:
        with _stage("write", timings, reporter):
            write_run(result, Path(out_dir))
        result.out_dir = Path(out_dir)
    return result


def _spark_steps(con, input, config: Config, timings, reporter, **other):
    """Read, clean and features on Spark (see :mod:`custseg.engines.spark`)."""
    from custseg.engines import spark as sp

    with _stage("read", timings, reporter):
        spark = sp.session(config)
        data = sp.read(spark, con, input, config, **other)
        source = data.source
        mapping = _mapping_or_hint(con, source, config)
    with _stage("clean", timings, reporter):
        audit = sp.clean(spark, con, data, mapping, config)
    lines = sp.SparkLines(spark)
    with _stage("features", timings, reporter):
        as_of = dt.date.fromisoformat(config.as_of) if config.as_of else default_as_of(lines)
        feats = sp.customer_features(spark, as_of, "product_id" in mapping)
        excluded = _without_purchase(lines, feats)
    return feats, excluded, as_of, source, mapping, audit, lines


def _ignore_future(con, source, mapping: dict[str, str], config: Config, audit: Audit
                   ) -> tuple[Config, Audit]:
    """Without --as-of, lines dated after today (a typo, a wrong clock) would set the
    snapshot date: clean again with the day after the last line up to today, and say so."""
    today = dt.date.today()
    as_of, count, first = future_lines(con, today)
    if not count:
        return config, audit
    if as_of is not None:
        config = config.replace(as_of=as_of.isoformat())
        audit = clean_lines(con, source, mapping, config)
    audit.warnings.append(future_warning(source.name, today, as_of, count, first))
    return config, audit


def _without_purchase(lines, feats: pd.DataFrame) -> pd.DataFrame:
    """Customers seen in the input whose every line was dropped (ids, sorted); ``lines`` is
    the engine's connection holding the classified lines."""
    seen = lines.execute("SELECT DISTINCT customer_id FROM lines WHERE status NOT IN "
                         "('purchase', 'missing_customer_id')").df()["customer_id"]
    ids = sorted(set(seen) - set(feats["customer_id"]))
    return pd.DataFrame({"customer_id": pd.Series(ids, dtype=object),
                         "reason": "no_valid_purchase"})


class CustomerTableInput(MappingError):
    """The input is a customer table (one row per customer), not order lines."""


def _mapping_or_hint(con: duckdb.DuckDBPyConnection, source, config: Config) -> dict[str, str]:
    """The order-line mapping; :class:`CustomerTableInput` when the input is a customer
    table (``input_kind="table"``, or detected: no order date and a unique id column)."""
    if config.input_kind == "table":
        raise CustomerTableInput(
            f"{source.name} is a customer table (--input-kind table): RFM needs order lines. "
            "Use `custseg run` to segment it, or pass it with --customers next to a "
            "transactions file.")
    if source.details.get("header") is False:
        return _headerless_mapping(con, source, config)
    try:
        return resolve_mapping(source.columns, config.mapping, source.name)
    except MappingError as exc:
        if (config.input_kind == "auto" and not config.mapping
                and _looks_like_customer_table(con, source)):
            raise CustomerTableInput(
                f"{source.name} looks like a customer table (one row per customer, no order "
                "date), not order lines: RFM needs transactions. Use `custseg run` to "
                "segment it, pass it with --customers next to a transactions file, or map "
                "the columns with --map.") from None
        found = {**detect_mapping([c for c in source.columns
                                   if c not in config.mapping.values()]), **config.mapping}
        if "invoice_date" not in found and config.input_kind != "orders":
            raise MappingError(f"{exc} If it has one row per customer rather than order "
                               "lines, pass --input-kind table.") from None
        raise


def _headerless_mapping(con, source, config: Config) -> dict[str, str]:
    """A file without a header row: the fields named with --map, else read from the
    values (``id date quantity amount``, CDNOW's layout), with a warning naming them."""
    if config.mapping:
        return resolve_mapping(source.columns, config.mapping, source.name)
    sample = con.execute(f"SELECT * FROM {q(source.relation)} LIMIT 2000").df()
    guessed = guess_from_values({c: sample[c].tolist() for c in sample.columns})
    if guessed is None:
        raise MappingError(
            f"{source.name} has no header row and its columns ({', '.join(source.columns)}) "
            "cannot be told apart from their values; name them, e.g. --map "
            "customer_id=column1 --map invoice_date=column2 --map amount=column4.")
    source.warnings.append(
        f"{source.name}: columns read from their values as "
        f"{', '.join(f'{f}={c}' for f, c in guessed.items())}; if that is wrong, name them "
        "with --map FIELD=COLUMN.")
    return resolve_mapping(source.columns, guessed, source.name)


def _looks_like_customer_table(con, source) -> bool:
    """No order date was found: a customer table when a column is unique on every row and
    named as an id (``member_no``, ``CUST_ID``, ``ID``), or when neither an id, an order
    nor a date column can be named (the rows are then numbered)."""
    key = find_key(source.columns, None, source.name, con=con, relation=source.relation,
                   types=source.types, required=False)
    if key is None:
        found = detect_mapping(source.columns)
        return not any(f in found for f in ("customer_id", "invoice_id", "invoice_date"))
    distinct, rows = con.execute(
        f"SELECT count(DISTINCT {q(key)}), count(*) FROM {q(source.relation)}").fetchone()
    return distinct == rows


def _join_customers(con, feats: pd.DataFrame, excluded: pd.DataFrame, path, config: Config):
    """Left-join the customer table to the customer features; its columns keep their roles
    (``info["columns"]``, under their names in the joined table)."""
    table, info = load_customers(con, path, config, row_ids=False)
    clash = [c for c in table.columns if c != "customer_id" and c in feats.columns]
    renamed = {c: f"{c}_customer" for c in clash}
    table = table.rename(columns=renamed)
    info["columns"] = {renamed.get(c, c): ({**v, "column_in_file": c} if c in renamed else v)
                       for c, v in info["columns"].items()}
    for key in ("numeric", "categorical", "usable_columns"):
        info[key] = [renamed.get(c, c) for c in info[key]]
    ids_t, ids_c = set(feats["customer_id"]), set(table["customer_id"])
    info["join"] = {"both": len(ids_t & ids_c), "transactions_only": len(ids_t - ids_c),
                    "customer_table_only": len(ids_c - ids_t)}
    only_table = sorted(ids_c - ids_t - set(excluded["customer_id"]))
    extra = pd.DataFrame({"customer_id": only_table, "reason": "no_transactions"})
    excluded = pd.concat([excluded, extra], ignore_index=True).sort_values(
        "customer_id", kind="stable").reset_index(drop=True)
    feats = feats.merge(table, on="customer_id", how="left", validate="one_to_one")
    return feats, excluded, info


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for col, digits in _ROUND.items():
        if col in frame:
            frame[col] = frame[col].round(digits)
    return frame


# ------------------------------------------------------------ step-by-step library API
def read_table(input: str | Path | None = None, *, config: Config | None = None,
               db: str | None = None, sql: str | None = None) -> pd.DataFrame:
    """Raw rows of a file or SQL query as a DataFrame (text files: every column as text).

    For inputs too large for memory use :func:`run_rfm`, which never loads them whole.
    """
    con = connect(config)
    try:
        source = load_source(con, input, config=config, db=db, sql=sql)
        return con.execute(f'SELECT * FROM "{source.relation}"').df()
    finally:
        con.close()


def map_columns(columns: pd.DataFrame | list[str], overrides: dict[str, str] | None = None
                ) -> dict[str, str]:
    """Canonical field -> column for a table (or a list of column names)."""
    cols = list(columns.columns) if isinstance(columns, pd.DataFrame) else list(columns)
    return resolve_mapping(cols, overrides)


def clean(raw: pd.DataFrame, mapping: dict[str, str] | None = None,
          config: Config | None = None) -> tuple[pd.DataFrame, Audit]:
    """Parse and classify every row of a raw order-line table.

    Returns one row per distinct input line with canonical columns, ``n`` (copies in the
    input) and ``status`` (``purchase`` or the drop reason), and the :class:`Audit`.
    """
    config = config or Config()
    con = connect(config)
    try:
        source = load_source(con, frame=raw, config=config)
        mapping = resolve_mapping(source.columns, mapping if mapping is not None
                                  else config.mapping, "DataFrame")
        audit = clean_lines(con, source, mapping, config)
        lines = con.execute("SELECT * FROM lines ORDER BY customer_id, invoice_date, "
                            "invoice_id, product_id, quantity, value").df()
        return lines, audit
    finally:
        con.close()


def customer_features(lines: pd.DataFrame, as_of: str | dt.date | None = None) -> pd.DataFrame:
    """Customer feature table from the output of :func:`clean`, sorted by customer id."""
    con = connect()
    try:
        con.register("lines_frame", lines)
        con.execute("CREATE TABLE lines AS SELECT * FROM lines_frame")
        day = (dt.date.fromisoformat(as_of) if isinstance(as_of, str)
               else as_of or default_as_of(con))
        has_products = bool(lines["product_id"].notna().any())
        return customer_features_table(con, day, has_products)
    finally:
        con.close()
