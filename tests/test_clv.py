"""The value models reproduce the published parameters on the CDNOW sample.

The 2,357-customer CDNOW sample ships in the lifetimes 0.11.3 wheel; it is fetched with
``pip download`` into a cache (never committed). Calibration: 1997-01-01..1997-09-30, time
in days, purchases on one day counted once (as the papers and lifetimes do).
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special

from custseg.prep.clv import (
    bgnbd_log_likelihood,
    fit_bgnbd,
    fit_gamma_gamma,
    frequency_value_correlation,
)

CACHE = Path.home() / ".cache" / "custseg" / "lifetimes-0.11.3"
END = pd.Timestamp("1997-09-30")  # the last day of the calibration period


def cdnow_sample() -> pd.DataFrame:
    """customer, date, amount of the CDNOW sample, or a skip naming why it is absent."""
    wheels = list(CACHE.glob("*.whl"))
    if not wheels:
        CACHE.mkdir(parents=True, exist_ok=True)
        run = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                              "lifetimes==0.11.3", "-d", str(CACHE)],
                             capture_output=True, text=True, timeout=300)
        wheels = list(CACHE.glob("*.whl"))
        if run.returncode or not wheels:
            pytest.skip(f"the lifetimes 0.11.3 wheel (CDNOW sample) is not reachable: "
                        f"{run.stderr.strip().splitlines()[-1:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        text = wheel.read("lifetimes/datasets/CDNOW_sample.txt").decode()
    frame = pd.read_csv(io.StringIO(text), sep=r"\s+", header=None,
                        names=["customer", "new_id", "date", "quantity", "amount"],
                        dtype={"customer": str, "date": str})
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


@pytest.fixture(scope="module")
def calibration() -> pd.DataFrame:
    """Per customer: x, t_x, T (days) and m, the mean value of the repeat purchase days."""
    lines = cdnow_sample()
    days = (lines[lines["date"] <= END].groupby(["customer", "date"], as_index=False)
            ["amount"].sum().sort_values(["customer", "date"]))
    first = days.groupby("customer")["date"].transform("min")
    repeat = days[days["date"] > first]
    per = days.groupby("customer").agg(first=("date", "min"), last=("date", "max"),
                                       n=("date", "size"))
    out = pd.DataFrame({"x": per["n"] - 1, "t_x": (per["last"] - per["first"]).dt.days,
                        "T": (END - per["first"]).dt.days})
    out["m"] = repeat.groupby("customer")["amount"].mean().reindex(out.index).fillna(0.0)
    return out


def test_the_sample_is_the_papers(calibration):
    assert len(calibration) == 2357
    assert int((calibration["x"] > 0).sum()) == 946


def test_bgnbd_reproduces_fader_hardie_lee_2005(calibration):
    fit = fit_bgnbd(calibration)
    assert fit.converged
    # the paper's weeks: r 0.243, alpha 4.414 weeks = 30.9 days, a 0.793, b 2.426
    expected = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}
    for name, value in expected.items():
        assert fit.params[name] == pytest.approx(value, rel=0.01), name
    assert fit.customers == 2357


def test_gamma_gamma_reproduces_fader_hardie_2013(calibration):
    fit = fit_gamma_gamma(calibration)
    assert fit.converged and fit.customers == 946
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert fit.params[name] == pytest.approx(value, rel=0.01), name
    assert abs(frequency_value_correlation(calibration)) < 0.3  # the paper's 0.11


def test_the_likelihood_is_a_density_that_sums_to_one():
    """Times the volume of the x - 1 purchase times before t_x (t_x^(x-1) / (x-1)!), the
    BG/NBD likelihood is the joint density of (x, t_x) for a customer observed for T days:
    P(x = 0) plus the integral over t_x for every x >= 1 is 1."""
    params = np.array([0.5, 10.0, 0.8, 2.0])
    T = 30.0
    r, alpha = params[:2]
    none = float(np.exp(bgnbd_log_likelihood(params, np.array([0.0]), np.array([0.0]),
                                             np.array([T])))[0])
    assert none == pytest.approx((alpha / (alpha + T)) ** r)  # the NBD's zero class
    grid = np.linspace(1e-9, T, 20_001)
    total = none
    for x in range(1, 200):
        log_dens = (bgnbd_log_likelihood(params, np.full_like(grid, x), grid,
                                         np.full_like(grid, T))
                    + (x - 1) * np.log(grid) - special.gammaln(x))
        total += float(np.trapezoid(np.exp(log_dens), grid))
    assert total == pytest.approx(1.0, abs=1e-3)
