"""The run folder and atomic writes: every output appears whole or not at all.

:func:`atomic_folder` builds a folder beside its destination and swaps it in, so a failed
run leaves no folder behind; :func:`atomic_file` does the same for one file.
:func:`write_run` writes a run's tables and ``summary.json``; :func:`read_segments` reads
the customers of a finished run back (report, track, app).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from custseg.core import summary
from custseg.core.exceptions import InputError
from custseg.io._parse import quiet_connect
from custseg.prep import privacy


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``, moved onto it when the block succeeds."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(out_dir: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``out_dir``, swapped in for it when the block succeeds
    (an older folder of that name is replaced); removed when the block fails."""
    out_dir = Path(out_dir)
    parent = out_dir.resolve().parent
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file; choose a folder path.")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=parent))
    except OSError as exc:
        raise InputError(f"Cannot create output folder {out_dir}: {exc.strerror}.") from None
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; outputs are ordinary files
        old = None
        if out_dir.exists():
            old = parent / f".{out_dir.name}.old-{os.getpid()}"
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def segments_file(customers: int, parquet_from: int | None = None) -> str:
    """``segments.parquet`` from ``parquet_from`` customers on (an engine's choice for
    large runs), ``segments.csv`` otherwise."""
    large = parquet_from is not None and customers >= parquet_from
    return "segments.parquet" if large else "segments.csv"


def read_segments(folder: str | Path) -> pd.DataFrame:
    """The segments table of a finished run's folder (CSV, or Parquet for large Spark runs).

    Raises :class:`InputError` naming the folder when it holds neither."""
    folder = Path(folder)
    if (folder / "segments.parquet").is_file():
        return pd.read_parquet(folder / "segments.parquet")
    if (folder / "segments.csv").is_file():
        return pd.read_csv(folder / "segments.csv", dtype={"customer_id": str})
    raise InputError(f"{folder} has no segments.csv; pass the --out folder of a custseg run "
                     "or rfm.")


def write_run(result, out_dir: Path, extra: Callable[[Path], object] | None = None) -> None:
    """Write a run's customers, excluded customers and summary into ``out_dir`` at once.

    ``extra(folder)`` writes further files (the report, the model) into that folder;
    summary.json comes last, with the time of the ``write`` stage so far."""
    start = time.perf_counter()
    timings = result.summary.timings_s
    prior = timings.get("write", 0.0)
    segments, excluded = result.customers, result.excluded
    if result.id_salt is not None:
        segments = privacy.hashed_table(segments, result.id_salt)
        excluded = privacy.hashed_table(excluded, result.id_salt)
    with atomic_folder(out_dir) as tmp:
        name = segments_file(len(segments), result.parquet_from)
        form = "FORMAT parquet" if name.endswith(".parquet") else "HEADER, DELIMITER ','"
        con = quiet_connect()
        con.register("segments_frame", segments)
        con.execute(f"COPY segments_frame TO ? ({form})", [str(tmp / name)])
        con.close()
        excluded.to_csv(tmp / "excluded_customers.csv", index=False)
        if extra is not None:
            extra(tmp)
        timings["write"] = round(prior + time.perf_counter() - start, 3)
        (tmp / "summary.json").write_text(summary.encode(result.summary), encoding="utf-8")
