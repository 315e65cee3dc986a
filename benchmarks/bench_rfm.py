"""Benchmark custseg's RFM job against a hand-written DuckDB query and plain pandas.

    python benchmarks/bench_rfm.py --lines 10000000 [--skip-pandas] [--repeat 3]

1. Synthetic Online-Retail-style order lines (``custseg.synth``, ``lines // 20``
   customers, seed 0) are generated once into ``benchmarks/.cache/synth-<customers>-seed0/``
   and reused by later runs.
2. Each contender runs in its own fresh Python process, which reports the wall-clock
   seconds of its work (imports excluded) and its own peak resident memory
   (``getrusage(RUSAGE_SELF).ru_maxrss``, the kernel's high-water mark, read at exit):

   * ``custseg``: ``custseg.run_rfm(transactions.parquet, out_dir=...)``, i.e. what
     ``custseg rfm`` does: audited cleaning, customer features, RFM scores, the value
     models, lift and cohorts, outputs with the report (``custseg_no_report``: the same
     with ``report = false``).
   * ``duckdb_sql``: one hand-written DuckDB query (default settings) doing the same work
     from the Parquet file to a CSV: drop exact duplicates, lines without customer,
     cancellations, quantity <= 0 and unit price <= 0; per customer recency, frequency,
     monetary, first date, units, distinct products, returned value, most frequent
     country; NTILE(5) scores. This is the bare baseline.
   * ``pandas``: the same with pandas (read with pyarrow), a groupby and ``pd.qcut``.

3. Prints a markdown table (seconds, ratio to the hand-written query, peak RSS) and writes
   it to ``benchmarks/results/bench_rfm-<lines>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from _machine import compiled, machine_line

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
LINES_PER_CUSTOMER = 20
#: custseg's budget relative to the hand-written query, and its memory budget.
MAX_RATIO = 1.3
MAX_RSS_MB = 1536

#: The hand-written baseline: one statement, DuckDB default settings.
SQL = r"""
COPY (
    WITH lines AS (SELECT DISTINCT * FROM read_parquet($path)),
    base AS (
        SELECT CustomerID AS customer_id, InvoiceNo, StockCode, Quantity, UnitPrice,
               InvoiceDate, Country, Quantity * UnitPrice AS value,
               regexp_full_match(InvoiceNo, '[Cc][0-9]+') AS is_cancel,
               NOT regexp_full_match(InvoiceNo, '[Cc][0-9]+') AND Quantity > 0
                   AND UnitPrice > 0 AS is_purchase
        FROM lines
        WHERE CustomerID IS NOT NULL),
    customers AS (
        SELECT customer_id,
               max(InvoiceDate) FILTER (is_purchase) AS last_date,
               min(InvoiceDate) FILTER (is_purchase) AS first_date,
               count(DISTINCT InvoiceNo) FILTER (is_purchase) AS frequency,
               sum(value) FILTER (is_purchase) AS monetary,
               sum(Quantity) FILTER (is_purchase) AS quantity,
               count(DISTINCT StockCode) FILTER (is_purchase) AS products,
               coalesce(sum(abs(value)) FILTER (is_cancel OR Quantity < 0), 0)
                   AS returned_value,
               mode(Country) FILTER (is_purchase) AS country
        FROM base
        GROUP BY customer_id
        HAVING count(*) FILTER (is_purchase) > 0),
    rfm AS (
        SELECT customer_id,
               date_diff('day', CAST(last_date AS DATE),
                         (SELECT CAST(max(InvoiceDate) AS DATE) + 1 FROM lines)) AS recency,
               frequency, monetary, first_date, quantity, products, returned_value, country
        FROM customers)
    SELECT *,
           NTILE(5) OVER (ORDER BY recency DESC) AS r_score,
           NTILE(5) OVER (ORDER BY frequency) AS f_score,
           NTILE(5) OVER (ORDER BY monetary) AS m_score
    FROM rfm
    ORDER BY customer_id
) TO '{out}' (HEADER, DELIMITER ',')
"""


# ------------------------------------------------------------------------- contenders
def run_custseg(path: Path, work: Path, report: bool = True) -> dict[str, Any]:
    import custseg

    start = time.perf_counter()
    result = custseg.run_rfm(path, out_dir=work / "rfm", config=custseg.Config(report=report))
    seconds = time.perf_counter() - start
    seg = result.customers
    return {"seconds": seconds, "customers": len(seg), "monetary": float(seg["monetary"].sum()),
            "frequency": int(seg["frequency"].sum()), "timings_s": result.summary["timings_s"]}


def run_duckdb_sql(path: Path, work: Path) -> dict[str, Any]:
    import duckdb

    out = work / "rfm.csv"
    con = duckdb.connect()  # default settings: every core, default memory limit
    start = time.perf_counter()
    con.execute(SQL.format(out=str(out).replace("'", "''")), {"path": str(path)})
    seconds = time.perf_counter() - start
    customers, monetary, frequency = con.execute(
        "SELECT count(*), sum(monetary), sum(frequency) FROM read_csv(?)", [str(out)]).fetchone()
    return {"seconds": seconds, "customers": customers, "monetary": float(monetary),
            "frequency": int(frequency)}


def run_pandas(path: Path, work: Path) -> dict[str, Any]:
    import pandas as pd

    start = time.perf_counter()
    lines = pd.read_parquet(path, engine="pyarrow").drop_duplicates()
    as_of = lines["InvoiceDate"].max().normalize() + pd.Timedelta(days=1)
    lines = lines[lines["CustomerID"].notna()]
    cancel = lines["InvoiceNo"].str.fullmatch(r"[Cc][0-9]+")
    lines = lines.assign(value=lines["Quantity"] * lines["UnitPrice"])
    buy = lines[~cancel & (lines["Quantity"] > 0) & (lines["UnitPrice"] > 0)]
    feats = buy.groupby("CustomerID").agg(
        last_date=("InvoiceDate", "max"), first_date=("InvoiceDate", "min"),
        frequency=("InvoiceNo", "nunique"), monetary=("value", "sum"),
        quantity=("Quantity", "sum"), products=("StockCode", "nunique"))
    feats["recency"] = (as_of - feats["last_date"].dt.normalize()).dt.days
    back = lines[cancel | (lines["Quantity"] < 0)]
    feats["returned_value"] = (back["value"].abs().groupby(back["CustomerID"]).sum()
                               .reindex(feats.index, fill_value=0.0))
    counts = buy.groupby(["CustomerID", "Country"]).size().rename("n").reset_index()
    top = counts.sort_values(["CustomerID", "n"], ascending=[True, False])
    feats["country"] = top.drop_duplicates("CustomerID").set_index("CustomerID")["Country"]
    labels = [1, 2, 3, 4, 5]
    feats["r_score"] = pd.qcut((-feats["recency"]).rank(method="first"), 5, labels=labels)
    feats["f_score"] = pd.qcut(feats["frequency"].rank(method="first"), 5, labels=labels)
    feats["m_score"] = pd.qcut(feats["monetary"].rank(method="first"), 5, labels=labels)
    feats.drop(columns="last_date").to_csv(work / "rfm.csv")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "customers": len(feats),
            "monetary": float(feats["monetary"].sum()),
            "frequency": int(feats["frequency"].sum())}


CONTENDERS: dict[str, tuple[str, Callable[[Path, Path], dict[str, Any]]]] = {
    "custseg": ("custseg `run_rfm`", run_custseg),
    "custseg_no_report": ("custseg `run_rfm`, no report", partial(run_custseg, report=False)),
    "duckdb_sql": ("hand-written DuckDB SQL", run_duckdb_sql),
    "pandas": ("pandas", run_pandas),
}


# ---------------------------------------------------------------------- child process
def child(name: str, target: str, work: Path) -> None:
    """Run one contender in this process; print its report as one JSON line."""
    if name == "synth":
        report = generate_cached(int(target), CACHE / f"synth-{target}-seed0")
    else:
        report = CONTENDERS[name][1](Path(target), work)
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(report))


def measure(name: str, target: str | int, work_parent: Path) -> dict[str, Any]:
    """Run ``child(name, target)`` in a fresh interpreter and return its report."""
    work_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"run-{name}-", dir=work_parent) as work:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name,
               "--target", str(target), "--work", work]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{name} failed (exit code {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ main
def dataset(lines: int) -> tuple[Path, dict[str, Any] | None]:
    """The cached synthetic data for about ``lines`` lines; generated when missing."""
    customers = max(1, lines // LINES_PER_CUSTOMER)
    folder = CACHE / f"synth-{customers}-seed0"
    marker = folder / "synth.json"
    if marker.exists():
        return folder / "transactions.parquet", None
    print(f"Generating {customers:,} customers into {folder} ...", flush=True)
    report = measure("synth", customers, CACHE)  # writes into a temporary folder first
    return folder / "transactions.parquet", report


def generate_cached(customers: int, folder: Path) -> dict[str, Any]:
    """Generate into ``folder`` through a temporary sibling, so a cache is never partial."""
    from custseg.synth import generate

    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    start = time.perf_counter()
    summary = generate(customers, tmp, seed=0)
    seconds = time.perf_counter() - start
    (tmp / "synth.json").write_text(json.dumps({**summary, "seconds": seconds}) + "\n")
    if folder.exists():  # an unfinished cache from an interrupted run
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return {"lines": summary["lines"], "seconds": seconds}


def warm(path: Path) -> None:
    """Read the file once so every contender finds it in the page cache."""
    with path.open("rb") as fh:
        while fh.read(1 << 24):
            pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000_000,
                        help="about this many order lines (customers = lines // 20)")
    parser.add_argument("--skip-pandas", action="store_true", help="leave pandas out")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per contender; the fastest is reported")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.target, Path(args.work))
        return
    compiled()  # custseg's bytecode, as an installed wheel has it (not in a child)

    path, synth = dataset(args.lines)
    info = json.loads((path.parent / "synth.json").read_text())
    n_lines, n_customers = info["lines"], info["customers"]
    warm(path)
    names = [n for n in CONTENDERS if not (args.skip_pandas and n == "pandas")]
    reports: dict[str, dict[str, Any]] = {}
    for name in names:
        runs = []
        for i in range(args.repeat):
            print(f"Running {name} ({i + 1}/{args.repeat}) ...", flush=True)
            runs.append(measure(name, str(path), CACHE))
        best = min(runs, key=lambda r: r["seconds"])
        best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
        reports[name] = best
    text = report_text(args.lines, path, n_lines, n_customers, info, synth, reports)
    print()
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench_rfm-{args.lines}.md"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    print(f"Written to {out.relative_to(HERE.parent)}")


def report_text(lines_arg: int, path: Path, n_lines: int, n_customers: int,
                info: dict[str, Any], synth: dict[str, Any] | None,
                reports: dict[str, dict[str, Any]]) -> str:
    base = reports["duckdb_sql"]["seconds"]
    size_mb = path.stat().st_size / 1024 ** 2
    rows = ["| contender | lines | customers | seconds | ratio vs hand-written DuckDB "
            "| peak RSS MB |", "|---|---:|---:|---:|---:|---:|"]
    for name, report in reports.items():
        rows.append(f"| {CONTENDERS[name][0]} | {n_lines:,} | {report['customers']:,} | "
                    f"{report['seconds']:.2f} | {report['seconds'] / base:.2f} | "
                    f"{report['peak_rss_mb']:,.0f} |")
    gen = (f"generated in {synth['seconds']:.1f} s ({n_lines / synth['seconds'] / 1e6:.2f} M "
           f"lines/s, peak RSS {synth['peak_rss_mb']:,.0f} MB)" if synth
           else f"reused from cache (generated in {info['seconds']:.1f} s)")
    out = [
        f"# bench_rfm --lines {lines_arg:,}", "",
        f"Input: `{path.relative_to(HERE.parent)}`: {n_lines:,} order lines of "
        f"{n_customers:,} customers, {size_mb:,.0f} MB Parquet, {gen}.",
        machine_line(("custseg", "duckdb", "pyarrow", "pandas", "numpy")),
        "Each contender ran in a fresh process; seconds exclude imports; peak RSS is the "
        "process's high-water mark.", "",
        *rows, "",
    ]
    custseg = reports.get("custseg")
    if custseg:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in custseg["timings_s"].items())
        out.append(f"custseg stages (s): {stages}.")
        ratio = custseg["seconds"] / base
        problems = []
        if ratio > MAX_RATIO:
            slowest = max(custseg["timings_s"].items(), key=lambda kv: kv[1])
            problems.append(f"custseg takes {ratio:.2f}x the hand-written query (budget "
                            f"{MAX_RATIO}x); most time in stage '{slowest[0]}' "
                            f"({slowest[1]:.2f} s)")
        if custseg["peak_rss_mb"] > MAX_RSS_MB:
            problems.append(f"custseg peaks at {custseg['peak_rss_mb']:,.0f} MB RSS (budget "
                            f"{MAX_RSS_MB:,} MB)")
        out.append("")
        out.append("**Over budget:** " + "; ".join(problems) + "." if problems
                   else f"custseg is within budget ({MAX_RATIO}x the hand-written query, "
                        f"{MAX_RSS_MB:,} MB).")
    counts = {r["customers"] for r in reports.values()}
    money = [r["monetary"] for r in reports.values()]
    agree = len(counts) == 1 and max(money) - min(money) <= 1e-6 * max(abs(m) for m in money) + 1
    out += ["", "Cross-check: " + ("every contender found the same customers and total monetary."
                                   if agree else "contenders DISAGREE: "
                                   + "; ".join(f"{n}: {r['customers']:,} customers, monetary "
                                               f"{r['monetary']:,.2f}"
                                               for n, r in reports.items())), ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
