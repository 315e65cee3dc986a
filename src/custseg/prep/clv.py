"""Customer value models: BG/NBD for purchases, Gamma-Gamma for spend per order.

BG/NBD (Fader, Hardie and Lee, 2005, "Counting your customers the easy way") takes, per
customer, ``x`` repeat purchases, ``t_x`` the time from the first to the last purchase and
``T`` the time from the first purchase to the end of the observation. Gamma-Gamma (Fader
and Hardie, 2013, "The Gamma-Gamma model of monetary value") takes the repeat buyers' ``x``
and mean order value. Both are fitted by maximum likelihood (the papers' method) with
SciPy, on the distinct (x, t_x, T) or (x, m) rows weighted by their counts.

Written here rather than taken from lifetimes (unmaintained since 2020, pinned to old
NumPy/pandas) or pymc-marketing (a PyMC stack of several hundred MB for a point estimate);
the fits reproduce the papers' published parameters on CDNOW (tests/test_clv.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special

from custseg.core.exceptions import DataError


@dataclass(frozen=True)
class Fit:
    """Fitted parameters and how the fit went."""

    params: dict[str, float]
    log_likelihood: float
    converged: bool
    seconds: float
    customers: int
    notes: list[str] = field(default_factory=list)


def _counted(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``columns`` and how many customers each stands for."""
    grouped = frame.groupby(columns, sort=True).size()
    rows = np.array(grouped.index.tolist(), dtype=float).reshape(len(grouped), len(columns))
    return rows, grouped.to_numpy(dtype=float)


def bgnbd_log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray,
                         T: np.ndarray) -> np.ndarray:
    """Each customer's BG/NBD log-likelihood (Fader, Hardie and Lee 2005, eq. 6)."""
    r, alpha, a, b = params
    base = (special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
            + special.betaln(a, b + x) - special.betaln(a, b))
    stay = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore"):
        leave = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                         - (r + x) * np.log(alpha + t_x), -np.inf)
    return base + np.logaddexp(stay, leave)


def _fit(neg_ll, start: np.ndarray, names: tuple[str, ...], customers: int) -> Fit:
    began = time.perf_counter()
    result = optimize.minimize(lambda p: neg_ll(np.exp(p)), np.log(start), method="L-BFGS-B")
    if not result.success:  # polish from where it stopped
        result = optimize.minimize(lambda p: neg_ll(np.exp(p)), result.x, method="Nelder-Mead",
                                   options={"maxiter": 20_000, "xatol": 1e-10, "fatol": 1e-10})
    values = np.exp(result.x)
    return Fit(params={n: float(v) for n, v in zip(names, values, strict=True)},
               log_likelihood=float(-result.fun), converged=bool(result.success),
               seconds=round(time.perf_counter() - began, 3), customers=customers)


def fit_bgnbd(frame: pd.DataFrame) -> Fit:
    """Fit BG/NBD on columns ``x``, ``t_x`` and ``T`` (one row per customer)."""
    if len(frame) < 2 or not (frame["x"] > 0).any():
        raise DataError("BG/NBD needs customers with repeat purchases; none bought twice.")
    rows, weight = _counted(frame, ["x", "t_x", "T"])
    x, t_x, T = rows.T

    def neg_ll(p: np.ndarray) -> float:
        return float(-(weight * bgnbd_log_likelihood(p, x, t_x, T)).sum())

    scale = float(np.mean(T)) or 1.0
    return _fit(neg_ll, np.array([1.0, scale, 1.0, 1.0]), ("r", "alpha", "a", "b"), len(frame))


def gamma_gamma_log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray
                               ) -> np.ndarray:
    """Each repeat buyer's Gamma-Gamma log-likelihood of mean order value ``m`` over ``x``
    orders (Fader and Hardie 2013, eq. 3)."""
    p, q, gamma = params
    return (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q)
            + q * np.log(gamma) + (p * x - 1) * np.log(m) + p * x * np.log(x)
            - (p * x + q) * np.log(gamma + x * m))


def fit_gamma_gamma(frame: pd.DataFrame) -> Fit:
    """Fit Gamma-Gamma on repeat buyers' ``x`` (orders) and ``m`` (mean order value)."""
    frame = frame[(frame["x"] > 0) & (frame["m"] > 0)]
    if len(frame) < 2:
        raise DataError("Gamma-Gamma needs at least two repeat buyers with a positive spend.")
    rows, weight = _counted(frame, ["x", "m"])
    x, m = rows.T

    def neg_ll(p: np.ndarray) -> float:
        return float(-(weight * gamma_gamma_log_likelihood(p, x, m)).sum())

    return _fit(neg_ll, np.array([1.0, 1.0, float(np.mean(m))]), ("p", "q", "gamma"),
                len(frame))


def frequency_value_correlation(frame: pd.DataFrame) -> float:
    """Pearson correlation of repeat buyers' ``x`` and ``m``: Gamma-Gamma assumes none."""
    buyers = frame[frame["x"] > 0]
    return float(np.corrcoef(buyers["x"], buyers["m"])[0, 1]) if len(buyers) > 2 else 0.0
