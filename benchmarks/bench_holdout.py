"""Do a run's predictions hold on real histories? Each history is cut at a date before its
end (``--as-of``); the run there (which checks and chooses its own models on the days
before the cut) predicts the next H days, and the predictions are set against what each
customer did in them.

What happened is counted from a second run over the whole history without value models:
a customer's purchase days after the cut are his purchase days at the end less those at
the cut (the feature definitions are checked against independent counts by
bench_exports.py; the value models, under test here, take no part in it).

    CUSTSEG_EXPORTS=../exports python benchmarks/bench_holdout.py [--only NAME,NAME]

Prints per history: the cut and H, the model the run chose (or why none), the AUC of its
P(a purchase in H days) for "bought again" against the better of recency or frequency
alone (both over the model's horizon where a learned model predicts fewer days than H),
predicted against actual purchases, customers at risk against customers clearly
lapsed (silent for three of their own typical gaps), and the distinct churn risks; then,
per history, the bias of the chosen model's prediction of its own holdout (the run's last
days before the cut) before and after the seasonal index of those days.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

import custseg

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"

#: (name, files under CUSTSEG_EXPORTS, or under ../shared/data with "shared:", H days)
HISTORIES = [
    ("Online Retail", ["shared:online_retail.parquet"], 180),
    ("CDNOW master", ["cdnow/CDNOW_master.txt"], 273),
    ("a retailer, 4 years", ["retail_transactions/Retail_Data_Transactions.csv"], 181),
    ("a grocery loyalty panel", ["completejourney/transactions.parquet"], 122),
    ("Spanish office supplies", ["supertienda_es/Muestra - Supertienda.csv"], 364),
    ("US office supplies", ["superstore_us/Sample - Superstore.csv"], 364),
    ("French office supplies", ["hypermarche_fr/achats.csv", "hypermarche_fr/retours.csv"], 364),
    ("a Brazilian retail chain", ["hashtag_vendas_pt/Base Vendas - 2022.csv"], 90),
]


def paths(files: list[str], folder: Path) -> list[str] | None:
    out = [SHARED / f[7:] if f.startswith("shared:") else folder / f for f in files]
    return [str(p) for p in out] if all(p.exists() for p in out) else None


def auc(bought: np.ndarray, score: np.ndarray) -> float | None:
    ok = np.isfinite(score)
    if bought[ok].all() or not bought[ok].any():
        return None
    return float(roc_auc_score(bought[ok], score[ok]))


def check(name: str, inputs: list[str], days: int) -> dict:
    began = time.perf_counter()
    whole = custseg.run_rfm(inputs, config=custseg.Config(report=False,
                                                          clv={"enabled": False}))
    end = dt.date.fromisoformat(whole.summary.as_of)
    cut = end - dt.timedelta(days=days)
    run = custseg.run_rfm(inputs, config=custseg.Config(
        report=False, as_of=cut.isoformat(), clv={"horizon": days}))
    c = run.customers.set_index("customer_id")
    later = whole.customers.set_index("customer_id")["purchase_days"].reindex(c.index)
    actual = (later - c["purchase_days"]).to_numpy(dtype=float)
    bought = actual > 0
    clv = run.summary.clv
    gap = c["mean_days_between_orders"]
    lapsed = int((c["recency"] >= 3 * gap).sum())
    row = {"history": name, "cut": cut.isoformat(), "H": days, "customers": len(c),
           "model": clv.purchases.name if clv.fitted else f"none: {clv.reason}",
           "auc": None, "baseline": None,
           "predicted": None, "actual": float(actual.sum()), "at_risk": None,
           "lapsed": lapsed, "risks": None, "holdout": None,
           "seconds": round(time.perf_counter() - began, 1)}
    h = clv.holdout
    if h is not None:
        row["holdout"] = f"{h.days} days"
        if h.predicted_orders is not None:
            row["bias"] = h.predicted_orders / max(h.actual_orders, 1) - 1
        if h.seasonal_orders is not None:
            row["season"] = (h.seasonal_index, h.seasonal_orders / max(h.actual_orders, 1) - 1,
                             h.season_applied)
    if clv.fitted and clv.horizon_days != days:  # a learned model's shorter horizon
        then = cut + dt.timedelta(days=clv.horizon_days)
        at = custseg.run_rfm(inputs, config=custseg.Config(
            report=False, as_of=then.isoformat(), clv={"enabled": False}))
        later = at.customers.set_index("customer_id")["purchase_days"].reindex(c.index)
        actual = (later - c["purchase_days"]).to_numpy(dtype=float)
        bought, row["actual"] = actual > 0, float(actual.sum())
    row["baseline"] = max(a for a in (auc(bought, -c["recency"].to_numpy(float)),
                                      auc(bought, c["frequency"].to_numpy(float)))
                          if a is not None)
    if clv.fitted:
        row["auc"] = auc(bought, 1 - c["churn_risk"].to_numpy(float))
        row["predicted"] = float(c["expected_orders"].sum())
        row["at_risk"] = clv.total.at_risk
        row["risks"] = int(c["churn_risk"].nunique())
        row["horizon"] = clv.horizon_days
    return row


def seasons(rows: list[dict]) -> str:
    """The holdout's bias before and after the seasonal index, where it was read."""
    out = ["| history | holdout | bias, flat | seasonal index | bias with it | applied |",
           "|---|---|---:|---:|---:|---|"]
    for r in rows:
        if "bias" not in r:
            continue
        index, after, applied = r.get("season") or (None, None, False)
        out.append(f"| {r['history']} | {r['holdout']} | {r['bias']:+.0%} | "
                   + ("n/a (no whole earlier year) | | no |" if index is None else
                      f"{index:.2f} | {after:+.0%} | {'yes' if applied else 'no'} |"))
    return "\n".join(out)


def table(rows: list[dict]) -> str:
    out = ["| history (cut, H days) | customers | chosen (checked on) | AUC | best of recency "
           "or frequency | predicted vs actual purchases | at risk / lapsed | distinct churn "
           "risks |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['history']} | | error: {r['error']} | | | | | |")
            continue
        pred = ""
        if r["predicted"] is not None:
            change = r["predicted"] / max(r["actual"], 1) - 1
            pred = f"{r['predicted']:,.0f} vs {r['actual']:,.0f} ({change:+.0%})"
            if r.get("horizon") not in (None, r["H"]):
                pred += f" over {r['horizon']} days"
        model = r["model"] + (f" ({r['holdout']})" if r["holdout"] else "")
        score = "" if r["auc"] is None else f"{r['auc']:.3f}"
        risk = "" if r["at_risk"] is None else f"{r['at_risk']:,}"
        risks = "" if r["risks"] is None else str(r["risks"])
        out.append(f"| {r['history']} ({r['cut']}, {r['H']}) | {r['customers']:,} | {model} "
                   f"| {score} | {r['baseline']:.3f} | {pred} | {risk} / {r['lapsed']:,} "
                   f"| {risks} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="histories to check, by name, comma-separated")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    folder = Path(os.environ.get("CUSTSEG_EXPORTS", HERE.parent.parent / "exports"))
    rows = []
    for name, files, days in HISTORIES:
        if args.only and name not in args.only.split(","):
            continue
        inputs = paths(files, folder)
        if inputs is None:
            print(f"skip {name}: {files} not under {folder} (or ../shared/data)")
            continue
        try:
            rows.append(check(name, inputs, days))
        except custseg.CustsegError as exc:
            rows.append({"history": name, "error": str(exc)})
        print(rows[-1], flush=True)
    text = table(rows) + "\n\n" + seasons(rows)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
