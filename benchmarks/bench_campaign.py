"""Does custseg find a campaign's uplift where there is one, and only there?

Two checks:

1. Simulation (``--simulate N``): N campaigns over four segments (4,000, 3,000, 2,500
   and 2,000 customers buying at 10%, 5%, 20% and 15%, 20% held out), a 5-point uplift
   planted in the first segment's target group only. Prints how often the 95% interval
   covers the planted uplift, how often it is found, and how often a segment without
   uplift is called significant (after Holm's correction); then N A/A splits.
2. Held-out histories: each order history is read by custseg (its cleaned purchases), cut
   30 days before its end; ``custseg run`` on the history before the cut; every segment
   exported with a 20% holdout; an order planted, in the 30 days after the cut, for
   customers of the largest segment's target group who did not buy then, as many as make
   the uplift in buyers 1.25 times the smallest the split can detect (as the manifest
   says, from the predicted base rate); ``custseg measure`` on the real later orders plus
   the planted ones. The base rate the manifest predicted is set beside the one that
   came (the control group's). Repeated over seeds (a new split and new planted
   customers each time): how often the planted segment is found, and how often another
   segment is called significant.

    python benchmarks/bench_campaign.py [--simulate 1000] [--seeds 20] [--only NAME,...]
        [--out results.md]

The corpus is the order histories of ``benchmarks/exports.json`` read from
``CUSTSEG_EXPORTS`` (default ``../exports``), Online Retail from ``../shared/data`` and the
demo's synthetic data; absent files are skipped with the reason. Only counts and rates are
printed, never a customer's data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import custseg
from custseg.core.config import Config
from custseg.core.exceptions import CustsegError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from bench_action_fit import corpus  # noqa: E402

WINDOW, HOLDOUT, TIMES = 30, 0.2, 1.25


def simulate(runs: int) -> list[str]:
    """The simulation's rates, as table rows."""
    from test_uplift import campaign

    rng = np.random.default_rng(20261206)
    covered = found = flagged = 0
    for _ in range(runs):
        table = campaign(rng, [4000, 3000, 2500, 2000], [0.10, 0.05, 0.20, 0.15],
                         [0.05, 0, 0, 0])
        low, high = table.iloc[0]["buying"].interval
        covered += low <= 0.05 <= high
        found += table.iloc[0]["buying_p_adjusted"] < 0.05
        flagged += sum(table.iloc[i]["buying_p_adjusted"] < 0.05 for i in (1, 2, 3))
    family = raw = 0
    for _ in range(runs):
        table = campaign(rng, [3000, 3000, 3000], [0.1, 0.3, 0.05], [0, 0, 0], share=0.5)
        family += (table.iloc[:-1]["buying_p_adjusted"] < 0.05).any()
        raw += sum(t.p_value < 0.05 for t in table.iloc[:-1]["buying"])
    return ["| check | rate | goal |", "|---|---:|---|",
            f"| planted 5-point uplift inside its 95% interval ({runs:,} runs) | "
            f"{covered / runs:.1%} | about 95% |",
            f"| planted uplift found (Holm p < 0.05) | {found / runs:.1%} | high |",
            f"| segments without uplift called significant (Holm) | "
            f"{flagged / (3 * runs):.1%} | at most 5% |",
            f"| A/A: runs with any segment significant (Holm) | {family / runs:.1%} | "
            "at most 5% |",
            f"| A/A: single tests significant, uncorrected | {raw / (3 * runs):.1%} | "
            "about 5% |"]


def purchases(inputs) -> pd.DataFrame:
    """customer_id, invoice_id, invoice_date, amount of every kept purchase line."""
    result = custseg.run_rfm(inputs, config=Config(report=False, figures=False).replace(
        clv=Config().clv.replace(enabled=False)), keep_lines=True)
    try:
        return result.engine.query(
            "SELECT CAST(customer_id AS VARCHAR) AS customer_id, "
            "CAST(invoice_id AS VARCHAR) AS invoice_id, invoice_date, value AS amount "
            "FROM lines WHERE status = 'purchase'")
    finally:
        result.engine.close()


