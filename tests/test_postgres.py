"""custseg against a real PostgreSQL server: a throwaway one started for the session.

The server is Debian's ``postgresql`` (``make install`` installs it): ``initdb`` into a
temporary folder, listening on 127.0.0.1 and a free port, password authentication on, as
the unprivileged ``postgres`` user when the tests run as root (the server refuses root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import ONLINE_RETAIL as RETAIL
from conftest import needs_online_retail as needs_retail

USER, PASSWORD = "custseg", "s3cret-for-tests"


def _server_binaries() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))  # Debian's layout
    found = versions[-1] if versions else shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres():
    """The URL of a running server (database ``postgres``), stopped at the end."""
    bindir = _server_binaries()
    if bindir is None:
        pytest.skip("PostgreSQL's server is not installed (Debian's postgresql; make install "
                    "installs it)")
    pytest.importorskip("adbc_driver_postgresql",
                        reason="the PostgreSQL driver: pip install 'custseg[postgres]'")
    root = Path(tempfile.mkdtemp(prefix="custseg-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    (root / "pw").write_text(PASSWORD)
    if as_user:
        shutil.chown(root / "pw", "postgres")
    data, port = root / "data", _free_port()
    subprocess.run([*as_user, bindir / "initdb", "-D", data, "-U", USER, "-E", "UTF8",
                    "--locale=C", "--auth=scram-sha-256", f"--pwfile={root / 'pw'}"],
                   check=True, capture_output=True)
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
               "-c fsync=off")
    subprocess.run([*as_user, bindir / "pg_ctl", "-D", data, "-l", root / "log", "-w",
                    "-o", options, "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def psql(url: str, *commands: str, stdin: str | None = None) -> str:
    args = [_server_binaries() / "psql", url, "-v", "ON_ERROR_STOP=1", "-qAt"]
    for command in commands:
        args += ["-c", command]
    return subprocess.run(args, check=True, capture_output=True, text=True,
                          input=stdin).stdout


def copy_in(url: str, table: str, frame_sql: str, columns: str) -> None:
    """Create ``table`` and load it with COPY from a CSV that DuckDB writes of ``frame_sql``."""
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "rows.csv"
        duckdb.execute(f"COPY ({frame_sql}) TO '{csv}' (HEADER, DELIMITER ',')")
        psql(url, f"CREATE TABLE {table} ({columns})",
             f"\\copy {table} FROM '{csv}' WITH (FORMAT csv, HEADER)")


def custseg(*args):
    return subprocess.run([sys.executable, "-m", "custseg.cli", *map(str, args)],
                          capture_output=True, text=True)


RETAIL_COLUMNS = ('"InvoiceNo" text, "StockCode" text, "Description" text, '
                  '"Quantity" bigint, "InvoiceDate" timestamp, "UnitPrice" double precision, '
                  '"CustomerID" double precision, "Country" text')


@pytest.fixture(scope="session")
def retail_in_postgres(postgres):
    if not RETAIL.exists():
        pytest.skip(f"{RETAIL} is not here (the shared data sets)")
    copy_in(postgres, "online_retail", f"SELECT * FROM '{RETAIL}'", RETAIL_COLUMNS)
    return postgres


@needs_retail
def test_a_query_on_the_server_gives_the_segments_of_the_parquet_file(retail_in_postgres,
                                                                       tmp_path):
    rows = psql(retail_in_postgres, "SELECT count(*) FROM online_retail").strip()
    assert int(rows) == duckdb.execute(f"SELECT count(*) FROM '{RETAIL}'").fetchone()[0]
    sql = custseg("run", "--db", retail_in_postgres, "--sql", "select * from online_retail",
                  "--out", tmp_path / "sql", "-q")
    assert sql.returncode == 0, sql.stderr
    parquet = custseg("run", RETAIL, "--out", tmp_path / "parquet", "-q")
    assert parquet.returncode == 0, parquet.stderr
    a = pd.read_csv(tmp_path / "sql" / "segments.csv")
    b = pd.read_csv(tmp_path / "parquet" / "segments.csv")
    assert len(a) > 4000
    pd.testing.assert_frame_equal(a, b)
    assert PASSWORD not in (tmp_path / "sql" / "summary.json").read_text()


def test_a_query_joining_orders_and_customers(postgres, tmp_path):
    from custseg.synth import generate

    paths = generate(300, tmp_path / "data", seed=3)
    orders = duckdb.sql(f"SELECT * FROM '{paths['transactions']}'")
    people = duckdb.sql(f"SELECT * FROM '{paths['customers_table']}'")

    def columns(rel) -> str:
        types = {"VARCHAR": "text", "BIGINT": "bigint", "INTEGER": "integer",
                 "DOUBLE": "double precision", "TIMESTAMP": "timestamp", "DATE": "date",
                 "TIMESTAMP_NS": "timestamp", "BOOLEAN": "boolean"}
        return ", ".join(f'"{c}" {types[str(t)]}' for c, t in zip(rel.columns, rel.types,
                                                                  strict=True))

    copy_in(postgres, "orders", f"SELECT * FROM '{paths['transactions']}'", columns(orders))
    copy_in(postgres, "people", f"SELECT * FROM '{paths['customers_table']}'", columns(people))
    key = next(c for c in orders.columns if c in people.columns)
    extra = [c for c in people.columns if c != key][:2]
    query = (f'SELECT o.*, {", ".join(f"p.{chr(34)}{c}{chr(34)}" for c in extra)} '
             f'FROM orders o JOIN people p USING ("{key}")')
    proc = custseg("rfm", "--db", postgres, "--sql", query, "--out", tmp_path / "out", "-q")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "out" / "segments.csv")
    expected = duckdb.execute(f"SELECT count(DISTINCT \"{key}\") FROM '{paths['transactions']}'"
                          ).fetchone()[0]
    assert len(table) == expected


@pytest.mark.parametrize("case", ["password", "table", "empty", "dropped"])
def test_server_problems_are_one_line_each(postgres, tmp_path, case):
    psql(postgres, "CREATE TABLE IF NOT EXISTS few AS SELECT g AS customer_id, "
                   "timestamp '2024-01-01' + g * interval '1 day' AS order_date, "
                   "10.0::float8 AS amount, g AS order_id FROM generate_series(1, 5000) g")
    url, sql, words = postgres, "select * from few", None
    if case == "password":
        url, words = postgres.replace(PASSWORD, "wrong"), "password authentication failed"
        sql = "select 1"
    elif case == "table":
        sql, words = "select * from no_such_table", 'relation "no_such_table" does not exist'
    elif case == "empty":
        sql, words = "select * from few where false", "returned no rows"
    else:  # the server ends the connection while the rows stream
        sql = ("select *, case when customer_id = 4000 then "
               "pg_terminate_backend(pg_backend_pid()) end as cut from few")
        words = "terminat"
    proc = custseg("run", "--db", url, "--sql", sql, "--out", tmp_path / "out", "-q")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert words in lines[0].lower() or words in lines[0], lines[0]
    assert "wrong" not in lines[0] and PASSWORD not in lines[0]
    assert not (tmp_path / "out").exists()
