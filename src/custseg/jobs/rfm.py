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
from typing import TYPE_CHECKING, Any

import msgspec
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from msgspec import UNSET, UnsetType

from custseg.core import preload
from custseg.core import summary as sm
from custseg.core.config import Config
from custseg.core.exceptions import MappingError
from custseg.core.money import codes
from custseg.core.threads import config_threads
from custseg.core.version import __version__
from custseg.engines import Engine, open_engine
from custseg.engines.base import default_as_of, future_lines, without_purchase
from custseg.engines.duckdb import DuckDBEngine
from custseg.engines.lines import cohort_months, segment_lines
from custseg.io import Peek, Source, guess_from_values, peek, peek_source, resolve_mapping
from custseg.io._customers import customers_from_source, load_customers
from custseg.io._infer import Reading
from custseg.io._parse import q
from custseg.io._peek import PeekFailed
from custseg.io._readers import load_source
from custseg.io._reading import check_orders, looks_like_customer_table, reading_of
from custseg.outputs.report._png import start_deferred
from custseg.outputs.rundir import write_run
from custseg.prep import privacy
from custseg.prep.checks import customer_warnings, future_warning
from custseg.prep.cleaning import Audit
from custseg.prep.features import DISCOUNT_SHARE, FEATURES
from custseg.prep.rfm import (
    check_segment_map,
    fit_edges,
    rfm_scores,
    score_warnings,
    segment_summary,
)
from custseg.profile import lines as by_lines

if TYPE_CHECKING:
    from custseg.prep.predict import ValueModels

_ROUND = {"monetary": 2, "avg_order_value": 2, "avg_items_per_order": 3, "return_rate": 4,
          "discount_share": 4,
          "mean_days_between_orders": 2, "repeat_purchase_value": 2}


@dataclass
class RunResult:
    """What a job produced: its customers (one row each, with their features, scores and
    segments), the excluded customers and the summary."""

    customers: pd.DataFrame
    excluded: pd.DataFrame
    summary: sm.Summary
    out_dir: Path | None = None
    engine: Engine | None = None  # the engine of the run, open with keep_lines
    lines: bool = False  # the engine holds the cleaned order lines (table ``lines``)
    segmenter: Any = None  # the fitted Segmenter of custseg run
    id_salt: str | None = None  # with --hash-ids: outputs carry hashed customer ids
    parquet_from: int | None = None  # customers from which segments go to Parquet
    value_models: ValueModels | None = None  # the fitted value models (custseg score)

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
    """Time a stage of a job into ``timings`` (a stage entered twice adds up; the block
    may record its own time so far, as :func:`~custseg.outputs.rundir.write_run` does
    before it writes summary.json)."""
    if reporter:
        reporter(name, "start")
    prior = timings.get(name, 0.0)
    start = time.perf_counter()
    yield
    timings[name] = round(prior + time.perf_counter() - start, 3)
    if reporter:
        reporter(name, "done")


def waited(timings: dict[str, float]) -> None:
    """Wait for the libraries the command line imports beside the job
    (:mod:`custseg.core.preload`); the time waited is start-up (stage ``start``)."""
    seconds = preload.wait()
    if seconds:
        timings["start"] = round(timings.get("start", 0.0) + seconds, 3)


def start_timings(started: float | None) -> dict[str, float]:
    """A job's timings, with ``start`` (imports and start-up since ``started``, a
    ``time.perf_counter()`` the command line passes) when given."""
    return {} if started is None else {"start": round(time.perf_counter() - started, 3)}


#: An input file over this size starts the PNG renderers as the profiles begin, not at
#: once: its run is long enough for them to warm up then (see :func:`start_renderers`).
RENDERERS_LATER_BYTES = 256 * 2 ** 20


def start_renderers(config: Config, out_dir: str | Path | None, input: Any = None) -> None:
    """Start the report's PNG renderers when the job will write figures: they warm up
    while it computes (:mod:`custseg.outputs.report._png`); for an input file over
    :data:`RENDERERS_LATER_BYTES`, when its profiles begin. For the command line, one job
    a process; a library call (a notebook, the dashboard's sessions) renders as before."""
    if out_dir is not None and config.report and config.figures:
        from custseg.core.threads import cores
        from custseg.outputs.report._png import start_ahead

        later = config.engine == "spark" or (
            isinstance(input, (str, Path)) and Path(input).is_file()
            and Path(input).stat().st_size > RENDERERS_LATER_BYTES)
        start_ahead(min(2, config.threads or cores()), later=later)


