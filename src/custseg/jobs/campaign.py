"""Campaigns: control groups on an audience, and the measured uplift per segment.

:func:`plan_split` splits the chosen customers of a run into target and control groups
(stratified by segment, reproducible from the seed) and writes down in a
:class:`~custseg.core.campaign.Manifest` what each segment's split can detect;
``custseg export --holdout`` writes the groups and the manifest (:mod:`custseg.jobs.export`).
:func:`measure_campaign` reads the order lines that came after, as any input is read, and sets
each segment's target group against its control group (:mod:`custseg.prep.uplift`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from pathlib import Path

import numpy as np
import pandas as pd

from custseg.core import campaign as cp
from custseg.core import summary as sm
from custseg.core.config import Config
from custseg.core.exceptions import InputError, MappingError
from custseg.core.money import money
from custseg.outputs.rundir import atomic_folder, read_segments
from custseg.prep import privacy, uplift

#: Control and manifest files beside the target file ``audience.csv``.
CONTROL_SUFFIX, MANIFEST_SUFFIX = ".control", ".manifest.json"
SPLIT = ("random within each segment (NumPy's PCG64 from the seed, over the segment's "
         "customers in id order): round(holdout x customers) held out as its control group")


def group_files(out: Path) -> dict[str, Path]:
    """Where the target, control and manifest files of an audience at ``out`` go."""
    return {"target": out, "control": out.with_name(f"{out.stem}{CONTROL_SUFFIX}{out.suffix}"),
            "manifest": out.with_name(f"{out.stem}{MANIFEST_SUFFIX}")}


def fingerprint(table: pd.DataFrame) -> str:
    """SHA-256 of a run's customers and their segments: it changes when the run does."""
    column = "segment" if "segment" in table else "rfm_segment"
    pairs = (table["customer_id"].astype(str) + "\t" + table[column].astype(str))
    digest = hashlib.sha256()
    for pair in sorted(pairs):
        digest.update(pair.encode("utf-8") + b"\n")
    return digest.hexdigest()


def base_rates(table: pd.DataFrame, summary: sm.Block | None, days: int
               ) -> tuple[pd.Series, str]:
    """Each customer's chance of buying within ``days`` without a campaign, and where it
    comes from: the value models' P(buy in 30 or 90 days) when they passed their holdout
    check (scaled to ``days`` at a constant rate), else his past rate of orders."""
    clv = summary.get("clv") if summary is not None else None
    holdout = clv.get("holdout") if clv else None
    validated = bool(clv and clv.get("fitted") and holdout and holdout.get("reason") is None)
    if validated and {"p_buy_30", "p_buy_90"} <= set(table.columns):
        ref = 30 if days <= 60 else 90
        p = table[f"p_buy_{ref}"].astype(float).clip(0, 1 - 1e-9)
        return 1 - (1 - p) ** (days / ref), "validated prediction"
    if {"frequency", "tenure"} <= set(table.columns):
        rate = table["frequency"].astype(float) / np.maximum(table["tenure"].astype(float), days)
        return 1 - np.exp(-rate * days), "past purchase rate"
    return pd.Series(0.5, index=table.index), "unknown (no order history): 50%, the widest"


