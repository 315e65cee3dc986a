"""How fast the columns of a file are read: ``custseg inspect`` (a sample of the rows,
its roles decided on it) against DuckDB's own ``sniff_csv`` of the same file, and
against reading the file whole (what custseg did before deciding the roles), measured
in one run on files of growing size.

The files are order lines of a supermarket history (``tests/exports.py``'s layout:
TRANSACTION_DT, CUSTOMER_ID with leading zeros, AMOUNT the units, SALES_PRICE the line
total), built in code and repeated up to each size.

    python benchmarks/bench_inspect.py [--sizes 64,640] [--repeat 3]

Prints, per size: seconds of custseg's reading in the process (peek + roles), of the
command ``custseg inspect`` (with the interpreter's start-up), of ``sniff_csv`` and of a
whole read, each the best of ``--repeat`` runs, with ratios to ``sniff_csv``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import custseg  # noqa: E402
from custseg.io import load_source, peek  # noqa: E402
from custseg.io._reading import reading_of  # noqa: E402
from exports import supermarket  # noqa: E402


def build(folder: Path, megabytes: int) -> Path:
    """A supermarket history of about ``megabytes`` MB."""
    base = supermarket(folder).path
    lines = base.read_text().splitlines()
    header, body = lines[0], "\n".join(lines[1:]) + "\n"
    path = folder / f"history_{megabytes}mb.csv"
    with path.open("w") as out:
        out.write(header + "\n")
        while out.tell() < megabytes * 1_000_000:
            out.write(body)
    return path


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,640", help="File sizes in MB.")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = custseg.Config()
    rows = ["| file | custseg roles (in process) | custseg inspect (command) | sniff_csv | "
            "whole read | roles / sniff_csv | command / sniff_csv |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            path = build(Path(tmp), size)
            mb = path.stat().st_size / 1e6

            def roles(path=path):
                reading_of(peek(path, config), config)

            def command(path=path):
                subprocess.run([sys.executable, "-m", "custseg.cli", "inspect", str(path)],
                               check=True, capture_output=True)

            def sniff(path=path):
                con = duckdb.connect()
                con.execute("SELECT * FROM sniff_csv(?)", [str(path)]).fetchall()
                con.close()

            def whole(path=path):
                con = duckdb.connect()
                load_source(con, path, config=config)
                con.close()

            t = {name: best(fn, args.repeat if name != "whole" else 1)
                 for name, fn in (("roles", roles), ("command", command), ("sniff", sniff),
                                  ("whole", whole))}
            rows.append(f"| {mb:,.0f} MB | {t['roles']:.2f} s | {t['command']:.2f} s | "
                        f"{t['sniff']:.2f} s | {t['whole']:.2f} s | "
                        f"{t['roles'] / t['sniff']:.2f}x | {t['command'] / t['sniff']:.2f}x |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
