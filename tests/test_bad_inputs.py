"""The bad-input corpus (issue 8): every case through both ``custseg run`` and ``custseg rfm``.

Each case is built here in code, small. It must end in one of two ways:

* ``error``: exit code 1, exactly one line on stderr that starts with ``error:``, names the
  problem (the expected words) and never a traceback; no output folder (nor a temporary
  one) is left behind;
* ``warning``: exit code 0, the problem recorded as a warning in ``summary.json``
  (``audit.warnings``), shown in ``report.html`` (``run``) and printed (``rfm``), with
  every customer that bought accounted for in the outputs.

The commands run in this process through the CLI's entry point (``custseg.cli.main``),
with ``--no-figures``: 160 fresh interpreters and PNG renderers cost 10 minutes of CI.

Some cases also check that the result is right (an id with leading zeros stays apart, a
price written ``1,234.50`` counts as 1234.5), so a silently wrong result fails too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

COLUMNS = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
           "Country"]


def custseg(*args, cwd=None):
    """Run the command as a user would (a fresh interpreter, the real entry point)."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "custseg.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env)


def custseg_here(*args) -> subprocess.CompletedProcess:
    """The command through the same entry point (``custseg.cli.main``), in this process:
    its exit code and what it printed. The corpus runs it 80 times, and a fresh interpreter
    costs 3 s of imports each; test_cli checks the real process."""
    from custseg import cli

    out, err, code = io.StringIO(), io.StringIO(), 0
    argv = ["custseg", *map(str, args)]
    with (contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
          mock.patch.object(sys, "argv", argv)):
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def orders(customers: int = 24, seed: int = 0, start: str = "2011-01-03") -> pd.DataFrame:
    """Realistic order lines: customers 12000.. with 1-4 invoices of 1-3 lines each."""
    rng = np.random.default_rng(seed)
    first = dt.datetime.fromisoformat(start)
    rows, invoice = [], 500000
    for c in range(customers):
        for _ in range(1 + c % 4):
            invoice += 1
            when = first + dt.timedelta(days=int(rng.integers(0, 300)),
                                        hours=int(rng.integers(8, 18)))
            for _ in range(1 + int(rng.integers(0, 3))):
                rows.append((str(invoice), f"P{int(rng.integers(1, 30)):03d}",
                             int(rng.integers(1, 12)), when.strftime("%Y-%m-%d %H:%M"),
                             float(rng.choice([0.42, 1.25, 2.1, 4.95, 12.5])),
                             str(12000 + c), "United Kingdom"))
    return pd.DataFrame(rows, columns=COLUMNS)


def buyers(frame: pd.DataFrame) -> set[str]:
    """Customers with a valid purchase in a clean frame built by :func:`orders`."""
    return set(frame["CustomerID"].astype(str))


def csv_file(frame: pd.DataFrame, path: Path, **kwargs) -> Path:
    frame.to_csv(path, index=False, lineterminator="\n", **kwargs)
    return path


# ------------------------------------------------------------------------ case builders
# Each returns (input path, extra arguments for both commands, customers expected or None).
Built = tuple[Path, list[str], set[str] | None]


def empty(tmp: Path) -> Built:
    (tmp / "orders.csv").write_bytes(b"")
    return tmp / "orders.csv", [], None


def blank_lines(tmp: Path) -> Built:
    (tmp / "orders.csv").write_bytes(b"\n \r\n\t\n")
    return tmp / "orders.csv", [], None


def header_only(tmp: Path) -> Built:
    (tmp / "orders.csv").write_text(",".join(COLUMNS) + "\n")
    return tmp / "orders.csv", [], None


def one_customer(tmp: Path) -> Built:
    frame = orders(4).query("CustomerID == '12003'")
    return csv_file(frame, tmp / "orders.csv"), [], {"12003"}


def two_customers(tmp: Path) -> Built:
    frame = orders(4).query("CustomerID in ('12002', '12003')")
    return csv_file(frame, tmp / "orders.csv"), [], {"12002", "12003"}


def identical_customers(tmp: Path) -> Built:
    """Twelve customers, each with exactly the same order: one distinct point."""
    rows = [("5000" + str(i), "P1", 2, "2011-05-01 10:00", 3.5, str(100 + i), "UK")
            for i in range(12)]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return csv_file(frame, tmp / "orders.csv"), [], buyers(frame)