def plan_split(table: pd.DataFrame, chosen: pd.Series, config: Config, *,
               summary: sm.Block | None = None, run_path: str | None = None,
               files: dict[str, str] | None = None) -> tuple[pd.Series, cp.Manifest]:
    """The group of each chosen customer of a run's ``table`` (``"target"`` or
    ``"control"``, indexed like ``table[chosen]``) and the manifest of the split."""
    c = config.campaign
    seed = c.seed if c.seed is not None else secrets.randbelow(2**31)
    names = _names(table)
    members = pd.DataFrame({"customer_id": table.loc[chosen, "customer_id"],
                            "segment": _keys(table).loc[chosen]})
    group = uplift.split_groups(members, c.holdout, seed)
    rates, rate_from = base_rates(table, summary, c.window_days)
    as_of = summary.get("as_of") if summary is not None else None
    start = dt.date.fromisoformat(c.start or as_of or dt.date.today().isoformat())
    segments, warnings = [], []
    by_segment = members.groupby("segment", sort=False).groups
    for key in sorted(by_segment, key=lambda k: (len(k), k)):
        rows = by_segment[key]
        held = int((group.loc[rows] == "control").sum())
        part = _segment_split(str(key), names[key], len(rows), held,
                              float(rates.loc[rows].mean()), rate_from, c,
                              uplift.ALPHA / len(by_segment))
        segments.append(part)
        if part.warning:
            warnings.append(part.warning)
    ids = "salted hashes" if summary is not None and summary.get("customer_ids") \
        else "as in the data"
    manifest = cp.Manifest(
        version=cp.MANIFEST_VERSION,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        run=cp.RunRef(path=run_path, fingerprint=fingerprint(table), as_of=as_of,
                      customer_ids=ids),
        seed=seed, holdout=c.holdout, split=SPLIT,
        window=_window(start, c.window_days), min_uplift=c.min_uplift, power=uplift.POWER,
        alpha=uplift.ALPHA, tests=len(segments), files=files or {}, segments=segments,
        target=int((group == "target").sum()), control=int((group == "control").sum()),
        warnings=warnings, currency=summary.get("currency") if summary is not None else None)
    return group, manifest


def _segment_split(key: str, name: str, customers: int, control: int, rate: float,
                   rate_from: str, c, alpha: float) -> cp.SegmentSplit:
    found = uplift.detectable_uplift(rate, customers - control, control, alpha=alpha)
    part = cp.SegmentSplit(segment=key, name=name, customers=customers,
                           target=customers - control, control=control,
                           base_rate=round(rate, 4), base_rate_from=rate_from,
                           min_detectable_uplift=None if found is None else round(found, 4))
    if found is not None and found <= c.min_uplift:
        return part
    needed = uplift.holdout_for(rate, customers, c.min_uplift, alpha=alpha)
    part.holdout_needed = needed
    can = ("too few customers to test at all" if found is None
           else f"the smallest uplift it can detect is {found * 100:.1f} points")
    half = uplift.detectable_uplift(rate, customers - customers // 2, customers // 2,
                                    alpha=alpha)
    fix = (f"a holdout of {needed:.0%} would" if needed is not None else
           "not even half of them as control would" + (
               f" ({half * 100:.1f} points)" if half is not None else "")
           + "; merge it with a like segment or measure over a longer window")
    tested = ("" if alpha >= uplift.ALPHA
              else f" (5% shared by {uplift.ALPHA / alpha:.0f} segments)")
    part.warning = (f"Segment {name!r} ({customers:,} customers, {c.holdout:.0%} held out) "
                    f"is too small to detect a {c.min_uplift * 100:g}-point uplift in buying"
                    f"{tested}: {can}; {fix}.")
    return part


def _window(start: dt.date, days: int) -> cp.Window:
    return cp.Window(start=start.isoformat(), end=(start + dt.timedelta(days=days)).isoformat(),
                     days=days)


def _keys(table: pd.DataFrame) -> pd.Series:
    """Each customer's segment key: its id in a run, its name in an rfm folder."""
    return (table["segment"] if "segment" in table else table["rfm_segment"]).astype(str)


def _names(table: pd.DataFrame) -> dict[str, str]:
    keys = _keys(table)
    names = table["segment_name"].astype(str) if "segment_name" in table else keys
    return dict(zip(keys, names, strict=True))


