"""Benchmark custseg's clustering against plain scikit-learn.

    python benchmarks/bench_cluster.py --customers 1000000 [--skip-agglomerative] [--repeat 3]

1. Synthetic customers x 8 features, seed 0: ``make_blobs(n, 8, centers=5,
   cluster_std=2.0, random_state=0)`` with the last three columns turned into skewed
   positive values (``exp(x / 4)``, like spend or order counts). They are cached in
   ``benchmarks/.cache/cluster-<n>-seed0*.npy`` with the blob of each row (the truth) and
   the matrix custseg prepares from them (log1p of the skewed columns, standard scaling),
   which the algorithm-level contenders take. Rows are shuffled, so the first ``m`` rows
   are a random sample.
2. Each contender runs in its own fresh Python process, which reports the wall-clock
   seconds of its work (imports and data loading excluded) and its own peak resident
   memory (``getrusage(RUSAGE_SELF).ru_maxrss``, read at exit):

   * ``custseg kmeans auto-k``: ``Segmenter(algorithm="kmeans", k="auto", k_range=(2, 10),
     seed=0).fit(X)`` on the raw features: preparation, choice of k, final fit, metrics and
     bootstrap stability. Goal: 90 s at 1,000,000 rows.
   * ``custseg kmeans fit (k fixed)``: ``fit_kmeans(Xp, 5, seed=0, n_init=10)``, against
   * ``scikit-learn (MiniBatch)KMeans``: the estimator ``fit_kmeans`` builds at that size
     (MiniBatchKMeans with ``n_init=max(3, 10 // 3)``, batch 4096, ``max_no_improvement=20``
     from 200,000 rows; KMeans with ``n_init=10`` below). Goal: custseg within 1.2x.
   * ``custseg hierarchical``: ``fit_hierarchical(Xp, 5, seed=0)``. Goal: 3 minutes, 4 GB.
   * ``scikit-learn AgglomerativeClustering(n_clusters=5, linkage="ward")`` on the first
     5,000, 10,000, 20,000 rows (it keeps an n x n distance matrix, so never 40,000 or
     more; it stops growing once a size takes over 120 s), with custseg hierarchical on
     the same rows and the adjusted Rand index between the two.

   ``ru_maxrss`` carries over from parent to child across ``exec``, so this parent process
   stays small: data generation and the label comparisons (ARI) run in children as well.
   The CPU time other processes used during each run is measured (``/proc/stat``) and the
   report says when they competed for the cores.
3. Prints markdown tables and writes them to ``benchmarks/results/bench_cluster-<n>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _machine import machine_line

if TYPE_CHECKING:
    import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
SEED = 0
N_FEATURES = 8
N_CENTERS = 5
CLUSTER_STD = 2.0
K = 5
#: ``n_init`` of the fixed-k fits (Segmenter's default for its final fit).
N_INIT = 10
#: As ``custseg.cluster._centroid.MINIBATCH_FROM``: from here fit_kmeans uses MiniBatchKMeans.
MINIBATCH_FROM = 200_000
AGGLOMERATIVE_SIZES = (5_000, 10_000, 20_000)
AGGLOMERATIVE_STOP_S = 120.0
#: Goals: auto-k seconds; fixed-k ratio custseg / scikit-learn; hierarchical seconds and MB.
GOAL_AUTO_S = 90.0
GOAL_FIT_RATIO = 1.2
GOAL_HIER_S = 180.0
GOAL_HIER_MB = 4096.0
#: Other processes keeping more cores than this busy during a run make its timing suspect.
BUSY_CORES = 0.2


# ------------------------------------------------------------------------------- data
def data_paths(n: int) -> dict[str, Path]:
    """The cached arrays for ``n`` customers: raw features, truth, prepared matrix."""
    stem = CACHE / f"cluster-{n}-seed{SEED}"
    return {"raw": stem.with_suffix(".npy"), "truth": Path(f"{stem}-truth.npy"),
            "prepared": Path(f"{stem}-prepared.npy")}


def generate_cached(n: int) -> dict[str, Any]:
    """Generate and cache the data for ``n`` customers (in a child process)."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_blobs

    from custseg.cluster import FeaturePrep

    start = time.perf_counter()
    X, truth = make_blobs(n, N_FEATURES, centers=N_CENTERS, cluster_std=CLUSTER_STD,
                          random_state=SEED)
    X[:, -3:] = np.exp(X[:, -3:] / 4)  # skewed positive columns, like spend or counts
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(N_FEATURES)])  # as Segmenter
    prepared = FeaturePrep().fit(frame).transform_frame(frame)
    paths = data_paths(n)
    CACHE.mkdir(parents=True, exist_ok=True)
    for key, arr in (("raw", X), ("truth", truth.astype(np.int64)), ("prepared", prepared)):
        tmp = paths[key].with_name(paths[key].name + f".tmp-{os.getpid()}.npy")
        np.save(tmp, arr)
        os.replace(tmp, paths[key])
    return {"seconds": time.perf_counter() - start}


