"""The Spark engine: reading, cleaning and customer features computed by Apache Spark.

Both engines apply the same rules. Decisions that depend on the data (date formats, a
decimal comma, the cancellation convention) are made once by the DuckDB engine's own
code on a sample of the input (its first :data:`SAMPLE_ROWS` rows). Spark then collapses
exact duplicate lines, and its executors parse and classify every distinct line by the
*same* DuckDB SQL (:class:`~custseg.prep.cleaning.CleaningPlan`) over Arrow batches
(``mapInArrow``), so values are read identically. The audit counts and the customer
features (the SQL of :mod:`custseg.prep.features` in Spark's dialect) are Spark SQL. Only the
per-customer table comes back to the driver.

Executors need custseg (and so DuckDB) installed in the Python that
``PYSPARK_PYTHON`` names; locally that is this interpreter.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from custseg.core.config import Config
from custseg.core.exceptions import ConfigError, CustsegError, InputError
from custseg.engines._batch import BatchSQL
from custseg.engines._classes import archive_options, record_later
from custseg.engines.base import duckdb_failure, needs_preparing, prepared_source
from custseg.engines.duckdb import PREPARED, drop_table, register_table
from custseg.io import Source
from custseg.io._infer import Reading
from custseg.io._mapping import is_row_number
from custseg.io._parse import lit, q, quiet_connect
from custseg.io._readers import (
    _PANDAS_INDEX,
    _UTF16,
    _describe,
    check_encoding,
    headerless_columns,
    load_source,
    malformed_warning,
    pandas_index_columns,
    pandas_index_note,
    quoted_line_breaks,
    sniff_format,
    sniff_text,
    text_encoding,
)
from custseg.prep.cleaning import (
    ROW_NUMBER_SAMPLE,
    STATUSES,
    Audit,
    audit_from_counts,
    check_unreadable,
    integer_sql,
    plan_cleaning,
    read_expr,
    row_number_candidates,
    row_numbers_note,
)
from custseg.prep.features import (
    DUCKDB,
    customer_features_table,
    features_sql,
    restricted_sql,
)

if TYPE_CHECKING:  # custseg.cluster loads scikit-learn: not in the executors' Python workers
    from custseg.cluster._base import Fitted

#: Rows of the input the data-dependent decisions are made on.
SAMPLE_ROWS = 1_000_000
#: Rows per Arrow batch handed to the parsing SQL on the executors.
BATCH_ROWS = 200_000
_CORRUPT = "_custseg_corrupt_record"
#: Java names of the Python codecs whose names Java does not know as aliases.
_JAVA_CHARSETS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "latin-1": "ISO-8859-1",
                  "utf-16": "UTF-16", "utf-16-le": "UTF-16LE", "utf-16-be": "UTF-16BE",
                  "utf-32": "UTF-32", "utf-32-le": "UTF-32LE", "utf-32-be": "UTF-32BE",
                  "mac-roman": "x-MacRoman", "cp437": "IBM437", "cp850": "IBM850"}
#: Spark SQL's pieces of the dialect (see :data:`custseg.prep.features.DUCKDB`).
SPARK = {
    "days": "datediff(CAST({b} AS DATE), CAST({a} AS DATE))",
    "seconds": "(unix_timestamp({b}) - unix_timestamp({a}))",
    "top_country": "min_by(country, struct(-n, country))",
    "first_by": "min_by({a}, {b})",
    "month": "date_format({a}, 'yyyy-MM')",
    "text": "STRING",
}
_LINES_SCHEMA = ("customer_id STRING, invoice_id STRING, invoice_date TIMESTAMP_NTZ, "
                 "quantity DOUBLE, value DOUBLE, product_id STRING, description STRING, "
                 "category STRING, country STRING, "
                 "n BIGINT, status STRING")


#: Set once a session started ahead (:func:`start_ahead`) is up, or failed to start.
_ready: list[threading.Event] = []


def start_ahead(config: Config) -> None:
    """Start the session in a background thread, so that its JVM starts (5 s) while the
    command line imports the rest of custseg; :func:`session` waits for it, and raises
    again, in its own words, what stopped it."""
    if _ready:
        return
    ready = threading.Event()
    _ready.append(ready)

    def start() -> None:
        with contextlib.suppress(Exception):  # the job's own session() reports it
            session(config)
        ready.set()

    threading.Thread(target=start, name="custseg-spark-start", daemon=True).start()


def session(config: Config | None = None, java_options: str = ""):
    """The Spark session for ``config.spark_master`` (started once per process).

    A local master binds the driver to 127.0.0.1 and runs without the web UI; the
    executors' Python is this interpreter unless ``PYSPARK_PYTHON`` says otherwise.
    Settings in ``config.spark_conf`` win; ``java_options`` are added to the driver's.
    The driver's JVM maps the class archive (:mod:`custseg.engines._classes`) where
    there is one, else a recorder starts as this process exits.
    """
    if _ready and threading.current_thread().name != "custseg-spark-start":
        _ready[0].wait()
    config = config or Config()
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("The Spark engine needs pyspark: pip install 'custseg[spark]' "
                          "(and a Java 17 runtime).") from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    master = config.spark_master
    local = master.startswith("local")
    log4j = resources.files("custseg").joinpath("data/log4j2.properties")
    conf: dict[str, str] = {
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.ansi.enabled": "true",
        "spark.sql.ansi.doubleQuotedIdentifiers": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(BATCH_ROWS),
        # Any Java charset for the CSV reader (Spark 4 allows only UTF-* and ISO-8859-1).
        "spark.sql.legacy.javaCharsets": "true",
        "spark.driver.extraJavaOptions": f"-Dlog4j.configurationFile=file:{log4j} "
                                         f"-Dlog4j2.configurationFile=file:{log4j}",
    }
    if local or _loopback(master):  # a cluster on this machine: the driver stays on it too
        # and its cores are this machine's: two shuffle partitions a core, not Spark's 200
        # (each a task; a run's few dozen shuffles on a small table cost minutes)
        conf.update({"spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1",
                     "spark.ui.enabled": "false",
                     "spark.sql.shuffle.partitions": str(max(4, 2 * (os.cpu_count() or 2)))})
    if local:
        conf["spark.driver.memory"] = "2g"
    conf.update({str(k): str(v) for k, v in config.spark_conf.items()})
    conf = {"spark.master": master, "spark.app.name": "custseg", **conf}
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    stderr = None
    with _quiet():
        try:
            from pyspark import SparkConf, SparkContext

            launch = SparkContext._gateway is None
            archive = archive_options(conf) if launch and config.spark_class_archive else ""
            if launch:  # no JVM yet: start it, its stderr read here
                conf = _with_java_options(conf, f"{archive} {java_options}")
                stderr = _JavaStderr()
                spark_conf = SparkConf().setAll(list(conf.items()))
                SparkContext(conf=spark_conf, gateway=stderr.launch(spark_conf))
            spark = builder.getOrCreate()
        except Exception as exc:  # the JVM failed to start: no Java, bad master URL, ...
            reason = (stderr and stderr.failure()) or str(exc).splitlines()[0]
            raise ConfigError(f"Spark did not start with master {master!r}: "
                              f"{reason.rstrip('.')}. Check Java 17 and the master URL."
                              ) from None
    spark.sparkContext.setLogLevel("ERROR")
    if launch and config.spark_class_archive and not archive:
        record_later(conf)
    return spark


def _with_java_options(conf: dict[str, str], options: str) -> dict[str, str]:
    key = "spark.driver.extraJavaOptions"
    return {**conf, key: f"{conf.get(key, '')} {options.strip()}".strip()}


class _JavaStderr:
    """The driver JVM's stderr, read by a thread: the JVM's notices at start-up (Java's
    incubator modules, netlib's missing native BLAS) are dropped, the rest (Spark's error
    log) goes where it went before, file descriptor 2, once the JVM has started. Until then
    it is held, so that a failed start is one line (:meth:`failure`), not a Java stack
    trace."""

    NOISE = re.compile(rb"WARNING: Using incubator modules|netlib-\w+: JNI_OnLoad: dlopen")

    def __init__(self) -> None:
        self.held: list[bytes] = []
        self.started = False
        self.lock = threading.Lock()
        self.read_end, self.write_end = os.pipe()
        self.thread = threading.Thread(target=self._forward, daemon=True,
                                       name="custseg-java-stderr")
        self.thread.start()

    def launch(self, conf):
        """pyspark's gateway (the driver JVM) with its stderr on this pipe."""
        from pyspark.java_gateway import launch_gateway

        try:
            gateway = launch_gateway(conf, popen_kwargs={"stderr": self.write_end})
        finally:
            os.close(self.write_end)  # the JVM holds its own copy
        with self.lock:
            self.started = True
            for line in self.held:
                os.write(2, line)
            self.held.clear()
        return gateway

    def _forward(self) -> None:
        with open(self.read_end, "rb") as stream:
            for line in stream:
                if self.NOISE.match(line):
                    continue
                with self.lock:
                    if self.started:
                        os.write(2, line)
                    else:
                        self.held.append(line)

    def failure(self) -> str | None:
        """Why the JVM exited at start-up, from what it printed (None: it started, or
        printed nothing)."""
        if self.started:
            return None
        self.thread.join(timeout=5)
        with self.lock:
            text = b"".join(self.held).decode("utf-8", errors="replace")
        lines = [ln.strip() for ln in text.splitlines()
                 if ln.strip() and not ln.lstrip().startswith("at ")]
        for line in lines:
            found = re.match(r'(?:Exception in thread "[^"]*" [\w.$]+|Error): (.+)', line)
            if found:
                return found.group(1)
        return lines[0] if lines else None


