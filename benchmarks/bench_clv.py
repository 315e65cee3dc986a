"""Benchmark custseg's customer value models (BG/NBD + Gamma-Gamma) against lifetimes and
pymc-marketing.

    python benchmarks/bench_clv.py [--customers 1000000,5000000] [--timeout 300]
        [--repeat 3] [--memory-limit-mb 8192] [--other-python .venv-bench/bin/python]

1. Synthetic customers are drawn from the BG/NBD generative model itself (seed 0): purchase
   rate lambda ~ Gamma(r, alpha) and drop-out probability p ~ Beta(a, b) with the CDNOW
   estimates (r 0.243, alpha 4.414 weeks = 30.90 days, a 0.793, b 2.426); observation
   lengths ``T`` uniform over 365..730 whole days; purchase times Poisson, the customer
   leaving after each repeat purchase with probability p; times floored to whole days as
   an export gives them. Spend per order from Gamma-Gamma (p 6.25, q 3.74, gamma 15.44):
   nu ~ Gamma(q, gamma) per customer, each order ~ Gamma(p, nu); ``m`` is the mean of the
   repeat orders. Cached as ``benchmarks/.cache/clv-<customers>-seed0.npz``.
2. Each contender runs in its own fresh process (imports and data loading excluded from
   the seconds), killed after ``--timeout`` seconds or when its resident memory passes
   ``--memory-limit-mb``; peak memory is the process's high-water mark
   (``getrusage(RUSAGE_SELF).ru_maxrss``):

   * ``custseg``: BG/NBD and Gamma-Gamma fitted, then ``ValueModels.predict``
     (p_alive, expected_orders, expected_order_value, clv, churn_risk), best of
     ``--repeat``.
   * ``lifetimes`` 0.11.3: ``BetaGeoFitter.fit`` + ``GammaGammaFitter.fit`` on the
     per-customer arrays (as its docs use it), then ``conditional_probability_alive``,
     ``conditional_expected_number_of_purchases_up_to_time``,
     ``conditional_expected_average_profit`` and ``customer_lifetime_value`` (12 steps of
     30 days, monthly rate equivalent to the annual one). Once.
   * ``pymc-marketing``: ``BetaGeoModel`` + ``GammaGammaModel`` fitted by MAP, then
     ``expected_probability_alive``, ``expected_purchases``, ``expected_customer_spend``
     and ``expected_customer_lifetime_value``. Once.

   lifetimes and pymc-marketing run under this interpreter where it has them, else under
   ``--other-python`` (``make bench-clv`` builds ``.venv-bench`` from
   ``benchmarks/requirements-clv.txt``); a library neither has is reported "not
   installed".

3. Prints a markdown table (fit, score and total seconds, peak memory, ratio to custseg,
   parameters against custseg's and against the generating ones) and writes it to
   ``benchmarks/results/bench_clv-<customers>.md``. custseg's goal: 5,000,000 customers
   fitted and scored in at most 10 s within 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
DEFAULT_OTHER_PYTHON = HERE.parent / ".venv-bench" / "bin" / "python"

#: The generating parameters (time in days): CDNOW's BG/NBD and Gamma-Gamma estimates.
TRUE_BGNBD = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}
TRUE_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}
HORIZON = 365
DISCOUNT = 0.1
#: custseg's goal at 5,000,000 customers.
GOAL_CUSTOMERS, GOAL_SECONDS, GOAL_MB = 5_000_000, 10.0, 2048


# ----------------------------------------------------------------------------- data
def generate(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` customers drawn from BG/NBD + Gamma-Gamma: x, t_x, T (whole days) and m."""
    rng = np.random.default_rng(seed)
    tb = TRUE_BGNBD
    lam = rng.gamma(tb["r"], 1 / tb["alpha"], n)
    drop = rng.beta(tb["a"], tb["b"], n)
    T = rng.integers(365, 731, n).astype(float)  # whole days since the first purchase
    arrivals = rng.poisson(lam * T)  # repeat purchases in (0, T] had nobody left
    leave_after = rng.geometric(drop)  # leaves right after this repeat purchase
    x = np.minimum(arrivals, leave_after)
    # The x-th of `arrivals` uniform arrival times on (0, T]: T * Beta(x, arrivals - x + 1).
    bought = x > 0
    t_x = np.zeros(n)
    t_x[bought] = T[bought] * rng.beta(x[bought], arrivals[bought] - x[bought] + 1)
    t_x = np.floor(t_x)
    del lam, drop, arrivals, leave_after
    tg = TRUE_GG
    nu = rng.gamma(tg["q"], 1 / tg["gamma"], n)
    m = np.full(n, np.nan)
    # The mean of x orders ~ Gamma(p, nu) is Gamma(p x, x nu).
    m[bought] = rng.gamma(tg["p"] * x[bought], 1 / (x[bought] * nu[bought]))
    return {"x": x.astype(float), "t_x": t_x, "T": T, "m": m}