def single_purchase_each(tmp: Path) -> Built:
    frame = orders(30).drop_duplicates("CustomerID")
    return csv_file(frame, tmp / "orders.csv"), [], buyers(frame)


def all_cancelled(tmp: Path) -> Built:
    frame = orders(10)
    frame["InvoiceNo"] = "C" + frame["InvoiceNo"]
    frame["Quantity"] = -frame["Quantity"]
    return csv_file(frame, tmp / "orders.csv"), [], None


def all_c_invoices_positive(tmp: Path) -> Built:
    """Every invoice id is "C" + digits but quantities are positive: ambiguous."""
    frame = orders(10)
    frame["InvoiceNo"] = "C" + frame["InvoiceNo"]
    return csv_file(frame, tmp / "orders.csv"), [], buyers(frame)


def wrong_delimiter(tmp: Path) -> Built:
    path = csv_file(orders(10), tmp / "orders.csv", sep=";")
    return path, ["--delimiter", ","], None


def unknown_delimiter(tmp: Path) -> Built:
    path = csv_file(orders(10), tmp / "orders.csv", sep="#")
    return path, [], None


def mixed_date_formats(tmp: Path) -> Built:
    frame = orders(20)
    when = pd.to_datetime(frame["InvoiceDate"])
    third = len(frame) // 3
    frame.loc[:third, "InvoiceDate"] = when[:third + 1].dt.strftime("%d/%m/%Y %H:%M")
    frame.loc[third:2 * third, "InvoiceDate"] = when[third:2 * third + 1].dt.strftime(
        "%d %b %Y")
    return csv_file(frame, tmp / "orders.csv"), [], buyers(frame)


def future_dates(tmp: Path) -> Built:
    """Three lines of one customer typed as 2099: they must not set the snapshot date."""
    frame = orders(20)
    typo = frame[frame["CustomerID"] == "12001"].head(3).assign(InvoiceDate="2099-06-01 10:00")
    frame = pd.concat([frame, typo], ignore_index=True)
    return csv_file(frame, tmp / "orders.csv"), [], buyers(frame)


def all_future(tmp: Path) -> Built:
    """A whole export dated next century (a wrong clock): every line in the future."""
    frame = orders(16, start="2100-01-04")
    return csv_file(frame, tmp / "orders.csv"), [], buyers(frame)


def impossible_years(tmp: Path) -> Built:
    """Typos such as year 20111 or 1011 (found by fuzzing: they crashed the future check)."""
    frame = orders(20)
    frame.loc[0, "InvoiceDate"] = "20111-03-01 10:00"
    frame.loc[1, "InvoiceDate"] = "1011-03-01 10:00"
    kept = set(frame.drop(index=[0, 1])["CustomerID"])
    return csv_file(frame, tmp / "orders.csv"), [], kept


def non_numeric_amounts(tmp: Path) -> Built:
    frame = orders(20).astype({"UnitPrice": object})
    frame.loc[0, "UnitPrice"] = "#DIV/0!"
    frame.loc[1, "UnitPrice"] = "1,234.50"
    frame.loc[2, "UnitPrice"] = "$12"
    frame.loc[3, "UnitPrice"] = "12 EUR"
    return csv_file(frame, tmp / "orders.csv"), [], buyers(frame) - _only(frame, 0)


def _only(frame: pd.DataFrame, row: int) -> set[str]:
    """The customer of ``row`` when that is their only line."""
    cid = frame.loc[row, "CustomerID"]
    return {cid} if (frame["CustomerID"] == cid).sum() == 1 else set()


def nan_and_inf(tmp: Path) -> Built:
    frame = orders(20).astype({"UnitPrice": object, "Quantity": object})
    bad = {0: ("UnitPrice", "NaN"), 1: ("UnitPrice", "inf"), 2: ("Quantity", "-Infinity"),
           3: ("UnitPrice", "1e400")}
    for row, (col, value) in bad.items():
        frame.loc[row, col] = value
    kept = set(frame.drop(index=list(bad))["CustomerID"])
    return csv_file(frame, tmp / "orders.csv"), [], kept


def extreme_outlier(tmp: Path) -> Built:
    frame = orders(20)
    frame.loc[0, "Quantity"] = 1
    frame.loc[0, "UnitPrice"] = 1e12
    return csv_file(frame, tmp / "orders.csv"), [], buyers(frame)


