"""The whole `custseg run` at scale, against the bare minimum and a seed-style notebook.

    python benchmarks/bench_scale.py --data synth:1M,synth:10M,synth:100M,retail:5,retail:40
        [--contenders custseg,bare,seed,spark] [--timeout 1800] [--seed-timeout 600]
        [--repeat N]

Data sets (generated once into ``benchmarks/.cache/`` and reused):

* ``synth:N`` -- about N synthetic order lines (``custseg.synth``, N // 20 customers).
* ``retail:C`` -- C copies of the real Online Retail lines (``../shared/data``), each copy
  with its own customer and invoice numbers: "real-shaped" data (C=5: 2.7M lines, 21,690
  customers; C=40: 21.7M lines, 173,520 customers).

Contenders, each a whole process timed as a user waits for it (start-up, imports,
writing and teardown included); peak memory is the largest resident set of the process
*tree* (Spark's JVM included), sampled every 0.2 s:

* ``custseg``: the command ``custseg run DATA --out DIR -q`` (DuckDB engine): read,
  audited cleaning, features, RFM, predicted value (BG/NBD, Gamma-Gamma), k-means with k
  chosen automatically on a stratified sample and bootstrap stability, profiles, names,
  rules, the HTML report with its figures, ``model.json``; stage seconds from its
  ``summary.json`` (they add up to its wall clock).
* ``spark``: the same with ``--engine spark`` (local[*] master), its driver's JVM mapping
  the class archive an earlier session recorded (one untimed run records it first where
  there is none).
* ``spark-first``: the same on a machine where Spark never ran (an empty cache folder):
  no class archive to map; as it exits, it starts the recorder in the background, which
  the benchmark waits for (untimed) before the next contender.
* ``bare``: the bare minimum: one DuckDB query for recency, frequency, monetary; then
  scikit-learn KMeans for k = 2..10 scored by silhouette on a 10,000-customer sample;
  then KMeans with 10 inits at the best k.
* ``seed``: the seed-style notebook: pandas ``read_parquet`` and ``groupby`` with a
  lambda for recency, KMeans (10 inits) for k = 2..10 scored by silhouette over every
  customer, then AgglomerativeClustering (Ward) over every customer. It gets at most
  ``--seed-timeout`` seconds and 16 GB of address space; where it fails or is stopped
  that is recorded, and it is not tried on larger data.

After the custseg contender, unless ``--no-sample-check``: the choice of k on the
stratified sample against the search over every customer (``Segmenter(k_sample=0)``), on
the customer features of that run's ``segments.csv``: k, silhouette, Calinski-Harabasz,
Davies-Bouldin, stability, and the seconds of each.

With ``--repeat N`` the contenders run in turn, N rounds: this machine's speed moves
by 10-40% within an hour, so one run of each can put a slow hour on one side of a ratio.
The tables then show each contender's run of median seconds (and its largest peak), and a
table of the rounds: each round's seconds and its ratio to the same round's bare minimum,
with their median and range.

With ``--busy N`` each data set's custseg run is timed twice, quiet and then beside N
CPU-bound processes started for the run and stopped after it (a laptop or a shared
server where other work runs): the ratio of busy to quiet seconds, for the whole run and
each stage. ``file:PATH`` names any input file (custseg only).

Writes ``benchmarks/results/bench_scale.md`` (``bench_scale-busy.md`` with ``--busy``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median
from typing import Any

STARTED = time.perf_counter()  # a child's start-up (imports) is timed from here
#: Every contender runs in the environment this script was started in: importing custseg
#: here (to generate data) sets OMP_WAIT_POLICY, which the baselines must not inherit.
START_ENV = dict(os.environ)

from _machine import compiled, machine_line  # noqa: E402
from bench_rfm import dataset, warm  # noqa: E402

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
RETAIL = HERE.parent.parent / "shared" / "data" / "online_retail.parquet"
SEED_MEMORY = 16 << 30
LABELS = {"custseg": "custseg run (DuckDB)", "spark": "custseg run --engine spark",
          "spark-first": "custseg run --engine spark, the machine's first (no class "
                         "archive yet)",
          "bare": "bare minimum", "seed": "seed-style notebook"}


# ----------------------------------------------------------------------------- data
def data_path(spec: str) -> Path:
    kind, _, size = spec.partition(":")
    if kind == "file":
        return Path(size)
    if kind == "synth":
        return dataset(_count(size))[0]
    if kind == "retail":
        return retail_copies(int(size))
    raise SystemExit(f"unknown data set {spec!r}; use synth:N or retail:COPIES")


def _count(text: str) -> int:
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1:].upper(), 1)
    return int(float(text.rstrip("KkMm")) * scale)


def retail_copies(copies: int) -> Path:
    """Online Retail repeated ``copies`` times, copy i with ids offset by i (cached)."""
    if not RETAIL.exists():
        raise SystemExit(f"real data set not found at {RETAIL}")
    out = CACHE / f"retail-x{copies}.parquet"
    if out.exists():
        return out
    import duckdb

    tmp = out.with_name(out.name + ".tmp")
    duckdb.connect().execute(f"""
        COPY (SELECT CASE WHEN starts_with(InvoiceNo, 'C') THEN 'C' ELSE '' END
                     || CAST(i * 1000000 + CAST(regexp_replace(InvoiceNo, '[^0-9]', '', 'g')
                                                AS BIGINT) AS VARCHAR) AS InvoiceNo,
                     StockCode, Description, Quantity, InvoiceDate, UnitPrice,
                     CustomerID + i * 100000 AS CustomerID, Country
              FROM read_parquet('{RETAIL}'), range({int(copies)}) AS t(i))
        TO '{tmp}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)""")
    os.replace(tmp, out)
    return out