def _loopback(master: str) -> bool:
    """A ``spark://`` master on this machine's loopback address."""
    hosts = master.removeprefix("spark://").split(",")
    return master.startswith("spark://") and all(
        h.rsplit(":", 1)[0] in ("127.0.0.1", "localhost") for h in hosts)


@contextmanager
def _quiet() -> Iterator[None]:
    """pyspark 4 warns that pandas 3 is not fully supported; custseg moves data as Arrow
    and is tested on pandas 3 with this engine."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pandas >= 3", category=FutureWarning)
        yield


@dataclass
class SparkInput:
    """Raw rows of an input as a Spark DataFrame, plus its sample in DuckDB."""

    frame: Any  # pyspark.sql.DataFrame of the raw rows
    source: Source  # describes the sample in DuckDB; rows/rejected count the whole input


def read(spark, con: duckdb.DuckDBPyConnection, path: str | Path | None, config: Config,
         **other: Any) -> SparkInput:
    """Read an input with Spark; its first rows go to DuckDB relation ``raw``.

    Parquet files and folders and delimited text are read by Spark (also from cluster
    paths such as ``hdfs://``); Excel, SQL and DataFrame inputs are read on the driver by
    the DuckDB engine and handed to Spark.
    """
    local = path is not None and "://" not in str(path)
    kind = sniff_format(Path(path)) if local else _kind_from_name(str(path or ""))
    if path is None or kind == "excel" or other.get("frame") is not None:
        source = load_source(con, path, config=config, **other)
        table = con.cursor().sql(f"SELECT * FROM {q(source.relation)}").to_arrow_table()
        frame = spark.createDataFrame(table) if table.num_rows else _empty(spark, table)
        return SparkInput(frame, source)
    try:
        notes, warns = {}, []
        if kind == "parquet":
            frame = spark.read.parquet(str(path))
            index = (pandas_index_columns(Path(path)) if local else
                     [c for c in frame.columns if _PANDAS_INDEX.fullmatch(c)])
            if index:
                frame = frame.drop(*index)
                notes["pandas_index"] = pandas_index_note(index)
            rejected, details = 0, {}
            rows = _parquet_rows(Path(path)) if local else None
        else:
            frame, rejected, details, warns = _read_text(spark, path, local, config)
            rows = None
        rows = frame.count() if rows is None else rows
        sample = (_driver_sample(Path(path), frame)
                  if kind == "parquet" and local and Path(path).is_file() else None)
        if sample is None:  # a whole input that fits in the sample: no limit, one shuffle less
            sample = (frame if rows <= SAMPLE_ROWS else frame.limit(SAMPLE_ROWS)).toArrow()
    except Exception as exc:
        if type(exc).__name__ in ("AnalysisException", "SparkException", "Py4JJavaError",
                                  "PythonException", "IllegalArgumentException"):
            raise InputError(f"Spark could not read {path}: {str(exc).splitlines()[0]}"
                             ) from None
        raise
    con.register("raw_sample", sample)
    con.execute('CREATE OR REPLACE TABLE "raw" AS SELECT * FROM raw_sample')
    con.unregister("raw_sample")
    source = _describe(con, "raw", str(path), "parquet" if kind == "parquet" else "csv",
                       rejected=rejected)
    source.rows, source.columns = rows, list(frame.columns)
    source.details.update(details)
    source.notes.update(notes)
    source.warnings.extend(warns)
    if rejected:
        source.warnings.append(malformed_warning(Path(str(path)), rejected))
    if not rows:
        raise InputError(f"{path} has no data rows; export the data again.")
    return SparkInput(frame, source)


def _parquet_rows(path: Path) -> int | None:
    """Rows of one local Parquet file, from its footer (None: a folder, or unreadable)."""
    import pyarrow.parquet as pq

    if not path.is_file():
        return None
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # Spark counts it, and reports the damage
        return None


def _kind_from_name(name: str) -> str:
    low = name.lower().rstrip("/")
    return "parquet" if low.endswith((".parquet", ".pq")) or "." not in low.rsplit("/", 1)[-1] \
        else "text"


def _read_text(spark, path, local: bool, config: Config):
    """Delimited text read by Spark. The encoding of a local file is decided (and every
    byte checked: Spark would replace a bad one silently) as the DuckDB engine does."""
    encoding, delimiter, warns = config.encoding, config.delimiter, []
    if local:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
        encoding, warns = text_encoding(Path(path), head, encoding)
        encoding, delimiter = sniff_text(head, encoding, delimiter)
        if delimiter == "whitespace":
            raise InputError(f"{path}: whitespace-aligned text is read by the DuckDB engine "
                             "only; save it as CSV or drop --engine spark.")
    encoding = check_encoding(encoding) if encoding else "utf-8"
    names = headerless_columns(head, encoding, delimiter or ",") if local else None
    options = {"header": "false" if names else "true", "sep": delimiter or ",",
               "encoding": _JAVA_CHARSETS.get(encoding, encoding), "mode": "PERMISSIVE",
               # Lines of UTF-16/32 text cannot be split at newline bytes, nor fields
               # quoted with line breaks in them (Shopify's notes and addresses).
               "multiLine": "true" if encoding in _UTF16 or (
                   local and quoted_line_breaks(head, encoding, delimiter or ",")) else "false",
               "quote": '"', "escape": '"', "enforceSchema": "false"}
    header = names or spark.read.options(**{**options, "inferSchema": "false"}).csv(
        str(path)).columns
    schema = ", ".join(f"`{c.replace('`', '``')}` STRING" for c in header)
    frame = (spark.read.options(**options, columnNameOfCorruptRecord=_CORRUPT)
             .schema(f"{schema}, {_CORRUPT} STRING").csv(str(path)))
    frame = frame.cache()
    rejected = frame.filter(frame[_CORRUPT].isNotNull()).count()
    frame = frame.filter(frame[_CORRUPT].isNull()).drop(_CORRUPT)
    details = {"delimiter": delimiter or ",", "encoding": encoding}
    if names:
        details["header"] = False
        warns.append(f"{Path(str(path)).name} has no header row (its first line is data): its "
                     f"columns are named {', '.join(names)}.")
    return frame, rejected, details, warns


def _driver_sample(path: Path, frame) -> pa.Table | None:
    """The first :data:`SAMPLE_ROWS` rows of a local Parquet file, read by DuckDB on the
    driver in the types Spark reads them in (Online Retail: 0.2 s, against 2.3 s fetched
    from Spark); None where DuckDB's types do not cast to Spark's."""
    from pyspark.sql.pandas.types import to_arrow_schema

    timezone = frame.sparkSession.conf.get("spark.sql.session.timeZone")
    con = quiet_connect()
    try:
        schema = to_arrow_schema(frame.schema, timezone=timezone)
        table = con.sql(f"SELECT {', '.join(q(c) for c in frame.columns)} "
                        f"FROM read_parquet({lit(str(path))}) LIMIT {SAMPLE_ROWS}"
                        ).to_arrow_table()
        return table.cast(schema)
    except (duckdb.Error, pa.ArrowException, TypeError, ValueError):
        return None
    finally:
        con.close()


def _empty(spark, table: pa.Table):
    return spark.createDataFrame([], ", ".join(f"`{n}` STRING" for n in table.column_names))


def clean(spark, con: duckdb.DuckDBPyConnection, data: SparkInput, mapping: dict[str, str],
          config: Config, view: str = "lines", to_driver: bool = False) -> tuple[Audit, int]:
    """Classify every line as :func:`custseg.prep.cleaning.clean_lines` does, on Spark; the
    audit and how many classified (distinct) lines there are.

    Registers the classified distinct lines as temporary view ``view`` (cached), or with
    ``to_driver`` fetches them into ``con``'s table ``view`` as they are classified (the
    audit counted there): a Spark cache of lines that go to the driver anyway would only
    cost its build, about 1.5 s on Online Retail.
    """
    source = data.source
    plan = plan_cleaning(con, source, mapping, config, prep=source.prep,
                         attributes=source.attributes,
                         customer_attributes=source.customer_attributes)
    raw = data.frame
    from pyspark.sql import functions as F

    numbers = _row_numbers(raw, source, mapping) if config.cleaning["duplicates"] else []
    keys = [c for c in raw.columns if c not in numbers]
    ones = raw.withColumn("n", F.lit(1).cast("bigint"))
    # Lines for the driver, of one partition: its duplicates collapsed by DuckDB in the task.
    whole = (to_driver and config.cleaning["duplicates"]
             and raw.rdd.getNumPartitions() == 1)
    if whole or not config.cleaning["duplicates"]:
        distinct = ones
    else:
        distinct = raw.groupBy(*(F.col(f"`{c.replace('`', '``')}`") for c in keys)
                               ).count().withColumnRenamed("count", "n")
    query = plan.lines_sql(f"(SELECT {plan.parse}, n FROM batch)")
    batch_sql = BatchSQL(query, statuses=STATUSES, collapse=(
        f"SELECT {', '.join(q(c) for c in keys)}, count(*) AS n FROM raw GROUP BY ALL"
        if whole else None))
    with _quiet(), _dedupe_conf(spark, config):  # the cached plan keeps the setting
        schema = _LINES_SCHEMA.replace(", n BIGINT", "".join(
            f", {name} {'BOOLEAN' if kind == 'BOOLEAN' else 'STRING'}"
            for name, kind in plan.extra) + ", n BIGINT")
        lines = (raw if whole else distinct).mapInArrow(batch_sql, schema)
        if to_driver:
            _driver_table(con, view, lines.toArrow())
        else:
            lines.cache().createOrReplaceTempView(view)
    if to_driver:
        def run(sql: str) -> pd.DataFrame:
            return con.execute(sql).df()
    else:
        def run(sql: str) -> pd.DataFrame:
            return _frame(spark.sql(sql).toArrow())
    counts = list(run(f"SELECT status, count(*) AS lines, sum(n) AS rows FROM {q(view)} "
                      "GROUP BY status").itertuples(index=False, name=None))
    audit = audit_from_counts(counts, source, plan)
    if numbers:
        audit.notes["row_numbers"] = row_numbers_note(numbers)
    unreadable = _Unreadable(distinct, con, source, config)
    check_unreadable(source, mapping, audit, config, unreadable, run, view)
    return audit, sum(int(c[1]) for c in counts)


def _driver_table(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """``table`` (from Spark) as ``con``'s temporary table ``name``, its times naive UTC as
    the DuckDB engine has them."""
    register_table(con, name, table)
    zoned = {col for col, kind in con.execute(
        f"SELECT column_name, data_type FROM duckdb_columns() "
        f"WHERE table_name = {lit(name)} AND database_name = 'temp'").fetchall()
        if kind == "TIMESTAMP WITH TIME ZONE"}
    if zoned:
        naive = ", ".join(f"timezone('UTC', {q(c)}) AS {q(c)}" for c in zoned)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {q(name)} AS "
                    f"SELECT * REPLACE ({naive}) FROM temp.{q(name)}")


#: Spark setting: aggregate once after the shuffle, without the partial aggregation before it.
_BYPASS_PARTIAL = "spark.sql.execution.bypassPartialAggregation"


@contextmanager
def _dedupe_conf(spark, config: Config) -> Iterator[None]:
    """Plan the collapse of duplicate lines without partial aggregation: nearly every line
    is distinct, so aggregating before the shuffle only costs (about 30% of its CPU)."""
    if _BYPASS_PARTIAL in config.spark_conf:
        yield
        return
    spark.conf.set(_BYPASS_PARTIAL, "true")
    try:
        yield
    finally:
        spark.conf.unset(_BYPASS_PARTIAL)


def _row_numbers(raw, source: Source, mapping: dict[str, str]) -> list[str]:
    """The columns that number the rows, by the rule of
    :func:`custseg.prep.cleaning.row_number_columns`, over the whole input."""
    spark = raw.sparkSession
    raw.createOrReplaceTempView("custseg_raw")

    def plain_unique_sample(col: str) -> bool:
        x, plain = integer_sql(col, source.types[col], text="STRING")
        n, good, distinct = spark.sql(
            f"SELECT count(*), count_if({x} IS NOT NULL AND {plain}), count(DISTINCT {x}) "
            f"FROM (SELECT {q(col)} FROM custseg_raw LIMIT {ROW_NUMBER_SAMPLE})").collect()[0]
        return n == good == distinct

    candidates = [c for c in row_number_candidates(source, mapping) if plain_unique_sample(c)]
    if not candidates:
        spark.catalog.dropTempView("custseg_raw")
        return []
    exprs = [integer_sql(c, source.types[c], text="STRING") for c in candidates]
    stats = ", ".join(f"count({x}), min({x}), max({x})" for x, _ in exprs)
    row = spark.sql(f"SELECT count(*), {stats} FROM custseg_raw").collect()[0]
    found = []
    for i, (col, (x, plain)) in enumerate(zip(candidates, exprs, strict=True)):
        count, low, high = row[1 + 3 * i: 4 + 3 * i]

        def distinct(x=x, plain=plain) -> int:
            n, odd = spark.sql(f"SELECT count(DISTINCT {x}), count_if(NOT ({plain})) "
                               "FROM custseg_raw").collect()[0]
            return 0 if odd else int(n)

        if is_row_number(int(row[0]), int(count), low, high, distinct):
            found.append(col)
    spark.catalog.dropTempView("custseg_raw")
    return found


class _Unreadable:
    """Counts and examples of unreadable values of a column, over the whole input."""

    def __init__(self, frame, con, source: Source, config: Config) -> None:
        self.frame, self.con, self.source, self.config = frame, con, source, config

    def __call__(self, col: str, fld: str) -> tuple[list[str], int, int]:
        expr = read_expr(self.con, self.source, col, fld, self.config)
        query = (f"SELECT CAST({q(col)} AS VARCHAR) AS v, n, ({expr}) IS NULL AS bad "
                 f"FROM batch WHERE {q(col)} IS NOT NULL")
        with _quiet():
            cells = self.frame.select(col, "n").mapInArrow(BatchSQL(query),
                                                           "v STRING, n BIGINT, bad BOOLEAN")
        cells.createOrReplaceTempView("custseg_cells")
        spark = cells.sparkSession
        bad, nonnull = spark.sql("SELECT coalesce(sum(n) FILTER (WHERE bad), 0), "
                                 "coalesce(sum(n), 0) FROM custseg_cells").collect()[0]
        examples = [r[0] for r in spark.sql("SELECT DISTINCT v FROM custseg_cells WHERE bad "
                                            "ORDER BY v LIMIT 3").collect()]
        return examples, int(bad), int(nonnull)


def customer_features(spark, as_of: dt.date, has_products: bool, view: str = "lines",
                      has_discounts: bool = False) -> pd.DataFrame:
    """The customer feature table, computed by Spark; one row per customer, sorted by id."""
    table = spark.sql(features_sql(view, as_of, has_products, dialect=SPARK,
                                   has_discounts=has_discounts)).toArrow()
    return _frame(table).sort_values("customer_id", kind="stable").reset_index(drop=True)


def _frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as a DataFrame converted exactly as the DuckDB engine's results are
    (dtypes and missing values alike)."""
    con = quiet_connect()
    con.register("spark_result", table)
    try:
        return con.execute("SELECT * FROM spark_result").df()
    finally:
        con.close()