@config_threads
def run_rfm(input: str | Path | list | None = None, *, out_dir: str | Path | None = None,
            customers: str | Path | None = None, config: Config | None = None,
            db: str | None = None, sql: str | None = None, frame: pd.DataFrame | None = None,
            reporter: Reporter | None = None, keep_lines: bool = False,
            started: float | None = None) -> RunResult:
    """Segment the customers of a transactions input with RFM.

    Reads ``input`` (a file, ``db`` + ``sql``, or a DataFrame ``frame``), cleans it with an
    audit, computes the customer features and RFM segments, and writes ``segments.csv``,
    ``excluded_customers.csv`` and ``summary.json`` to ``out_dir`` when given (all at once:
    a failed run leaves no folder behind). With ``keep_lines`` the engine holding the
    cleaned ``lines`` table stays open as ``result.engine`` (close it). ``started`` (a
    ``time.perf_counter()``) times the start-up before the job as stage ``start``.
    """
    config = config or Config()
    check_segment_map(config.rfm_map)
    # a library call's libraries load beside its cleaning too (a command line's: started)
    preload.start(command_line=False, report=out_dir is not None and config.report,
                  clustering=False)
    engine = open_engine(config)  # a Spark session starting: part of the start-up
    timings = start_timings(started)
    with closed_on_error(engine):
        source, reading = read_input(engine, input, config, timings, reporter, db=db, sql=sql,
                                     frame=frame)
        if reading is None:
            raise CustomerTableInput(_table_message(source, config))
        result = rfm_of(engine, source, reading, config, timings, reporter,
                        customers=customers)
        if not keep_lines:  # custseg run profiles its own segments instead
            with _stage("profile", timings, reporter):
                start_deferred()  # the PNG renderers of a long run, if it deferred them
                from custseg.profile.priorities import (  # SciPy: when used
                    first_actions,
                    group_facts,
                )

                _profile_rfm(engine, result, config)
                result.summary.first_actions = first_actions(
                    result.summary, group_facts(result.customers, "rfm_segment"))
    if keep_lines:
        result.engine = engine
    else:
        with _stage("teardown", timings, reporter):
            engine.close()
    if out_dir is not None:
        with _stage("write", timings, reporter):
            from custseg.jobs.value import with_backtest

            write_run(result, Path(out_dir),
                      extra=with_backtest(result.summary, _report(result, config)))
        result.out_dir = Path(out_dir)
    return result


@dataclass
class LineProfiles:
    """What the segments of a run buy and how their customers come back."""

    over: dict[Any, dict[str, list[sm.Item]]]  # segment -> kind -> listed items
    best: dict[Any, list[dict[str, Any]]]  # segment -> products with the most revenue
    months: pd.DataFrame  # customers and revenue per segment, cohort and month
    lift: sm.Lift
    cohorts: sm.Cohorts


def line_profiles(engine: Engine, labels: pd.DataFrame, mapping: dict[str, str],
                  config: Config, as_of: dt.date, names: dict[Any, str],
                  attributes: list[str] = ()) -> LineProfiles:
    """Lift, best-sellers, trend and cohorts of the segments of ``labels`` (customer_id,
    segment, tenure), computed by the engine over its lines; ``names``: segment -> name;
    ``attributes``: the line attributes the lines keep."""
    s = config.profile
    labels = labels[["customer_id", "segment"]].assign(
        cohort=cohort_months(labels["tenure"], as_of))
    found = segment_lines(engine, labels, mapping, s, attributes)
    over = {seg: {kind: [sm.Item(**i) for i in items] for kind, items in kinds.items()}
            for seg, kinds in by_lines.over_represented(found.items).items()}
    columns = {"products": (f"{mapping['description']} (by {mapping['product_id']})"
                            if {"description", "product_id"} <= set(mapping)
                            else mapping.get("product_id") or mapping.get("description")),
               "categories": mapping.get("category"), "countries": mapping.get("country"),
               **{a: a for a in attributes}}
    kinds = dict.fromkeys(found.items["kind"])
    cohorts = by_lines.cohort_retention(
        found.months, as_of=as_of, max_cohorts=s.cohort_months,
        names=names if s.cohorts_by_segment else None)
    return LineProfiles(
        over=over, best=by_lines.best_sellers(found.items),
        months=found.months,
        lift=sm.Lift(min_support=s.min_support, min_buyers=s.min_buyers, min_lift=s.min_lift,
                     columns={k: str(columns[k]) for k in kinds}),
        cohorts=sm.Cohorts(**{**cohorts, "rows": [sm.CohortRow(**r)
                                                   for r in cohorts["rows"]]}))