# ------------------------------------------------------------------------ contenders
def custseg_command(path: Path, work: Path, engine: str = "duckdb") -> list[str]:
    """``custseg run`` as a user types it (through this interpreter's installation)."""
    return [sys.executable, "-m", "custseg.cli", "run", str(path), "--out", str(work / "out"),
            "--engine", engine, "-q"]


def custseg_report(work: Path) -> dict[str, Any]:
    """k, silhouette and stage seconds from the run's summary.json."""
    s = json.loads((work / "out" / "summary.json").read_text(encoding="utf-8"))
    return {"customers": s["customers"], "k": s["k"], "silhouette": s["metrics"]["silhouette"],
            "stages": s["timings_s"], "k_sample": (s.get("k_selection") or {}).get("sample")}


def sample_check(work: Path) -> dict[str, Any]:
    """k on the stratified sample against k searched over every customer, on the customer
    features of the custseg run (its segments.csv), as ``custseg run`` clusters them."""
    from custseg.cluster import Segmenter
    from custseg.core.config import Config
    from custseg.jobs.run import clash_finder
    from custseg.outputs.rundir import read_segments

    table = read_segments(work / "out")
    features = json.loads((work / "out" / "summary.json").read_text())["features"]["used"]
    out = {}
    for label, size in (("sample", Config().clustering.k_sample), ("every customer", 0)):
        start = time.perf_counter()
        model = Segmenter(features=features, k_sample=size, namer=clash_finder(Config()))
        model.fit(table)
        m = model.metrics_
        out[label] = {"k": model.n_clusters_, "seconds": time.perf_counter() - start,
                      **{key: m[key] for key in ("silhouette", "calinski_harabasz",
                                                 "davies_bouldin", "stability_ari")},
                      "sample": (model.k_selection_ or {}).get("sample", len(table))}
    return out


def run_bare(path: Path, work: Path) -> dict[str, Any]:
    import duckdb
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    frame = duckdb.connect().execute("""
        WITH buy AS (SELECT * FROM read_parquet(?) WHERE CustomerID IS NOT NULL
                     AND Quantity > 0 AND UnitPrice > 0 AND NOT starts_with(InvoiceNo, 'C'))
        SELECT CustomerID,
               date_diff('day', CAST(max(InvoiceDate) AS DATE),
                         (SELECT CAST(max(InvoiceDate) AS DATE) + 1 FROM buy)) AS recency,
               count(DISTINCT InvoiceNo) AS frequency, sum(Quantity * UnitPrice) AS monetary
        FROM buy GROUP BY CustomerID""", [str(path)]).df()
    t_features = time.perf_counter() - start
    X = StandardScaler().fit_transform(np.log1p(frame[["recency", "frequency", "monetary"]]))
    best, best_score = 2, -1.0
    for k in range(2, 11):
        labels = KMeans(k, random_state=0).fit_predict(X)
        score = silhouette_score(X, labels, sample_size=min(10_000, len(X)), random_state=0)
        if score > best_score:
            best, best_score = k, score
    t_choose = time.perf_counter() - start - t_features
    KMeans(best, n_init=10, random_state=0).fit(X)
    seconds = time.perf_counter() - start
    return {"customers": len(frame), "k": best,
            "silhouette": round(best_score, 4),
            "stages": {"start": start - STARTED, "features": t_features, "choose_k": t_choose,
                       "final_fit": seconds - t_features - t_choose}}


