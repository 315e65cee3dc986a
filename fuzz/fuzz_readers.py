"""Fuzz the readers (CSV/TSV text, Excel, Parquet) and the model loader (not run in CI).

Inputs are valid seed files built here, mutated by hypothesis (byte flips, insertions of
troublesome tokens, deletions, truncations, duplicated slices) or, for models, valid
``model.json`` files with parts replaced by random JSON and the checksum recomputed, so
the checks after the checksum are reached too. Each input goes through what a user's
command would do with it: ``load_source`` and then ``run_rfm`` (read, map, clean,
features, RFM) for tables; ``SavedModel.load`` and ``predict`` for models.

The only exceptions allowed are custseg's own (:class:`custseg.exceptions.CustsegError`).
Anything else is a crash: the input is saved in ``fuzz/crashes/`` with its traceback and
fuzzing goes on. Usage::

    python fuzz/fuzz_readers.py --minutes 12            # split over the four targets
    python fuzz/fuzz_readers.py --minutes 3 --target csv
    python fuzz/fuzz_readers.py --replay fuzz/crashes/csv-1a2b3c.bin

Prints, per target, the inputs tried, how they ended (accepted, custseg error) and the
crashes found, and writes the same as JSON to ``fuzz/last_run.json``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import hashlib
import io
import json
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import custseg
from custseg.core.exceptions import CustsegError
from custseg.engines.duckdb import connect
from custseg.io import load_source
from custseg.outputs.model import SavedModel, _checksum

HERE = Path(__file__).resolve().parent
CRASHES = HERE / "crashes"
SUFFIX = {"csv": ".csv", "excel": ".xlsx", "parquet": ".parquet", "model": ".json"}
TOKENS = [b"\x00", b'"', b"\n", b"\r", b",", b";", b"\t", b"|", b"\xff\xfe", b"\xef\xbb\xbf",
          b"\xc3", b"\xf1", b"NaN", b"inf", b"-1e400", b"#DIV/0!", b"1,234.50", b"$12",
          b"12 EUR", b"(3)", b"9" * 40, b"-", b"C", b"PAR1", b"PK\x03\x04", b"2011-02-30",
          b"31/12/2011", b"00:00", b"'", b"\\", b"=cmd|' /C calc'!A0", b" " * 50]


def seed_frame(rows: int = 40) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "InvoiceNo": [f"{'C' if i % 17 == 0 else ''}{536365 + i // 3}" for i in range(rows)],
        "StockCode": [f"P{int(v)}" for v in rng.integers(1, 9, rows)],
        "Quantity": rng.integers(-2, 12, rows),
        "InvoiceDate": pd.Timestamp("2011-01-01") + pd.to_timedelta(
            rng.integers(0, 300 * 24, rows), unit="h"),
        "UnitPrice": rng.choice([0.0, 0.42, 1.25, 4.95, 12.5], rows),
        "CustomerID": [None if i % 13 == 0 else f"{12000 + i % 9}" for i in range(rows)],
        "Country": rng.choice(["United Kingdom", "France", "EIRE"], rows),
    })


def seeds() -> dict[str, list[bytes]]:
    frame = seed_frame()
    text = frame.assign(InvoiceDate=frame["InvoiceDate"].dt.strftime("%d/%m/%Y %H:%M"))
    out: dict[str, list[bytes]] = {"csv": [], "excel": [], "parquet": [], "model": []}
    out["csv"].append(text.to_csv(index=False).encode())
    out["csv"].append(text.to_csv(index=False, sep="\t").encode("utf-16"))
    out["csv"].append(text.to_csv(index=False, sep=";", decimal=",").encode("latin-1"))
    out["csv"].append(frame.drop(columns=["Quantity", "UnitPrice"]).assign(
        Amount=["$1,234.50", "12 EUR", "(3.00)"] * 13 + ["7"]).to_csv(index=False).encode())
    for sheet_frame in (frame, text):
        buffer = io.BytesIO()
        with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
            sheet_frame.to_excel(writer, sheet_name="Orders", index=False)
            sheet_frame.head(3).to_excel(writer, sheet_name="Other", index=False)
        out["excel"].append(buffer.getvalue())
    for parquet_frame in (frame, text):
        buffer = io.BytesIO()
        parquet_frame.to_parquet(buffer, index=False)
        out["parquet"].append(buffer.getvalue())
    with tempfile.TemporaryDirectory() as tmp:
        big = pd.concat([frame.assign(CustomerID=frame["CustomerID"].map(
            lambda c, k=k: None if c is None else f"{c}{k}")) for k in range(6)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            custseg.run_segments(frame=big, out_dir=Path(tmp) / "run", k=3)
        out["model"].append((Path(tmp) / "run" / "model.json").read_bytes())
    return out


# --------------------------------------------------------------------------- mutations
def mutated(base: bytes, ops: list[tuple[int, float, float, bytes]]) -> bytes:
    data = bytearray(base)
    for op, at, span, payload in ops:
        pos = int(at * len(data))
        length = max(1, int(span * min(len(data), 4096)))
        if op == 0 and data:  # flip bits of one byte
            data[min(pos, len(data) - 1)] ^= 1 << (len(payload) % 8)
        elif op == 1:  # insert a token or random bytes
            token = TOKENS[payload[0] % len(TOKENS)] if payload else b""
            data[pos:pos] = token if len(payload) % 2 else payload
        elif op == 2:  # delete a range
            del data[pos:pos + length]
        elif op == 3:  # truncate
            del data[pos:]
        elif op == 4:  # duplicate a slice
            data[pos:pos] = data[pos:pos + length]
        elif op == 5 and payload:  # overwrite
            data[pos:pos + len(payload)] = payload
    return bytes(data)


ops_strategy = st.lists(st.tuples(st.integers(0, 5), st.floats(0, 1), st.floats(0, 1),
                                  st.binary(max_size=12)), min_size=1, max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:6]):
            yield from _paths(v, (*prefix, i))


def mutated_model(base: bytes, choice: int, replacement, resign: bool) -> bytes:
    model = json.loads(base)
    paths = [p for p in _paths(model) if p and p[0] != "checksum"]
    path = paths[choice % len(paths)]
    target = model
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = copy.deepcopy(replacement)
    if resign:
        model["checksum"] = _checksum({k: v for k, v in model.items() if k != "checksum"})
    return json.dumps(model, allow_nan=True).encode()


# ------------------------------------------------------------------------------ target
def run_one(kind: str, data: bytes, workdir: Path) -> str:
    """What happened: 'ok', 'error' (custseg's own); raises anything else."""
    path = workdir / f"input{SUFFIX[kind]}"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if kind == "model":
                model = SavedModel.load(path)
                model.predict(frame=seed_frame())
                return "ok"
            con = connect()
            try:
                load_source(con, path)
            finally:
                con.close()
            custseg.run_rfm(path)
            return "ok"
        except CustsegError:
            return "error"


def fuzz(kind: str, base: list[bytes], seconds: float, stats: dict) -> None:
    deadline = time.monotonic() + seconds
    workdir = Path(tempfile.mkdtemp(prefix=f"custseg-fuzz-{kind}-"))

    class Done(Exception):
        pass

    def check(data: bytes) -> None:
        if time.monotonic() > deadline:
            raise Done
        stats["inputs"] += 1
        try:
            stats[run_one(kind, data, workdir)] += 1
        except Exception as exc:  # a crash: keep it and go on
            digest = hashlib.sha256(data).hexdigest()[:12]
            CRASHES.mkdir(exist_ok=True)
            (CRASHES / f"{kind}-{digest}{SUFFIX[kind]}").write_bytes(data)
            (CRASHES / f"{kind}-{digest}.txt").write_text(traceback.format_exc())
            stats["crashes"] += 1
            stats["crash_kinds"][f"{type(exc).__name__}: {str(exc)[:120]}"] += 1

    common = settings(max_examples=10**9, deadline=None, database=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    if kind == "model":
        @common
        @given(st.sampled_from(base), st.integers(0, 10**6), json_values, st.booleans(),
               ops_strategy, st.integers(0, 9))
        def target(seed, choice, value, resign, ops, how):
            data = mutated_model(seed, choice, value, resign) if how else mutated(seed, ops)
            check(data)
    else:
        @common
        @given(st.sampled_from(base), ops_strategy)
        def target(seed, ops):
            check(mutated(seed, ops))
    with contextlib.suppress(Done):
        target()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="total time budget")
    parser.add_argument("--target", choices=[*SUFFIX, "all"], default="all")
    parser.add_argument("--replay", type=Path, help="run one saved input and show the result")
    args = parser.parse_args()
    if args.replay:
        kind = next(k for k in SUFFIX if args.replay.name.startswith(k))
        with tempfile.TemporaryDirectory() as tmp:
            print(run_one(kind, args.replay.read_bytes(), Path(tmp)))
        return 0
    kinds = list(SUFFIX) if args.target == "all" else [args.target]
    base = seeds()
    report = {}
    for kind in kinds:
        stats = collections.Counter(inputs=0, ok=0, error=0, crashes=0)
        stats["crash_kinds"] = collections.Counter()
        start = time.monotonic()
        fuzz(kind, base[kind], args.minutes * 60 / len(kinds), stats)
        report[kind] = {**{k: v for k, v in stats.items() if k != "crash_kinds"},
                        "seconds": round(time.monotonic() - start, 1),
                        "crash_kinds": dict(stats["crash_kinds"])}
        print(kind, json.dumps(report[kind]), flush=True)
    (HERE / "last_run.json").write_text(json.dumps(report, indent=2) + "\n")
    return 1 if any(r["crashes"] for r in report.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
