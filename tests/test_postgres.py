"""custseg against a real PostgreSQL server: a throwaway one started for the session
(:mod:`pg_server`)."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pandas as pd
import pytest

from conftest import ONLINE_RETAIL as RETAIL
from conftest import needs_online_retail as needs_retail
from pg_server import PASSWORD, copy_in, psql, server_binaries, throwaway_server


@pytest.fixture(scope="session")
def postgres():
    """The URL of a throwaway server for the session."""
    if server_binaries() is None:
        pytest.skip("PostgreSQL's server is not installed (Debian's postgresql; make install "
                    "installs it)")
    pytest.importorskip("adbc_driver_postgresql",
                        reason="the PostgreSQL driver: pip install 'custseg[postgres]'")
    with throwaway_server() as url:
        yield url


def custseg(*args):
    return subprocess.run([sys.executable, "-m", "custseg.cli", *map(str, args)],
                          capture_output=True, text=True)


@pytest.fixture(scope="session")
def retail_in_postgres(postgres):
    if not RETAIL.exists():
        pytest.skip(f"{RETAIL} is not here (the shared data sets)")
    copy_in(postgres, "online_retail", f"SELECT * FROM '{RETAIL}'")
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
    scored = custseg("score", tmp_path / "sql" / "model.json", "--db", retail_in_postgres,
                     "--sql", "select * from online_retail", "--out", tmp_path / "scored.csv")
    assert scored.returncode == 0, scored.stderr
    again = pd.read_csv(tmp_path / "scored.csv").merge(a, on="customer_id",
                                                       suffixes=("", "_run"))
    assert len(again) == len(a) and (again["segment"] == again["segment_run"]).all()


def test_a_query_joining_orders_and_customers(postgres, tmp_path):
    from custseg.synth import generate

    paths = generate(300, tmp_path / "data", seed=3)
    orders = duckdb.sql(f"SELECT * FROM '{paths['transactions']}'")
    people = duckdb.sql(f"SELECT * FROM '{paths['customers_table']}'")
    copy_in(postgres, "orders", f"SELECT * FROM '{paths['transactions']}'")
    copy_in(postgres, "people", f"SELECT * FROM '{paths['customers_table']}'")
    key = next(c for c in orders.columns if c in people.columns)
    extra = [c for c in people.columns if c != key][:2]
    query = (f'SELECT o.*, {", ".join(f"p.{chr(34)}{c}{chr(34)}" for c in extra)} '
             f'FROM orders o JOIN people p USING ("{key}")')
    proc = custseg("rfm", "--db", postgres, "--sql", query, "--out", tmp_path / "out", "-q")
    assert proc.returncode == 0, proc.stderr
    back = custseg("backtest", "--db", postgres, "--sql", query, "--split", "2023-07-01",
                   "--out", tmp_path / "back", "-q")
    assert back.returncode == 0, back.stderr
    assert (tmp_path / "back" / "backtest.json").is_file()
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