def run_seed(path: Path, work: Path) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.cluster import AgglomerativeClustering, KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    df = pd.read_parquet(path)
    df = df.dropna(subset=["CustomerID"])
    df = df[~df["InvoiceNo"].astype(str).str.startswith("C")]
    df = df[(df["Quantity"] > 0) & (df["UnitPrice"] > 0)]
    df["TotalPrice"] = df["Quantity"] * df["UnitPrice"]
    snapshot = df["InvoiceDate"].max() + pd.Timedelta(days=1)
    rfm = df.groupby("CustomerID").agg({
        "InvoiceDate": lambda x: (snapshot - x.max()).days,
        "InvoiceNo": "nunique", "TotalPrice": "sum"})
    rfm.columns = ["Recency", "Frequency", "Monetary"]
    t_features = time.perf_counter() - start
    X = StandardScaler().fit_transform(np.log1p(rfm))
    scores = {}
    for k in range(2, 11):
        labels = KMeans(n_clusters=k, n_init=10, random_state=42).fit_predict(X)
        scores[k] = silhouette_score(X, labels)
    best = max(scores, key=scores.get)
    t_choose = time.perf_counter() - start - t_features
    AgglomerativeClustering(n_clusters=best).fit(X)
    seconds = time.perf_counter() - start
    return {"customers": len(rfm), "k": best,
            "silhouette": round(float(scores[best]), 4),
            "stages": {"start": start - STARTED, "features": t_features, "choose_k": t_choose,
                       "agglomerative": seconds - t_features - t_choose}}


#: Contenders run as a child of this script (custseg and spark run as the command itself).
CONTENDERS = {"bare": run_bare, "seed": run_seed}
#: The module that records the Spark driver's class archive.
RECORDER = "custseg.jobs.spark_classes"
COMMANDS = {"custseg": custseg_command,
            "spark": lambda path, work: custseg_command(path, work, engine="spark"),
            "spark-first": lambda path, work: ["env", f"XDG_CACHE_HOME={work}/cache",
                                               *custseg_command(path, work, engine="spark")]}


def spark_class_archive() -> None:
    """Record the Spark driver's class archive (untimed) where there is none."""
    from custseg.core.cache import cache_dir

    folder = cache_dir() / "spark"
    if not any(folder.glob("classes-*.jsa")):
        print("  recording Spark's class archive (untimed) ...", flush=True)
        subprocess.run([sys.executable, "-m", RECORDER, "{}", str(folder)], env=START_ENV,
                       capture_output=True)


def recorders_done(timeout: float = 600) -> float:
    """Wait for class-archive recorders (a first Spark run starts one as it exits) to
    finish, so that they do not run beside the next contender; the seconds waited."""
    import psutil

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        running = [p for p in psutil.process_iter(["cmdline"])
                   if RECORDER in " ".join(p.info["cmdline"] or [])]
        if not running:
            break
        time.sleep(0.5)
    return time.perf_counter() - start


