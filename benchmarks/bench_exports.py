"""custseg without --map over a corpus of real public exports, each checked against an
independent count written in plain DuckDB SQL for that file.

The corpus (``benchmarks/exports.json``) names each export: where it comes from (a public
repository at a commit, or a PyPI wheel), its licence, the system that wrote it, its
language and kind (order lines, orders, items, payments, customer tables), the files
custseg reads (several for the tables of one shop, joined), and the independent count:
a DuckDB query by the rule stated beside it, giving customers, lines and revenue.

The files are not committed (their licences are unknown or forbid it, and shop exports
hold people's names and e-mails): the script reads them from the folder named by
``CUSTSEG_EXPORTS`` (default ``../exports`` beside the project) and skips, with the
reason, any file that is absent. Personal data is never printed: only counts, column
names and seconds.

    python benchmarks/bench_exports.py [--only NAME,NAME] [--out results.md]

Prints per export: read or not (the one-line error when not), the mapping, customers,
lines and revenue against the independent count, and seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import duckdb

import custseg
from custseg.core.exceptions import CustsegError

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "exports.json"
TOLERANCE = 0.005  # the bar: within 0.5% of the independent count
SHORT = {"customer_id": "cust", "invoice_id": "order", "invoice_date": "date",
         "quantity": "qty", "unit_price": "price", "amount": "total", "product_id": "product",
         "description": "desc", "category": "cat", "country": "country",
         "discount": "disc", "coupon": "coupon"}


def independent(entry: dict, folder: Path) -> dict | None:
    """The independent count of an export (None: it has no money or no customer)."""
    first = folder / entry["inputs"][0]
    sql = entry["sql"].replace("{path}", str(first)).replace("{dir}", str(first.parent))
    con = duckdb.connect()
    try:
        row = con.execute(sql).fetchone()
        names = [d[0] for d in con.description]
    finally:
        con.close()
    return dict(zip(names, row, strict=True))


def read(entry: dict, folder: Path) -> dict:
    """What custseg makes of an export without --map."""
    paths = [str(folder / p) for p in entry["inputs"]]
    config = custseg.Config(clv={"enabled": False}, report=False)
    start = time.perf_counter()
    try:
        result = custseg.run_rfm(paths[0] if len(paths) == 1 else paths, config=config)
    except custseg.jobs.rfm.CustomerTableInput:
        from custseg.io._customers import load_customers
        from custseg.io._parse import quiet_connect

        con = quiet_connect()
        try:
            table, info = load_customers(con, paths[0], config)
        finally:
            con.close()
        return {"read": "customer table", "customers": len(table), "lines": None,
                "revenue": None, "mapping": f"key {info['key']}",
                "seconds": time.perf_counter() - start}
    except CustsegError as exc:
        return {"read": "no", "error": str(exc), "seconds": time.perf_counter() - start}
    s = result.summary
    mapping = " ".join(f"{SHORT.get(f, f)}={c}" for f, c in s["mapping"].items()
                       if f in ("customer_id", "invoice_id", "invoice_date", "quantity",
                                "unit_price", "amount"))
    fmt = s["roles"]["format"]
    return {"read": f"yes ({fmt})" if fmt else "yes", "customers": len(result.customers),
            "lines": s["audit"]["rows_used"],
            "revenue": float(result.customers["monetary"].sum()), "mapping": mapping,
            "customer_attributes": s["roles"]["customer_attributes"],
            "line_attributes": s["roles"]["line_attributes"],
            "seconds": time.perf_counter() - start}


def agree(ours, theirs) -> str:
    if theirs is None or ours is None:
        return "n/a"
    if theirs == 0:
        return "ok" if ours == 0 else "differs"
    diff = abs(ours - theirs) / abs(theirs)
    return "ok" if diff <= TOLERANCE else f"{diff:+.1%}"


def fmt_num(x, money: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:,.2f}" if money else f"{x:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="Comma-separated names of exports.")
    parser.add_argument("--out", default=None, help="Also write the table to this file.")
    args = parser.parse_args()
    folder = Path(os.environ.get("CUSTSEG_EXPORTS", HERE.parent.parent / "exports"))
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    only = {n for n in args.only.split(",") if n}
    rows = ["| export | system | language | kind | read | mapping | customers | lines | "
            "revenue | seconds |", "|---|---|---|---|---|---|---|---|---|---|"]
    read_ok = agreed = checked = 0
    skipped = []
    for entry in corpus:
        if only and entry["name"] not in only:
            continue
        missing = [p for p in entry["inputs"] if not (folder / p).exists()]
        if missing:
            skipped.append(f"{entry['name']}: {missing[0]} is not in {folder} "
                           "(set CUSTSEG_EXPORTS to the folder of the corpus)")
            continue
        truth = independent(entry, folder)
        got = read(entry, folder)
        if got["read"] == "no":
            rows.append(f"| {entry['name']} | {entry['system']} | {entry['language']} | "
                        f"{entry['kind']} | no: {got['error'][:160]} | | | | | "
                        f"{got['seconds']:.1f} |")
            continue
        read_ok += 1
        cells = []
        for key, money in (("customers", False), ("lines", False), ("revenue", True)):
            ours, theirs = got.get(key), truth.get(key) if truth else None
            verdict = agree(ours, theirs)
            if verdict != "n/a":
                checked += 1
                agreed += verdict == "ok"
            cells.append(f"{fmt_num(ours, money)} / {fmt_num(theirs, money)} {verdict}")
        rows.append(f"| {entry['name']} | {entry['system']} | {entry['language']} | "
                    f"{entry['kind']} | {got['read']} | {got['mapping']} | "
                    + " | ".join(cells) + f" | {got['seconds']:.1f} |")
    table = "\n".join(rows)
    summary = (f"\n{read_ok} of {len(rows) - 2} exports read without --map; "
               f"{agreed} of {checked} counts within {TOLERANCE:.1%} of the independent "
               "count (custseg / independent).")
    print(table + summary)
    for s in skipped:
        print(f"skipped: {s}")
    if args.out:
        Path(args.out).write_text(table + summary + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