@contextmanager
def closed_on_error(engine: Engine) -> Iterator[None]:
    """Close the engine when the block fails, and give the engine's own errors (out of
    memory, a damaged file) as one line."""
    try:
        yield
    except BaseException as exc:
        engine.close()
        error = engine.failure(exc)
        if error is not None:
            raise error from None
        raise


def rfm_of(engine: Engine, source: Source, reading: Reading, config: Config,
           timings: dict[str, float], reporter: Reporter | None = None,
           customers: str | Path | None = None) -> RunResult:
    """Clean, features and RFM of the order lines read as ``source`` (its columns read
    as ``reading`` says)."""
    mapping = reading.mapping

    segment_map = config.rfm_map
    backtest = sm.UNSET
    if config.clv.enabled and config.clv.backtest_split:
        from custseg.jobs.value import backtest_on

        with _stage("backtest", timings, reporter):
            backtest = backtest_on(engine, source, mapping, config,
                                   dt.date.fromisoformat(config.clv.backtest_split))
    preload.go()  # DuckDB's work from here: the libraries load beside it
    with _stage("clean", timings, reporter):
        audit = engine.clean(source, mapping, config)
        if not config.as_of:
            config, audit = _ignore_future(engine, source, mapping, config, audit)
        audit.warnings[:0] = reading.warnings
    with _stage("features", timings, reporter):
        as_of = (dt.date.fromisoformat(config.as_of) if config.as_of
                 else default_as_of(engine))
        feats = engine.features(as_of, "product_id" in mapping,
                                has_discounts=bool({"discount", "coupon"} & set(mapping)))
        excluded = without_purchase(engine, feats)
    waited(timings)  # what follows may use scikit-learn and SciPy
    from custseg.jobs.value import at_risk_of, past_of, predict_value, values_by

    customer_info = None
    if customers is not None:
        with _stage("customer_table", timings, reporter):
            table, info = load_customers(engine.sample, customers, config, row_ids=False)
            if source.customer_attributes:
                audit.notes["customer_attributes"] = (
                    f"{', '.join(source.customer_attributes)}: the same on every line of a "
                    "customer, but not used: --customers gives the customer table")
            feats, excluded, customer_info = _join_customers(feats, excluded, table, info)
    elif source.customer_attributes:
        with _stage("customer_table", timings, reporter):
            table, info = _line_customers(engine, source, config)
            feats, excluded, customer_info = _join_customers(feats, excluded, table, info)
    with _stage("rfm", timings, reporter):
        edges = fit_edges(feats)
        scored = rfm_scores(feats, edges, segment_map)
        audit.warnings.extend(score_warnings(feats, scored))
        audit.warnings.extend(customer_warnings(feats, mapping["customer_id"],
                                                hide_ids=config.hash_ids,
                                                quote_ids=reading.personal_key is None))
        segments_summary = segment_summary(scored, segment_map)
        scored = _rounded(scored)  # before the value models, which custseg score re-applies
    value, models, by_segment = sm.UNSET, None, {}
    if config.clv.enabled:
        with _stage("holdout", timings, reporter):
            start_deferred(early=True)  # the PNG renderers the cleaning would have slowed
            past = past_of(engine, feats, as_of, config, "product_id" in mapping,
                           bool({"discount", "coupon"} & set(mapping)))
    engine.release()  # the passes over every line are done
    if config.clv.enabled:
        with _stage("value", timings, reporter):
            scored, value, models = predict_value(scored, config, past, as_of)
            audit.warnings.extend(value.warnings)
            if backtest:
                audit.warnings.extend(f"Backtest: {w}" for w in backtest.warnings)
            if value.fitted:
                by_segment = values_by(scored, "rfm_segment", at_risk_of(value))
    with _stage("lifecycle", timings, reporter):
        scored, lifecycle = with_stages(scored, config, value)
    currency = currency_for(config, reading.currency, reading.currency_from)
    summary = sm.RfmSummary(
        custseg_version=__version__,
        input=sm.Input(path=source.name, rows=source.rows + source.rejected,
                       format=source.format, **source.details),
        mapping=mapping,
        roles=msgspec.convert(reading.to_dict(), sm.Roles),
        currency=currency,
        engine=engine.describe(),
        audit=sm.Audit(**audit.to_dict()),
        customers=int(len(scored)),
        excluded_customers={k: int(v) for k, v in excluded["reason"].value_counts()
                            .sort_index().items()},
        as_of=as_of.isoformat(),
        features={f.name: f.description for f in FEATURES
                  + ((DISCOUNT_SHARE,) if "discount_share" in scored else ())},
        rfm_edges=edges,
        rfm_segments=[sm.RfmSegment(**row, value=by_segment.get(row["name"], sm.UNSET),
                                    actions=_rfm_actions(row["name"], by_segment, config,
                                                         value, currency or None))
                      for row in segments_summary],
        timings_s=timings,  # summary.json gets the write stage so far (write_run)
        customer_table=sm.UNSET if customer_info is None else customer_info,
        columns=sm.UNSET if customer_info is None else customer_info["columns"],
        customer_ids=privacy.DESCRIPTION if config.hash_ids else sm.UNSET,
        clv=value, backtest=backtest, lifecycle=lifecycle)
    return RunResult(customers=scored, excluded=excluded, summary=summary,
                     id_salt=privacy.salt_for(config), parquet_from=engine.parquet_from,
                     lines=True, value_models=models)