# -------------------------------------------------------------------------- running
def child(name: str, path: str, work: str) -> None:
    if name == "sample-check":
        print(json.dumps(sample_check(Path(work))))
        return
    if name == "seed":
        resource.setrlimit(resource.RLIMIT_AS, (SEED_MEMORY, SEED_MEMORY))
    try:
        report = CONTENDERS[name](Path(path), Path(work))
    except MemoryError:
        report = {"failed": f"MemoryError (address space limited to {SEED_MEMORY >> 30} GB)"}
    print(json.dumps(report))


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def run_measured(cmd: list[str], timeout: float | None = None,
                 stdout: Any = subprocess.PIPE) -> tuple[float, int, Any]:
    """Run ``cmd`` as a fresh process: its wall clock in seconds, the peak resident bytes of
    its process tree (sampled every 0.2 s) and the finished process (``.stdout``,
    ``.stderr``, ``.returncode``, and ``.cpu``: the user and system CPU seconds of the
    process and the children it waited for); raises ``subprocess.TimeoutExpired`` (with the
    peak as ``.peak``) after killing the tree when ``timeout`` passes."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True,
                            env=START_ENV)
    peak, done = [0], threading.Event()

    def sample_rss() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    try:
        proc.stdout, proc.stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        import psutil

        for p in psutil.Process(proc.pid).children(recursive=True):
            p.kill()
        proc.kill()
        proc.communicate()
        exc.peak = peak[0]  # what the stopped process had reached
        raise
    finally:
        done.set()
        sampler.join()
    seconds, now = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    proc.cpu = (now.ru_utime - used.ru_utime, now.ru_stime - used.ru_stime)
    return seconds, peak[0], proc


def measure(name: str, path: Path, timeout: float, sample: bool = False) -> dict[str, Any]:
    """Run one contender in a fresh process; its report, its wall clock (``seconds``) and
    the peak RSS of its process tree. With ``sample`` (custseg) also the sample check."""
    with tempfile.TemporaryDirectory(prefix=f"scale-{name}-", dir=CACHE) as work:
        cmd = (COMMANDS[name](path, Path(work)) if name in COMMANDS else
               [sys.executable, str(Path(__file__).resolve()), "--child", name,
                "--target", str(path), "--work", work])
        peak = 0
        try:
            seconds, peak, proc = run_measured(cmd, timeout)
        except subprocess.TimeoutExpired as exc:
            peak, report = exc.peak, {"failed": f"stopped after {timeout:.0f} s"}
        else:
            cpu = proc.cpu
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                report = {"failed": f"exit code {proc.returncode}: {last[:160]}"}
            elif name in COMMANDS:
                report = {"seconds": seconds, "cpu": cpu, **custseg_report(Path(work))}
            else:
                report = {**json.loads(proc.stdout.strip().splitlines()[-1]), "seconds": seconds,
                          "cpu": cpu}
        if name == "spark-first":  # its recorder, in the background, is done before the next
            report["recorder_seconds"] = recorders_done()
            report["recorded"] = any((Path(work) / "cache").glob("custseg/spark/classes-*.jsa"))
        report["peak_mb"] = peak / 2 ** 20
        if sample and "failed" not in report:
            check = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child",
                                    "sample-check", "--target", str(path), "--work", work],
                                   capture_output=True, text=True, check=True)
            report["sample_check"] = json.loads(check.stdout.strip().splitlines()[-1])
    return report


def lines_and_customers(path: Path) -> tuple[int, int]:
    import duckdb

    return duckdb.connect().execute(
        "SELECT count(*), count(DISTINCT CustomerID) FROM read_parquet(?)",
        [str(path)]).fetchone()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="synth:1M,synth:10M,synth:100M,retail:5,retail:40")
    parser.add_argument("--contenders", default="custseg,bare,seed")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--seed-timeout", type=float, default=600)
    parser.add_argument("--out", default=str(RESULTS / "bench_scale.md"))
    parser.add_argument("--no-sample-check", action="store_true",
                        help="skip k on every customer against k on the sample")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="rounds of all contenders in turn; medians and ranges reported")
    parser.add_argument("--busy", type=int, default=0, metavar="N",
                        help="time custseg quiet and beside N CPU-bound processes")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.target, args.work)
        return
    compiled()  # custseg's bytecode, as an installed wheel has it (not in a child)
    CACHE.mkdir(parents=True, exist_ok=True)
    if args.busy:
        out = (Path(args.out) if args.out != str(RESULTS / "bench_scale.md")
               else RESULTS / "bench_scale-busy.md")
        busy_runs(args.data.split(","), args.busy, args.timeout, out)
        return
    names = args.contenders.split(",")
    rows = []
    seed_failed: tuple[str, int] | None = None  # where the seed-style notebook gave up
    for spec in args.data.split(","):
        path = data_path(spec)
        lines, customers = lines_and_customers(path)
        warm(path)
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for turn in range(args.repeat):  # contenders in turn, so a slow hour hits them all
            for name in names:
                if name == "seed" and seed_failed and customers >= seed_failed[1]:
                    rounds[name].append({"failed": f"not run: gave up on {seed_failed[0]}, "
                                                   "which has fewer customers"})
                    continue
                print(f"{spec}: {name} ({turn + 1} of {args.repeat}) ...", flush=True)
                timeout = args.seed_timeout if name == "seed" else args.timeout
                if name == "spark":
                    spark_class_archive()
                rounds[name].append(measure(
                    name, path, timeout, sample=(name == "custseg" and turn == 0
                                                 and not args.no_sample_check)))
                print(f"  {json.dumps(rounds[name][-1])}", flush=True)
                if name == "seed" and "failed" in rounds[name][-1]:
                    seed_failed = (spec, customers)
        results = {name: median_run(runs) for name, runs in rounds.items()}
        rows.append((spec, lines, customers, results))
        write(rows, names, Path(args.out))


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median seconds among ``runs`` (the slower of the middle two), with every
    run's seconds as ``rounds`` and the largest peak of them (a failed run: the first
    failure)."""
    failed = [r for r in runs if "failed" in r]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {**ordered[len(ordered) // 2], "rounds": [r["seconds"] for r in runs],
            "peak_mb": max(r["peak_mb"] for r in runs)}


def paired_ratios(one: dict[str, Any], other: dict[str, Any]) -> list[float]:
    """One contender's seconds over another's, round by round."""
    return [a / b for a, b in zip(one.get("rounds", []), other.get("rounds", []), strict=False)]


@contextlib.contextmanager
def busy(processes: int):
    """``processes`` CPU-bound processes for the block (each spins on one core)."""
    spinning = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(processes)]
    try:
        time.sleep(0.5)  # running before the measured run starts
        yield
    finally:
        for proc in spinning:
            proc.kill()
            proc.wait()


