"""The Spark engine computes the same customers, features and audit as DuckDB.

One local Spark session (bound to 127.0.0.1) is shared by every test of this module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ONLINE_RETAIL, needs_online_retail, tiny_lines
from custseg.core.config import Config
from custseg.jobs.rfm import run_rfm

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("pyspark") is None,
                       reason="pyspark is not installed (make install adds it)"),
    pytest.mark.skipif(shutil.which("java") is None,
                       reason="no Java runtime (make install adds openjdk-17-jre-headless)"),
]
#: Every query on Spark (the tests' inputs are small enough for the driver otherwise).
SPARK = Config(engine="spark", spark_master="local[2]", spark_local_lines=0)
#: Tests of reading, clustering and profiles leave out the value models (checked on a
#: holdout, several Spark queries each): their equality on Spark is Online Retail's test.
LOCAL_ONLY = Config(clv={"enabled": False})
SPARK_ONLY = SPARK.replace(clv={"enabled": False})


@pytest.fixture(scope="module")
def spark():
    from custseg.engines.spark import session

    return session(SPARK)


def assert_same(duck, spark_result) -> None:
    """Same customers (every column, in order), same excluded ids, same audit."""
    pd.testing.assert_frame_equal(duck.customers, spark_result.customers, check_dtype=False)
    pd.testing.assert_frame_equal(duck.excluded, spark_result.excluded, check_dtype=False)
    assert duck.summary["audit"] == spark_result.summary["audit"]
    assert duck.summary["rfm_edges"] == spark_result.summary["rfm_edges"]
    assert duck.summary["as_of"] == spark_result.summary["as_of"]


def test_session_listens_on_loopback_only_without_ui(spark):
    """Every socket the session's processes listen on (driver, block manager, Python
    gateway) is bound to 127.0.0.1, and there is no web UI."""
    psutil = pytest.importorskip("psutil")
    me = psutil.Process()
    pids = {me.pid} | {p.pid for p in me.children(recursive=True)}
    listening = [c.laddr for c in psutil.net_connections(kind="tcp")
                 if c.status == psutil.CONN_LISTEN and c.pid in pids]
    driver_port = int(spark.sparkContext.getConf().get("spark.driver.port"))
    assert driver_port in {a.port for a in listening}
    assert all(a.ip in ("127.0.0.1", "::ffff:127.0.0.1") for a in listening), listening
    assert spark.sparkContext.uiWebUrl is None


@needs_online_retail
def test_online_retail_equals_duckdb(spark, monkeypatch):
    """The same customers and predictions; the value models' check on a sample of 1,500
    customers, whose features and labels alone each engine computes."""
    monkeypatch.setattr("custseg.jobs.value.CHECK_CUSTOMERS", 1500)
    duck = run_rfm(ONLINE_RETAIL)
    other = run_rfm(ONLINE_RETAIL, config=SPARK)
    assert len(other.customers) == 4338
    assert other.summary["audit"]["rows_in"] == 541_909
    assert other.summary["engine"] == "spark (local[2])"
    assert_same(duck, other)
    assert duck.summary["clv"].holdout.customers == 1500
    assert _untimed(duck.summary["clv"].to_dict()) == _untimed(other.summary["clv"].to_dict())


def test_small_inputs_are_aggregated_on_the_driver_with_the_same_results(spark,
                                                                          synth_orders):
    """Lines up to spark_local_lines are cleaned on Spark, then fetched to the driver's
    DuckDB for the features, the value models' holdout and the line profiles: the same
    customers, values and lift as the DuckDB engine."""
    from custseg.jobs.run import run_segments

    hybrid = SPARK.replace(spark_local_lines=1_000_000)
    duck = run_segments(synth_orders, n_bootstrap=0)
    other = run_segments(synth_orders, config=hybrid, n_bootstrap=0)
    assert other.summary["engine"] == ("spark (local[2]; its classified lines aggregated on "
                                       "the driver)")
    assert_same(duck, other)
    assert _untimed(duck.summary["clv"].to_dict()) == _untimed(other.summary["clv"].to_dict())
    assert duck.summary["lift"] == other.summary["lift"]
    assert duck.summary["cohorts"] == other.summary["cohorts"]
    few = run_rfm(synth_orders, config=SPARK.replace(spark_local_lines=100))
    assert few.summary["engine"] == "spark (local[2])"  # more lines than that: on Spark


def test_duplicated_input_over_the_limit_is_counted_on_spark_then_fetched(spark, synth_orders,
                                                                         tmp_path):
    """An input of more rows than spark_local_lines whose distinct lines are within it:
    collapsed and classified on Spark, counted there, then fetched to the driver; within
    the limit, its one partition collapsed by DuckDB in the Spark task. Both give the
    same audit (each copy a duplicate) and customers as DuckDB's."""
    lines = pd.read_parquet(synth_orders)
    doubled = tmp_path / "doubled.parquet"
    pd.concat([lines, lines]).to_parquet(doubled, index=False)
    rows = len(lines)
    duck = run_rfm(doubled)
    limit = SPARK.replace(spark_local_lines=rows)  # the input has twice as many
    other = run_rfm(doubled, config=limit)
    assert other.summary["engine"].endswith("its classified lines aggregated on the driver)")
    assert_same(duck, other)
    assert_same(duck, run_rfm(doubled, config=SPARK.replace(spark_local_lines=2 * rows)))
    # every line of the copy is a duplicate, but those dropped before the duplicate rule
    from custseg.prep.cleaning import _BEFORE_DUPLICATES

    single = run_rfm(synth_orders).summary["audit"]["dropped"]
    before = sum(single[reason] for reason in _BEFORE_DUPLICATES)
    assert other.summary["audit"]["dropped"]["duplicate"] == single["duplicate"] + rows - before