def dataset(n: int, periods: bool = False) -> tuple[Path, dict[str, Any]]:
    """The cached data of ``n`` customers (generated when missing) and what it holds;
    ``periods``: seen at three dates (:func:`generate_periods`)."""
    path = CACHE / f"clv-{'periods-' if periods else ''}{n}-seed0.npz"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        return path, json.loads(meta_path.read_text())
    print(f"Generating {n:,} customers into {path} ...", flush=True)
    start = time.perf_counter()
    data = generate_periods(n) if periods else generate(n)
    seconds = time.perf_counter() - start
    x, t_x, T = (data[f"{k}_n" if periods else k] for k in ("x", "t_x", "T"))
    key = (x.astype(np.int64) * 1024 + t_x.astype(np.int64)) * 1024 + T.astype(np.int64)
    meta = {"customers": n, "seconds": round(seconds, 2),
            "distinct_rows": int(len(np.unique(key))),
            "repeat_buyers": int((x > 0).sum()), "max_x": int(x.max())}
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + f".tmp-{os.getpid()}.npz")
    np.savez(tmp, **data)
    os.replace(tmp, path)
    meta_path.write_text(json.dumps(meta) + "\n")
    return path, meta


#: The whole selection's holdout (days) and goal at 5,000,000 customers.
HOLDOUT = 120
SELECTION_SECONDS, SELECTION_MB = 60.0, 4096