def invalid_utf8(tmp: Path) -> Built:
    frame = orders(12)
    frame["Country"] = "Espa<n>a"
    text = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    (tmp / "orders.csv").write_bytes(text.replace(b"<n>", b"\xf1"))  # a lone Latin-1 byte
    return tmp / "orders.csv", [], buyers(frame)


def excel_sheets(tmp: Path) -> Built:
    path = tmp / "orders.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        orders(12).to_excel(writer, sheet_name="Orders", index=False)
        orders(5, seed=3).to_excel(writer, sheet_name="Old orders", index=False)
        pd.DataFrame({"note": ["exported by hand"]}).to_excel(writer, sheet_name="Notes",
                                                               index=False)
    return path, [], buyers(orders(12))


def duplicate_columns(tmp: Path) -> Built:
    frame = orders(12)
    frame.insert(0, "CustomerID ", frame["CustomerID"].map(lambda c: "X" + c))
    text = frame.to_csv(index=False, lineterminator="\n").replace("CustomerID ,", "CustomerID,", 1)
    (tmp / "orders.csv").write_text(text)
    return tmp / "orders.csv", [], None


def many_columns(tmp: Path) -> Built:
    frame = orders(15)
    extra = pd.DataFrame({f"attr_{i}": np.arange(len(frame)) % (i + 2) for i in range(493)})
    frame = pd.concat([frame, extra], axis=1)
    assert frame.shape[1] == 500
    return csv_file(frame, tmp / "orders.csv"), [], buyers(orders(15))


def long_strings(tmp: Path) -> Built:
    frame = orders(12)
    frame.loc[0, "StockCode"] = "S" * 200_000
    frame.loc[1, "Country"] = "Land " * 100_000
    return csv_file(frame, tmp / "orders.csv"), [], buyers(frame)


def huge_line(tmp: Path) -> Built:
    """One field of 20 MB: over the reader's line-size limit."""
    frame = orders(12)
    frame.loc[0, "StockCode"] = "S" * 20_000_000
    return csv_file(frame, tmp / "orders.csv"), [], None


def leading_zeros(tmp: Path) -> Built:
    frame = orders(12)
    ids = ["0001", "001", "1", "01.0"]
    for i, cid in enumerate(ids):
        frame.loc[frame["CustomerID"] == str(12000 + i), "CustomerID"] = cid
    # "01.0" is how a spreadsheet writes the number-like id 01: read as "01", not "1"
    return csv_file(frame, tmp / "orders.csv"), [], buyers(frame) - {"01.0"} | {"01"}


def binary_garbage(tmp: Path) -> Built:
    rng = np.random.default_rng(7)
    (tmp / "orders.csv").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return tmp / "orders.csv", [], None


def directory(tmp: Path) -> Built:
    (tmp / "exports").mkdir()
    (tmp / "exports" / "readme.txt").write_text("nothing here")
    return tmp / "exports", [], None


def missing_path(tmp: Path) -> Built:
    return tmp / "no-such-file.csv", [], None


