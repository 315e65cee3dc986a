"""The Pareto/NBD purchase model (Schmittlein, Morrison and Colombo 1987), fitted by
maximum likelihood as in Fader, Hardie and Lee (2005, "A note on implementing the
Pareto/NBD model in MATLAB").

A customer buys at rate ``lambda ~ Gamma(r, alpha)`` while alive and leaves after an
exponential lifetime of rate ``mu ~ Gamma(s, beta)``: unlike BG/NBD, he can leave at any
time, not only right after a purchase, so a long silence says he has likely gone whatever
his history. Inputs as BG/NBD's: ``x`` repeat purchases, ``t_x`` and ``T`` (days).

Written here for the reasons :mod:`custseg.prep.clv` gives; the fit reproduces the
note's CDNOW parameters (tests/test_pnbd.py) and the predictions agree with lifetimes'.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import special

from custseg.core.exceptions import DataError
from custseg.prep.clv import Fit, _counted, _distinct, _fit

NAMES = ("r", "alpha", "s", "beta")
#: The step of the likelihood's numerical gradient, on the log scale of the parameters.
STEP = 1e-7


#: Gauss-Legendre nodes on [0, 1] of the integrals over the time of leaving.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(32)
_NODES, _WEIGHTS = (_NODES + 1) / 2, _WEIGHTS / 2


def _log_left(r, alpha, s, beta, x, t_x, T) -> np.ndarray:
    """log of ``s * integral from t_x to T of (alpha+u)^-(r+x) (beta+u)^-(s+1) du``: the
    likelihood of having left at some ``u`` after the last purchase (the note's
    ``s/(r+s+x) A0``, here by quadrature rather than its hypergeometric form, which SciPy
    evaluates slowly near ``z = 1`` for a large beta).

    On ``v = log(c + u)`` (``c`` the lesser of alpha and beta) the integrand falls about as
    ``exp(-k v)``, ``k = r + x + s``; the substitution ``w ~ 1 - exp(-k (v - v0))`` takes
    that fall out, so a few Gauss-Legendre nodes integrate what is left (smooth) even for
    customers with hundreds of purchases.
    """
    c = min(alpha, beta)
    x, t_x, T = (np.asarray(v, dtype=float)[..., None] for v in (x, t_x, T))
    k = r + x + s
    v0, v1 = np.log(c + t_x), np.log(c + T)
    span = v1 - v0
    width = -np.expm1(-k * span)  # the substituted range, 1 - exp(-k span)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = v0 - np.log1p(-_NODES * width) / k
        u = np.exp(v) - c
        log_f = (-(r + x) * np.log(alpha + u) - (s + 1) * np.log(beta + u) + v
                 + k * (v - v0))
        # log sum w exp(log_f), by hand: scipy's logsumexp spends more on its checks
        top = np.max(log_f, axis=-1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        log_sum = np.log(np.exp(log_f - top) @ _WEIGHTS) + top[..., 0]
        out = np.log(s) + np.log(width[..., 0] / k[..., 0]) + log_sum
    return np.where(span[..., 0] > 0, out, -np.inf)


def log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Each customer's Pareto/NBD log-likelihood (the note's eq. 1-3)."""
    r, alpha, s, beta = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    base = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    return base + np.logaddexp(alive, _log_left(r, alpha, s, beta, x, t_x, T))


#: Customers Pareto/NBD is fitted on at most: past that, a seeded random sample of them
#: (four parameters are pinned down long before; each likelihood costs a quadrature per
#: distinct customer).
MAX_CUSTOMERS = 30_000