def load(n: int, rows: int, kind: str) -> np.ndarray:
    """The first ``rows`` rows of a cached array, in memory and contiguous."""
    import numpy as np

    return np.ascontiguousarray(np.load(data_paths(n)[kind])[:rows])


# ------------------------------------------------------------------------- contenders
def compare(n: int, labels_dir: Path) -> dict[str, Any]:
    """ARI of every saved labelling (``<name>-<rows>.npy``) against the blobs, and of
    custseg hierarchical against AgglomerativeClustering at each size."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    truth = np.load(data_paths(n)["truth"])
    labels = {p.stem: np.load(p) for p in sorted(labels_dir.glob("*.npy"))}
    out = {f"{stem}:truth": adjusted_rand_score(truth[:len(lab)], lab)
           for stem, lab in labels.items()}
    for stem, lab in labels.items():
        other = stem.replace("agglomerative-", "hierarchical-")
        if stem.startswith("agglomerative-") and other in labels:
            out[f"{other}:{stem}"] = adjusted_rand_score(lab, labels[other])
    return out


def run_auto_k(n: int, rows: int) -> tuple[dict[str, Any], np.ndarray]:
    from custseg import Segmenter

    X = load(n, rows, "raw")
    start = time.perf_counter()
    seg = Segmenter(algorithm="kmeans", k="auto", k_range=(2, 10), seed=SEED).fit(X)
    seconds = time.perf_counter() - start
    sel = seg.k_selection_ or {}
    return {"seconds": seconds, "k": int(seg.n_clusters_), "fit_seconds": seg.fit_seconds_,
            "reason": sel.get("reason"), "silhouette": seg.metrics_["silhouette"],
            "stability_ari": seg.metrics_["stability_ari"],
            "curves": {key: sel.get(key) for key in ("k", "inertia", "silhouette",
                                                     "calinski_harabasz", "davies_bouldin")},
            }, seg.labels_


def run_fit_kmeans(n: int, rows: int) -> tuple[dict[str, Any], np.ndarray]:
    from custseg.cluster._centroid import fit_kmeans

    X = load(n, rows, "prepared")
    start = time.perf_counter()
    fitted = fit_kmeans(X, K, seed=SEED, n_init=N_INIT)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "inertia": fitted.extra["inertia"], **fitted.params}, \
        fitted.labels


def run_sklearn_kmeans(n: int, rows: int) -> tuple[dict[str, Any], np.ndarray]:
    import warnings

    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    X = load(n, rows, "prepared")
    minibatch = rows >= MINIBATCH_FROM
    start = time.perf_counter()
    if minibatch:
        model = MiniBatchKMeans(n_clusters=K, n_init=max(3, N_INIT // 3), random_state=SEED,
                                batch_size=4096, max_no_improvement=20)
    else:
        model = KMeans(n_clusters=K, n_init=N_INIT, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = model.fit_predict(X)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "inertia": float(model.inertia_), "n_init": model.n_init,
            "minibatch": minibatch}, labels


def run_hierarchical(n: int, rows: int) -> tuple[dict[str, Any], np.ndarray]:
    from custseg.cluster._hierarchical import fit_hierarchical

    X = load(n, rows, "prepared")
    start = time.perf_counter()
    fitted = fit_hierarchical(X, K, seed=SEED)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, **fitted.params}, fitted.labels


def run_agglomerative(n: int, rows: int) -> tuple[dict[str, Any], np.ndarray]:
    from sklearn.cluster import AgglomerativeClustering

    X = load(n, rows, "prepared")
    start = time.perf_counter()
    labels = AgglomerativeClustering(n_clusters=K, linkage="ward").fit_predict(X)
    seconds = time.perf_counter() - start
    return {"seconds": seconds}, labels


Runner = Callable[[int, int], "tuple[dict[str, Any], np.ndarray]"]
CONTENDERS: dict[str, tuple[str, Runner]] = {
    "auto_k": ("custseg kmeans auto-k", run_auto_k),
    "fit_kmeans": ("custseg kmeans fit (k fixed)", run_fit_kmeans),
    "sklearn_kmeans": ("scikit-learn (MiniBatch)KMeans, same settings", run_sklearn_kmeans),
    "hierarchical": ("custseg hierarchical", run_hierarchical),
    "agglomerative": ("scikit-learn AgglomerativeClustering ward", run_agglomerative),
}


# ---------------------------------------------------------------------- child process
def child(name: str, n: int, rows: int, work: Path) -> None:
    """Run one job in this process and print its report as one JSON line: a contender
    (its labels saved as ``work/<name>-<rows>.npy``), ``synth`` or ``compare``."""
    import numpy as np

    if name == "synth":
        report = generate_cached(n)
    elif name == "compare":
        report = compare(n, work)
    else:
        report, labels = CONTENDERS[name][1](n, rows)
        report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        np.save(work / f"{name}-{rows}.npy", np.asarray(labels, dtype=np.int64))
    print(json.dumps(report))


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``)."""
    with open("/proc/stat") as fh:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, fh.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(name: str, n: int, rows: int, work: Path) -> dict[str, Any]:
    """Run ``child(name, n, rows, work)`` in a fresh interpreter and return its report,
    with ``other_cores``: how many cores other processes kept busy meanwhile, on average
    (a sign that the machine was not quiet and the timing is inflated)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name,
           "--customers", str(n), "--rows", str(rows), "--work", str(work)]
    busy, own, start = busy_cpu_seconds(), children_cpu_seconds(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    others = (busy_cpu_seconds() - busy) - (children_cpu_seconds() - own)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{name} at {rows:,} rows failed (exit code {proc.returncode})")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["other_cores"] = max(0.0, others / elapsed)
    return report


def best_of(names: list[str], n: int, rows: int, repeat: int, work: Path
            ) -> dict[str, dict[str, Any]]:
    """Per contender, its fastest of ``repeat`` runs with the highest peak RSS of all; the
    contenders take turns, so a slow spell of the machine does not fall on one alone.
    Labels are deterministic, so the last run's saved labels stand for all."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for i in range(repeat):
        for name in names:
            print(f"Running {name} at {rows:,} rows ({i + 1}/{repeat}) ...", flush=True)
            runs[name].append(measure(name, n, rows, work))
    best = {}
    for name, reports in runs.items():
        best[name] = min(reports, key=lambda r: r["seconds"])
        best[name]["peak_rss_mb"] = max(r["peak_rss_mb"] for r in reports)
        best[name]["all_seconds"] = [round(r["seconds"], 2) for r in reports]
        best[name]["max_other_cores"] = max(r["other_cores"] for r in reports)
    return best


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000,
                        help="customers (rows) of the synthetic data")
    parser.add_argument("--skip-agglomerative", action="store_true",
                        help="leave out the AgglomerativeClustering comparison")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per contender; the fastest is reported")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n = args.customers
    if args.child:
        child(args.child, n, args.rows, Path(args.work))
        return

    CACHE.mkdir(parents=True, exist_ok=True)
    gen_seconds = None
    if not all(p.exists() for p in data_paths(n).values()):
        print(f"Generating {n:,} customers x {N_FEATURES} features ...", flush=True)
        gen_seconds = measure("synth", n, n, CACHE)["seconds"]
    with tempfile.TemporaryDirectory(prefix="labels-", dir=CACHE) as tmp:
        work = Path(tmp)
        main_rows = best_of(["auto_k", "fit_kmeans", "sklearn_kmeans", "hierarchical"], n, n,
                            args.repeat, work)
        sizes: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
        for rows in (AGGLOMERATIVE_SIZES if not args.skip_agglomerative else ()):
            if rows > n:
                break
            pair = best_of(["agglomerative", "hierarchical"], n, rows, args.repeat, work)
            sizes.append((rows, pair["agglomerative"], pair["hierarchical"]))
            if pair["agglomerative"]["seconds"] > AGGLOMERATIVE_STOP_S:
                break
        print("Comparing labels ...", flush=True)
        ari = measure("compare", n, n, work)
    text = report_text(n, gen_seconds, main_rows, sizes, ari, args.repeat)
    print()
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench_cluster-{n}.md"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    print(f"Written to {out.relative_to(HERE.parent)}")