def truncated_parquet(tmp: Path) -> Built:
    whole = tmp / "whole.parquet"
    orders(12).to_parquet(whole, index=False)
    data = whole.read_bytes()
    (tmp / "orders.parquet").write_bytes(data[: len(data) // 2])
    whole.unlink()
    return tmp / "orders.parquet", [], None


def as_of_before_data(tmp: Path) -> Built:
    return csv_file(orders(12), tmp / "orders.csv"), ["--as-of", "2005-01-01"], None


def bad_as_of(tmp: Path) -> Built:
    return csv_file(orders(12), tmp / "orders.csv"), ["--as-of", "2011-13-45"], None


def ragged_rows(tmp: Path) -> Built:
    frame = orders(12)
    text = frame.to_csv(index=False, lineterminator="\n").splitlines()
    text[3] += ",surplus,fields"
    (tmp / "orders.csv").write_text("\n".join(text) + "\n")
    return tmp / "orders.csv", [], None  # a customer may lose their only line


def old_excel(tmp: Path) -> Built:
    (tmp / "orders.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500))
    return tmp / "orders.xls", [], None


def no_customer_ids(tmp: Path) -> Built:
    frame = orders(12)
    frame["CustomerID"] = ""
    return csv_file(frame, tmp / "orders.csv"), [], None


def customer_names(tmp: Path) -> Built:
    """Transactions that carry names and e-mails beside the id: never written out."""
    frame = orders(16)
    frame["Customer Name"] = "Person " + frame["CustomerID"]
    frame["E-mail"] = "p" + frame["CustomerID"] + "@example.org"
    return csv_file(frame, tmp / "orders.csv"), [], buyers(frame)


def empty_parquet(tmp: Path) -> Built:
    orders(3).head(0).to_parquet(tmp / "orders.parquet", index=False)
    return tmp / "orders.parquet", [], None


def quoted_names(tmp: Path) -> Built:
    """Column names with quotes and SQL-looking text are names, never code."""
    frame = orders(12).rename(columns={"Country": 'Cou"ntry\'); DROP TABLE raw; --'})
    return csv_file(frame, tmp / "orders.csv"), [], buyers(orders(12))


def json_file(tmp: Path) -> Built:
    (tmp / "orders.csv").write_text(orders(5).to_json(orient="records"))
    return tmp / "orders.csv", [], None


def gzip_file(tmp: Path) -> Built:
    import gzip

    data = gzip.compress(orders(5).to_csv(index=False).encode())
    (tmp / "orders.csv.gz").write_bytes(data)
    return tmp / "orders.csv.gz", [], None


def nested_ids(tmp: Path) -> Built:
    """A Parquet export whose customer id column holds lists: not ids (was: one customer)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = orders(8)
    table = pa.Table.from_pandas(frame.drop(columns="CustomerID"), preserve_index=False)
    ids = pa.array([[int(c), 1] for c in frame["CustomerID"]], pa.list_(pa.int64()))
    pq.write_table(table.append_column("CustomerID", ids), tmp / "orders.parquet")
    return tmp / "orders.parquet", [], None


@dataclass
class Case:
    build: Callable[[Path], Built]
    outcome: str  # "error", "warning" or "ok"
    words: tuple[str, ...] = ()  # all must appear (case-insensitive) in the error or a warning
    check: Callable[[Path, str], None] | None = None  # (out folder, command) for more checks
    run_error: tuple[str, ...] | None = None  # for `run` an error with these words instead


def amounts_parsed(out: Path, command: str) -> None:
    seg = pd.read_csv(out / "segments.csv", dtype={"customer_id": str}).set_index("customer_id")
    frame = orders(20)
    prices = frame["UnitPrice"].copy()
    prices[1], prices[2], prices[3] = 1234.5, 12.0, 12.0
    spend = (frame["Quantity"] * prices).iloc[1:].groupby(frame["CustomerID"]).sum()
    for cid, value in spend.items():
        assert seg.loc[cid, "monetary"] == pytest.approx(value, abs=0.01), cid


def ids_kept_apart(out: Path, command: str) -> None:
    seg = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    assert {"0001", "001", "01", "1"} <= set(seg["customer_id"])


def first_sheet_only(out: Path, command: str) -> None:
    seg = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    assert sorted(seg["customer_id"]) == sorted(buyers(orders(12)))


def future_lines_ignored(out: Path, command: str) -> None:
    summary = json.loads((out / "summary.json").read_text())
    assert summary["as_of"] < "2099-01-01"
    assert summary["audit"]["dropped"]["after_as_of"] == 3


def no_personal_data(out: Path, command: str) -> None:
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert b"@example.org" not in text, path.name
            assert b"Person 12" not in text, path.name


CASES: dict[str, Case] = {
    "empty": Case(empty, "error", ("empty",)),
    "blank_lines": Case(blank_lines, "error", ("empty",)),
    "header_only": Case(header_only, "error", ("no data rows",)),
    "one_customer": Case(one_customer, "warning", ("only 1 customers",),
                         run_error=("only 1 customer", "custseg rfm")),
    "two_customers": Case(two_customers, "warning", ("only 2 customers",),
                          run_error=("only 2 customer", "custseg rfm")),
    "identical_customers": Case(identical_customers, "warning", ("only 1 distinct",),
                                run_error=("1 distinct", "custseg rfm")),
    "single_purchase_each": Case(single_purchase_each, "warning", ("frequency",)),
    "all_cancelled": Case(all_cancelled, "error", ("every line", "return")),
    "all_c_invoices_positive": Case(all_c_invoices_positive, "warning", ("cancellation",)),
    "wrong_delimiter": Case(wrong_delimiter, "error", ("delimiter",)),
    "unknown_delimiter": Case(unknown_delimiter, "error", ("delimiter",)),
    "mixed_date_formats": Case(mixed_date_formats, "warning", ("date formats",)),
    "future_dates": Case(future_dates, "warning", ("future", "2099"), future_lines_ignored),
    "all_future": Case(all_future, "warning", ("future",)),
    "impossible_years": Case(impossible_years, "warning", ("20111-03-01", "could not be read")),
    "non_numeric_amounts": Case(non_numeric_amounts, "warning", ("#DIV/0!",), amounts_parsed),
    "nan_and_inf": Case(nan_and_inf, "warning", ("could not be read",)),
    "extreme_outlier": Case(extreme_outlier, "warning", ("median",)),
    "invalid_utf8": Case(invalid_utf8, "warning", ("UTF-8", "Windows-1252")),
    "excel_sheets": Case(excel_sheets, "warning", ("3 sheets", "--sheet"), first_sheet_only),
    "duplicate_columns": Case(duplicate_columns, "error",
                              ("CustomerID", "2 columns named", "--map")),
    "many_columns": Case(many_columns, "ok"),
    "long_strings": Case(long_strings, "ok"),
    "huge_line": Case(huge_line, "error", ("line",)),
    "leading_zeros": Case(leading_zeros, "warning", ("leading zeros",), ids_kept_apart),
    "binary_garbage": Case(binary_garbage, "error", ("binary",)),
    "directory": Case(directory, "error", ("folder",)),
    "missing_path": Case(missing_path, "error", ("does not exist",)),
    "truncated_parquet": Case(truncated_parquet, "error", ("parquet",)),
    "empty_parquet": Case(empty_parquet, "error", ("no data rows",)),
    "as_of_before_data": Case(as_of_before_data, "error", ("2005-01-01", "before")),
    "bad_as_of": Case(bad_as_of, "error", ("2011-13-45",)),
    "ragged_rows": Case(ragged_rows, "warning", ("malformed_line",)),
    "old_excel": Case(old_excel, "error", (".xls",)),
    "no_customer_ids": Case(no_customer_ids, "error", ("customer",)),
    "json_file": Case(json_file, "error", ("JSON",)),
    "gzip_file": Case(gzip_file, "error", ("gzip", "decompress")),
    "nested_ids": Case(nested_ids, "error", ("CustomerID", "cannot be ids", "--map")),
    "customer_names": Case(customer_names, "ok", check=no_personal_data),
    "quoted_names": Case(quoted_names, "ok"),
}


def _error_line(run: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, run.stderr  # one line: never folded, never a traceback
    return lines[0]


def _contains(text: str, words: tuple[str, ...]) -> bool:
    return all(w.lower() in text.lower() for w in words)


@pytest.mark.parametrize("command", ["run", "rfm"])
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(tmp_path, name, command):
    case = CASES[name]
    outcome, words = case.outcome, case.words
    if command == "run" and case.run_error:
        outcome, words = "error", case.run_error
    path, extra, expected = case.build(tmp_path)
    out = tmp_path / "out"
    run = custseg_here(command, path, "--out", out, "--no-figures", *extra)
    assert "Traceback" not in run.stderr + run.stdout
    if outcome == "error":
        assert run.returncode == 1, (run.returncode, run.stdout, run.stderr)
        line = _error_line(run)
        assert line.startswith("error:"), line
        assert _contains(line, words), line
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
        return
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == ""
    assert (out / "report.html").is_file() and not (out / "figures").exists()  # --no-figures
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    warnings = summary["audit"]["warnings"]
    if outcome == "warning":
        matching = [w for w in warnings if _contains(w, words)]
        assert matching, warnings
        if command == "run":
            report = (out / "report.html").read_text(encoding="utf-8")
            for w in matching:
                assert str(escape(w)) in report, w
        else:
            printed = "".join(run.stdout.split())  # wrapped at any width, even in a path
            for w in matching:
                assert "".join(w.split()) in printed, w
    seg = pd.read_csv(out / "segments.csv", dtype={"customer_id": str},
                      keep_default_na=False)
    excluded = pd.read_csv(out / "excluded_customers.csv", dtype={"customer_id": str},
                           keep_default_na=False)
    assert seg["customer_id"].is_unique
    assert not set(seg["customer_id"]) & set(excluded["customer_id"])
    if expected is not None:
        assert set(seg["customer_id"]) == expected
    assert summary["customers"] == len(seg)
    if case.check:
        case.check(out, command)


def test_corpus_is_large_enough():
    assert len(CASES) >= 25