def fit_pnbd(frame, max_customers: int = MAX_CUSTOMERS, seed: int = 0) -> Fit:
    """Fit Pareto/NBD on columns ``x``, ``t_x`` and ``T`` (one row per customer), on the
    distinct rows weighted by their counts (of a seeded sample of ``max_customers``
    customers where there are more)."""
    if len(frame) < 2 or not (frame["x"] > 0).any():
        raise DataError("Pareto/NBD needs customers with repeat purchases; none bought twice.")
    whole, customers = frame, len(frame)
    if customers > max_customers:
        pick = np.random.default_rng(seed).choice(customers, max_customers, replace=False)
        frame = frame.iloc[np.sort(pick)]
    rows, weight = _counted(frame, ["x", "t_x", "T"])
    weight = weight * customers / len(frame)  # on the scale of all the customers'
    x, t_x, T = rows.T

    def total(params: np.ndarray) -> float:
        return -float((weight * log_likelihood(params, x, t_x, T)).sum())

    def neg_ll(params: np.ndarray) -> tuple[float, np.ndarray]:
        value = total(params)
        if not np.isfinite(value):
            return 1e300, np.zeros(4)
        # forward differences on the log scale: the integral has no cheap analytic
        # derivative in the parameters
        grad = np.empty(4)
        for i in range(4):
            step = np.ones(4)
            step[i] = np.exp(STEP)
            grad[i] = (total(params * step) - value) / STEP / params[i]
        return value, grad

    scale = float(np.mean(T)) or 1.0
    # a flat edge (no dropout: s -> 0, beta -> inf) is found by L-BFGS-B; a long polish there
    # would only walk along it
    fit = _fit(neg_ll, np.array([1.0, scale, 1.0, scale]), NAMES, customers, polish=500)
    if frame is not whole:  # the log-likelihood of every customer, as the other models give
        rows, weight = _counted(whole, ["x", "t_x", "T"])
        value = (weight * log_likelihood([fit.params[k] for k in NAMES], *rows.T)).sum()
        fit = dataclasses.replace(fit, log_likelihood=float(value))
    return fit


# ---------------------------------------------------------------- per-customer predictions
def p_alive(params: dict[str, float], x, t_x, T) -> np.ndarray:
    """P(the customer is still alive at ``T``) (the note's eq. 11)."""
    r, alpha, s, beta = (params[k] for k in NAMES)
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    return special.expit(alive - _log_left(r, alpha, s, beta, x, t_x, T))


def expected_orders(params: dict[str, float], t, x, t_x, T, alive=None) -> np.ndarray:
    """Expected purchases in the ``t`` days after ``T`` (the note's eq. 12)."""
    alive = p_alive(params, x, t_x, T) if alive is None else alive
    return alive * orders_if_alive(params, t, x, T)


def orders_if_alive(params: dict[str, float], t, x, T) -> np.ndarray:
    """Expected purchases in the ``t`` days after ``T`` of a customer still alive: his
    posterior rate times his expected days alive within ``t``."""
    r, alpha, s, beta = (params[k] for k in NAMES)
    x, T = (np.asarray(v, dtype=float) for v in (x, T))
    rate = (r + x) / (alpha + T)
    if abs(s - 1) < 1e-9:  # the limit of the closed form at s = 1
        lifetime = (beta + T) * np.log1p(t / (beta + T))
    else:
        lifetime = (beta + T) / (s - 1) * (1 - ((beta + T) / (beta + T + t)) ** (s - 1))
    return rate * lifetime


#: Gauss-Legendre nodes of the integral over the time of leaving in :func:`p_no_purchase`.
_QUIET_NODES, _QUIET_WEIGHTS = np.polynomial.legendre.leggauss(48)


def p_no_purchase(params: dict[str, float], t, x, t_x, T, alive=None) -> np.ndarray:
    """P(no purchase in the ``t`` days after ``T``).

    Alive at ``T``, the customer's rates have posteriors Gamma(r+x, alpha+T) and
    Gamma(s, beta+T); he makes no purchase if he neither buys nor leaves in ``t`` days, or
    leaves at some ``u < t`` before buying: ``E[e^-(lambda+mu)t] + integral_0^t
    E[mu e^-mu u] E[e^-lambda u] du``, the integral by Gauss-Legendre quadrature on the
    log of ``1 + u / (beta + T)`` (smooth there), once per distinct (x, T).
    """
    r, alpha, s, beta = (params[k] for k in NAMES)
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    x, t_x, T = np.broadcast_arrays(x, t_x, T)
    rows, inverse, _ = _distinct(np.column_stack([x.ravel(), T.ravel()]))
    xs, Ts = rows[:, 0:1], rows[:, 1:2]
    a, b = alpha + Ts, beta + Ts
    top = np.log1p(t / b)  # v = log(1 + u / b), from 0 to top
    v = (top / 2) * (_QUIET_NODES + 1)
    u = b * np.expm1(v)
    # E[mu e^-mu u] du = s / (b + u) (b / (b + u))^s du, and du = (b + u) dv
    inner = s * np.exp(-s * v) * (a / (a + u)) ** (r + xs)
    leave_first = (inner * _QUIET_WEIGHTS).sum(axis=1, keepdims=True) * top / 2
    neither = (a / (a + t)) ** (r + xs) * (b / (b + t)) ** s
    quiet = (neither + leave_first)[:, 0][inverse].reshape(x.shape)
    alive = p_alive(params, x, t_x, T) if alive is None else alive
    return 1.0 - alive * (1.0 - np.clip(quiet, 0.0, 1.0))