# ------------------------------------------------------------------ clustering on MLlib
#: custseg algorithm -> MLlib estimator. KMeans is MLlib's KMeans (k-means||
#: initialisation), the hierarchical method is MLlib's BisectingKMeans (divisive, top-down)
#: and the Gaussian mixture is MLlib's GaussianMixture.
SPARK_ALGORITHMS = {"kmeans": "KMeans", "hierarchical": "BisectingKMeans",
                    "gmm": "GaussianMixture"}


class MLlib:
    """The Spark engine's clustering :class:`~custseg.cluster._base.Backend`: the prepared
    matrix goes to Spark as Arrow, labels come back in row order; k is chosen beforehand
    on a sample of :attr:`k_sample` customers. The other algorithms (kprototypes, dbscan,
    hdbscan, affinity), and up to :attr:`k_sample` customers on a local master, are fitted
    on the driver, which holds the customer table anyway, as with the DuckDB engine."""

    label = "Spark"
    algorithms = SPARK_ALGORITHMS
    k_sample = 50_000
    #: On a local master fewer customers are clustered in the driver's process, as without
    #: Spark: MLlib would run on the same cores and only add its jobs (the search for k has
    #: already fitted all of them).
    local_min_customers = k_sample + 1

    def __init__(self, spark) -> None:
        self.spark = spark
        local = spark.sparkContext.master.startswith("local")
        self.min_customers = self.local_min_customers if local else 0

    def __deepcopy__(self, memo) -> MLlib:  # scikit-learn's clone copies parameters
        return self

    def fit(self, X: np.ndarray, algorithm: str, k: int, *, seed: int = 0) -> Fitted:
        return fit_mllib(self.spark, X, algorithm, k, seed=seed)