# ---------------------------------------------------------------------------- measure
def measure_campaign(manifest_path: str | Path, orders, out_dir: str | Path | None = None, *,
                     config: Config | None = None, run_table: pd.DataFrame | None = None
                     ) -> cp.Measurement:
    """The uplift of the campaign a manifest split, from the order lines after it
    (``orders``: a file or tables, or None with ``config.db`` and ``config.sql``):
    each segment's target group against its control group, and all of them. Writes
    ``measure.json`` and ``measure.html`` to ``out_dir`` when given.

    The run the groups were drawn from must be as it was: its folder, or ``run_table``
    (its segments table, as the dashboard holds it) when given."""
    config = config or Config()
    manifest_path = Path(manifest_path)
    manifest = cp.load_manifest(manifest_path)
    if run_table is None:
        _check_run(manifest, manifest_path)
    elif fingerprint(run_table) != manifest.run.fingerprint:
        raise InputError(f"{manifest_path.name} was drawn from another run than this one "
                         "(its customers or segments differ); measure it against the run "
                         "it was exported from.")
    groups = _read_groups(manifest, manifest_path)
    bought, lines, last_day = _bought(orders, manifest, config)
    warnings: list[str] = []
    if manifest.run.customer_ids == "salted hashes":
        if not config.salt:
            raise InputError(f"The run of {manifest_path} wrote salted hashes of customer ids; "
                             "give its salt (--salt or CUSTSEG_SALT) to match the later "
                             "orders.")
        bought["customer_id"] = privacy.hash_ids(bought["customer_id"], config.salt)
    outcomes = groups.merge(bought, on="customer_id", how="left")
    outcomes[["orders", "revenue"]] = outcomes[["orders", "revenue"]].fillna(0)
    outside = bought[~bought["customer_id"].isin(groups["customer_id"])]
    if len(outside):
        warnings.append(f"{len(outside):,} customers bought in the window but are in neither "
                        "group (new customers, or segments not exported); they are counted "
                        "under outsiders and left out.")
    table = uplift.compare_groups(outcomes)
    sizes = table.iloc[:-1][["target", "control"]]
    srm = uplift.sample_ratio(sizes, manifest.holdout)
    mismatch = srm is not None and srm < uplift.SRM_ALPHA
    if mismatch:
        warnings.insert(0, f"SAMPLE RATIO MISMATCH: the groups hold {int(sizes['target'].sum()):,}"
                           f" target and {int(sizes['control'].sum()):,} control customers, "
                           f"against a {manifest.holdout:.0%} holdout (chi-squared p = "
                           f"{srm:.2g}); the groups were not kept apart as drawn, so the "
                           "uplift below cannot be trusted. Check who was removed from or "
                           "added to the target or control file.")
    window = manifest.window
    end = dt.date.fromisoformat(window.end)
    to_come = max(0, (end - (last_day + dt.timedelta(days=1))).days) if last_day else window.days
    if to_come:
        warnings.append(f"The campaign window runs to {end - dt.timedelta(days=1)}; the later "
                        f"orders end on {last_day}, so {to_come} of its {window.days} days are "
                        "still to come: measure again when it has closed.")
    names = {s.segment: s.name for s in manifest.segments}
    currency = manifest.currency
    results = [_result(row, names.get(row["segment"], str(row["segment"])), currency)
               for _, row in table.iloc[:-1].iterrows()]
    total = _result(table.iloc[-1], "all segments", currency, total=True)
    result = cp.Measurement(
        version=cp.MANIFEST_VERSION, manifest=str(manifest_path), orders=_described(orders,
                                                                                     config),
        window=window, data_last_day=last_day.isoformat() if last_day else None,
        days_to_come=to_come, lines=lines, alpha=uplift.ALPHA, buying_test=uplift.BUYING_TEST,
        revenue_test=uplift.REVENUE_TEST, correction=uplift.CORRECTION, sample_ratio_p=srm,
        sample_ratio_mismatch=mismatch, currency=currency, segments=results, total=total,
        outsiders=cp.Outsiders(customers=len(outside), orders=int(outside["orders"].sum()),
                               revenue=round(float(outside["revenue"].sum()), 2)),
        warnings=warnings)
    if out_dir is not None:
        write_measurement(result, Path(out_dir))
    return result


