"""Order lines from a PostgreSQL server through custseg, against the server's own COPY.

    python benchmarks/bench_db.py [--lines 10000000]

Starts a throwaway PostgreSQL server (``tests/pg_server.py``: Debian's postgresql, on
127.0.0.1 and a free port), loads the cached synthetic lines (``bench_rfm``'s data set of
about ``--lines`` lines) with COPY, then times, each as a fresh process with the peak
resident memory of its process tree:

* ``COPY (SELECT * FROM orders) TO STDOUT`` through psql into /dev/null, as text and as
  binary: the baseline, what the server takes to hand the rows out;
* ``custseg rfm --db postgresql://... --sql "select * from orders"``: read (the rows
  streamed in Arrow batches by the ADBC driver into DuckDB), clean, features, RFM and
  the outputs; its read stage is what compares with the baseline;
* the same with ``memory_limit = "1GB"`` in a config file (the default, ``auto``, lets
  DuckDB use up to half the free memory, at most 4 GB, and keeps lines that fit in 60%
  of that in memory);
* the same ``custseg rfm`` on the Parquet file the lines came from.

Writes ``benchmarks/results/bench_db.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from _machine import machine_line  # noqa: E402
from bench_rfm import dataset  # noqa: E402
from bench_scale import run_measured  # noqa: E402
from pg_server import copy_in, server_binaries, throwaway_server  # noqa: E402

RESULTS = HERE / "results"


def custseg_rfm(args: list[str], work: Path) -> dict:
    cmd = [sys.executable, "-m", "custseg.cli", "rfm", *args, "--out", str(work / "out"), "-q"]
    seconds, peak, proc = run_measured(cmd)
    if proc.returncode != 0:
        raise SystemExit(f"custseg failed: {proc.stderr.strip()[-300:]}")
    stages = json.loads((work / "out" / "summary.json").read_text())["timings_s"]
    return {"seconds": seconds, "peak_mb": peak / 2**20, "read": stages.get("read"),
            "stages": stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--out", default=str(RESULTS / "bench_db.md"))
    args = parser.parse_args()
    if server_binaries() is None:
        raise SystemExit("PostgreSQL's server is not installed (Debian's postgresql).")
    parquet, _ = dataset(args.lines)
    rows: list[tuple[str, dict]] = []
    with throwaway_server() as url, tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        lines = copy_in(url, "orders", f"SELECT * FROM '{parquet}'")
        load = time.perf_counter() - start
        print(f"loaded {lines:,} lines with COPY in {load:.1f} s", flush=True)
        psql = [str(server_binaries() / "psql"), url, "-qAt", "-c"]
        for fmt in ("text", "binary"):
            seconds, peak, proc = run_measured(
                [*psql, f"COPY (SELECT * FROM orders) TO STDOUT (FORMAT {fmt})"],
                stdout=subprocess.DEVNULL)
            rows.append((f"COPY ... TO STDOUT ({fmt}) through psql",
                         {"seconds": seconds, "peak_mb": peak / 2**20}))
            print(rows[-1], flush=True)
        tight = Path(tmp) / "tight.toml"
        tight.write_text('memory_limit = "1GB"\n')
        query = ["--db", url, "--sql", "select * from orders"]
        for label, cli in (("custseg rfm --db postgresql://... --sql", query),
                           ("the same, memory_limit = 1GB", [*query, "--config", str(tight)]),
                           ("custseg rfm on the Parquet file", [str(parquet)])):
            work = Path(tmp) / f"run{len(rows)}"
            work.mkdir()
            rows.append((label, {**custseg_rfm(cli, work), "from_db": "--db" in cli}))
            print(label, rows[-1][1], flush=True)
    baseline = rows[0][1]["seconds"]
    table = ["| contender | seconds | read from the server s | vs COPY (text) | peak MB | stages |",
             "|---|---:|---:|---:|---:|---|"]
    for label, r in rows:
        read = r.get("read") if r.get("from_db") else None
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r.get("stages", {}).items())
        table.append(f"| {label} | {r['seconds']:.1f} | {'' if read is None else f'{read:.1f}'} "
                     f"| {'' if read is None else f'{read / baseline:.2f}x'} "
                     f"| {r['peak_mb']:,.0f} | {stages} |")
    text = "\n".join([
        "# bench_db", "",
        f"Command: `python benchmarks/bench_db.py --lines {args.lines}`",
        machine_line(("custseg", "duckdb", "adbc-driver-postgresql", "pyarrow")),
        f"Server: a throwaway PostgreSQL ({server_binaries().parent.name}) on 127.0.0.1; "
        f"{lines:,} lines loaded with COPY in {load:.1f} s. Each contender is a fresh "
        "process; peak MB is the largest resident memory of its process tree (the server's "
        "own memory is not counted).", "", *table, ""])
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
