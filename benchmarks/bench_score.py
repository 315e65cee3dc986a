"""Benchmark the assignment step of scoring: customers per second.

    python benchmarks/bench_score.py [--customers 1000000]

Fits a Segmenter (k=5) on 100,000 synthetic customers with transaction-like features,
saves it as model.json, loads it, then times ``custseg.model.assign`` (feature preparation
from the stored spec + nearest stored centre) on ``--customers`` customers, against
scikit-learn's ``KMeans.predict`` on the already prepared matrix as a baseline. Goal: at
least 1,000,000 customers per second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from _machine import machine_line

HERE = Path(__file__).resolve().parent
GOAL = 1_000_000


def customers(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 5, n)
    return pd.DataFrame({
        "customer_id": np.arange(n).astype(str),
        "recency": rng.gamma(2, np.array([5, 20, 60, 150, 300])[group]) + 1,
        "frequency": rng.poisson(np.array([30, 10, 4, 2, 1])[group]) + 1,
        "monetary": rng.lognormal(np.array([8, 6.5, 5.5, 5, 4])[group], 0.5),
        "tenure": rng.gamma(3, 60, n) + 1,
        "avg_order_value": rng.lognormal(4.5, 0.6, n),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    from sklearn.cluster import KMeans

    import custseg
    from custseg.model import assign

    table = customers(args.customers)
    train = table.sample(100_000, random_state=0) if len(table) > 100_000 else table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = custseg.Segmenter(k=5, n_bootstrap=0).fit(train.drop(columns="customer_id"))
    with tempfile.TemporaryDirectory() as tmp:
        seg.save(Path(tmp) / "model.json")
        model = custseg.load_model(Path(tmp) / "model.json").data
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        scored = assign(model, table)
        timings.append(time.perf_counter() - start)
    ours = min(timings)
    X = seg.prep_.transform_frame(table)
    km = KMeans(5, n_init=1, random_state=0).fit(X[:100_000])
    km.cluster_centers_ = seg.cluster_centers_
    base = []
    for _ in range(3):
        start = time.perf_counter()
        km.predict(X)
        base.append(time.perf_counter() - start)
    theirs = min(base)
    rate = args.customers / ours
    text = "\n".join([
        f"# bench_score --customers {args.customers:,}", "",
        machine_line(("custseg", "scikit-learn", "numpy", "pandas")), "",
        "| step | customers | seconds (best of 3) | customers per second |",
        "|---|---:|---:|---:|",
        f"| custseg assign (prepare from the stored spec + nearest centre) | "
        f"{args.customers:,} | {ours:.3f} | {rate:,.0f} |",
        f"| scikit-learn KMeans.predict on the prepared matrix | {args.customers:,} | "
        f"{theirs:.3f} | {args.customers / theirs:,.0f} |", "",
        f"Goal >= {GOAL:,} customers per second: {'met' if rate >= GOAL else 'NOT met'}. "
        f"Segments found: {scored['segment'].nunique()}.", ""])
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"bench_score-{args.customers}.md").write_text(text)


if __name__ == "__main__":
    main()
