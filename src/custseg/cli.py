"""The ``custseg`` command: thin commands over the library.

Bad input ends in one line on stderr naming the problem and the fix, exit code 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from custseg.core.config import Config
from custseg.core.exceptions import CustsegError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Customer segments from raw sales records.")
err = Console(stderr=True)
out = Console()

MapOpt = Annotated[list[str] | None, typer.Option(
    "--map", metavar="FIELD=COLUMN",
    help="Name the column of a field, e.g. --map customer_id=Client (repeatable).")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="TOML or JSON config file (see README).", dir_okay=False)]
AsOfOpt = Annotated[str | None, typer.Option(
    "--as-of", metavar="YYYY-MM-DD",
    help="Snapshot date: lines on or after it are ignored. Default: day after the last date.")]
DayFirstOpt = Annotated[bool | None, typer.Option(
    "--dayfirst/--no-dayfirst", help="Read 01/02/2011 as 1 February (default: from the data).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
InputArg = Annotated[str | None, typer.Argument(
    help="Order lines or a customer table: CSV/TSV/delimited text, .xlsx, Parquet file or "
         "folder.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder.")]
CustomersOpt = Annotated[Path | None, typer.Option(
    "--customers", help="Customer table to join on customer id (any input format).")]
SheetOpt = Annotated[str | None, typer.Option(help="Excel sheet name or 0-based index.")]
DelimiterOpt = Annotated[str | None, typer.Option(
    help="Force the delimiter of a text file (default: sniffed).")]
EncodingOpt = Annotated[str | None, typer.Option(
    help="Encoding of a text file, any Python codec (cp1252, latin-1, utf-16, ...). Default: "
         "guessed: UTF-8, UTF-16 (byte-order mark or NUL bytes), else Windows-1252.")]
DbOpt = Annotated[str | None, typer.Option(
    "--db", help="Database URL, e.g. sqlite:///shop.db or duckdb:///shop.duckdb.")]
SqlOpt = Annotated[str | None, typer.Option("--sql", help="Query to run on --db.")]
AlgorithmOpt = Annotated[str, typer.Option(
    "--algorithm", help="kmeans, hierarchical, gmm, kprototypes, dbscan, hdbscan or affinity.")]
KOpt = Annotated[str, typer.Option("--k", help="Number of segments, or 'auto'.")]
KRangeOpt = Annotated[str | None, typer.Option(
    "--k-range", metavar="LOW-HIGH",
    help="Range searched by --k auto (default: clear groups in 2-10, else a continuum cut "
         "for action in 3-8).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; same seed, same output.")]
SkewOpt = Annotated[str, typer.Option("--skew", help="log1p, yeo-johnson or none.")]
ScalerOpt = Annotated[str, typer.Option("--scaler", help="standard or robust.")]
LinkageOpt = Annotated[str, typer.Option("--linkage",
                                         help="ward, average or complete (hierarchical).")]
OptionOpt = Annotated[list[str] | None, typer.Option(
    "--option", metavar="KEY=VALUE",
    help="Algorithm option, e.g. --option eps=0.4 (dbscan), --option min_cluster_size=50 "
         "(hdbscan), --option covariance_type=diag (gmm). Repeatable.")]
EngineOpt = Annotated[str | None, typer.Option(
    "--engine", help="duckdb (default: embedded, out-of-core) or spark.")]
SparkMasterOpt = Annotated[str | None, typer.Option(
    "--spark-master", metavar="URL",
    help="Spark master with --engine spark: local[*] (default), spark://host:7077, yarn, ...")]
HashIdsOpt = Annotated[bool, typer.Option(
    "--hash-ids", help="Write salted hashes instead of customer ids in every output.")]
SaltOpt = Annotated[str | None, typer.Option(
    "--salt", envvar="CUSTSEG_SALT", show_envvar=True,
    help="Secret salt for --hash-ids, unused without it (same salt, same hashes; default: "
         "random per run, never written).")]
InputKindOpt = Annotated[str | None, typer.Option(
    "--input-kind", help="table (one row per customer) or orders (order lines); default: "
                         "detected from the columns.")]
ClusterOnOpt = Annotated[str | None, typer.Option(
    "--cluster-on", help="behaviour (default) or all: also cluster on the --customers "
                         "table's columns (demographics).")]
FeaturesOpt = Annotated[str | None, typer.Option(
    "--features", metavar="A,B,C", help="Columns to cluster on (default: chosen for you).")]


def _config(config_file: Path | None, mapping: list[str] | None, **overrides) -> Config:
    config = Config.from_file(config_file) if config_file else Config()
    pairs = {}
    for item in mapping or []:
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column:
            raise CustsegError(
                f"--map {item!r} is not FIELD=COLUMN, e.g. --map customer_id=Client.")
        pairs[field.strip()] = column
    if pairs:
        overrides["mapping"] = {**config.mapping, **pairs}
    return config.replace(**overrides)


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


def _ingest_config(config_file, mapping, as_of, dayfirst, sheet, delimiter, encoding,
                   engine=None, spark_master=None, hash_ids: bool = False,
                   salt: str | None = None, input_kind: str | None = None,
                   cluster_on: str | None = None) -> Config:
    if delimiter == "\\t":
        delimiter = "\t"
    return _config(config_file, mapping, as_of=as_of, dayfirst=dayfirst, sheet=sheet,
                   delimiter=delimiter, encoding=encoding, engine=engine,
                   spark_master=spark_master, hash_ids=hash_ids or None, salt=salt,
                   input_kind=input_kind, cluster_on=cluster_on)


def _print_audit(s: dict) -> None:
    audit = s["audit"]
    dropped = ", ".join(f"{k} {v:,}" for k, v in audit["dropped"].items() if v) or "none"
    when = f" as of {s['as_of']}" if "as_of" in s else ""
    out.print(f"{s['customers']:,} customers{when} from {audit['rows_in']:,} rows "
              f"({audit['rows_used']:,} used; dropped: {dropped}).")


def _print_warnings(s: dict) -> None:
    for warning in s["audit"]["warnings"]:
        out.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


@app.command()
def rfm(
    input: InputArg = None,
    out_dir: OutOpt = Path("custseg-out"),
    customers: CustomersOpt = None,
    mapping: MapOpt = None,
    as_of: AsOfOpt = None,
    dayfirst: DayFirstOpt = None,
    sheet: SheetOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    db: DbOpt = None,
    sql: SqlOpt = None,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
    config_file: ConfigOpt = None,
    hash_ids: HashIdsOpt = False,
    salt: SaltOpt = None,
    input_kind: InputKindOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """RFM segments: writes OUT/segments.csv, OUT/summary.json, OUT/excluded_customers.csv."""
    from custseg.jobs.rfm import run_rfm

    config = _ingest_config(config_file, mapping, as_of, dayfirst, sheet, delimiter, encoding,
                            engine, spark_master, hash_ids=hash_ids, salt=salt,
                            input_kind=input_kind)
    with _Reporter(enabled=not quiet and err.is_terminal) as reporter:
        result = run_rfm(input, out_dir=out_dir, customers=customers, config=config, db=db,
                         sql=sql, reporter=reporter)
    if quiet:
        return
    s = result.summary
    _print_audit(s)
    table = Table("segment", "customers", "share", "revenue share", "mean recency",
                  "mean frequency", "mean monetary", title="RFM segments")
    for seg in s["rfm_segments"]:
        if seg["customers"]:
            table.add_row(seg["name"], f"{seg['customers']:,}", f"{seg['share']:.1%}",
                          f"{seg['revenue_share']:.1%}", f"{seg['mean_recency']:.0f}",
                          f"{seg['mean_frequency']:.1f}", f"{seg['mean_monetary']:,.2f}")
    out.print(table)
    _print_warnings(s)
    out.print(f"Wrote {out_dir / 'segments.csv'}, {out_dir / 'summary.json'} and "
              f"{out_dir / 'excluded_customers.csv'}.")


def _k(value: str) -> int | str:
    if value == "auto":
        return value
    if value.isdigit() and int(value) >= 2:
        return int(value)
    raise CustsegError(f"--k {value!r} must be 'auto' or a whole number of at least 2.")


def _k_range(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    low, sep, high = value.partition("-")
    if sep and low.isdigit() and high.isdigit() and 2 <= int(low) <= int(high):
        return int(low), int(high)
    raise CustsegError(f"--k-range {value!r} must be LOW-HIGH with 2 <= LOW <= HIGH, e.g. 2-10.")


def _features(value: str | None) -> list[str] | None:
    return [f.strip() for f in value.split(",") if f.strip()] if value else None


def _options(items: list[str] | None) -> dict | None:
    options = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise CustsegError(f"--option {item!r} is not KEY=VALUE, e.g. --option eps=0.4.")
        for kind in (int, float):
            try:
                options[key.strip()] = kind(raw)
                break
            except ValueError:
                continue
        else:
            options[key.strip()] = raw
    return options or None


@app.command()
def run(
    input: InputArg = None,
    out_dir: OutOpt = Path("custseg-out"),
    algorithm: AlgorithmOpt = "kmeans",
    k: KOpt = "auto",
    k_range: KRangeOpt = None,
    seed: SeedOpt = 0,
    features: FeaturesOpt = None,
    skew: SkewOpt = "log1p",
    scaler: ScalerOpt = "standard",
    linkage: LinkageOpt = "ward",
    option: OptionOpt = None,
    compare_all: Annotated[bool, typer.Option(
        "--compare", help="Also run and rank every algorithm (shown in the report).")] = False,
    customers: CustomersOpt = None,
    cluster_on: ClusterOnOpt = None,
    input_kind: InputKindOpt = None,
    mapping: MapOpt = None,
    as_of: AsOfOpt = None,
    dayfirst: DayFirstOpt = None,
    sheet: SheetOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    db: DbOpt = None,
    sql: SqlOpt = None,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
    config_file: ConfigOpt = None,
    hash_ids: HashIdsOpt = False,
    salt: SaltOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Segments by clustering (after RFM for order lines; a customer table alone works too)."""
    from custseg.jobs.run import run_segments

    config = _ingest_config(config_file, mapping, as_of, dayfirst, sheet, delimiter, encoding,
                            engine, spark_master, hash_ids=hash_ids, salt=salt,
                            input_kind=input_kind, cluster_on=cluster_on)
    with _Reporter(enabled=not quiet and err.is_terminal) as reporter:
        result = run_segments(input, out_dir=out_dir, customers=customers, config=config,
                              db=db, sql=sql, algorithm=algorithm, k=_k(k),
                              k_range=_k_range(k_range), seed=seed, features=_features(features),
                              reporter=reporter, skew=skew, scaler=scaler, linkage=linkage,
                              options=_options(option), compare=compare_all)
    if quiet:
        return
    s = result.summary
    _print_audit(s)
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
    out.print(f"Wrote {out_dir / 'segments.csv'}, {out_dir / 'summary.json'} and the report "
              f"{out_dir / 'report.html'}.")