def _untimed(block):
    """A summary block without its seconds (``fit_seconds``)."""
    if isinstance(block, dict):
        return {k: _untimed(v) for k, v in block.items() if not k.endswith("seconds")}
    if isinstance(block, list):
        return [_untimed(v) for v in block]
    return block


def messy_csv(path) -> None:
    """Order lines as a European export: ';', day-first dates, decimal commas, currency
    signs, an unreadable amount, duplicates, cancellations, returns and bad lines."""
    rng = np.random.default_rng(7)
    n = 3000
    customers = np.array([f"{i:05d}" for i in range(1, 241)])
    # an invoice is one customer's on one day, as in any export
    invoice = rng.integers(0, 900, n)
    by_customer = rng.choice(customers, 900)
    when = pd.Timestamp("2023-01-01") + pd.to_timedelta(
        rng.integers(0, 365 * 24 * 60, 900), unit="min")
    frame = pd.DataFrame({
        "Rechnung": (500_000 + invoice).astype(str),
        "Artikel": rng.choice([f"P{i}" for i in range(60)], n),
        "Menge": rng.integers(1, 12, n),
        "Datum": when[invoice],
        "Preis": rng.gamma(2.0, 4.0, n).round(2),
        "Kunde": by_customer[invoice],
        "Land": rng.choice(["Deutschland", "Österreich", "Schweiz"], n, p=[.7, .2, .1]),
    })
    frame.loc[rng.random(n) < 0.03, "Rechnung"] = "C" + frame["Rechnung"]
    frame.loc[rng.random(n) < 0.02, "Menge"] *= -1
    frame.loc[rng.random(n) < 0.02, "Kunde"] = ""
    frame = pd.concat([frame, frame.sample(40, random_state=1)], ignore_index=True)
    text = frame.assign(
        Datum=frame["Datum"].dt.strftime("%d.%m.%Y %H:%M"),
        Preis=[f"{p:.2f}".replace(".", ",") + (" €" if i % 97 == 0 else "")
               for i, p in enumerate(frame["Preis"])])
    text.loc[5, "Preis"] = "#DIV/0!"
    body = text.to_csv(sep=";", index=False, lineterminator="\n")
    body += "500001;P1;kaputt\n"  # a line with too few fields
    path.write_text(body, encoding="utf-8")