def write_measurement(result: cp.Measurement, out_dir: Path) -> None:
    """``measure.json`` and ``measure.html`` in ``out_dir`` (all at once)."""
    from custseg.outputs.report.measure import render_measure

    with atomic_folder(out_dir) as tmp:
        (tmp / "measure.json").write_text(cp.encode(result), encoding="utf-8")
        (tmp / "measure.html").write_text(render_measure(result), encoding="utf-8")


def _check_run(manifest: cp.Manifest, path: Path) -> None:
    """Refuse a manifest whose run folder is gone or changed since the split."""
    if manifest.run.path is None:
        return
    run = Path(manifest.run.path)
    try:
        table = read_segments(run)
    except InputError:
        raise InputError(f"{path}: its run folder {run} is gone; measure needs the run the "
                         "groups were drawn from.") from None
    if fingerprint(table) != manifest.run.fingerprint:
        raise InputError(f"{path}: the run folder {run} has changed since the split (its "
                         "customers or segments differ); measure against the run the groups "
                         "were drawn from, or export the groups again.")


def _read_groups(manifest: cp.Manifest, path: Path) -> pd.DataFrame:
    """customer_id, segment, group of the target and control files as they are now (a
    customer in both counts once, in the control group)."""
    parts = []
    for group in ("target", "control"):
        name = manifest.files.get(group)
        if not name:
            raise InputError(f"{path} names no {group} file.")
        file = path.parent / name
        if not file.is_file():
            raise InputError(f"{path}: its {group} file {file} is missing; keep it beside the "
                             "manifest.")
        frame = (pd.read_parquet(file) if file.suffix.lower() == ".parquet"
                 else pd.read_csv(file, dtype=str, keep_default_na=False))
        key = next((c for c in ("segment", "rfm_segment") if c in frame), None)
        if "customer_id" not in frame or key is None:
            raise InputError(f"{file} has no customer_id or segment column; it is not a file "
                             "custseg export wrote.")
        parts.append(pd.DataFrame({"customer_id": frame["customer_id"].astype(str),
                                   "segment": frame[key].astype(str), "group": group}))
    groups = pd.concat(parts, ignore_index=True)
    return groups.drop_duplicates("customer_id", keep="last").reset_index(drop=True)


def _bought(orders, manifest: cp.Manifest, config: Config
            ) -> tuple[pd.DataFrame, dict[str, int], dt.date | None]:
    """Orders and revenue per customer in the window, the purchase lines in, before and
    after it, and the last day with a line."""
    from custseg.engines import open_engine
    from custseg.engines.base import timestamp
    from custseg.jobs.rfm import closed_on_error, read_input

    start = dt.date.fromisoformat(manifest.window.start)
    end = dt.date.fromisoformat(manifest.window.end)
    engine = open_engine(config)
    with closed_on_error(engine):
        source, reading = read_input(engine, orders, config, {}, db=config.db, sql=config.sql)
        if reading is None:
            raise MappingError(f"{source.name} reads as a customer table; custseg measure "
                               "needs the order lines after the campaign.")
        engine.clean(source, reading.mapping, config)
        lo, hi = timestamp(start), timestamp(end)
        bought = engine.query(
            f"""SELECT CAST(customer_id AS VARCHAR) AS customer_id,
                       count(DISTINCT invoice_id) AS orders, sum(value) AS revenue
                FROM lines WHERE status = 'purchase' AND invoice_date >= {lo}
                  AND invoice_date < {hi} GROUP BY 1""")
        counts = engine.query(
            f"""SELECT count(CASE WHEN invoice_date >= {lo} AND invoice_date < {hi} THEN 1 END)
                         AS within,
                       count(CASE WHEN invoice_date < {lo} THEN 1 END) AS before,
                       count(CASE WHEN invoice_date >= {hi} THEN 1 END) AS after,
                       max(invoice_date) AS last
                FROM lines WHERE status = 'purchase'""").iloc[0]
    engine.close()
    last = pd.Timestamp(counts["last"]).date() if pd.notna(counts["last"]) else None
    lines = {k: int(counts[k]) for k in ("within", "before", "after")}
    bought["orders"] = bought["orders"].astype(int)
    bought["revenue"] = bought["revenue"].astype(float)
    return bought, lines, last


