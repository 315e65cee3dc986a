"""The ``custseg`` command: thin commands over the library.

Bad input ends in one line on stderr naming the problem and the fix, exit code 1.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from inspect import Parameter, Signature, signature
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

import custseg
from custseg.core.config import SETTINGS, Config
from custseg.core.exceptions import CustsegError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Customer segments from raw sales records.")
err = Console(stderr=True)
out = Console()

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="TOML or JSON config file (keys: docs/guide/configuration.md).",
    dir_okay=False)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
InputArg = Annotated[list[str] | None, typer.Argument(
    help="Order lines or a customer table: CSV/TSV/delimited text, .xlsx, Parquet file or "
         "folder; or several tables of one shop (orders, order items, customers), joined "
         "by their keys.", show_default=False)]
#: Config keys read by rfm, run and compare, and the clustering keys of run and compare.
READ_KEYS = ("customers", "mapping", "as_of", "start_date", "dayfirst", "sheet", "delimiter",
             "encoding", "db", "sql", "engine", "spark_master", "threads")
CLUSTER_KEYS = tuple(f"clustering.{k}" for k in ("k", "k_range", "seed", "features", "skew",
                                                  "scaler", "k_sample"))
#: Config keys of the value models (CLV) of rfm and run.
CLV_KEYS = tuple(f"clv.{k}" for k in ("enabled", "horizon", "discount_rate", "churn_threshold",
                                      "model", "backtest_split"))
#: Config keys of the report of rfm and run.
REPORT_KEYS = ("report", "figures", "profile.cohorts_by_segment")


def _input(given: list[str] | None) -> str | list[str] | None:
    """One input path, several (tables to join), or none (--db/--sql)."""
    if not given:
        return None
    return given[0] if len(given) == 1 else list(given)


def _start_ahead(config: Config) -> None:
    """With engine spark, start the session now: its JVM starts while the job's modules
    load."""
    if config.engine == "spark":
        from custseg.engines.spark import start_ahead

        start_ahead(config)


def _option(key: str) -> Any:
    """The typer option of a declared key: its flag, help and default in words. typer's own
    default is None, meaning "not given", so the config file's value stays."""
    s = SETTINGS[key]
    shown = s.shown if s.shown is not None or s.default in (None, {}) else s.default_words
    words = f" {s.allowed[0].upper()}{s.allowed[1:]}." if s.allowed.startswith("one of") else ""
    return Annotated[s.cli | None, typer.Option(
        s.flag, help=s.help + words, metavar=s.metavar, envvar=s.envvar, show_envvar=bool(s.envvar),
        show_default=shown or False)]


def _given(key: str, value: Any) -> Any:
    """A flag's value as the key's value; None when the flag was not given."""
    if value is None or value == []:
        return None
    parse = SETTINGS[key].parse
    return parse(value) if parse else value


def _configured(*keys: str) -> Callable:
    """Give a command one option per config key (and ``--config``) in place of its
    ``config`` parameter, which then receives the config: defaults < file < flags."""
    names = {key.replace(".", "__"): key for key in keys}

    def decorate(func: Callable) -> Callable:
        params = []
        for p in signature(func, eval_str=True).parameters.values():
            if p.name != "config":
                params.append(p)
                continue
            params += [Parameter(name, Parameter.KEYWORD_ONLY, default=None,
                                         annotation=_option(key))
                       for name, key in names.items()]
            params.append(Parameter("config_file", Parameter.KEYWORD_ONLY,
                                            default=None, annotation=ConfigOpt))

        def command(**kwargs: Any) -> Any:
            config_file = kwargs.pop("config_file")
            config = Config.from_file(config_file) if config_file else Config()
            config = config.overridden({key: _given(key, kwargs.pop(name))
                                        for name, key in names.items()})
            return func(config=config, **kwargs)

        command.__name__, command.__doc__ = func.__name__, func.__doc__
        command.__signature__ = Signature(params)  # type: ignore[attr-defined]
        return command

    return decorate