def generate_periods(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` customers drawn from BG/NBD + Gamma-Gamma as :func:`generate`, seen at three
    dates :data:`HOLDOUT` days apart: at the cut (``_c``), at the split (``_s``) and now
    (``_n``); with each one's purchase days within 30, 90 and HOLDOUT days after the cut
    (``c30``, ...) and after the split (``s30``, ...), and the revenue after each.

    Arrivals are Poisson per period; a customer leaves after his ``L``-th repeat purchase
    (``L`` geometric), so he has ``min(arrivals so far, L)`` by each date; his last
    purchase is the order statistic of the uniform arrivals of its period; the purchases
    within ``w`` days of a period's start are the first of its arrivals, ``Binomial(A,
    w / HOLDOUT)`` of them, capped by those he makes."""
    rng = np.random.default_rng(seed)
    tb, tg, h = TRUE_BGNBD, TRUE_GG, HOLDOUT
    lam = rng.gamma(tb["r"], 1 / tb["alpha"], n)
    leave = rng.geometric(rng.beta(tb["a"], tb["b"], n))
    T_n = rng.integers(365, 731, n).astype(float)
    T_c = T_n - 2 * h
    a1 = rng.poisson(lam * T_c)
    a2, a3 = rng.poisson(lam * h), rng.poisson(lam * h)
    nu = rng.gamma(tg["q"], 1 / tg["gamma"], n)
    out: dict[str, np.ndarray] = {}
    before, t_prev = np.zeros(n, np.int64), np.zeros(n)
    for key, arrivals, T, begin in (("c", a1, T_c, np.zeros(n)), ("s", a2, T_c + h, T_c),
                                    ("n", a3, T_n, T_c + h)):
        x = np.minimum(before + arrivals, leave)
        new = x - before  # repeat purchases made in this period
        length = T - begin
        last, got = t_prev.copy(), new > 0
        last[got] = np.floor(begin[got] + length[got] * rng.beta(
            new[got], arrivals[got] - new[got] + 1))
        m = np.full(n, np.nan)
        m[x > 0] = rng.gamma(tg["p"] * x[x > 0], 1 / (x[x > 0] * nu[x > 0]))
        out.update({f"x_{key}": x.astype(float), f"t_x_{key}": last, f"T_{key}": T,
                    f"m_{key}": m})
        if key != "c":  # labels of the period just made: after the cut or the split
            label = "c" if key == "s" else "s"
            for w in (30, 90):
                early = rng.binomial(arrivals, w / h)
                out[f"{label}{w}"] = np.minimum(early, new).astype(float)
            out[f"{label}{h}"] = new.astype(float)
            # the sum of ``new`` orders, each Gamma(p, nu)
            out[f"{label}_revenue"] = np.where(
                got, rng.gamma(tg["p"] * np.maximum(new, 1), 1 / nu), 0.0)
        before, t_prev = x, last
    return out


def features_of(data: dict[str, np.ndarray], key: str) -> Any:
    """The customer features a run computes, as at one of the three dates."""
    import pandas as pd

    x, t_x, T, m = (data[f"{k}_{key}"] for k in ("x", "t_x", "T", "m"))
    n = x + 1
    first = np.where(x > 0, m, TRUE_GG["p"] * TRUE_GG["gamma"] / TRUE_GG["q"])
    monetary = first + np.nan_to_num(m) * x
    return pd.DataFrame({
        "customer_id": np.arange(len(x)), "recency": T - t_x + 1, "frequency": n,
        "monetary": monetary, "tenure": T + 1, "avg_order_value": monetary / n,
        "mean_days_between_orders": np.where(x > 0, t_x / np.maximum(x, 1), np.nan),
        "purchase_days": n, "repeat_purchase_value": m})


def run_selection(data: dict[str, np.ndarray]) -> dict[str, Any]:
    """The value step of a run: every candidate checked on the holdout (the learned ones
    trained a holdout earlier), the winner refitted on all the data and every customer
    scored (:func:`custseg.jobs.value.predict_value`)."""
    import datetime as dt

    import pandas as pd

    from custseg.core.config import Config
    from custseg.jobs.value import Past, predict_value

    as_of = dt.date(2024, 1, 1)
    split = as_of - dt.timedelta(days=HOLDOUT)
    start = time.perf_counter()
    calibration, now = features_of(data, "s"), features_of(data, "n")
    earlier = features_of(data, "c")
    labels = {key: pd.DataFrame({f"w{w}": data[f"{key}{w}"] for w in (30, 90, HOLDOUT)}
                                | {"revenue": data[f"{key}_revenue"]})
              for key in ("c", "s")}
    past = Past(split=split, days=HOLDOUT, calibration=calibration,
                labels=labels["s"].set_index(calibration["customer_id"]),
                before=(earlier, labels["c"]))
    built = time.perf_counter()
    config = Config(clv={"horizon": HORIZON, "discount_rate": DISCOUNT})
    out, block, _ = predict_value(now, config, past, as_of)
    done = time.perf_counter()
    h = block.holdout
    return {"fit_s": done - built, "score_s": 0.0, "build_s": built - start,
            "chosen": block.purchases.name if block.fitted else f"none: {block.reason}",
            "candidates": {c.name: c.auc for c in h.candidates if c.role == "purchases"},
            "baseline": h.baseline_auc, "predicted": h.predicted_orders,
            "actual": h.actual_orders, "scored": int(out["churn_risk"].notna().sum())}


# ------------------------------------------------------------------------- contenders
def run_custseg(data: dict[str, np.ndarray]) -> dict[str, Any]:
    import pandas as pd

    from custseg.prep.predict import ValueModels, fit_purchases, fit_spend

    inputs = pd.DataFrame(data)
    start = time.perf_counter()
    purchases = fit_purchases("bgnbd", inputs)
    spend = fit_spend("gamma_gamma", inputs)
    models = ValueModels(purchases.params, spend.params, HORIZON, DISCOUNT)
    fitted = time.perf_counter()
    pred = models.predict(inputs)
    done = time.perf_counter()
    return {"fit_s": fitted - start, "score_s": done - fitted,
            "bgnbd": models.purchases, "gg": models.spend,
            "stages_s": {"BG/NBD fit": purchases.seconds,
                         "Gamma-Gamma fit": spend.seconds},
            "means": _means(pred["p_alive"], pred["expected_orders"],
                            pred["expected_order_value"], pred["clv"])}


def run_lifetimes(data: dict[str, np.ndarray]) -> dict[str, Any]:
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    x, t_x, T = (pd.Series(data[k]) for k in ("x", "t_x", "T"))
    m = pd.Series(np.nan_to_num(data["m"]))
    rep = (x > 0).to_numpy()
    start = time.perf_counter()
    bg = BetaGeoFitter().fit(x.to_numpy(), t_x.to_numpy(), T.to_numpy())
    gg = GammaGammaFitter().fit(x[rep].to_numpy(), m[rep].to_numpy())
    fitted = time.perf_counter()
    alive = bg.conditional_probability_alive(x.to_numpy(), t_x.to_numpy(), T.to_numpy())
    orders = bg.conditional_expected_number_of_purchases_up_to_time(
        HORIZON, x.to_numpy(), t_x.to_numpy(), T.to_numpy())
    value = gg.conditional_expected_average_profit(x, m)
    clv = gg.customer_lifetime_value(bg, x, t_x, T, m, time=12,
                                     discount_rate=(1 + DISCOUNT) ** (1 / 12) - 1, freq="D")
    done = time.perf_counter()
    bp, gp = bg.params_, gg.params_
    return {"fit_s": fitted - start, "score_s": done - fitted,
            "bgnbd": {k: float(bp[k]) for k in ("r", "alpha", "a", "b")},
            "gg": {"p": float(gp["p"]), "q": float(gp["q"]), "gamma": float(gp["v"])},
            "means": _means(alive, orders, value, clv)}


def run_pymc(data: dict[str, np.ndarray]) -> dict[str, Any]:
    import warnings

    import pandas as pd
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    warnings.filterwarnings("ignore")
    n = len(data["x"])
    frame = pd.DataFrame({"customer_id": np.arange(n), "frequency": data["x"],
                          "recency": data["t_x"], "T": data["T"],
                          "monetary_value": np.nan_to_num(data["m"])})
    rep = frame[frame["frequency"] > 0]
    start = time.perf_counter()
    bg = BetaGeoModel(data=frame[["customer_id", "frequency", "recency", "T"]])
    _fit_map(bg)
    gg = GammaGammaModel(data=rep[["customer_id", "frequency", "monetary_value"]])
    _fit_map(gg)
    fitted = time.perf_counter()
    alive = bg.expected_probability_alive(data=frame)
    orders = bg.expected_purchases(data=frame, future_t=HORIZON)
    value = gg.expected_customer_spend(data=frame)
    clv = gg.expected_customer_lifetime_value(
        transaction_model=bg, data=frame, future_t=12,
        discount_rate=(1 + DISCOUNT) ** (1 / 12) - 1, time_unit="D")
    done = time.perf_counter()
    return {"fit_s": fitted - start, "score_s": done - fitted,
            "bgnbd": _posterior(bg, ("r", "alpha", "a", "b")),
            "gg": _posterior(gg, ("p", "q", "v"), rename={"v": "gamma"}),
            "means": _means(*(np.asarray(v).reshape(-1) for v in (alive, orders, value, clv)))}


def _fit_map(model: Any) -> None:
    import inspect

    params = inspect.signature(model.fit).parameters
    if "method" in params:
        model.fit(method="map")
    else:
        model.fit(fit_method="map")


def _posterior(model: Any, names: tuple[str, ...], rename: dict[str, str] | None = None
               ) -> dict[str, float]:
    post = model.idata.posterior
    return {(rename or {}).get(k, k): float(post[k].values.reshape(-1)[0]) for k in names}


def _means(alive, orders, value, clv) -> dict[str, float]:
    return {"p_alive": float(np.nanmean(alive)), "expected_orders": float(np.nansum(orders)),
            "expected_order_value": float(np.nanmean(value)), "clv": float(np.nansum(clv))}


CONTENDERS = {"selection": ("custseg, whole selection", run_selection),
              "custseg": ("custseg", run_custseg),
              "lifetimes": ("lifetimes", run_lifetimes),
              "pymc": ("pymc-marketing (MAP)", run_pymc)}


# ---------------------------------------------------------------------- child process
def child(name: str, path: Path) -> None:
    """Run one contender in this process; print its report as one JSON line."""
    with np.load(path) as npz:
        data = {k: npz[k] for k in npz.files}
    if name == "selection":
        import sklearn.ensemble  # noqa: F401

        import custseg.jobs.value  # noqa: F401
    elif name == "custseg":  # import before the clock, as the others' imports are
        import custseg.prep.clv  # noqa: F401
    elif name == "lifetimes":
        import lifetimes  # noqa: F401
    else:
        import pymc_marketing.clv  # noqa: F401
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = CONTENDERS[name][1](data)
    report["version"] = _version(name)
    report["rss_before_mb"] = before
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(report))


def _version(name: str) -> str:
    from importlib.metadata import version

    return version({"pymc": "pymc-marketing", "lifetimes": "Lifetimes",
                    "selection": "custseg"}.get(name, name))


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(name: str, path: Path, python: str, timeout: float, limit_mb: float
            ) -> dict[str, Any]:
    """Run ``child(name, path)`` in a fresh interpreter: its report, or why there is none
    (``{"failed": ...}``)."""
    cmd = [python, str(Path(__file__).resolve()), "--child", name, "--data", str(path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(HERE.parent / "src"), os.environ.get("PYTHONPATH")) if p)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env,
                                start_new_session=True)  # its own group: killed whole
        began, peak, why = time.monotonic(), 0.0, None
        while proc.poll() is None:
            peak = max(peak, _rss_mb(proc.pid))
            if peak > limit_mb:
                why = f"out of memory (over {limit_mb:,.0f} MB)"
            elif time.monotonic() - began > timeout:
                why = f"did not finish in {timeout:.0f} s"
            if why:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return {"failed": why, "peak_rss_mb": peak}
            time.sleep(0.1)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        tail = (stderr.strip().splitlines() or ["?"])[-1]
        sys.stderr.write(f"--- {name} failed (exit code {proc.returncode}):\n"
                         + stderr[-3000:] + "\n")
        if proc.returncode == -signal.SIGKILL or "MemoryError" in stderr:
            return {"failed": "out of memory (killed)", "peak_rss_mb": peak}
        return {"failed": f"failed: {tail[:120]}", "peak_rss_mb": peak}
    return json.loads(stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ main
def _python_with(module: str, other: str | None) -> str | None:
    """This interpreter if it can import ``module``, else ``other`` if that can, or None."""
    for python in (sys.executable, other or str(DEFAULT_OTHER_PYTHON)):
        if Path(python).exists() and subprocess.run(
                [python, "-c", f"import {module}"], capture_output=True,
                check=False).returncode == 0:
            return python
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", default="1000000,5000000",
                        help="comma-separated numbers of customers")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds a contender's process may take")
    parser.add_argument("--memory-limit-mb", type=float, default=8192,
                        help="a contender's process is killed past this resident memory")
    parser.add_argument("--repeat", type=int, default=3,
                        help="custseg runs per size, the fastest reported (others run once)")
    parser.add_argument("--skip", default="", help="comma-separated: lifetimes, pymc")
    parser.add_argument("--other-python", help="interpreter with lifetimes and "
                        "pymc-marketing, for those this one lacks (default "
                        f"{DEFAULT_OTHER_PYTHON.relative_to(HERE.parent)})")
    parser.add_argument("--selection", action="store_true",
                        help="time the whole selection of a run's value step instead (every "
                        "candidate checked on a holdout, the winner refitted and scoring "
                        "every customer); custseg only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, Path(args.data))
        return

    sizes = [int(s) for s in args.customers.split(",") if s.strip()]
    if args.selection:
        selection(sizes, args)
        return
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    pythons = {name: None if name in skip else _python_with(module, args.other_python)
               for name, module in (("lifetimes", "lifetimes"), ("pymc", "pymc_marketing.clv"))}
    sections, notes = [], {}
    for n in sizes:
        path, meta = dataset(n)
        reports: dict[str, dict[str, Any]] = {}
        runs = []
        for i in range(args.repeat):
            print(f"[{n:,}] custseg ({i + 1}/{args.repeat}) ...", flush=True)
            runs.append(measure("custseg", path, sys.executable, args.timeout,
                                args.memory_limit_mb))
        done = [r for r in runs if "failed" not in r]
        if done:
            best = min(done, key=lambda r: r["fit_s"] + r["score_s"])
            best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in done)
            reports["custseg"] = best
        else:
            reports["custseg"] = runs[0]
        for name in ("lifetimes", "pymc"):
            if name in skip:
                reports[name] = {"failed": "skipped (--skip)"}
                continue
            if pythons[name] is None:
                reports[name] = {"failed": "not installed"}
                continue
            print(f"[{n:,}] {name} ...", flush=True)
            reports[name] = measure(name, path, pythons[name], args.timeout,
                                    args.memory_limit_mb)
        sections.append(report_text(n, meta, reports))
        notes[n] = reports
    from _machine import machine_line

    text = "\n".join([
        f"# bench_clv --customers {args.customers}", "",
        machine_line(("custseg", "numpy", "scipy", "pandas")),
        "Synthetic customers drawn from BG/NBD + Gamma-Gamma with the CDNOW parameters "
        f"(BG/NBD {_fmt(TRUE_BGNBD)}, days; Gamma-Gamma {_fmt(TRUE_GG)}), T uniform over "
        "365..730 whole days, times floored to whole days, seed 0. Each contender ran in "
        "a fresh process; seconds exclude imports and loading the data; peak memory is "
        "the process's high-water mark (RSS), data included. custseg: best of "
        f"{args.repeat}; the others once, killed after {args.timeout:.0f} s or "
        f"{args.memory_limit_mb:,.0f} MB. Scores: P(alive), expected orders over "
        f"{HORIZON} days, expected order value, discounted CLV (custseg also churn "
        "risk).", "", *sections])
    print()
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench_clv-{'-'.join(str(n) for n in sizes)}.md"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    print(f"Written to {out.relative_to(HERE.parent)}")


def selection(sizes: list[int], args: argparse.Namespace) -> None:
    """The whole selection per size, once each, and its table."""
    from _machine import machine_line

    rows = ["| customers | data built s | selection s | peak memory MB | chosen | AUC "
            "(holdout) | baseline AUC | predicted vs actual purchases (holdout) |",
            "|---:|---:|---:|---:|---|---:|---:|---:|"]
    goal = ""
    for n in sizes:
        path, _ = dataset(n, periods=True)
        print(f"[{n:,}] selection ...", flush=True)
        r = measure("selection", path, sys.executable, args.timeout, args.memory_limit_mb)
        if "failed" in r:
            rows.append(f"| {n:,} | | {r['failed']} | {r.get('peak_rss_mb', 0):,.0f} | | | | |")
            continue
        chosen = r["candidates"].get(r["chosen"])
        rows.append(f"| {n:,} | {r['build_s']:.1f} | {r['fit_s']:.1f} | "
                    f"{r['peak_rss_mb']:,.0f} | {r['chosen']} | "
                    f"{'' if chosen is None else f'{chosen:.3f}'} | {r['baseline']:.3f} | "
                    f"{r['predicted']:,.0f} vs {r['actual']:,.0f} |")
        if n == GOAL_CUSTOMERS:
            ok = r["fit_s"] <= SELECTION_SECONDS and r["peak_rss_mb"] <= SELECTION_MB
            goal = (f"Goal (5,000,000 customers in <= {SELECTION_SECONDS:.0f} s within "
                    f"{SELECTION_MB:,} MB): " + ("**met**" if ok else "**missed**")
                    + f" ({r['fit_s']:.1f} s, {r['peak_rss_mb']:,.0f} MB).")
    text = "\n".join([
        f"# bench_clv --selection --customers {args.customers}", "",
        machine_line(("custseg", "numpy", "scipy", "pandas", "scikit-learn")),
        "Customers drawn from BG/NBD + Gamma-Gamma (CDNOW parameters) seen at three dates "
        f"{HOLDOUT} days apart; the value step of a run on their features: BG/NBD, "
        "MBG/NBD, Pareto/NBD, boosted trees and a logistic regression checked on the last "
        f"{HOLDOUT} days (the learned ones trained {HOLDOUT} days earlier), both spend "
        "models, the winner refitted on all the data and every customer scored over "
        f"{HORIZON} days. Seconds exclude building the feature tables (a run's SQL "
        "does that); one run in a fresh process.", "", *rows, "", goal])
    print()
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench_clv-selection-{'-'.join(str(n) for n in sizes)}.md"
    out.write_text(text + "\n", encoding="utf-8")
    print(f"Written to {out.relative_to(HERE.parent)}")


def _fmt(params: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in params.items())


def _max_rel(got: dict[str, float], want: dict[str, float]) -> float:
    return max(abs(got[k] - v) / abs(v) for k, v in want.items())


def report_text(n: int, meta: dict[str, Any], reports: dict[str, dict[str, Any]]) -> str:
    base = reports.get("custseg", {})
    base_total = base["fit_s"] + base["score_s"] if "fit_s" in base else None
    rows = ["| library | customers | fit s | score s | total s | peak memory MB "
            "| ratio vs custseg | BG/NBD params vs custseg (max rel. diff) "
            "| BG/NBD vs truth | Gamma-Gamma vs truth |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, rep in reports.items():
        label = CONTENDERS[name][0] + (f" {rep['version']}" if "version" in rep else "")
        if "failed" in rep:
            peak = f"{rep['peak_rss_mb']:,.0f}" if rep.get("peak_rss_mb") else ""
            rows.append(f"| {label} | {n:,} | {rep['failed']} | | | {peak} | | | | |")
            continue
        total = rep["fit_s"] + rep["score_s"]
        ratio = f"{total / base_total:.1f}x" if base_total else ""
        vs = (f"{_max_rel(rep['bgnbd'], base['bgnbd']):.2%}"
              if "bgnbd" in base and name != "custseg" else "")
        rows.append(f"| {label} | {n:,} | {rep['fit_s']:.2f} | {rep['score_s']:.2f} | "
                    f"{total:.2f} | {rep['peak_rss_mb']:,.0f} | {ratio} | {vs} | "
                    f"{_max_rel(rep['bgnbd'], TRUE_BGNBD):.2%} | "
                    f"{_max_rel(rep['gg'], TRUE_GG):.2%} |")
    out = [f"## {n:,} customers", "",
           f"{meta['repeat_buyers']:,} repeat buyers (up to {meta['max_x']} repeat orders); "
           f"**{meta['distinct_rows']:,} distinct (x, t_x, T) rows** (what custseg's "
           "BG/NBD fits on and scores).", "", *rows, ""]
    fitted = {k: r for k, r in reports.items() if "bgnbd" in r}
    if fitted:
        out += ["| library | r | alpha (days) | a | b | p | q | gamma | mean P(alive) "
                "| sum expected orders | mean expected order value | sum CLV |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                f"| generating | {' | '.join(f'{v:.4f}' for v in TRUE_BGNBD.values())} | "
                f"{' | '.join(f'{v:.4f}' for v in TRUE_GG.values())} | | | | |"]
        for name, r in fitted.items():
            mm = r["means"]
            bg = " | ".join(f"{r['bgnbd'][k]:.4f}" for k in TRUE_BGNBD)
            gg = " | ".join(f"{r['gg'][k]:.4f}" for k in TRUE_GG)
            out.append(f"| {CONTENDERS[name][0]} | {bg} | {gg} | "
                       f"{mm['p_alive']:.4f} | {mm['expected_orders']:,.0f} | "
                       f"{mm['expected_order_value']:.2f} | {mm['clv']:,.0f} |")
        out.append("")
    if "stages_s" in base:
        out.append("custseg fits (s): " + ", ".join(
            f"{k} {v:.2f}" for k, v in base["stages_s"].items()) + ".")
    if n == GOAL_CUSTOMERS and base_total is not None:
        ok = base_total <= GOAL_SECONDS and base["peak_rss_mb"] <= GOAL_MB
        out.append(f"Goal (5,000,000 customers in <= {GOAL_SECONDS:.0f} s within "
                   f"{GOAL_MB:,} MB): " + ("**met**" if ok else "**missed**")
                   + f" ({base_total:.2f} s, {base['peak_rss_mb']:,.0f} MB).")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    main()