def _described(orders, config: Config) -> str:
    if orders is None:
        return f"{config.db} (a query)"
    return ", ".join(map(str, orders)) if isinstance(orders, list | tuple) else str(orders)


def _comparison(test, adjusted=None) -> cp.Comparison | None:
    if not isinstance(test, uplift.Test):
        return None
    return cp.Comparison(
        target=round(test.target, 6), control=round(test.control, 6),
        uplift=round(test.uplift, 6), interval=[round(v, 6) for v in test.interval],
        relative=_finite(test.relative),
        relative_interval=(None if test.relative_interval is None
                           else [round(v, 6) for v in test.relative_interval]),
        p_value=float(test.p_value),
        p_adjusted=None if adjusted is None or pd.isna(adjusted) else float(adjusted))


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, 6)


def _result(row: pd.Series, name: str, currency, total: bool = False) -> cp.SegmentResult:
    buying = _comparison(row["buying"], row["buying_p_adjusted"])
    revenue = _comparison(row["revenue"], row["revenue_p_adjusted"])
    n = int(row["target"])
    extra = extra_interval = buyers = None
    if revenue is not None:
        extra = round(revenue.uplift * n, 2)
        extra_interval = [round(v * n, 2) for v in revenue.interval]
    if buying is not None:
        buyers = round(buying.uplift * n, 1)
    significant = bool(buying is not None and buying.p_adjusted is not None
                       and buying.p_adjusted < uplift.ALPHA)
    return cp.SegmentResult(
        segment=None if total else str(row["segment"]), name=name, target=n,
        control=int(row["control"]), buyers_target=int(row["buyers_target"]),
        buyers_control=int(row["buyers_control"]), buying=buying,
        orders=_comparison(row["orders"]), revenue=revenue, incremental_revenue=extra,
        incremental_interval=extra_interval, incremental_buyers=buyers,
        significant=significant, verdict=verdict(buying, revenue, extra, currency, total,
                                                 extra_interval))


def verdict(buying: cp.Comparison | None, revenue: cp.Comparison | None,
            extra: float | None, currency, total: bool = False,
            extra_interval: list[float] | None = None) -> str:
    """What the comparison says, in one sentence."""
    if buying is None:
        return "Not measured: a group is empty."
    low, high = (v * 100 for v in buying.interval)
    points = (f"{buying.uplift * 100:+.1f} points of buyers ({buying.control:.1%} in the "
              f"control group; 95% interval {low:+.1f} to {high:+.1f})")
    p = buying.p_adjusted if buying.p_adjusted is not None else buying.p_value
    corrected = "" if total else " after Holm's correction"
    if p >= uplift.ALPHA:
        return f"No significant difference in buying: {points}, {p_words(p)}{corrected}."
    more = "more" if buying.uplift > 0 else "fewer"
    said = f"The campaign brought {more} buyers: {points}, {p_words(p)}{corrected}"
    if revenue is not None and extra is not None:
        code = code_of(currency)
        r = revenue.p_adjusted if revenue.p_adjusted is not None else revenue.p_value
        span = ("" if extra_interval is None else
                f", 95% interval {money(extra_interval[0], code)} to "
                f"{money(extra_interval[1], code)}")
        said += (f"; incremental revenue {money(extra, code)}{span}"
                 + ("" if r < uplift.ALPHA else ", not significant"))
    return said + "."


def p_words(p: float) -> str:
    """A p-value as words: "p < 0.001", "p = 0.012"."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def code_of(currency) -> str | None:
    return currency.code if currency is not None else None