def held_out(name: str, inputs, seeds: int, folder: Path) -> str:
    """One table row: the held-out check of one history."""
    lines = purchases(inputs)
    last = pd.Timestamp(lines["invoice_date"].max()).normalize()
    cut = last - pd.Timedelta(days=WINDOW - 1)
    before, later = lines[lines["invoice_date"] < cut], lines[lines["invoice_date"] >= cut]
    before.to_parquet(folder / "before.parquet")
    start = time.perf_counter()
    run = custseg.run_segments(str(folder / "before.parquet"), out_dir=folder / "run",
                               config=Config(figures=False))
    seconds = time.perf_counter() - start
    table = run.customers
    sizes = table["segment"].value_counts()
    sizes = sizes[sizes.index != -1]
    hit, others = str(sizes.index[0]), [str(s) for s in sizes.index[1:]]
    found = flagged = tested = revenue = 0
    rates = []
    planted_uplift = []
    for seed in range(seeds):
        config = Config().overridden({"campaign.holdout": HOLDOUT, "campaign.seed": seed,
                                      "campaign.start": cut.date().isoformat(),
                                      "campaign.window_days": WINDOW})
        audience = custseg.export_audience(folder / "run", [str(s) for s in sizes.index],
                                           folder / "aud" / "a.csv", config=config)
        split = next(s for s in audience.split.segments if s.segment == hit)
        wanted = TIMES * (split.min_detectable_uplift or 0)
        planted_uplift.append(wanted)
        target = pd.read_csv(folder / "aud" / "a.csv", dtype=str)
        mine = target.loc[target["segment"] == hit, "customer_id"]
        idle = mine[~mine.isin(later["customer_id"])]
        rng = np.random.default_rng(seed)
        lucky = idle.sample(n=min(len(idle), round(wanted * len(mine))), random_state=seed)
        day = cut + pd.Timedelta(days=int(rng.integers(0, WINDOW)), hours=12)
        planted = pd.DataFrame({"customer_id": lucky.to_numpy(),
                                "invoice_id": [f"planted-{seed}-{i}" for i in range(len(lucky))],
                                "invoice_date": day,
                                "amount": float(before["amount"].median())})
        pd.concat([later, planted], ignore_index=True).to_parquet(folder / "later.parquet")
        result = custseg.measure_campaign(folder / "aud" / "a.manifest.json",
                                          str(folder / "later.parquet"), config=config)
        by_id = {s.segment: s for s in result.segments}
        found += by_id[hit].significant
        rates.append((split.base_rate, by_id[hit].buying.control))
        revenue += (by_id[hit].revenue is not None and by_id[hit].revenue.p_adjusted < 0.05)
        flagged += sum(by_id[s].significant for s in others if s in by_id)
        tested += sum(s in by_id and by_id[s].buying is not None for s in others)
    return (f"| {name} | {len(table):,} | {len(sizes)} | {sizes.iloc[0]:,} | "
            f"{np.median(planted_uplift) * 100:.1f} | "
            f"{np.mean([r[0] for r in rates]):.1%} / {np.mean([r[1] for r in rates]):.1%} | "
            f"{found / seeds:.0%} | "
            f"{revenue / seeds:.0%} | "
            + (f"{flagged / tested:.1%} ({flagged}/{tested})" if tested else "n/a")
            + f" | {seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulate", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--only", default="", help="Comma-separated names of histories.")
    parser.add_argument("--out", default=None, help="Also write the tables to this file.")
    args = parser.parse_args()
    text = [f"Measured {dt.date.today()}.\n"]
    if args.simulate:
        text += simulate(args.simulate) + [""]
    text += ["| history | customers | segments | planted segment's customers | planted uplift "
             f"in buyers, points ({TIMES}x the smallest detectable, median) | its base rate: "
             "predicted / came | found (buying) | "
             "found (revenue) | other segments significant | run seconds |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    only = {n for n in args.only.split(",") if n}
    for name, _, inputs, _ in corpus(only):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                row = held_out(name, inputs, args.seeds, Path(tmp))
            except CustsegError as exc:
                row = f"| {name} | error: {exc} | | | | | | | | |"
        print(row, flush=True)
        text.append(row)
    out = "\n".join(text)
    print(out)
    if args.out:
        Path(args.out).write_text(out + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