def busy_runs(specs: list[str], processes: int, timeout: float, out: Path) -> None:
    """custseg on each data set, quiet and then beside ``processes`` CPU-bound ones."""
    rows = ["| data | quiet s | busy s | busy / quiet | slowest stage: quiet → busy s "
            "(ratio) | its ratio / the whole run's | stages, busy / quiet |",
            "|---|---:|---:|---:|---|---:|---|"]
    for spec in specs:
        path = data_path(spec)
        if path.suffix == ".parquet":
            warm(path)
        print(f"{spec}: quiet ...", flush=True)
        quiet = measure("custseg", path, timeout)
        print(f"{spec}: beside {processes} busy processes ...", flush=True)
        with busy(processes):
            loaded = measure("custseg", path, timeout)
        if "failed" in quiet or "failed" in loaded:
            rows.append(f"| {spec} | {quiet.get('failed', '')} | {loaded.get('failed', '')} "
                        "| | | | |")
            continue
        whole = loaded["seconds"] / quiet["seconds"]
        ratios = {k: loaded["stages"].get(k, 0.0) / v for k, v in quiet["stages"].items()
                  if v >= 0.05}
        worst = max(ratios, key=ratios.get)
        rows.append(f"| {spec} | {quiet['seconds']:.1f} | {loaded['seconds']:.1f} | "
                    f"{whole:.2f}x | {worst}: {quiet['stages'][worst]:.2f} → "
                    f"{loaded['stages'][worst]:.2f} ({ratios[worst]:.1f}x) | "
                    f"{ratios[worst] / whole:.2f} | "
                    + ", ".join(f"{k} {r:.1f}x" for k, r in ratios.items()) + " |")
        print(rows[-1], flush=True)
    text = "\n".join([
        "# bench_scale --busy", "",
        f"Command: `python benchmarks/bench_scale.py {' '.join(sys.argv[1:])}`",
        machine_line(("custseg", "duckdb", "pandas", "scikit-learn", "numpy")),
        f"Each run as a fresh process, quiet and then beside {processes} CPU-bound processes "
        "(`python -c 'while True: pass'`) started for it; stages of 0.05 s or more.", "",
        *rows, ""])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text)


#: custseg's stages against the bare minimum's: (custseg stages, bare stages).
COUNTERPARTS = {
    "start-up and imports": (("start",), ("start",)),
    "read, clean, features": (("read", "clean", "features"), ("features",)),
    "clustering (k chosen, final fit, stability)": (("cluster",), ("choose_k", "final_fit")),
    "RFM, value, profiles, rules, report, teardown": (
        ("rfm", "value", "profile", "rules", "write", "teardown"), ()),
}