def with_stages(scored: pd.DataFrame, config: Config, value: sm.Clv | UnsetType
                ) -> tuple[pd.DataFrame, sm.Lifecycle]:
    """The customers with their lifecycle ``stage`` and ``stage_reason``, and the
    ``lifecycle`` block; at risk only by a churn risk that passed the holdout."""
    from custseg.jobs.value import at_risk_of
    from custseg.prep.lifecycle import stage_table, stages, typical_gaps

    rule = at_risk_of(value) if value is not UNSET and value.fitted else None
    found = stages(scored, config.lifecycle, rule.mask(scored) if rule else None)
    out = pd.concat([scored, found], axis=1)
    c = config.lifecycle
    gaps, median = typical_gaps(scored)
    return out, sm.Lifecycle(
        stages=[sm.StageRow(**row) for row in stage_table(out, gaps)],
        repeat_gap_days=round(median, 1) if median is not None else None,
        active_gaps=c.active_gaps, lapsed_gaps=c.lapsed_gaps,
        reactivated_gaps=c.reactivated_gaps, at_risk_by=rule.words if rule else None)


def _report(result: RunResult, config: Config) -> Callable[[Path], None] | None:
    """The writer of report.html and figures/ into a run folder (None: --no-report)."""
    if not config.report:
        return None

    def write(folder: Path) -> None:
        from custseg.outputs.report import render_report

        render_report(result.summary, result.customers, folder, figures=config.figures)
    return write


def _profile_rfm(engine: Engine, result: RunResult, config: Config) -> None:
    """What each named RFM segment buys and the cohorts, into the summary."""
    summary = result.summary
    labels = result.customers[["customer_id", "rfm_segment", "tenure"]].rename(
        columns={"rfm_segment": "segment"})
    labels["segment"] = labels["segment"].astype(str)
    names = {row.name: row.name for row in summary.rfm_segments}
    found = line_profiles(engine, labels, summary.mapping, config,
                          dt.date.fromisoformat(summary.as_of), names,
                          line_attributes(summary))
    for row in summary.rfm_segments:
        if row.customers:
            row.over_represented = found.over.get(row.name, {})
    summary.lift, summary.cohorts = found.lift, found.cohorts


