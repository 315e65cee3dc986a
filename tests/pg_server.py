"""A throwaway PostgreSQL server, for the tests and ``benchmarks/bench_db.py``.

Debian's ``postgresql`` (``make install`` installs it): ``initdb`` into a temporary
folder, listening on 127.0.0.1 and a free port, password authentication on, run as the
unprivileged ``postgres`` user when this process is root (the server refuses root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

USER, PASSWORD = "custseg", "s3cret-for-tests"


def server_binaries() -> Path | None:
    """The folder of ``initdb``, ``pg_ctl`` and ``psql``, or None when not installed."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))  # Debian's layout
    found = versions[-1] if versions else shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def throwaway_server() -> Iterator[str]:
    """The URL of a running server (database ``postgres``); stopped and deleted after."""
    bindir = server_binaries()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL's server is not installed (Debian's postgresql)")
    root = Path(tempfile.mkdtemp(prefix="custseg-pg-"))
    as_user: list[str] = []
    (root / "pw").write_text(PASSWORD)
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
    data, port = root / "data", _free_port()
    try:
        subprocess.run([*as_user, bindir / "initdb", "-D", data, "-U", USER, "-E", "UTF8",
                        "--locale=C", "--auth=scram-sha-256", f"--pwfile={root / 'pw'}"],
                       check=True, capture_output=True)
        options = (f"-c listen_addresses=127.0.0.1 -p {port} "
                   f"-c unix_socket_directories={root} -c fsync=off")
        subprocess.run([*as_user, bindir / "pg_ctl", "-D", data, "-l", root / "log", "-w",
                        "-o", options, "start"], check=True, capture_output=True)
        yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def psql(url: str, *commands: str, stdout=subprocess.PIPE) -> str:
    """Run ``commands`` with psql; their output."""
    args = [server_binaries() / "psql", url, "-v", "ON_ERROR_STOP=1", "-qAt"]
    for command in commands:
        args += ["-c", command]
    done = subprocess.run(args, check=True, stdout=stdout, stderr=subprocess.PIPE, text=True)
    return done.stdout or ""


PG_TYPES = {"VARCHAR": "text", "BIGINT": "bigint", "INTEGER": "integer",
            "DOUBLE": "double precision", "TIMESTAMP": "timestamp", "TIMESTAMP_NS": "timestamp",
            "DATE": "date", "BOOLEAN": "boolean"}


def copy_in(url: str, table: str, select: str) -> int:
    """Create ``table`` with the columns of DuckDB's ``select`` and load it with COPY (from a
    CSV DuckDB writes); the rows loaded."""
    rel = duckdb.sql(select)
    columns = ", ".join(f'"{c}" {PG_TYPES[str(t)]}' for c, t in zip(rel.columns, rel.types,
                                                                   strict=True))
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "rows.csv"
        duckdb.execute(f"COPY ({select}) TO '{csv}' (HEADER, DELIMITER ',')")
        psql(url, f"CREATE TABLE {table} ({columns})",
             f"\\copy {table} FROM '{csv}' WITH (FORMAT csv, HEADER)")
    return int(psql(url, f"SELECT count(*) FROM {table}").strip())