class _Reporter:
    """Rich progress, one line per stage, only on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                 TimeElapsedColumn(), console=err, transient=False)
        self.enabled = enabled
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> _Reporter:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.stop()

    def __call__(self, stage: str, event: str) -> None:
        if not self.enabled:
            return
        if event == "start":
            if stage not in self.tasks:  # a stage may be entered again
                self.tasks[stage] = self.progress.add_task(stage, total=1)
        else:
            self.progress.update(self.tasks[stage], completed=1)


def _print_audit(s: dict) -> None:
    audit = s["audit"]
    dropped = ", ".join(f"{k} {v:,}" for k, v in audit["dropped"].items() if v) or "none"
    when = f" as of {s['as_of']}" if "as_of" in s else ""
    out.print(f"{s['customers']:,} customers{when} from {audit['rows_in']:,} rows "
              f"({audit['rows_used']:,} used; dropped: {dropped}).")


def _print_warnings(s: dict) -> None:
    for warning in s["audit"]["warnings"]:
        out.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)


@app.command()
@_configured("out", *READ_KEYS, *CLV_KEYS, *REPORT_KEYS, "hash_ids", "salt", "input_kind")
def rfm(input: InputArg = None, *, config: Config, quiet: QuietOpt = False) -> None:
    """RFM segments: writes OUT/segments.csv, OUT/summary.json, OUT/excluded_customers.csv
    and the report OUT/report.html."""
    _start_ahead(config)
    from custseg.core import preload
    from custseg.core.money import money
    from custseg.jobs.rfm import currency_code, run_rfm, start_renderers

    preload.docs_as_written()  # before a backtest's value models load SciPy
    preload.start(report=config.report, clustering=False)  # beside the job's cleaning

    out_dir = Path(config.out)
    start_renderers(config, out_dir, _input(input))
    with _Reporter(enabled=not quiet and err.is_terminal) as reporter:
        result = run_rfm(_input(input), out_dir=out_dir, customers=config.customers,
                         config=config,
                         started=custseg.STARTED,
                         db=config.db, sql=config.sql, reporter=reporter)
    if quiet:
        return
    s = result.summary
    _print_audit(s)
    _print_first_actions(s, out_dir)
    table = Table("segment", "customers", "share", "revenue share", "mean recency",
                  "mean frequency", "mean monetary", title="RFM segments")
    for seg in s["rfm_segments"]:
        if seg["customers"]:
            table.add_row(seg["name"], f"{seg['customers']:,}", f"{seg['share']:.1%}",
                          f"{seg['revenue_share']:.1%}", f"{seg['mean_recency']:.0f}",
                          f"{seg['mean_frequency']:.1f}",
                          money(seg["mean_monetary"], currency_code(s), cents=True))
    out.print(table)
    _print_warnings(s)
    report = f" and the report {out_dir / 'report.html'}" if config.report else ""
    out.print(f"Wrote {out_dir / 'segments.csv'}, {out_dir / 'summary.json'}, "
              f"{out_dir / 'excluded_customers.csv'}{report}.")


@app.command()
@_configured("out", "clustering.algorithm", "clustering.strategy", *CLUSTER_KEYS,
             "clustering.linkage",
             "clustering.options", "clustering.compare", "cluster_on", "input_kind",
             "dictionary",
             *READ_KEYS, *CLV_KEYS, *REPORT_KEYS, "hash_ids", "salt")
def run(input: InputArg = None, *, config: Config, quiet: QuietOpt = False) -> None:
    """Segments by clustering (after RFM for order lines; a customer table alone works too)."""
    from custseg.jobs.rfm import check_columns, start_renderers

    check_columns(_input(input), config)  # a mapping error before scikit-learn loads
    out_dir = Path(config.out)
    _start_ahead(config)
    start_renderers(config, out_dir, _input(input))  # they warm up while imports run
    from custseg.core import preload
    from custseg.jobs.run import run_segments

    preload.start(report=config.report)  # scikit-learn loads while the job cleans
    with _Reporter(enabled=not quiet and err.is_terminal) as reporter:
        result = run_segments(_input(input), out_dir=out_dir, customers=config.customers,
                              started=custseg.STARTED,
                              config=config, db=config.db, sql=config.sql, reporter=reporter)
    if quiet:
        return
    s = result.summary
    _print_audit(s)
    _print_first_actions(s, out_dir)
    if s.get("k_selection"):
        out.print(s["k_selection"]["reason"], highlight=False)
    m = s["metrics"]
    out.print(f"{s['algorithm']}: {s['k']} segments; silhouette {m['silhouette']}, "
              f"Calinski-Harabasz {m['calinski_harabasz']}, Davies-Bouldin "
              f"{m['davies_bouldin']}, stability (ARI) {m['stability_ari']}.", highlight=False)
    table = Table("#", "segment", "description", "first action", title="Segments")
    for seg in s["segments"]:
        table.add_row(str(seg["id"]), seg["name"], seg["description"], seg["actions"][0])
    out.print(table)
    _print_warnings(s)
    report = f" and the report {out_dir / 'report.html'}" if config.report else ""
    out.print(f"Wrote {out_dir / 'segments.csv'}, {out_dir / 'summary.json'}{report}.")


def _print_first_actions(s, out_dir: Path) -> None:
    """What to do first: the actions with the most money at stake, each audience's
    command (to copy, so never wrapped) and the ranking rule."""
    from custseg.core.money import money
    from custseg.profile.priorities import HOLDOUT, in_folder

    first = s.get("first_actions")
    if first is None:
        return
    currency = s.currency.code if s.get("currency") else None
    if first.actions:
        table = Table(title="What to do first")
        for name in ("#", "segment", "customers", "value at stake", "action"):
            table.add_column(name, justify="right" if name in ("#", "customers") else "left")
        for i, a in enumerate(first.actions, start=1):
            which = f" (#{a.segment})" if isinstance(a.segment, int) else ""
            table.add_row(str(i), escape(f"{a.name}{which}"), f"{a.customers:,}",
                          escape(f"{money(a.stake, currency)}: {a.stake_words}"),
                          escape(a.action))
        out.print(table)
        out.print(f"Their audience files ({HOLDOUT} held out to measure the campaign):",
                  highlight=False)
        for i, a in enumerate(first.actions, start=1):
            out.print(f"  {i}. {escape(in_folder(a.audience, str(out_dir)))}",
                      highlight=False, soft_wrap=True)
    else:
        out.print("What to do first: no segment has money at stake by the rule below.",
                  highlight=False)
    out.print(escape(first.rule), highlight=False)


@app.command()
@_configured("backtest.split", "backtest.out", "clv.model", "mapping", "as_of", "dayfirst",
             "sheet", "delimiter", "encoding", "db", "sql", "engine", "spark_master")
def backtest(input: InputArg = None, *, config: Config, quiet: QuietOpt = False) -> None:
    """Check the value models: fitted before --split, compared with the orders after it."""
    from custseg.core.preload import docs_as_written
    from custseg.jobs.backtest import backtest as run_backtest

    docs_as_written()  # before the value models load SciPy

    out_dir = Path(config.backtest.out)
    with _Reporter(enabled=not quiet and err.is_terminal) as reporter:
        b = run_backtest(_input(input), out_dir=out_dir, config=config, db=config.db,
                         sql=config.sql,
                         reporter=reporter)
    if quiet:
        return
    out.print(f"Calibrated on {b.customers:,} customers before {b.split}; holdout "
              f"{b.horizon_days} days to {b.end}.", highlight=False)
    if b.fitted:
        off = b.predicted_orders / max(b.actual_orders, 1) - 1
        out.print(f"Repeat purchases in the holdout: predicted {b.predicted_orders:,.0f}, "
                  f"actual {b.actual_orders:,} ({off:+.1%}); MAE per customer {b.mae}; AUC "
                  f"for buying again {b.auc} (frequency / tenure: {b.baseline_auc}).",
                  highlight=False)
    for warning in b.warnings:
        out.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    out.print(f"Wrote {out_dir / 'backtest.json'} and {out_dir / 'calibration.png'}.")


@app.command()
@_configured("compare.out", *CLUSTER_KEYS, "cluster_on", "input_kind", *READ_KEYS)
def compare(input: InputArg = None, *, config: Config, quiet: QuietOpt = False) -> None:
    """Run every algorithm, rank them, recommend one: writes OUT/comparison.csv."""
    from custseg.core.preload import docs_as_written
    from custseg.jobs.run import compare_algorithms

    docs_as_written()  # before the clustering loads SciPy

    out_dir = Path(config.compare.out)
    with _Reporter(enabled=not quiet and err.is_terminal) as reporter:
        table, recommendation = compare_algorithms(
            _input(input), out_dir=out_dir, customers=config.customers, config=config, db=config.db,
            sql=config.sql, reporter=reporter)
    if quiet:
        return
    shown = Table(*table.columns[:8], title="Algorithms, best first")
    for row in table.itertuples(index=False):
        shown.add_row(*["" if pd.isna(v) else str(v) for v in list(row)[:8]])
    out.print(shown)
    out.print(recommendation, highlight=False)
    out.print(f"Wrote {out_dir / 'comparison.csv'}.")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Output folder of a finished `custseg run`.")],
    quiet: QuietOpt = False,
) -> None:
    """Render DIR/report.html and DIR/figures/*.png again from the run's outputs."""
    from custseg.outputs.report import rerender

    path = rerender(run_dir)
    if not quiet:
        out.print(f"Wrote {path} and {path.parent / 'figures'}.")


@app.command()
@_configured("score.out", "mapping", "as_of", "sheet", "delimiter", "encoding", "db", "sql",
             "hash_ids", "salt")
def score(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="model.json of a run.")],
    input: InputArg = None, *, config: Config, quiet: QuietOpt = False,
) -> None:
    """Segments of new customers under a saved model (no refitting)."""
    from custseg.jobs.score import SavedModel
    from custseg.outputs.rundir import atomic_file
    from custseg.prep.privacy import hashed_table, salt_for

    out_file = Path(config.score.out)
    model = SavedModel.load(model_path)
    # --as-of is the snapshot of the order lines scored, not a setting of the reader
    table = model.predict(_input(input), config=dataclasses.replace(config, as_of=None),
                          as_of=config.as_of)
    if config.hash_ids:
        table = hashed_table(table, salt_for(config))
    with atomic_file(out_file) as tmp:
        table.to_csv(tmp, index=False)
    if not quiet:
        counts = table["segment_name"].value_counts()
        out.print(f"Scored {len(table):,} customers: "
                  + ", ".join(f"{n} {c:,}" for n, c in counts.items()) + f". Wrote {out_file}.")


@app.command()
@_configured("track.out", "track.by", "track.model")
def track(
    old_dir: Annotated[Path, typer.Argument(help="Older snapshot (a run or rfm --out folder).")],
    new_dir: Annotated[Path, typer.Argument(help="Newer snapshot.")],
    *, config: Config, quiet: QuietOpt = False,
) -> None:
    """Segment migration between two snapshots: matrix, shares, movers, track.html."""
    from custseg.outputs.track import track as run_track

    out_dir = Path(config.track.out)
    info = run_track(old_dir, new_dir, out_dir, by=config.track.by, model=config.track.model)
    if not quiet:
        out.print(f"{info['customers']:,} customers, {info['movers']:,} changed segment.")
        for line in info["top_movements"]:
            out.print(f"  {escape(line)}", highlight=False)
        out.print(f"Wrote {out_dir / 'migration_matrix.csv'}, migration_share.csv, movers.csv "
                  "and track.html.")


@app.command()
@_configured("campaign.holdout", "campaign.seed", "campaign.start", "campaign.window_days")
def export(
    run_dir: Annotated[Path, typer.Argument(help="Output folder of a `custseg run` or `rfm`.")],
    segment: Annotated[list[str], typer.Option(
        help="A segment's name or id (repeatable); RFM segment names for an rfm folder.")],
    out_file: Annotated[Path, typer.Option("--out", help="File to write (the target group "
                                           "when a share is held out).")],
    columns: Annotated[str | None, typer.Option(
        help="Comma-separated columns of segments.csv (default: id, segment, value).")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="csv or parquet (default: from the file's suffix, else csv).")] = None,
    with_contacts: Annotated[Path | None, typer.Option(
        help="Customer table with the contact columns (runs leave them out).")] = None,
    contact_columns: Annotated[str | None, typer.Option(
        help="Comma-separated contact columns of --with-contacts to include, e.g. email.")
    ] = None,
    *, config: Config, quiet: QuietOpt = False,
) -> None:
    """The customers of chosen segments, as a file for an e-mail or ads tool: with a
    holdout, a target file, a control file and a manifest to measure the campaign by."""
    from custseg.jobs.export import export_audience

    def split(text: str | None) -> list[str] | None:
        return [c.strip() for c in text.split(",") if c.strip()] if text else None

    audience = export_audience(run_dir, segment, out_file, columns=split(columns), fmt=fmt,
                               contacts=with_contacts,
                               contact_columns=split(contact_columns) or [], config=config)
    if quiet:
        return
    for warning in audience.warnings:
        out.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    parts = ", ".join(f"{escape(n)} ({c:,})" for n, c in audience.segments.items())
    if audience.split is None:
        out.print(f"Wrote {audience.rows:,} customers of {parts} to {audience.path}.",
                  highlight=False)
        return
    m = audience.split
    table = Table(title=f"Target and control groups ({m.holdout:.0%} held out, seed {m.seed})")
    for name in ("segment", "customers", "target", "control", "base rate",
                 "smallest detectable uplift"):
        table.add_column(name, justify="left" if name == "segment" else "right")
    for s in m.segments:
        mde = ("-" if s.min_detectable_uplift is None
               else f"{s.min_detectable_uplift * 100:.1f} pts")
        rate = "-" if s.base_rate is None else f"{s.base_rate:.1%}"
        table.add_row(escape(s.name), f"{s.customers:,}", f"{s.target:,}", f"{s.control:,}",
                      rate, mde)
    out.print(table)
    out.print(f"Wrote {m.target:,} target customers of {parts} to {audience.path}, "
              f"{m.control:,} control customers to {audience.control} and the manifest to "
              f"{audience.manifest}. Send the campaign to the target file only; from "
              f"{m.window.end} on, run: custseg measure {audience.manifest} --orders LATER_ORDERS",
              highlight=False)


@app.command()
@_configured("campaign.out", *READ_KEYS, "salt")
def measure(
    manifest: Annotated[Path, typer.Argument(help="The .manifest.json custseg export "
                                             "--holdout wrote.")],
    orders: Annotated[list[str] | None, typer.Option(
        "--orders", help="The order lines after the campaign (a file, or several tables of "
        "one shop; or --db and --sql).")] = None,
    *, config: Config, quiet: QuietOpt = False,
) -> None:
    """The uplift of a campaign per segment: its target group against its control group."""
    from custseg.jobs.campaign import measure_campaign

    if not orders and not config.db:
        raise typer.BadParameter("give the later orders: --orders FILE, or --db and --sql.")
    result = measure_campaign(manifest, _input(orders), config.campaign.out, config=config)
    if quiet:
        return
    for warning in result.warnings:
        style = "bold red" if warning.startswith("SAMPLE RATIO") else "yellow"
        out.print(f"[{style}]warning:[/{style}] {escape(warning)}", highlight=False)
    _print_measurement(result)
    out.print(f"Wrote {config.campaign.out}/measure.json and measure.html.", highlight=False)


def _print_measurement(result) -> None:
    from custseg.core.money import money

    code = result.currency.code if result.currency else None
    table = Table(title=f"Target (T) against control (C), {result.window.start} to "
                        f"{result.window.end} (end excluded)")
    table.add_column("segment", min_width=16)
    for name in ("T / C", "bought T / C", "uplift, points (95%)", "p*", "extra revenue (95%)"):
        table.add_column(name, justify="right")
    for s in [*result.segments, result.total]:
        b = s.buying
        sizes = f"{s.target:,} / {s.control:,}"
        if b is None:
            table.add_row(escape(s.name), sizes, "-", "-", "-", "-")
            continue
        p = b.p_adjusted if b.p_adjusted is not None else b.p_value
        extra = ("-" if s.incremental_revenue is None else
                 f"{money(s.incremental_revenue, code)} ({money(s.incremental_interval[0], code)}"
                 f" to {money(s.incremental_interval[1], code)})")
        mark, end = ("[bold green]", "[/bold green]") if s.significant else ("", "")
        table.add_row(escape(s.name), sizes, f"{b.target:.1%} / {b.control:.1%}",
                      f"{mark}{b.uplift * 100:+.1f} ({b.interval[0] * 100:+.1f} to "
                      f"{b.interval[1] * 100:+.1f}){end}",
                      "<0.001" if p < 0.001 else f"{p:.3f}", extra)
    out.print(table)
    out.print("* p of the share who bought; segments Holm-corrected. Green: significant at "
              f"{result.alpha:g}.", highlight=False)


@app.command("app")
def app_command(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    host: Annotated[str, typer.Option(
        help="Address to bind; 127.0.0.1 keeps the dashboard on this machine.")] = "127.0.0.1",
    max_upload_mb: Annotated[int, typer.Option(help="Largest upload, in MB.")] = 1024,
) -> None:
    """Start the local web dashboard (Streamlit) at http://HOST:PORT."""
    from custseg.app import serve

    out.print(f"custseg dashboard on http://{host}:{port} (Ctrl+C to stop)")
    raise typer.Exit(serve(host, port, max_upload_mb))


@app.command()
def synth(
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data.")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("custseg-synth"),
    quiet: QuietOpt = False,
) -> None:
    """Generate realistic synthetic order lines, a customer table and planted groups."""
    from custseg.synth import generate

    info = generate(customers, out_dir, seed=seed)
    if not quiet:
        out.print(f"Wrote {info['lines']:,} order lines for {customers:,} customers to "
                  f"{info['transactions']}, the customer table to {info['customers_table']} "
                  f"and planted groups to {info['groups']}.")


@app.command()
@_configured("mapping", "sheet", "delimiter", "encoding", "dayfirst", "start_date", "input_kind")
def inspect(input: Annotated[Path, typer.Argument(help="Any input file.")], *,
            config: Config) -> None:
    """Show how an input is read, from a sample of its rows (about a second, whatever its
    size): format, rows, the export format recognised, and for each field the column, a
    confidence and the evidence in words."""
    from custseg.io import load_source, peek, peek_source
    from custseg.io._parse import quiet_connect
    from custseg.io._peek import PeekFailed
    from custseg.jobs.rfm import input_kind

    try:
        look = peek(input, config)
    except PeekFailed:  # the sample is unreadable: read the whole, which says why
        con = quiet_connect()
        try:
            look = peek_source(con, load_source(con, input, config=config))
        finally:
            con.close()
    rows = (f"{look.rows:,} rows" if look.rows is not None
            else f"about {look.approx_rows:,} rows (from the size)" if look.approx_rows
            else "rows unknown")
    details = ", ".join(f"{k} {v!r}" for k, v in look.details.items())
    con = quiet_connect()
    try:
        kind, reading = input_kind(con, look, config)
    finally:
        con.close()
    out.print(f"{escape(look.name)}: {look.format}, {rows}, {len(look.columns)} columns",
              highlight=False)
    if details:
        out.print(f"read with {escape(details)}", highlight=False)
    if reading is None:
        out.print("One row per customer: a customer table (custseg run segments it; "
                  "custseg rfm needs order lines).", highlight=False)
        _inspect_table(look, config)
        return
    if reading.format is not None:
        out.print(f"Recognised: {escape(reading.format.name)} (by its header).",
                  highlight=False)
    table = Table("field", "column", "confidence", "evidence")
    for fld, choice in reading.evidence.items():
        table.add_row(fld, escape(choice.column), f"{choice.confidence:.2f}",
                      escape(choice.reason + (f" (next: {choice.runner_up})"
                                              if choice.runner_up else "")))
    out.print(table)
    out.print(f"A line's value: {escape(reading.value)}", highlight=False)
    for what, cols in (("Customer attributes (the same on every line of a customer)",
                        reading.customer_attributes),
                       ("Line attributes (listed by lift per segment)",
                        reading.line_attributes)):
        if cols:
            out.print(f"{what}: {escape(', '.join(cols))}", highlight=False)
    if reading.personal_key:
        out.print(f"The customer key holds {reading.personal_key}: personal data, kept out "
                  "of the report, summary.json and model.json.", highlight=False)
    for note in [*reading.notes, *reading.warnings]:
        out.print(f"note: {escape(note)}", highlight=False)


def _inspect_table(look, config: Config) -> None:
    """The key and the role of every column of a customer table, read on the sample."""
    from custseg.io import load_source
    from custseg.io._customers import customers_from_source
    from custseg.io._parse import quiet_connect

    con = quiet_connect()
    try:
        source = load_source(con, frame=look.frame, relation="customers_raw")
        source.name = look.name
        _, info = customers_from_source(con, source, config)
    finally:
        con.close()
    table = Table("column", "role", "reason")
    table.add_row("customer_id", "id", f"the customer id: {escape(str(info['key']))}"
                  if info["key"] else "none: customers are numbered by row")
    for col, role in info["columns"].items():
        table.add_row(escape(col), role["role"], escape(role["reason"]))
    out.print(table)


def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """click's usage error and exit types: click's own and, since typer 0.2x vendors click
    as ``typer._click``, typer's copies of them."""
    import click

    usage = {click.ClickException, *(c for c in typer.BadParameter.__mro__
                                      if c.__name__ == "ClickException")}
    return tuple(usage), (click.exceptions.Exit, typer.Exit)


def main() -> None:
    """Entry point: run the app, turning custseg errors into one line and exit code 1."""
    try:
        app(standalone_mode=False)
        _freeze()
    except CustsegError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit code
        usage, done = _click_exceptions()
        if isinstance(exc, usage):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, done):
            sys.exit(exc.exit_code)
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))}. "
                  "Please report it with the command you ran.", highlight=False, soft_wrap=True)
        sys.exit(2)


def _freeze() -> None:
    """Spare the interpreter's exit its passes over every object a command loaded: the
    garbage collector's last collections cost 0.2-0.5 s once scikit-learn is loaded, and
    a command's own files and connections are closed by then (cycles left are not
    collected, as at any exit)."""
    import gc

    gc.freeze()


if __name__ == "__main__":
    main()