def report_text(n: int, gen_seconds: float | None, main_rows: dict[str, dict[str, Any]],
                sizes: list[tuple[int, dict[str, Any], dict[str, Any]]], ari: dict[str, float],
                repeat: int) -> str:
    """The markdown report."""
    auto, fit, raw, hier = (main_rows[k] for k in ("auto_k", "fit_kmeans", "sklearn_kmeans",
                                                   "hierarchical"))
    ratio = fit["seconds"] / raw["seconds"]
    algo = (f"MiniBatchKMeans n_init={raw['n_init']}, batch 4096" if raw["minibatch"]
            else f"KMeans n_init={raw['n_init']}")
    results = {
        "auto_k": (f"k={auto['k']}, silhouette {auto['silhouette']}, stability ARI "
                   f"{auto['stability_ari']}", f"<= {GOAL_AUTO_S:.0f} s",
                   auto["seconds"] <= GOAL_AUTO_S),
        "fit_kmeans": (f"inertia {fit['inertia']:,.0f}; {ratio:.2f}x scikit-learn",
                       f"<= {GOAL_FIT_RATIO}x scikit-learn", ratio <= GOAL_FIT_RATIO),
        "sklearn_kmeans": (f"inertia {raw['inertia']:,.0f} ({algo})", "", None),
        "hierarchical": (f"{hier['micro_clusters']} micro-clusters",
                         f"<= {GOAL_HIER_S:.0f} s, {GOAL_HIER_MB:,.0f} MB",
                         hier["seconds"] <= GOAL_HIER_S and hier["peak_rss_mb"] <= GOAL_HIER_MB),
    }
    rows = ["| contender | rows | seconds | every run s | peak RSS MB | ARI vs blobs | result "
            "| goal | met |", "|---|---:|---:|---:|---:|---:|---|---|:---:|"]
    for name, report in main_rows.items():
        result, goal, met = results[name]
        mark = "" if met is None else ("yes" if met else "**NO**")
        every = " / ".join(f"{v:.1f}" for v in report["all_seconds"])
        rows.append(f"| {CONTENDERS[name][0]} | {n:,} | {report['seconds']:.2f} | {every} | "
                    f"{report['peak_rss_mb']:,.0f} | {ari[f'{name}-{n}:truth']:.4f} | {result} | "
                    f"{goal} | {mark} |")
    gen = ("reused from cache" if gen_seconds is None
           else f"generated in {gen_seconds:.1f} s")
    out = [
        f"# bench_cluster --customers {n:,}", "",
        f"Data: {n:,} synthetic customers x {N_FEATURES} features, `make_blobs(centers="
        f"{N_CENTERS}, cluster_std={CLUSTER_STD}, random_state={SEED})` with the last three "
        "columns made skewed and positive (`exp(x / 4)`); the algorithm-level contenders take "
        "the matrix custseg's feature preparation makes of it (log1p of the skewed columns, "
        f"standard scaling); cached in `benchmarks/.cache/`, {gen}.",
        machine_line(("custseg", "scikit-learn", "scipy", "numpy")),
        "Each contender ran in a fresh process; seconds exclude imports and data loading; "
        f"peak RSS is the process's high-water mark (the {n:,} x {N_FEATURES} input alone is "
        f"{n * N_FEATURES * 8 / 1024 ** 2:,.0f} MB); "
        f"best of {repeat} run(s), the contenders taking turns. ARI vs blobs: adjusted Rand "
        "index against the blob each row was drawn from.", "",
        *rows, "",
        f"custseg auto-k: `fit_seconds_` (choice of k + final fit) {auto['fit_seconds']:.2f} s "
        f"of {auto['seconds']:.2f} s; the rest is feature preparation, final metrics and "
        f"bootstrap stability. {auto['reason']}.",
    ]
    curves = auto["curves"]
    if curves.get("k"):
        out += ["", "| k | " + " | ".join(str(k) for k in curves["k"]) + " |",
                "|---|" + "---:|" * len(curves["k"])]
        for key in ("silhouette", "calinski_harabasz", "davies_bouldin", "inertia"):
            out.append(f"| {key} | " + " | ".join(
                "" if v is None else f"{v:,.4g}" if key == "inertia" or v > 100 else f"{v:.3f}"
                for v in curves[key]) + " |")
    if sizes:
        out += ["", "Ward hierarchical on the first rows (a random sample): scikit-learn's exact "
                "AgglomerativeClustering vs custseg's micro-clusters + weighted Ward merge.", "",
                "| rows | scikit-learn s | scikit-learn peak RSS MB | custseg s | custseg peak "
                "RSS MB | ARI custseg vs scikit-learn | ARI vs blobs (sklearn / custseg) |",
                "|---:|---:|---:|---:|---:|---:|---:|"]
        for m, agg, hier_m in sizes:
            a, h = f"agglomerative-{m}", f"hierarchical-{m}"
            out.append(f"| {m:,} | {agg['seconds']:.2f} | {agg['peak_rss_mb']:,.0f} | "
                       f"{hier_m['seconds']:.2f} | {hier_m['peak_rss_mb']:,.0f} | "
                       f"{ari[f'{h}:{a}']:.4f} | {ari[f'{a}:truth']:.4f} / "
                       f"{ari[f'{h}:truth']:.4f} |")
    missed = [f"{CONTENDERS[k][0]}: {results[k][0]} ({main_rows[k]['seconds']:.1f} s, "
              f"{main_rows[k]['peak_rss_mb']:,.0f} MB; goal {results[k][1]})"
              for k in results if results[k][2] is False]
    out += ["", ("**Goals missed:** " + "; ".join(missed) + ".") if missed
            else "Every custseg goal is met.", "", quiet_text(main_rows, sizes, n), ""]
    return "\n".join(out)


def quiet_text(main_rows: dict[str, dict[str, Any]],
               sizes: list[tuple[int, dict[str, Any], dict[str, Any]]], n: int) -> str:
    """Whether other processes competed for the cores during the runs."""
    loads = {f"{CONTENDERS[k][0]} at {n:,} rows": r["max_other_cores"]
             for k, r in main_rows.items()}
    for m, agg, hier in sizes:
        loads[f"{CONTENDERS['agglomerative'][0]} at {m:,} rows"] = agg["max_other_cores"]
        loads[f"{CONTENDERS['hierarchical'][0]} at {m:,} rows"] = hier["max_other_cores"]
    busy = {k: v for k, v in loads.items() if v > BUSY_CORES}
    if not busy:
        return (f"Machine quiet: other processes kept at most {max(loads.values()):.2f} cores "
                "busy on average during any run.")
    return ("**Caution:** other processes competed for the cores (average cores they kept "
            "busy in the worst run): " + "; ".join(f"{k} {v:.2f}" for k, v in busy.items())
            + "; those timings are inflated.")


if __name__ == "__main__":
    main()