def _rfm_actions(name: str, values: dict[str, sm.SegmentValue], config: Config,
                 value_block: sm.Clv, currency: sm.Currency | None = None) -> list[str]:
    """A named RFM segment's actions, with the win-back one its at-risk customers call for."""
    from custseg.jobs.value import at_risk_of, with_value_action

    actions = config.rfm_action_map.get(name) or [
        f"No actions are configured for {name!r}: set them with the config key rfm_actions."]
    value = values.get(name)
    if value is None:
        return list(actions)
    return with_value_action(list(actions), value, at_risk_of(value_block),
                             currency=currency and currency.code)


def _ignore_future(engine: Engine, source: Source, mapping: dict[str, str], config: Config,
                   audit: Audit) -> tuple[Config, Audit]:
    """Without --as-of, lines dated after today (a typo, a wrong clock) would set the
    snapshot date: clean again with the day after the last line up to today, and say so."""
    today = dt.date.today()
    as_of, count, first = future_lines(engine, today)
    if not count:
        return config, audit
    if as_of is not None:
        config = config.replace(as_of=as_of.isoformat())
        audit = engine.clean(source, mapping, config)
    audit.warnings.append(future_warning(source.name, today, as_of, count, first))
    return config, audit


def currency_for(config: Config, found: str | None, read_from: str
                 ) -> sm.Currency | sm.UnsetType:
    """The currency written with amounts: the config's (``none``: no currency), else the
    one the data names."""
    given = (config.currency or "").strip()
    if given.lower() == "none":
        return sm.UNSET
    if given:
        return sm.Currency(code=given.upper() if given.upper() in codes() else given,
                           read_from="the config (currency)")
    return sm.Currency(code=found, read_from=read_from) if found else sm.UNSET


def currency_code(summary) -> str | None:
    """The code (or sign) of the currency a run's amounts are in; None when unknown."""
    found = summary.get("currency")
    return found.code if found else None


def read_input(engine: Engine, input, config: Config, timings: dict[str, float],
               reporter: Reporter | None = None, **other: Any
               ) -> tuple[Source, Reading | None]:
    """The "read" stage: the input read by the engine, prepared as its reading says (an
    export format's order fields carried down, ...), and the reading of its columns
    (None: it is a customer table, see :func:`input_kind`).

    A local file is first sampled (:func:`~custseg.io.peek`) and its columns read on the
    sample, so that a mapping error comes before the file is read whole."""
    with _stage("read", timings, reporter):
        look, known = _peek(input, other, config)
        kind = reading = None
        if look is not None:
            kind, reading = known or input_kind(engine.sample, look, config)
        source = engine.read(input, **other)
        if look is None:
            look = peek_source(engine.sample, source)
            person = source.details.get("tables", {}).get("person_key")
            if person and "customer_id" not in config.mapping:  # the person is the customer
                config = config.replace(mapping={**config.mapping, "customer_id": person})
            kind, reading = input_kind(engine.sample, look, config)
        if kind == "table":
            return source, None
        missing = [c for c in reading.mapping.values() if c not in source.columns]
        if missing:  # the sample's names are the engine's: a bug if this happens
            raise MappingError(f"{source.name}: column {missing[0]!r} was read from a sample "
                               "but is not in the input; name the columns with --map.")
        return engine.prepare(source, reading), reading


def _peek(input, other: dict[str, Any], config: Config
          ) -> tuple[Peek | None, tuple[str, Reading | None] | None]:
    """A sample of a local file (None: a database, a DataFrame or a cluster path, sampled
    once the engine has read it) and its :func:`input_kind` when known: the sample and
    the reading :func:`check_columns` took of the same file and config, when it did."""
    if input is None or other.get("frame") is not None or other.get("db") \
            or isinstance(input, (list, tuple)):
        return None, None
    if "://" in str(input) or not Path(str(input)).exists():
        return None, None
    kept = _checked.pop(_peek_key(input, config), None)
    if kept is not None:
        return kept
    try:
        return peek(Path(str(input)), config), None
    except PeekFailed:  # the whole read says what is wrong
        return None, None


#: The sample :func:`check_columns` took and its reading, for the run that follows.
_checked: dict[tuple, tuple[Peek, tuple[str, Reading | None]]] = {}


