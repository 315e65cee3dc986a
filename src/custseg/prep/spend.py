"""Spend per purchase where Gamma-Gamma does not fit: a log-normal with empirical-Bayes
shrinkage.

A customer's purchases are worth ``exp(theta + noise)``, ``theta ~ N(mu, tau2)`` across
customers and the noise ``N(0, sigma2)`` within one; the log of his mean over ``n``
purchase days is read as ``theta`` seen with variance ``sigma2 / n``, so one purchase is
shrunk far towards the population and many hardly at all. Unlike Gamma-Gamma it uses the
first purchase too (a one-time buyer gets a value of his own) and needs no finite mean of
an inverse-Gamma. The three parameters are fitted by maximum likelihood of the customers'
log means (their spread falls with ``n``: that separates tau2 from sigma2); the level is
then set so that the customers' predicted values sum to what they spent per purchase.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import optimize

from custseg.core.exceptions import DataError
from custseg.prep.clv import Fit

NAMES = ("mu", "tau2", "sigma2", "level")


def fit_lognormal(n, v) -> Fit:
    """Fit on each customer's purchase days ``n`` and mean value per purchase day ``v``
    (customers without a positive mean are left out)."""
    began = time.perf_counter()
    n, v = np.asarray(n, dtype=float), np.asarray(v, dtype=float)
    keep = (n > 0) & np.isfinite(v) & (v > 0)
    n, y = n[keep], np.log(v[keep])
    if len(y) < 2:
        raise DataError("the log-normal spend model needs two customers with a positive spend")

    # the likelihood by distinct n, from each one's count, sum and sum of squares of y
    ns, group = np.unique(n, return_inverse=True)
    count = np.bincount(group).astype(float)
    s1, s2 = np.bincount(group, weights=y), np.bincount(group, weights=y * y)

    def neg_ll(p: np.ndarray) -> float:
        mu, tau2, sigma2 = p[0], np.exp(p[1]), np.exp(p[2])
        var = tau2 + sigma2 / ns
        squares = s2 - 2 * mu * s1 + count * mu * mu  # sum of (y - mu)^2 per n
        return float(0.5 * (count * np.log(var) + squares / var).sum())

    spread = float(np.var(y)) or 1.0
    result = optimize.minimize(neg_ll, np.array([float(np.mean(y)), np.log(spread / 2),
                                                 np.log(spread / 2)]), method="Nelder-Mead",
                               options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-8})
    mu, tau2, sigma2 = float(result.x[0]), float(np.exp(result.x[1])), float(np.exp(result.x[2]))
    raw = _shrunk(mu, tau2, sigma2, n, y)
    level = float((n * np.exp(y)).sum() / (n * raw).sum())
    return Fit(params={"mu": mu, "tau2": tau2, "sigma2": sigma2, "level": level},
               log_likelihood=float(-result.fun), converged=bool(result.success),
               seconds=round(time.perf_counter() - began, 3), customers=int(keep.sum()))


def _shrunk(mu: float, tau2: float, sigma2: float, n: np.ndarray, y: np.ndarray) -> np.ndarray:
    weight = tau2 / (tau2 + sigma2 / n)
    theta = mu + weight * (y - mu)
    return np.exp(theta + weight * sigma2 / n / 2)


def expected_value(params: dict[str, float], n, v) -> np.ndarray:
    """Each customer's expected value per purchase: his log mean shrunk to the population's
    (the population's value where he has no positive spend)."""
    n, v = np.asarray(n, dtype=float), np.asarray(v, dtype=float)
    mu, tau2, sigma2 = params["mu"], params["tau2"], params["sigma2"]
    positive = (n > 0) & np.isfinite(v) & (v > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(positive, np.log(np.where(positive, v, 1.0)), mu)
        shrunk = _shrunk(mu, tau2, sigma2, np.where(positive, n, 1e-12), y)
    return params["level"] * shrunk