def test_messy_text_export_equals_duckdb(spark, tmp_path):
    path = tmp_path / "bestellungen.csv"
    messy_csv(path)
    duck = run_rfm(path, config=LOCAL_ONLY)
    other = run_rfm(path, config=SPARK_ONLY)
    audit = other.summary["audit"]
    assert audit["dropped"]["malformed_line"] == 1
    assert audit["dropped"]["unparseable_number"] == 1
    assert audit["dropped"]["duplicate"] > 0
    assert audit["dropped"]["cancellation"] > 0 and audit["dropped"]["return"] > 0
    assert any("#DIV/0!" in w for w in audit["warnings"])
    assert other.customers["customer_id"].str.len().eq(5).all()  # "00042" stays "00042"
    assert_same(duck, other)


def test_dataframe_input_and_an_as_of_date_equal_duckdb(spark):
    config = Config(as_of="2011-01-25")
    duck = run_rfm(frame=tiny_lines(), config=config)
    other = run_rfm(frame=tiny_lines(), config=config.replace(engine="spark",
                                                              spark_master="local[2]"))
    assert other.summary["audit"]["dropped"]["after_as_of"] > 0
    assert_same(duck, other)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "custseg.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_cli_failed_start_is_one_line():
    run = cli("rfm", "orders.csv", "--engine", "spark", "--spark-master", "nope://x")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "error: Spark did not start with master 'nope://x': Master must either be yarn or "
        "start with spark, k8s, or local. Check Java 17 and the master URL."]


@pytest.fixture(scope="module")
def synth_orders(tmp_path_factory):
    from custseg.synth import generate

    folder = tmp_path_factory.mktemp("synth")
    return generate(3000, folder, seed=3)["transactions"]


@pytest.fixture
def on_mllib(monkeypatch):
    """MLlib clusters however few the customers (a local master leaves up to 50,000 to the
    driver's process)."""
    from custseg.engines.spark import MLlib

    monkeypatch.setattr(MLlib, "local_min_customers", 0)


def test_run_clusters_on_mllib_like_the_local_engine(spark, synth_orders, on_mllib, tmp_path):
    from sklearn.metrics import adjusted_rand_score

    from custseg.jobs.run import run_segments

    local = run_segments(synth_orders, config=LOCAL_ONLY, n_bootstrap=0, strategy="clusters")
    other = run_segments(synth_orders, out_dir=tmp_path / "out", config=SPARK_ONLY,
                         n_bootstrap=0, strategy="clusters")
    assert other.summary["clustering_params"]["mllib"] == "KMeans"
    # Fewer customers than the k sample: k is chosen on the same data, so the same k.
    assert other.summary["k"] == local.summary["k"]
    merged = local.customers.merge(other.customers, on="customer_id")
    assert len(merged) == len(local.customers) == len(other.customers)
    assert adjusted_rand_score(merged["segment_x"], merged["segment_y"]) > 0.8
    assert {"report.html", "model.json", "segments.csv"} <= {
        p.name for p in (tmp_path / "out").iterdir()}
    assert other.summary["monthly_trend"]  # line profiles computed on Spark


@pytest.mark.parametrize(("algorithm", "mllib"), [("hierarchical", "BisectingKMeans"),
                                                  ("gmm", "GaussianMixture")])
def test_hierarchical_and_gmm_run_on_mllib(spark, synth_orders, on_mllib, algorithm, mllib):
    from custseg.jobs.run import run_segments

    result = run_segments(synth_orders, config=SPARK_ONLY, algorithm=algorithm, k=4,
                          n_bootstrap=0)
    assert result.summary["clustering_params"]["mllib"] == mllib
    labels = result.customers["segment"]
    assert labels.nunique() >= 3 and labels.between(1, 4).all()


