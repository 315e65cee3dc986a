"""Benchmark the assignment step of scoring: customers per second, for every kind of rule.

    python benchmarks/bench_score.py [--customers 1000000] [--algorithms kmeans,gmm,...]

For each algorithm, fits a Segmenter (k=5 where k is asked for) on 100,000 synthetic
customers with transaction-like features, saves it as model.json, loads it, then times
``custseg.model.assign`` (feature preparation from the stored spec + the stored assignment
rule) on ``--customers`` customers, best of 3. scikit-learn's ``KMeans.predict`` on the
already prepared matrix is the baseline. Also says how many of the 100,000 training
customers the loaded model gives back their training segment. Goal: at least 1,000,000
customers per second. k-prototypes on numeric features is k-means (the same rule).
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


def _best_of_3(step) -> float:
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        step()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--algorithms", default="kmeans,hierarchical,gmm,affinity,dbscan,hdbscan")
    args = parser.parse_args()
    from sklearn.cluster import KMeans

    import custseg
    from custseg.outputs.model import assign

    table = customers(args.customers)
    train = table.sample(100_000, random_state=0) if len(table) > 100_000 else table
    rows, kmeans_seg = [], None
    for algorithm in args.algorithms.split(","):
        needs_k = custseg.cluster.ALGORITHMS[algorithm].needs_k
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg = custseg.Segmenter(algorithm=algorithm, k=5 if needs_k else "auto",
                                    n_bootstrap=0).fit(train.drop(columns="customer_id"))
        with tempfile.TemporaryDirectory() as tmp:
            custseg.save_model(seg, Path(tmp) / "model.json")
            size = (Path(tmp) / "model.json").stat().st_size
            model = custseg.load_model(Path(tmp) / "model.json").data
        seconds = _best_of_3(lambda m=model: assign(m, table))
        scored = assign(model, train)
        want = np.where(seg.labels_ == -1, -1, seg.labels_ + 1)
        same = int((scored["segment"].to_numpy() == want).sum())
        a = model["clustering"]["assignment"]
        rows.append({"algorithm": algorithm, "rule": a["kind"], "stored": len(a["segments"]),
                     "segments": seg.n_clusters_, "kb": size / 1024, "seconds": seconds,
                     "rate": args.customers / seconds, "same": same, "train": len(train)})
        print(rows[-1], flush=True)
        if algorithm == "kmeans":
            kmeans_seg = seg
    baseline = ""
    if kmeans_seg is not None:
        X = kmeans_seg.prep_.transform_frame(table)
        km = KMeans(5, n_init=1, random_state=0).fit(X[:100_000])
        km.cluster_centers_ = kmeans_seg.cluster_centers_
        theirs = _best_of_3(lambda: km.predict(X))
        baseline = (f"| scikit-learn KMeans.predict on the prepared matrix (baseline) | | | | "
                    f"| {theirs:.3f} | {args.customers / theirs:,.0f} | | |")
    lines = [
        f"# bench_score --customers {args.customers:,}", "",
        machine_line(("custseg", "scikit-learn", "scipy", "numpy", "pandas")), "",
        "Assignment = feature preparation from the stored spec + the stored rule, on "
        f"{args.customers:,} synthetic customers (best of 3); models fitted on 100,000 of them. "
        "'stored': centres, mixture components or customers the rule keeps. 'training "
        "customers given back': scoring the 100,000 training customers with the loaded model "
        "gives each its training segment.", "",
        "| algorithm | rule | stored | segments | model.json KB | seconds | customers per "
        "second | goal >= 1M/s | training customers given back |",
        "|---|---|---:|---:|---:|---:|---:|:---:|---:|"]
    for r in rows:
        lines.append(f"| {r['algorithm']} | {r['rule']} | {r['stored']:,} | {r['segments']} | "
                     f"{r['kb']:,.0f} | {r['seconds']:.3f} | {r['rate']:,.0f} | "
                     f"{'met' if r['rate'] >= GOAL else 'NOT met'} | {r['same']:,} of "
                     f"{r['train']:,} ({r['same'] / r['train']:.3%}) |")
    if baseline:
        lines.append(baseline)
    text = "\n".join([*lines, ""])
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"bench_score-{args.customers}.md").write_text(text)


if __name__ == "__main__":
    main()