def _peek_key(input, config: Config) -> tuple:
    """The same file, unchanged, sampled under the same config."""
    path = Path(str(input)).resolve()
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size, repr(config)


def check_columns(input, config: Config) -> None:
    """Raise, from a sample of a local file, the mapping error reading it would end in, so
    that ``custseg run`` says it before it loads the clustering libraries (about a second).
    Nothing for a database, a cluster path or columns that read well."""
    look, _ = _peek(input, {"db": config.db}, config)
    if look is None:
        return
    from custseg.engines.duckdb import connect

    con = connect(config)
    try:
        kind = input_kind(con, look, config)
    finally:
        con.close()
    _checked.clear()
    _checked[_peek_key(input, config)] = look, kind


def input_kind(con, look: Peek, config: Config) -> tuple[str, Reading | None]:
    """"table" (one row per customer) or "orders" (order lines) and, for order lines, the
    reading of their columns: ``config.input_kind``, or detected: a customer table has no
    order date and a column different on every row named as an id. Order lines whose
    roles cannot be read, or are ambiguous, stop here with one line."""
    if config.input_kind == "table":
        return "table", None
    if look.details.get("header") is False:
        return "orders", _headerless_reading(look, config)
    reading = reading_of(look, config, con)
    if config.input_kind == "auto" and not config.mapping \
            and looks_like_customer_table(look, reading):
        return "table", None
    check_orders(reading, look)
    return "orders", reading


def _table_message(source: Source, config: Config) -> str:
    if config.input_kind == "table":
        return (f"{source.name} is a customer table (--input-kind table): RFM needs order "
                "lines. Use `custseg run` to segment it, or pass it with --customers next to "
                "a transactions file.")
    return (f"{source.name} looks like a customer table (one row per customer, no order "
            "date), not order lines: RFM needs transactions. Use `custseg run` to segment "
            "it, pass it with --customers next to a transactions file, or map the columns "
            "with --map.")


def _headerless_reading(look: Peek, config: Config) -> Reading:
    """A file without a header row: the fields named with --map, else read from the
    values (``id date quantity amount``, CDNOW's layout), with a warning naming them."""
    if config.mapping:
        reading = reading_of(look, config)
        check_orders(reading, look)
        return reading
    guessed = guess_from_values({c: look.frame[c].tolist() for c in look.frame.columns})
    if guessed is None:
        raise MappingError(
            f"{look.name} has no header row and its columns ({', '.join(look.columns)}) "
            "cannot be told apart from their values; name them, e.g. --map "
            "customer_id=column1 --map invoice_date=column2 --map amount=column4.")
    reading = reading_of(look, config.replace(mapping=guessed))
    reading.warnings.append(
        f"{look.name}: columns read from their values as "
        f"{', '.join(f'{f}={c}' for f, c in guessed.items())}; if that is wrong, name them "
        "with --map FIELD=COLUMN.")
    for f in guessed:
        reading.evidence[f].reason = "read from the values of a file without a header row"
    return reading


def line_attributes(summary: sm.Summary) -> list[str]:
    """The line attributes a run's lines keep (``line_attr_i``), in order."""
    roles = summary.get("roles")
    return list(roles.line_attributes) if roles else []


class CustomerTableInput(MappingError):
    """The input is a customer table (one row per customer), not order lines."""