def fit_mllib(spark, X: np.ndarray, algorithm: str, k: int, *, seed: int = 0,
              max_iter: int = 50) -> Fitted:
    """Fit MLlib's estimator for ``algorithm`` with ``k`` clusters on the rows of ``X``."""
    from pyspark.ml import clustering
    from pyspark.ml.functions import array_to_vector

    from custseg.cluster._base import Fitted

    name = SPARK_ALGORITHMS[algorithm]
    # BisectingKMeans splits a cluster from two points at its centre +- 1e-4 x the centre's
    # norm: on centred data (standard scaling) that is ~0 and no split ever happens. The
    # clustering does not depend on a shift of every point, so shift away from 0.
    shift = float(np.abs(X).max() + 1.0) if name == "BisectingKMeans" else 0.0
    X = np.ascontiguousarray(X + shift, dtype=np.float64)
    n, d = X.shape
    offsets = pa.array(np.arange(0, n * d + 1, d, dtype=np.int32))
    table = pa.table({"row": pa.array(np.arange(n, dtype=np.int64)),
                      "x": pa.ListArray.from_arrays(offsets, pa.array(X.ravel()))})
    frame = spark.createDataFrame(table).select("row", array_to_vector("x").alias("features"))
    frame = frame.cache()
    estimator = getattr(clustering, name)(k=k, seed=seed, maxIter=max_iter)
    model = estimator.fit(frame)
    predicted = model.transform(frame).select("row", "prediction").toArrow()
    frame.unpersist()
    labels = np.empty(n, dtype=np.int64)
    labels[predicted.column("row").to_numpy()] = predicted.column("prediction").to_numpy()
    rule = None
    if name == "GaussianMixture":
        gaussians = model.gaussiansDF.collect()
        centers = np.array([row["mean"].toArray() for row in gaussians])
        rule = _mixture_rule(np.asarray(model.weights), centers,
                             [row["cov"].toArray() for row in gaussians])
    else:
        centers = np.array([np.asarray(c) for c in model.clusterCenters()])
    # Labels are renumbered 0..m-1 over the clusters that hold customers (MLlib may leave
    # a cluster empty, e.g. BisectingKMeans when a leaf cannot be split).
    used, labels = np.unique(labels, return_inverse=True)
    extra = {}
    if name != "GaussianMixture":
        extra["inertia"] = float(model.summary.trainingCost)
    if rule is not None:  # label components as the Segmenter's labels (empty ones dropped)
        keep = np.isin(np.arange(len(centers)), used)
        remap = np.full(len(centers), -1)
        remap[used] = np.arange(len(used))
        rule = {**rule, "weights": rule["weights"][keep], "means": rule["means"][keep],
                "precisions_cholesky": rule["precisions_cholesky"][keep],
                "labels": remap[keep]}
    return Fitted(labels=labels.astype(np.int64), centers=centers[used] - shift,
                  params={"engine": "spark", "mllib": name, "k": int(k),
                          "max_iter": int(max_iter)}, extra=extra, rule=rule)