@pytest.mark.parametrize(("algorithm", "note"), [
    ("kprototypes", "Spark has no kprototypes: it was fitted in this process instead."),
    ("kmeans", "The {n:,} customers were clustered in this process: Spark takes over from "
               "50,001.")])
def test_clustering_on_the_driver_equals_duckdb(spark, synth_orders, algorithm, note):
    """Algorithms MLlib lacks, and few customers on a local master, are clustered in the
    driver's process on the customer table Spark computed: the DuckDB engine's segments.
    (DBSCAN, HDBSCAN and affinity propagation take the same path as k-prototypes, a
    Spark session's minute each in CI.)"""
    from custseg.jobs.run import run_segments

    local = run_segments(synth_orders, config=LOCAL_ONLY, algorithm=algorithm, n_bootstrap=0,
                         strategy="clusters")
    other = run_segments(synth_orders, config=SPARK_ONLY, algorithm=algorithm,
                         n_bootstrap=0, strategy="clusters")
    assert note.format(n=len(other.customers)) in other.summary["features"]["notes"]
    assert "mllib" not in other.summary["clustering_params"]
    for column in ("customer_id", "segment", "segment_name"):
        assert list(other.customers[column]) == list(local.customers[column])
    assert other.summary["k"] == local.summary["k"]


def test_cli_refuses_an_unknown_algorithm_in_one_line(tmp_path):
    run = cli("run", "orders.csv", "--engine", "spark", "--algorithm", "nope",
              "--out", str(tmp_path / "out"))
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "error: The 'clustering.algorithm' setting must be one of kmeans, hierarchical, gmm, "
        "kprototypes, dbscan, hdbscan, affinity. Got 'nope' instead."]


def test_large_spark_runs_write_parquet_that_track_reads(spark, monkeypatch, tmp_path):
    from custseg.engines.spark import SparkEngine
    from custseg.outputs import rundir
    from custseg.outputs.track import track

    monkeypatch.setattr(SparkEngine, "parquet_from", 2)  # "large" from 2 customers
    result = run_rfm(frame=tiny_lines(), config=SPARK, out_dir=tmp_path / "out")
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert "segments.parquet" in names and "segments.csv" not in names
    back = rundir.read_segments(tmp_path / "out")
    assert list(back["customer_id"]) == list(result.customers["customer_id"])
    moved = track(tmp_path / "out", tmp_path / "out", tmp_path / "moves", by="rfm")
    assert moved["customers"] == len(result.customers) and moved["movers"] == 0


def test_cli_run_on_spark_with_quiet_prints_nothing(tmp_path):
    """``custseg run --engine spark`` in a process of its own: the engine in the summary,
    every customer, and no JVM notice (Java's incubator modules, netlib's native BLAS) on
    stderr."""
    from custseg.synth import generate

    orders = generate(400, tmp_path / "data", seed=5)["transactions"]
    run = cli("run", str(orders), "--engine", "spark", "--spark-master", "local[1]",
              "--no-figures", "--no-clv", "--out", str(tmp_path / "out"), "-q")
    assert run.returncode == 0, run.stderr
    assert (run.stdout, run.stderr) == ("", "")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    # 400 customers' lines: cleaned on Spark, aggregated on the driver (spark_local_lines)
    assert summary["engine"] == "spark (local[1]; its classified lines aggregated on the driver)"
    ids = pd.read_parquet(orders)["CustomerID"].nunique()
    assert summary["customers"] + sum(summary["excluded_customers"].values()) == ids


def test_lift_and_cohorts_on_spark_equal_duckdb(spark, synth_orders):
    """The per-segment SQL (lift, descriptions, cohorts) runs in Spark's dialect too."""
    by_segment = {"cohorts_by_segment": True}
    local = run_rfm(synth_orders, config=LOCAL_ONLY.replace(profile=by_segment))
    other = run_rfm(synth_orders, config=SPARK_ONLY.replace(profile=by_segment))
    assert other.summary.cohorts == local.summary.cohorts
    assert other.summary.lift == local.summary.lift
    listed = 0
    for a, b in zip(local.summary.rfm_segments, other.summary.rfm_segments, strict=True):
        assert b.get("over_represented") == a.get("over_represented")
        listed += sum(len(v) for v in a.get("over_represented", {}).values())
    assert listed > 0


