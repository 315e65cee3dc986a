"""custseg on a real Spark standalone cluster: a master and two workers started from the
pyspark installation, every service on 127.0.0.1, so that executors run in JVMs (and Python
workers) of their own, not inside the driver as with ``local[*]``.

The run (``custseg run --engine spark --spark-master spark://...``) must equal the DuckDB
engine's: every customer, feature and RFM score the same, the segments alike (MLlib's
k-means against scikit-learn's), on Online Retail's first four months (142,083 lines).
The value models and the whole file are left out here, minutes of CI: the Spark SQL is the
same on any master, and tests/test_spark.py checks the whole file, value models included,
against DuckDB on a local master.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ONLINE_RETAIL, needs_online_retail

pytestmark = [
    pytest.mark.spark_cluster,
    pytest.mark.skipif(importlib.util.find_spec("pyspark") is None,
                       reason="pyspark is not installed (make install adds it)"),
    pytest.mark.skipif(shutil.which("java") is None,
                       reason="no Java runtime (make install adds openjdk-17-jre-headless)"),
    needs_online_retail,
]
WORKERS = 2
LOOPBACK = {"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_MASTER_HOST": "127.0.0.1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_class(*args: str, log: Path, env: dict[str, str]) -> subprocess.Popen:
    home = Path(importlib.util.find_spec("pyspark").origin).parent
    return subprocess.Popen([str(home / "bin" / "spark-class"), *args],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def _wait_for(path: Path, text: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not in {path} after {seconds} s:\n"
                         f"{path.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``spark://127.0.0.1:PORT`` of a running master with two registered workers (one
    core and 1 GB each), and the folder of their logs; stopped afterwards."""
    root = tmp_path_factory.mktemp("spark-cluster")
    home = Path(importlib.util.find_spec("pyspark").origin).parent
    env = {**os.environ, **LOOPBACK, "SPARK_HOME": str(home),
           "PYSPARK_PYTHON": sys.executable, "SPARK_WORKER_DIR": str(root / "work")}
    port = _free_port()
    processes = [_spark_class("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                              "--port", str(port), "--webui-port", str(_free_port()),
                              log=root / "master.log", env=env)]
    url = f"spark://127.0.0.1:{port}"
    try:
        _wait_for(root / "master.log", "I have been elected leader")
        for i in range(WORKERS):
            processes.append(_spark_class(
                "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                "--cores", "1", "--memory", "1g", "--webui-port", str(_free_port()),
                "--work-dir", str(root / f"work{i}"), log=root / f"worker{i}.log", env=env))
        for i in range(WORKERS):
            _wait_for(root / f"worker{i}.log", "Successfully registered with master")
        yield url, root, [p.pid for p in processes]
    finally:
        for p in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def test_the_cluster_listens_on_loopback_only(cluster):
    psutil = pytest.importorskip("psutil")
    _, _, pids = cluster
    addresses = set()
    for pid in pids:
        for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
            addresses |= {c.laddr.ip for c in proc.net_connections(kind="inet")
                          if c.status == psutil.CONN_LISTEN}
    assert addresses and addresses <= {"127.0.0.1", "::ffff:127.0.0.1"}


def test_custseg_run_on_the_cluster_equals_duckdb(cluster, tmp_path):
    from sklearn.metrics import adjusted_rand_score

    url, root, _ = cluster
    lines = pd.read_parquet(ONLINE_RETAIL)
    lines = lines[lines["InvoiceDate"] < "2011-04-01"]  # its first four months
    assert len(lines) == 142_083
    data = tmp_path / "online_retail_4_months.parquet"
    lines.to_parquet(data)
    env = {k: v for k, v in os.environ.items() if k not in LOOPBACK}  # custseg binds itself
    run = subprocess.run([sys.executable, "-m", "custseg.cli", "run", str(data),
                          "--engine", "spark", "--spark-master", url, "--k", "4",
                          "--no-figures", "--no-clv", "--out", str(tmp_path / "spark"),
                          "--quiet"],
                         capture_output=True, text=True, env=env, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    # the work ran in the workers' executors, one JVM per worker
    launched = [w for w in range(WORKERS)
                if "Asked to launch executor" in (root / f"worker{w}.log").read_text()]
    assert launched == list(range(WORKERS))
    assert (run.stdout, run.stderr) == ("", "")  # no JVM notice either
    duck = subprocess.run([sys.executable, "-m", "custseg.cli", "run", str(data),
                           "--k", "4", "--no-figures", "--no-clv", "--out",
                           str(tmp_path / "duck"), "--quiet"],
                          capture_output=True, text=True, timeout=900)
    assert duck.returncode == 0, duck.stderr[-3000:]
    spark_seg = pd.read_csv(tmp_path / "spark" / "segments.csv", dtype={"customer_id": str})
    duck_seg = pd.read_csv(tmp_path / "duck" / "segments.csv", dtype={"customer_id": str})
    same = [c for c in duck_seg.columns if c not in ("segment", "segment_name")]
    assert list(spark_seg.columns) == list(duck_seg.columns)
    pd.testing.assert_frame_equal(spark_seg[same], duck_seg[same], check_dtype=False)
    assert adjusted_rand_score(spark_seg["segment"], duck_seg["segment"]) > 0.8
    spark_sum, duck_sum = (json.loads((tmp_path / d / "summary.json").read_text())
                           for d in ("spark", "duck"))
    for key in ("rows_in", "rows_used", "dropped", "notes"):  # warnings: stability differs
        assert spark_sum["audit"][key] == duck_sum["audit"][key], key
    assert spark_sum["clustering_params"]["mllib"] == "KMeans"
    assert url in spark_sum["engine"]