def write(rows, names, out: Path) -> None:
    table = ["| data | lines | customers | contender | seconds | vs bare minimum | peak MB "
             "| CPU s, user + system | k | seconds per stage |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    stages_table = ["| data | stage | custseg s | bare minimum s | ratio |",
                    "|---|---|---:|---:|---:|"]
    checks = ["| data | k chosen on | customers | k | silhouette | Calinski-Harabasz "
              "| Davies-Bouldin | stability | seconds |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    engines = ["| data | contender | seconds against custseg run (DuckDB) |", "|---|---|---:|"]
    repeats = ["| data | contender | seconds, round by round | median | against the bare "
               "minimum, round by round | median (range) |", "|---|---|---|---:|---|---|"]
    for spec, lines, customers, results in rows:
        bare = results.get("bare", {}).get("seconds")
        for name in names:
            r = results[name]
            if "failed" in r:
                table.append(f"| {spec} | {lines:,} | {customers:,} | {LABELS[name]} | "
                             f"{r['failed']} | | {r.get('peak_mb', 0):,.0f} | | | |")
                continue
            ratio = f"{r['seconds'] / bare:.2f}x" if bare else ""
            stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
            stages += f" (sum {sum(r['stages'].values()):.1f})"
            table.append(f"| {spec} | {lines:,} | {customers:,} | {LABELS[name]} | "
                         f"{r['seconds']:.1f} | {ratio} | {r['peak_mb']:,.0f} | "
                         f"{r['cpu'][0]:.1f} + {r['cpu'][1]:.1f} | {r['k']} | {stages} |")
        for name in names:
            r = results[name]
            if len(r.get("rounds", [])) < 2:
                continue
            ratios = paired_ratios(r, results.get("bare", {})) if name != "bare" else []
            spread = (f"{median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}x)"
                      if ratios else "")
            repeats.append(f"| {spec} | {LABELS[name]} | "
                           f"{', '.join(f'{x:.1f}' for x in r['rounds'])} | "
                           f"{median(r['rounds']):.1f} | "
                           f"{', '.join(f'{x:.2f}x' for x in ratios)} | {spread} |")
        faster = paired_ratios(results.get("seed", {}), results.get("custseg", {}))
        if len(faster) > 1:
            repeats.append(f"| {spec} | custseg run faster than the notebook (its seconds "
                           f"over custseg's) | | | {', '.join(f'{x:.2f}x' for x in faster)} "
                           f"| {median(faster):.2f}x ({min(faster):.2f}-{max(faster):.2f}x) |")
        duck = results.get("custseg", {}).get("seconds")
        for name in ("spark", "spark-first"):
            r = results.get(name, {})
            if duck and "seconds" in r:
                after = (f" (then its recorder ran {r['recorder_seconds']:.0f} s in the "
                         f"background{'' if r['recorded'] else ', and failed'})"
                         if "recorder_seconds" in r else "")
                engines.append(f"| {spec} | {LABELS[name]}{after} | "
                               f"{r['seconds'] / duck:.2f}x |")
        ours, theirs = results.get("custseg", {}), results.get("bare", {})
        if "stages" in ours and "stages" in theirs:
            for label, (mine, base) in COUNTERPARTS.items():
                a = sum(ours["stages"].get(k, 0.0) for k in mine)
                b = sum(theirs["stages"].get(k, 0.0) for k in base)
                stages_table.append(f"| {spec} | {label} | {a:.1f} | "
                                    f"{f'{b:.1f}' if base else 'none'} | "
                                    f"{f'{a / b:.2f}x' if base and b else ''} |")
        for label, c in ours.get("sample_check", {}).items():
            checks.append(f"| {spec} | {label} | {c['sample']:,} | {c['k']} | {c['silhouette']} "
                          f"| {c['calinski_harabasz']:,.1f} | {c['davies_bouldin']} | "
                          f"{c['stability_ari']} | {c['seconds']:.1f} |")
    text = "\n".join([
        "# bench_scale", "",
        f"Command: `python benchmarks/bench_scale.py {' '.join(sys.argv[1:])}`",
        machine_line(("custseg", "duckdb", "pandas", "scikit-learn", "numpy")),
        "Each contender ran as a fresh process; seconds are its wall clock as a user waits "
        "for it (start-up, imports, writing and teardown included); peak MB is the largest "
        "resident memory of the process tree (sampled every 0.2 s); CPU s its processor "
        "time, in user code and in the kernel (system: on this machine mostly the first "
        "touch of memory).", "",
        *table, "", "Stages against their counterparts in the bare minimum:", "",
        *stages_table, ""]
        + (["Rounds (`--repeat`: the contenders in turn, each round; the tables above show "
            "each contender's run of median seconds, and its largest peak over the rounds):",
            "", *repeats, ""] if len(repeats) > 2 else [])
        + (["Spark against the DuckDB engine:", "", *engines, ""] if len(engines) > 2 else [])
        + (["k chosen on the stratified sample against the search over every customer "
            "(custseg's customer features of the same run; the final fit covers every "
            "customer in both):", "", *checks, ""] if len(checks) > 2 else []))
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    print(text)


if __name__ == "__main__":
    main()
