"""Start-up and small files: what a user waits for on a quiet machine.

    python benchmarks/bench_startup.py [--customers 1000] [--repeat 5]

Each command runs as a fresh process, best of ``--repeat`` (wall clock, as a user waits
for it), on ``custseg synth``'s order lines of ``--customers`` customers (cached in
``benchmarks/.cache/``):

* ``custseg --help``;
* ``custseg inspect FILE`` (the columns' roles, read from a sample);
* a mapping error (``custseg run FILE --map customer_id=NoSuchColumn``): one line, exit 1;
* ``custseg run FILE --out DIR -q``: the whole run, the report and its PNGs included.

Baselines measured in the same run: the interpreter alone (``python -c pass``) and the
libraries every run loads (``import duckdb, pandas, sklearn.cluster``). Writes
``benchmarks/results/bench_startup.md``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import compiled, machine_line
from bench_rfm import LINES_PER_CUSTOMER, dataset

HERE = Path(__file__).resolve().parent
CUSTSEG = str(Path(sys.executable).with_name("custseg"))
#: The goals of issue 29, part C, in seconds.
GOALS = {"help": 1.0, "inspect": 1.0, "mapping error": 1.0, "whole run": 5.0}


def best(cmd: list[str], repeat: int, code: int = 0) -> float:
    """The shortest wall clock of ``repeat`` runs of ``cmd`` (each must exit ``code``)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != code:
            raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: "
                             f"{done.stderr.strip().splitlines()[-1:]}")
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "results" / "bench_startup.md"))
    args = parser.parse_args(argv)
    compiled()  # custseg's bytecode, as an installed wheel has it
    path, _ = dataset(args.customers * LINES_PER_CUSTOMER)
    python = sys.executable
    with tempfile.TemporaryDirectory() as work:
        rows = {
            "python -c pass": best([python, "-c", "pass"], args.repeat),
            "import duckdb, pandas, sklearn.cluster": best(
                [python, "-c", "import duckdb, pandas, sklearn.cluster"], args.repeat),
            "help": best([CUSTSEG, "--help"], args.repeat),
            "inspect": best([CUSTSEG, "inspect", str(path)], args.repeat),
            "mapping error": best([CUSTSEG, "run", str(path), "--map",
                                   "customer_id=NoSuchColumn", "--out", f"{work}/x"],
                                  args.repeat, code=1),
            "whole run": best([CUSTSEG, "run", str(path), "--out", f"{work}/run", "-q"],
                              args.repeat),
        }
    libraries = rows["import duckdb, pandas, sklearn.cluster"]
    lines = ["# bench_startup", "",
             f"Command: `python benchmarks/bench_startup.py --customers {args.customers} "
             f"--repeat {args.repeat}`", machine_line(("custseg", "duckdb", "pandas",
                                                       "scikit-learn")), "",
             f"Best of {args.repeat} fresh processes each; {args.customers:,} synthetic "
             "customers' order lines.", "",
             "| command | seconds | goal | vs the libraries' import |",
             "|---|---:|---:|---:|"]
    for name, seconds in rows.items():
        goal = GOALS.get(name)
        label = f"custseg {name}" if name in GOALS else f"`{name}` (baseline)"
        lines.append(f"| {label} | {seconds:.2f} | {f'<= {goal:g}' if goal else ''} | "
                     f"{seconds / libraries:.2f}x |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