def _mixture_rule(weights: np.ndarray, means: np.ndarray, covariances: list[np.ndarray]
                  ) -> dict:
    """MLlib's mixture as custseg's ``gaussian_mixture`` rule (full covariances)."""
    from scipy.linalg import cholesky, solve_triangular

    precisions = []
    for cov in covariances:
        lower = cholesky(cov, lower=True)
        precisions.append(solve_triangular(lower, np.eye(len(cov)), lower=True).T)
    return {"kind": "gaussian_mixture", "covariance_type": "full",
            "weights": np.asarray(weights, dtype=float), "means": np.asarray(means),
            "precisions_cholesky": np.array(precisions),
            "labels": np.arange(len(weights), dtype=np.int64)}


# ------------------------------------------------------------------------- the engine
class SparkEngine:
    """Reads, cleans and aggregates on Spark (``config.spark_master``); the decisions on
    the data are made by DuckDB on the first :data:`SAMPLE_ROWS` rows (:attr:`sample`).

    Classified lines no more than ``config.spark_local_lines`` are fetched to the driver
    once cleaned, and the features and per-segment queries run on them in its DuckDB, by
    the DuckDB engine's SQL (:attr:`local`): each Spark job costs a fixed 0.1-0.5 s, and a
    feature table is some twenty of them (Online Retail: 4-7 s a feature table on Spark,
    0.1 s in DuckDB)."""

    name = "spark"
    parquet_from = 1_000_000
    pairs = None  # each query reads the lines: no table of distinct products kept
    orders = None  # nor of their orders

    def __init__(self, config: Config | None = None, view: str = "lines") -> None:
        from custseg.engines.duckdb import connect

        self.config = config or Config()
        self.view = view
        self.sample = connect(self.config)
        self.spark = session(self.config)
        self._data: SparkInput | None = None
        self._input: tuple[Any, dict[str, Any]] = (None, {})
        #: The classified lines are in the driver's DuckDB (see the class's text).
        self.local = False
        self.dialect = SPARK

    def describe(self) -> str:
        where = "; its classified lines aggregated on the driver" if self.local else ""
        return f"spark ({self.config.spark_master}{where})"

    def read(self, input: str | Path | None = None, *, db: str | None = None,
             sql: str | None = None, frame: pd.DataFrame | None = None) -> Source:
        if isinstance(input, (list, tuple)):
            raise ConfigError("Several tables are joined by the DuckDB engine only: drop "
                              "--engine spark, or join them into one table of order lines "
                              "first.")
        other = {"db": db, "sql": sql, "frame": frame}
        self._input = (input, other)
        self._data = read(self.spark, self.sample, input, self.config, **other)
        return self._data.source

    def whole(self, source: Source) -> Source:
        """Read by DuckDB on the driver, whole (a customer table, one row per customer)."""
        input, other = self._input
        return load_source(self.sample, input, config=self.config, relation="whole", **other)

    def prepare(self, source: Source, reading: Reading) -> Source:
        """The rows prepared alike in the driver's DuckDB sample (for the decisions) and
        in Spark (every row), by the same SQL."""
        frame = self._data.frame
        if not needs_preparing(reading):
            prepared = prepared_source(source, source, reading)
        else:
            prep = reading.prep
            self.sample.execute(f"CREATE OR REPLACE TABLE {PREPARED} AS "
                                + prep.select(source.relation, source.columns, source.types))
            prepared = prepared_source(source, _describe(self.sample, PREPARED, source.name,
                                                         source.format), reading)
            frame.createOrReplaceTempView("custseg_raw")
            frame = self.spark.sql(prep.select("custseg_raw", list(frame.columns),
                                               source.types, text="STRING"))
        self._data = SparkInput(frame, prepared)
        return prepared

    def clean(self, source: Source, mapping: dict[str, str], config: Config) -> Audit:
        self._drop_lines()
        limit = config.spark_local_lines
        # The input's rows bound its distinct lines: within the limit, the lines go
        # straight to the driver; else they are counted first, and fetched if few enough.
        direct = 0 < source.rows <= limit
        audit, count = clean(self.spark, self.sample, self._data, mapping, config,
                             view=self.view, to_driver=direct)
        if direct:
            self.local, self.dialect = True, DUCKDB
        elif 0 < count <= limit:
            self._to_driver()
        return audit

    def _to_driver(self) -> None:
        """Fetch the classified lines into the driver's DuckDB and free Spark's cached copy."""
        lines = self.spark.table(self.view)
        _driver_table(self.sample, self.view, lines.toArrow())
        lines.unpersist()
        self.spark.catalog.dropTempView(self.view)
        self.local, self.dialect = True, DUCKDB

    def features(self, as_of: dt.date, has_products: bool, has_discounts: bool = False,
                 customers: str | None = None) -> pd.DataFrame:
        view = self.view
        if customers is not None:
            view = "custseg_lines_of"
            self._view(view, restricted_sql(self.view, customers))
        if self.local:
            return customer_features_table(self.sample, as_of, has_products, lines=view,
                                           has_discounts=has_discounts)
        return customer_features(self.spark, as_of, has_products, view=view,
                                 has_discounts=has_discounts)

    def _view(self, name: str, sql: str) -> None:
        """Temporary view ``name`` of ``sql``, where the lines are."""
        if self.local:
            self.sample.execute(f"CREATE OR REPLACE TEMP VIEW {q(name)} AS {sql}")
        else:
            self.spark.sql(sql).createOrReplaceTempView(name)

    def release(self) -> None:
        """Nothing to give back: the driver's DuckDB holds at most ``spark_local_lines``
        lines, and Spark's executors manage their own memory."""

    def query(self, sql: str) -> pd.DataFrame:
        if self.local:
            return self.sample.execute(sql).df()
        return _frame(self.spark.sql(sql).toArrow())

    def register(self, name: str, frame: pd.DataFrame) -> None:
        if self.local:
            register_table(self.sample, name, frame)
            return
        table = pa.Table.from_pandas(frame, preserve_index=False)
        self.spark.createDataFrame(table).createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        if self.local:
            drop_table(self.sample, name)
            return
        self.spark.catalog.dropTempView(name)

    def cluster_backend(self) -> MLlib:
        return MLlib(self.spark)

    def failure(self, exc: BaseException) -> CustsegError | None:
        return duckdb_failure(exc, self._data.source if self._data else None, self.config)

    def close(self) -> None:
        self._drop_lines()
        self.sample.close()

    def _drop_lines(self) -> None:
        if self.local:
            drop_table(self.sample, self.view)
            self.local, self.dialect = False, SPARK
        if self.spark.catalog.tableExists(self.view):
            self.spark.table(self.view).unpersist()
            self.spark.catalog.dropTempView(self.view)