def test_export_formats_and_attributes_equal_duckdb(spark, tmp_path):
    """A Shopify export (order fields carried down, statuses dropped, partial refunds:
    the preparation run as Spark SQL) and a mall's lines (customer attributes made into
    the customer table, line attributes kept in the lines) read alike on both engines."""
    from exports import mall, shopify

    for build in (shopify, mall):
        folder = tmp_path / build.__name__
        folder.mkdir()
        export = build(folder)
        duck = run_rfm(export.path, config=LOCAL_ONLY)
        other = run_rfm(export.path, config=SPARK_ONLY)
        assert_same(duck, other)
        assert len(other.customers) == export.customers
        assert other.summary["roles"] == duck.summary["roles"]


def test_main_levels_of_one_time_buyers_equal_duckdb(spark, tmp_path):
    """Where every customer bought once, each one's main category and store (what he
    spent most on) come from one SQL query (engines/lines.main_levels), in Spark's dialect
    too: the same level for every customer as on DuckDB."""
    from custseg.engines import open_engine
    from custseg.engines.lines import main_levels
    from custseg.jobs.rfm import read_input
    from exports import mall

    export = mall(tmp_path)

    def levels(config: Config) -> pd.DataFrame:
        engine = open_engine(config)
        try:
            source, reading = read_input(engine, export.path, config, {})
            engine.clean(source, reading.mapping, config)
            columns = {"category": "category", **{
                name: f"line_attr_{i}" for i, name in
                enumerate(reading.line_attributes, start=1)}}
            found = main_levels(engine, columns)
        finally:
            engine.close()
        return found.sort_values("customer_id", ignore_index=True)

    duck, other = levels(LOCAL_ONLY), levels(SPARK_ONLY)
    assert len(duck) == export.customers and {"category", "shopping_mall"} <= set(duck)
    pd.testing.assert_frame_equal(duck, other[duck.columns], check_dtype=False)


# ------------------------------------------------------------- the driver's class archive
_RECORD = """
import sys
from pathlib import Path
from custseg.jobs.spark_classes import record

assert record({}, Path(sys.argv[1]), customers=60)
"""
_MAPPED = """
from pyspark import SparkContext
from custseg.core.config import Config
from custseg.engines.spark import session

spark = session(Config(spark_master="local[1]"))
assert spark.range(1000).selectExpr("sum(id)").first()[0] == 499500
with open(f"/proc/{SparkContext._gateway.proc.pid}/maps") as maps:  # spark-submit execs java
    print(sum(line.rstrip().endswith(".jsa") and "classes-" in line for line in maps))
"""


