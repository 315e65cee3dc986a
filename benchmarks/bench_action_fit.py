"""Does each segment's first action fit its customers? custseg run on order histories of
every rhythm, with the default strategy (lifecycle stage first) and with ``--strategy
clusters``, measured by a stage computed here, independently of custseg's own:

- typical gap = days from the first to the last order / (orders - 1), from each customer's
  ``tenure``, ``recency`` and ``frequency`` (as segments.csv has them); for one-time buyers (and
  customers whose orders fell on one day), the median gap of the repeat buyers;
- engaged: last order within 1.5 typical gaps; cooling: within 3; lapsed: beyond; no
  state where nobody bought twice (there is no rhythm to measure against).

A segment's action fit is the share of its customers whose state is one its first
action is for (``action_for`` in summary.json). The goal: at least 80% for every segment.

    python benchmarks/bench_action_fit.py [--only NAME,NAME] [--out results.md]

The corpus is the order histories of ``benchmarks/exports.json`` read from
``CUSTSEG_EXPORTS`` (default ``../exports``), Online Retail from ``../shared/data`` and
the demo's synthetic data; absent files are skipped with the reason. Only segment names,
first actions and shares are printed, never a customer's data.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import custseg
from custseg.core.exceptions import CustsegError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: The order histories checked: name in exports.json -> what it is.
HISTORIES = {
    "superstore_us_2023": "office supplies",
    "supertienda_es": "office supplies (Spanish)",
    "hashtag_vendas_pt_2022": "shop (Portuguese, three years of tables)",
    "completejourney_transactions": "loyalty-card panel",
    "cdnow_master": "music",
    "chinook_invoice_line": "music store",
    "istanbul_malls_customer_shopping": "mall, one order each",
    "hypermarche_fr_achats": "hypermarket (French)",
}
GOAL = 0.8


def states(customers: pd.DataFrame) -> pd.Series:
    """Engaged, cooling or lapsed, from each customer's own recency and rhythm."""
    orders = customers["frequency"].astype(float)
    span = (customers["tenure"] - customers["recency"]).astype(float)
    gap = (span / (orders - 1)).where((orders >= 2) & (span > 0))
    gap = gap.fillna(gap.median())
    silence = customers["recency"].astype(float) / gap
    return pd.Series(np.select([silence <= 1.5, silence <= 3.0, silence > 3.0],
                               ["engaged", "cooling", "lapsed"], "n/a"),
                     index=customers.index)


def check(inputs, strategy: str, customers=None) -> list[dict]:
    """One row per segment: name, size, first action, the states it is for, its fit."""
    config = custseg.Config(report=False, figures=False)
    result = custseg.run_segments(inputs, customers=customers, config=config,
                                  strategy=strategy)
    table = result.customers
    state = states(table)
    rows = []
    for seg in result.summary.segments:
        if seg.id == -1:
            continue
        mine = table["segment"] == seg.id
        wanted = seg.get("action_for") or []
        known = mine & (state != "n/a")  # nobody bought twice: no rhythm to be in
        fit = float(state[known].isin(wanted).mean()) if wanted and known.any() else None
        rows.append({"name": seg.name, "customers": seg.size, "action": seg.actions[0],
                     "for": "/".join(wanted), "fit": fit, "own_fit": seg.get("action_fit"),
                     "warned": bool(seg.get("action_warning"))})
    return rows


def corpus(only: set[str]) -> list[tuple[str, str, object, object]]:
    """(name, what, inputs, customers) of every history found."""
    found = []
    demo = Path(tempfile.gettempdir()) / "custseg-bench-demo"
    if not (demo / "transactions.parquet").exists():
        from custseg.synth import generate
        generate(5000, demo, seed=42)
    found.append(("demo", "synthetic shop (make demo)", str(demo / "transactions.parquet"),
                  str(demo / "customers.parquet")))
    retail = ROOT.parent / "shared" / "data" / "online_retail.parquet"
    if retail.exists():
        found.append(("online_retail", "gifts (UCI Online Retail)", str(retail), None))
    else:
        print(f"skipped online_retail: {retail} is absent")
    folder = Path(os.environ.get("CUSTSEG_EXPORTS", ROOT.parent / "exports"))
    entries = {e["name"]: e for e in json.loads((HERE / "exports.json").read_text("utf-8"))}
    for name, what in HISTORIES.items():
        entry = entries[name]
        paths = [folder / p for p in entry["inputs"]]
        if not all(p.exists() for p in paths):
            print(f"skipped {name}: {paths[0]} is absent (set CUSTSEG_EXPORTS)")
            continue
        inputs = str(paths[0]) if len(paths) == 1 else [str(p) for p in paths]
        found.append((name, what, inputs, None))
    return [f for f in found if not only or f[0] in only]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="Comma-separated names of histories.")
    parser.add_argument("--strategies", default="stages,clusters")
    parser.add_argument("--out", default=None, help="Also write the tables to this file.")
    args = parser.parse_args()
    only = {n for n in args.only.split(",") if n}
    lines, summary = [], ["| history | what | strategy | segments | lowest fit | "
                          "under 80% | seconds |", "|---|---|---|---:|---:|---:|---:|"]
    for name, what, inputs, customers in corpus(only):
        for strategy in args.strategies.split(","):
            start = time.perf_counter()
            try:
                rows = check(inputs, strategy, customers)
            except CustsegError as exc:
                summary.append(f"| {name} | {what} | {strategy} | error: {exc} | | | |")
                continue
            seconds = time.perf_counter() - start
            print(f"{name} --strategy {strategy}: {seconds:.1f} s", flush=True)
            fits = [r["fit"] for r in rows if r["fit"] is not None]
            under = sum(f < GOAL for f in fits)
            lowest = f"{min(fits):.0%}" if fits else "n/a"
            summary.append(f"| {name} | {what} | {strategy} | {len(rows)} | {lowest} | "
                           f"{under} | {seconds:.1f} |")
            lines += [f"\n### {name} ({what}), --strategy {strategy}\n",
                      "| segment | customers | first action | for | fit |",
                      "|---|---:|---|---|---:|"]
            lines += [f"| {r['name']} | {r['customers']:,} | {r['action']} | {r['for']} | "
                      + ("-" if r["fit"] is None else f"{r['fit']:.0%}")
                      + (" (warned)" if r["warned"] else "") + " |" for r in rows]
    text = "\n".join(summary + lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