def _line_customers(engine: Engine, source: Source, config: Config
                    ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The customer table made of the columns the same on every line of a customer
    (gender, age, city in a till's lines), read as a customer table is: a role for every
    column. Each customer gets the value of their purchase lines (the least, should a
    line differ)."""
    cols = source.customer_attributes
    picked = ", ".join(f"min(cust_attr_{i}) AS cust_attr_{i}" for i in range(1, len(cols) + 1))
    table = engine.query(f"SELECT customer_id, {picked} FROM lines WHERE status = 'purchase' "
                         "GROUP BY customer_id ORDER BY customer_id")
    table.columns = ["customer_id", *cols]
    con = engine.sample.cursor()  # the engine's connection may hold a result (Spark's)
    try:
        found = load_source(con, frame=table, relation="customers_raw")
        found.name = f"{source.name} (customer attributes of its lines)"
        return customers_from_source(con, found, config.replace(customers_key="customer_id"),
                                     row_ids=False)
    finally:
        con.close()


def _join_customers(feats: pd.DataFrame, excluded: pd.DataFrame, table: pd.DataFrame,
                    info: dict[str, Any]):
    """Left-join the customer table to the customer features; its columns keep their roles
    (``info["columns"]``, under their names in the joined table)."""
    clash = [c for c in table.columns if c != "customer_id" and c in feats.columns]
    renamed = {c: f"{c}_customer" for c in clash}
    table = table.rename(columns=renamed)
    info["columns"] = {renamed.get(c, c): ({**v, "column_in_file": c} if c in renamed else v)
                       for c, v in info["columns"].items()}
    for key in ("numeric", "categorical", "usable_columns"):
        info[key] = [renamed.get(c, c) for c in info[key]]
    # Arrow's is_in: Python sets of 5M text ids take 16 s, these 5 s (both keyed by text)
    ids_t, ids_c, gone = (pa.array(f["customer_id"], type=pa.string())
                          for f in (feats, table, excluded))
    both = pc.sum(pc.is_in(ids_t, value_set=ids_c)).as_py() or 0
    in_c = pc.is_in(ids_c, value_set=ids_t)
    info["join"] = {"both": both, "transactions_only": len(ids_t) - both,
                    "customer_table_only": len(ids_c) - (pc.sum(in_c).as_py() or 0)}
    only_c = pc.filter(ids_c, pc.invert(in_c))
    only_table = sorted(pc.filter(only_c, pc.invert(pc.is_in(only_c, value_set=gone)))
                        .to_pylist())
    extra = pd.DataFrame({"customer_id": only_table, "reason": "no_transactions"})
    excluded = pd.concat([excluded, extra], ignore_index=True).sort_values(
        "customer_id", kind="stable").reset_index(drop=True)
    feats = feats.merge(table, on="customer_id", how="left", validate="one_to_one")
    return feats, excluded, info


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy(deep=False)  # copy-on-write: the caller's frame is left as is
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
    engine = DuckDBEngine(config)
    try:
        source = engine.read(input, db=db, sql=sql)
        return engine.query(f"SELECT * FROM {q(source.relation)}")
    finally:
        engine.close()


def map_columns(columns: pd.DataFrame | list[str], overrides: dict[str, str] | None = None
                ) -> dict[str, str]:
    """Canonical field -> column for a table (or a list of column names)."""
    cols = list(columns.columns) if isinstance(columns, pd.DataFrame) else list(columns)
    return resolve_mapping(cols, overrides)


def clean(raw: pd.DataFrame, mapping: dict[str, str] | None = None,
          config: Config | None = None) -> tuple[pd.DataFrame, Audit]:
    """Parse and classify every row of a raw order-line table.

    Returns one row per distinct input line with canonical columns, ``n`` (copies in the
    input) and ``status`` (``purchase`` or the drop reason), and the :class:`Audit`. The
    columns are read as :func:`run_rfm` reads them (``mapping`` names any of them).
    """
    config = config or Config()
    if mapping is not None:
        config = config.replace(mapping={**config.mapping, **mapping})
    engine = DuckDBEngine(config)
    try:
        source, reading = read_input(engine, None, config, {}, frame=raw)
        if reading is None:
            raise CustomerTableInput(_table_message(source, config))
        audit = engine.clean(source, reading.mapping, config)
        lines = engine.query("SELECT * FROM lines ORDER BY customer_id, invoice_date, "
                             "invoice_id, product_id, quantity, value")
        return lines, audit
    finally:
        engine.close()


def customer_features(lines: pd.DataFrame, as_of: str | dt.date | None = None) -> pd.DataFrame:
    """Customer feature table from the output of :func:`clean`, sorted by customer id."""
    engine = DuckDBEngine()
    try:
        engine.register("lines_frame", lines)
        engine.sample.execute("CREATE TABLE lines AS SELECT * FROM lines_frame")
        day = (dt.date.fromisoformat(as_of) if isinstance(as_of, str)
               else as_of or default_as_of(engine))
        return engine.features(day, bool(lines["product_id"].notna().any()))
    finally:
        engine.close()