@app.command()
def compare(
    input: InputArg = None,
    out_dir: OutOpt = Path("custseg-compare"),
    k: KOpt = "auto",
    k_range: KRangeOpt = None,
    seed: SeedOpt = 0,
    features: FeaturesOpt = None,
    skew: SkewOpt = "log1p",
    scaler: ScalerOpt = "standard",
    customers: CustomersOpt = None,
    cluster_on: ClusterOnOpt = None,
    input_kind: InputKindOpt = None,
    mapping: MapOpt = None,
    as_of: AsOfOpt = None,
    dayfirst: DayFirstOpt = None,
    sheet: SheetOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    db: DbOpt = None,
    sql: SqlOpt = None,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
    config_file: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run every algorithm, rank them, recommend one: writes OUT/comparison.csv."""
    from custseg.jobs.run import compare_algorithms

    config = _ingest_config(config_file, mapping, as_of, dayfirst, sheet, delimiter, encoding,
                            engine, spark_master, input_kind=input_kind, cluster_on=cluster_on)
    with _Reporter(enabled=not quiet and err.is_terminal) as reporter:
        table, recommendation = compare_algorithms(
            input, out_dir=out_dir, customers=customers, config=config, db=db, sql=sql,
            k=_k(k), k_range=_k_range(k_range), seed=seed, features=_features(features),
            reporter=reporter, skew=skew, scaler=scaler)
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
def score(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="model.json of a run.")],
    input: InputArg = None,
    out_file: Annotated[Path, typer.Option("--out", help="CSV file to write.")] = Path(
        "scored.csv"),
    mapping: MapOpt = None,
    as_of: AsOfOpt = None,
    sheet: SheetOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    config_file: ConfigOpt = None,
    hash_ids: HashIdsOpt = False,
    salt: SaltOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Segments of new customers under a saved model (no refitting)."""
    from custseg.jobs.score import SavedModel
    from custseg.outputs.rundir import atomic_file
    from custseg.prep.privacy import hashed_table, salt_for

    model = SavedModel.load(model_path)
    config = _ingest_config(config_file, mapping, None, None, sheet, delimiter, encoding,
                            hash_ids=hash_ids, salt=salt)
    table = model.predict(input, config=config, as_of=as_of)
    if config.hash_ids:
        table = hashed_table(table, salt_for(config))
    with atomic_file(out_file) as tmp:
        table.to_csv(tmp, index=False)
    if not quiet:
        counts = table["segment_name"].value_counts()
        out.print(f"Scored {len(table):,} customers: "
                  + ", ".join(f"{n} {c:,}" for n, c in counts.items()) + f". Wrote {out_file}.")


@app.command()
def track(
    old_dir: Annotated[Path, typer.Argument(help="Older snapshot (a run or rfm --out folder).")],
    new_dir: Annotated[Path, typer.Argument(help="Newer snapshot.")],
    out_dir: OutOpt = Path("custseg-track"),
    by: Annotated[str, typer.Option(help="cluster (segment names) or rfm (RFM segments).")]
        = "cluster",
    model: Annotated[Path | None, typer.Option(
        "--model", help="Old run's model.json: assign the new snapshot with it.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Segment migration between two snapshots: matrix, shares, movers, track.html."""
    from custseg.outputs.track import track as run_track

    info = run_track(old_dir, new_dir, out_dir, by=by, model=model)
    if not quiet:
        out.print(f"{info['customers']:,} customers, {info['movers']:,} changed segment.")
        for line in info["top_movements"]:
            out.print(f"  {line}", highlight=False)
        out.print(f"Wrote {out_dir / 'migration_matrix.csv'}, migration_share.csv, movers.csv "
                  "and track.html.")


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
def inspect(
    input: Annotated[Path, typer.Argument(help="Any input file.")],
    mapping: MapOpt = None,
    sheet: Annotated[str | None, typer.Option(help="Excel sheet name or 0-based index.")] = None,
    config_file: ConfigOpt = None,
) -> None:
    """Show how an input is read: format, rows, columns and the detected field mapping."""
    from custseg.engines.duckdb import connect
    from custseg.io import detect_mapping, load_source

    config = _config(config_file, mapping, sheet=sheet)
    con = connect(config)
    source = load_source(con, input, config=config)
    detected = {**detect_mapping(source.columns), **config.mapping}
    out.print(f"{source.name}: {source.format}, {source.rows:,} rows, "
              f"{len(source.columns)} columns {source.details or ''}", highlight=False)
    table = Table("column", "type", "field")
    by_col = {c: f for f, c in detected.items()}
    for col in source.columns:
        table.add_row(col, source.types[col], by_col.get(col, ""))
    out.print(table)
    for warning in source.warnings:
        out.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


def main() -> None:
    """Entry point: run the app, turning custseg errors into one line and exit code 1."""
    try:
        app(standalone_mode=False)
    except CustsegError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc}. Please report it "
                  "with the command you ran.", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