def test_the_recorder_leaves_an_archive_the_next_session_maps(tmp_path):
    """The recorder (a custseg run on synthetic lines, its JVM recording) leaves the
    archive and no lock or half-written file; a session then maps it, and prints nothing
    of it."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    folder = tmp_path / "custseg" / "spark"
    recorded = subprocess.run([sys.executable, "-c", _RECORD, str(folder)], env=env,
                              capture_output=True, text=True, timeout=600)
    assert recorded.returncode == 0, recorded.stderr
    assert [p.suffix for p in folder.iterdir()] == [".jsa"]
    run = subprocess.run([sys.executable, "-c", _MAPPED], capture_output=True, text=True,
                         timeout=600, env=env)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) >= 1  # its regions' mappings
    assert "cds" not in run.stderr


@pytest.fixture
def archive_folder(tmp_path, monkeypatch):
    """A cache folder for key ``k``, with ``atexit.register`` calls recorded, not made."""
    from custseg.engines import _classes

    monkeypatch.setattr(_classes, "_key", lambda conf: "k")
    registered: list[tuple] = []
    monkeypatch.setattr(_classes.atexit, "register", lambda *a: registered.append(a))
    return tmp_path / "cache", registered


def test_a_session_without_archive_starts_the_recorder_as_it_exits(archive_folder,
                                                                    monkeypatch):
    from custseg.engines import _classes

    folder, registered = archive_folder
    assert _classes.archive_options({}, folder) == ""
    _classes.record_later({"spark.jars": "a.jar", "spark.app.name": "x"}, folder)
    (start, conf, where), = registered
    assert (conf, where) == ({"spark.jars": "a.jar"}, folder)  # the class path settings
    started = []
    monkeypatch.setattr(_classes.subprocess, "Popen", lambda *a, **kw: started.append((a, kw)))
    start(conf, where)
    (args, kwargs), = started
    assert args[0] == [sys.executable, "-m", "custseg.jobs.spark_classes",
                       '{"spark.jars": "a.jar"}', str(folder)]
    assert kwargs["start_new_session"]  # not stopped with the command's terminal
    folder.mkdir(parents=True)
    (folder / "classes-k.lock").write_text(str(os.getpid()))  # a live recorder
    _classes.record_later({}, folder)
    (folder / "classes-k.lock").unlink()
    (folder / "classes-k.jsa").write_bytes(b"archive")
    _classes.record_later({}, folder)
    assert len(registered) == 1
    assert _classes.archive_options({}, folder) == (
        f"-XX:SharedArchiveFile={folder / 'classes-k.jsa'} -Xlog:cds=off -Xlog:cds+dynamic=off")
    assert _classes.archive_options({}, folder / "with space") == ""  # Spark splits there


def test_a_recording_takes_over_the_lock_of_a_dead_process(archive_folder, monkeypatch):
    """One recorder at a time (a lock holding its pid); a lock whose process is gone is
    taken over, its half-written archive deleted, as is another Java's archive unused for
    a month (another environment's, in use, is kept)."""
    from custseg.engines import _classes

    folder, _ = archive_folder
    monkeypatch.setattr(_classes, "_stop_jvm", lambda timeout: 0)
    folder.mkdir(parents=True)
    (folder / "classes-k.lock").write_text(str(os.getpid()))
    assert not _classes.record({}, folder, lambda options: None)  # a live recorder
    dead = subprocess.Popen(["true"])
    dead.wait()
    (folder / "classes-k.lock").write_text(str(dead.pid))
    (folder / f"classes-k.{dead.pid}.tmp").write_bytes(b"half an archive")
    (folder / "classes-other.jsa").write_bytes(b"another Java's")
    month_ago = time.time() - 31 * 24 * 3600
    os.utime(folder / "classes-other.jsa", (month_ago, month_ago))
    (folder / "classes-venv.jsa").write_bytes(b"another environment's, in use")
    seen = []

    def run(options: str) -> None:
        seen.append(sorted(p.name for p in folder.iterdir()))
        Path(options.split("=", 1)[1].split()[0]).write_bytes(b"archive")

    assert _classes.record({}, folder, run)
    assert seen == [["classes-k.lock", "classes-venv.jsa"]]
    assert sorted(p.name for p in folder.iterdir()) == ["classes-k.jsa", "classes-venv.jsa"]


@pytest.mark.parametrize(("status", "kept"), [(0, True), (1, False), (None, False)])
def test_class_archive_is_kept_only_when_its_jvm_exits_cleanly(tmp_path, monkeypatch,
                                                                status, kept):
    """A JVM that failed (or never started) may have left half an archive, which would
    crash the next JVM that maps it: it is deleted, not moved into place."""
    from custseg.engines import _classes

    monkeypatch.setattr(_classes, "_stop_jvm", lambda timeout: status)
    recording, final, lock = (tmp_path / n for n in ("c.1.tmp", "c.jsa", "c.lock"))
    recording.write_bytes(b"archive")
    lock.write_text("1")
    assert _classes.finish(recording, final, lock) is kept
    assert [p.name for p in tmp_path.iterdir()] == (["c.jsa"] if kept else [])
