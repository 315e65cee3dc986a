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


#: Gauss-Legendre nodes on [0, 1] of each of the four pieces of the integral over the time
#: of leaving (:func:`_left`).
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(12)
_NODES, _WEIGHTS = (_NODES + 1) / 2, _WEIGHTS / 2
_ALL_WEIGHTS = np.tile(_WEIGHTS, 4)
#: Customers whose quadratures are taken at a time: their arrays of nodes stay in the
#: processor's cache (138,000 customers at once: 2.0 s; in pieces of this size: 0.3 s).
ROWS = 4096


def _log_left(r, alpha, s, beta, x, t_x, T) -> np.ndarray:
    """log of ``s * integral from t_x to T of (alpha+u)^-(r+x) (beta+u)^-(s+1) du``: the
    likelihood of having left at some ``u`` after the last purchase (the note's
    ``s/(r+s+x) A0``, here by quadrature rather than its hypergeometric form, which SciPy
    evaluates slowly near ``z = 1`` for a large beta)."""
    x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, t_x, T)))
    if x.ndim != 1 or len(x) <= ROWS:
        return _left(r, alpha, s, beta, x, t_x, T)[0]
    return np.concatenate([_left(r, alpha, s, beta, x[i:i + ROWS], t_x[i:i + ROWS],
                                 T[i:i + ROWS])[0] for i in range(0, len(x), ROWS)])


def _left(r, alpha, s, beta, x, t_x, T):
    """:func:`_log_left`, the nodes ``u`` of its quadrature, each node's share of the
    integral (unnormalised: ``terms * _ALL_WEIGHTS``) and ``log(alpha + u)``,
    ``log(beta + u)``.

    On ``v = log(c + u)`` (``c`` the lesser of alpha and beta) the log of the integrand is
    concave: its slope falls from about ``1 - (r + x)`` (or ``-s``) while ``u`` is below
    the greater of alpha and beta to ``-(r + x + s)`` above it. Each half of the range on
    either side of ``v = log(max(alpha, beta))`` (or of the integrand's peak, where it rises
    first) is a piece; on each, the exponential trend
    of its higher end (the slope there) is taken out by a substitution, so a few
    Gauss-Legendre nodes integrate what is left (smooth), even for customers with hundreds
    of purchases. Over random parameters the log-likelihood is within 5e-4 of SciPy's
    adaptive quadrature (tests/test_pnbd.py); a single piece with the slope of all the
    data's ``k = r + x + s`` was off by up to 2.7 where alpha is much below beta.
    """
    c = min(alpha, beta)
    x, t_x, T = (np.asarray(v, dtype=float)[..., None] for v in (x, t_x, T))

    def log_g(v):  # the integrand on v, with du = e^v dv
        u = np.exp(v) - c
        return -(r + x) * np.log(alpha + u) - (s + 1) * np.log(beta + u) + v

    v0, v1 = np.log(c + t_x), np.log(c + T)  # (n, 1)
    middle = np.log(max(alpha, beta))
    if alpha < beta:  # a customer with r + x < 1: the integrand peaks where its slope is 0
        with np.errstate(divide="ignore", invalid="ignore"):
            peak = np.log((1 - r - x) * (beta - alpha) / (s + r + x))
        middle = np.where(r + x < 1, peak, middle)
    middle = np.clip(middle, v0, v1)
    bounds = np.concatenate([v0, (v0 + middle) / 2, middle, (middle + v1) / 2, v1], axis=-1)
    lo, hi = bounds[..., :-1], bounds[..., 1:]  # (n, 4): the pieces
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        at = log_g(bounds)
        falls = (at[..., :-1] > at[..., 1:]) | (hi <= lo)
        start = np.where(falls, lo, hi)  # each piece's higher end
        e = np.exp(start)
        rate = np.abs(1 - (r + x) * e / (alpha - c + e) - (s + 1) * e / (beta - c + e))
        rate = np.maximum(rate, 1e-9)  # the slope of the log of the integrand there
        width = -np.expm1(-rate * (hi - lo))  # the substituted range, 1 - exp(-rate span)
        step = -np.log1p(-_NODES * width[..., None]) / rate[..., None]  # (n, 4, nodes)
        v = start[..., None] + np.where(falls[..., None], step, -step)
        shape = v.shape[:-2] + (-1,)
        u = (np.exp(v) - c).reshape(shape)
        log_a, log_b = np.log(alpha + u), np.log(beta + u)
        terms = (-(r + x) * log_a - (s + 1) * log_b + v.reshape(shape)
                 + (rate[..., None] * step + np.log(width / rate)[..., None]).reshape(shape))
        top = np.max(terms, axis=-1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        terms = np.exp(terms - top)
        # log sum w exp(terms), by hand: scipy's logsumexp spends more on its checks
        out = np.log(s) + np.log(terms @ _ALL_WEIGHTS) + top[..., 0]
    return (np.where(v1[..., 0] > v0[..., 0], out, -np.inf), u, terms, log_a, log_b)


def log_likelihood(params, x, t_x, T, left: np.ndarray | None = None) -> np.ndarray:
    """Each customer's Pareto/NBD log-likelihood (the note's eq. 1-3); ``left``, the
    customers' :func:`_log_left`, when it is computed already."""
    r, alpha, s, beta = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    base, alive = _terms(r, alpha, s, beta, x, T)
    if left is None:
        left = _log_left(r, alpha, s, beta, x, t_x, T)
    return base + np.logaddexp(alive, left)


def _terms(r, alpha, s, beta, x, T) -> tuple[np.ndarray, np.ndarray]:
    """The likelihood's terms besides the integral: the Gamma normalisers, and
    :func:`_stay`."""
    base = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return base, _stay(r, alpha, s, beta, x, T)


def _stay(r, alpha, s, beta, x, T) -> np.ndarray:
    """The log of the likelihood of having stayed alive through ``T`` with ``x`` repeat
    purchases (less the Gamma normalisers)."""
    return -(r + x) * np.log(alpha + T) - s * np.log(beta + T)


def _value_and_gradient(params, weight, x, t_x, T) -> tuple[float, np.ndarray]:
    """``-sum(weight * log_likelihood)`` and its gradient in ``(r, alpha, s, beta)``
    (:func:`_piece_value_and_gradient`), :data:`ROWS` customers at a time."""
    value, grad = 0.0, np.zeros(4)
    for i in range(0, len(x), ROWS):
        part = slice(i, i + ROWS)
        v, g = _piece_value_and_gradient(params, weight[part], x[part], t_x[part], T[part])
        value, grad = value + v, grad + g
    return value, grad


def _piece_value_and_gradient(params, weight, x, t_x, T) -> tuple[float, np.ndarray]:
    """``-sum(weight * log_likelihood)`` and its gradient in ``(r, alpha, s, beta)``.

    The parameters enter the integral of :func:`_log_left` only through its integrand, so
    its derivatives are integrals of the integrand times ``-log(alpha + u)``,
    ``-(r + x) / (alpha + u)``, ``-log(beta + u)`` and ``-(s + 1) / (beta + u)``, taken on
    the same nodes: one pass instead of the five of forward differences."""
    r, alpha, s, beta = params
    left, u, terms, log_a, log_b = _left(r, alpha, s, beta, x, t_x, T)
    base, alive = _terms(r, alpha, s, beta, x, T)
    both = np.logaddexp(alive, left)
    value = -float((weight * (base + both)).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.exp(left - both)  # of having left, given the data
        q = terms * _ALL_WEIGHTS
        q /= q.sum(axis=-1, keepdims=True)
        mean = [np.where(left > -np.inf, (q * g).sum(axis=-1), 0.0)  # none where t_x = T
                for g in (log_a, 1 / (alpha + u), log_b, 1 / (beta + u))]
    stay = 1 - share
    by = np.stack([
        special.digamma(r + x) - special.digamma(r) + np.log(alpha)
        - stay * np.log(alpha + T) - share * mean[0],
        r / alpha - (r + x) * (stay / (alpha + T) + share * mean[1]),
        np.log(beta) - stay * np.log(beta + T) + share * (1 / s - mean[2]),
        s / beta - stay * s / (beta + T) - share * (s + 1) * mean[3]])
    return value, -(by * weight).sum(axis=-1)


#: Customers Pareto/NBD is fitted on at most: past that, a seeded random sample of them
#: (four parameters are pinned down long before; each likelihood costs a quadrature per
#: distinct customer).
MAX_CUSTOMERS = 30_000


def fit_pnbd(frame, max_customers: int = MAX_CUSTOMERS, seed: int = 0) -> Fit:
    """Fit Pareto/NBD on columns ``x``, ``t_x`` and ``T`` (one row per customer), on the
    distinct rows weighted by their counts (of a seeded sample of ``max_customers``
    customers where there are more)."""
    global _kept
    if len(frame) < 2 or not (frame["x"] > 0).any():
        raise DataError("Pareto/NBD needs customers with repeat purchases; none bought twice.")
    whole, customers = frame, len(frame)
    if customers > max_customers:
        pick = np.random.default_rng(seed).choice(customers, max_customers, replace=False)
        frame = frame.iloc[np.sort(pick)]
    rows, weight = _counted(frame, ["x", "t_x", "T"])
    weight = weight * customers / len(frame)  # on the scale of all the customers'
    x, t_x, T = rows.T

    def neg_ll(params: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = _value_and_gradient(params, weight, x, t_x, T)
        if not np.isfinite(value):
            return 1e300, np.zeros(4)
        return value, grad

    scale = float(np.mean(T)) or 1.0
    # a flat edge (no dropout: s -> 0, beta -> inf) is found by L-BFGS-B; a long polish there
    # would only walk along it
    fit = _fit(neg_ll, np.array([1.0, scale, 1.0, scale]), NAMES, customers, polish=500)
    if frame is not whole:  # the log-likelihood of every customer, as the other models give
        rows, weight = _counted(whole, ["x", "t_x", "T"])
        params = tuple(fit.params[k] for k in NAMES)
        x, t_x, T = rows.T
        left = _log_left(*params, x, t_x, T)
        _kept = (params, rows, left)  # for the predictions of these customers that follow
        value = (weight * log_likelihood(params, x, t_x, T, left)).sum()
        fit = dataclasses.replace(fit, log_likelihood=float(value))
    return fit


#: The quadrature of the last sampled fit's log-likelihood of every customer: its
#: parameters, the distinct ``(x, t_x, T)`` rows and :func:`_log_left` of each. The
#: predictions for the same customers, which follow the fit, take it rather than compute
#: it again (5M customers: 1.1M distinct rows, about 6 s); it is used once.
_kept: tuple[tuple[float, ...], np.ndarray, np.ndarray] | None = None


def _log_left_of(params: tuple[float, ...], x, t_x, T) -> np.ndarray:
    """:func:`_log_left` of each customer, computed once per distinct ``(x, t_x, T)``
    (or taken from :data:`_kept` when it holds these customers' rows and parameters)."""
    global _kept
    if x.ndim != 1 or len(x) <= ROWS:
        return _log_left(*params, x, t_x, T)
    values = np.column_stack([x, t_x, T])
    if not np.isfinite(values).all():
        return _log_left(*params, x, t_x, T)
    rows, inverse, _ = _distinct(values)
    kept = _kept
    if (kept is not None and kept[0] == params and kept[1].shape == rows.shape
            and np.array_equal(kept[1], rows)):
        _kept = None
        return kept[2][inverse]
    return _log_left(*params, *rows.T)[inverse]


# ---------------------------------------------------------------- per-customer predictions
def p_alive(params: dict[str, float], x, t_x, T) -> np.ndarray:
    """P(the customer is still alive at ``T``) (the note's eq. 11)."""
    r, alpha, s, beta = (params[k] for k in NAMES)
    x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, t_x, T)))
    alive = _stay(r, alpha, s, beta, x, T)
    return special.expit(alive - _log_left_of((r, alpha, s, beta), x, t_x, T))


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
    """P(no purchase in the ``t`` days after ``T``); ``t`` an array of days: a column each
    (the distinct customers found once).

    Alive at ``T``, the customer's rates have posteriors Gamma(r+x, alpha+T) and
    Gamma(s, beta+T); he makes no purchase if he neither buys nor leaves in ``t`` days, or
    leaves at some ``u < t`` before buying: ``E[e^-(lambda+mu)t] + integral_0^t
    E[mu e^-mu u] E[e^-lambda u] du``, the integral by Gauss-Legendre quadrature on the
    log of ``1 + u / (beta + T)`` (smooth there), once per distinct (x, T), :data:`ROWS`
    of them at a time.
    """
    r, alpha, s, beta = (params[k] for k in NAMES)
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    x, t_x, T = np.broadcast_arrays(x, t_x, T)
    rows, inverse, _ = _distinct(np.column_stack([x.ravel(), T.ravel()]))
    alive = p_alive(params, x, t_x, T) if alive is None else alive

    def quiet_of(t: float, xs: np.ndarray, Ts: np.ndarray) -> np.ndarray:
        a, b = alpha + Ts, beta + Ts
        top = np.log1p(t / b)  # v = log(1 + u / b), from 0 to top
        v = (top / 2) * (_QUIET_NODES + 1)
        u = b * np.expm1(v)
        # E[mu e^-mu u] du = s / (b + u) (b / (b + u))^s du, and du = (b + u) dv
        inner = s * np.exp(-s * v) * (a / (a + u)) ** (r + xs)
        leave_first = (inner * _QUIET_WEIGHTS).sum(axis=1, keepdims=True) * top / 2
        neither = (a / (a + t)) ** (r + xs) * (b / (b + t)) ** s
        return (neither + leave_first)[:, 0]

    days = [float(t)] if np.ndim(t) == 0 else [float(v) for v in t]
    quiet = np.empty((len(rows), len(days)))  # each distinct (x, T)'s, a column a day
    for j, day in enumerate(days):
        quiet[:, j] = np.concatenate([quiet_of(day, rows[i:i + ROWS, 0:1],
                                               rows[i:i + ROWS, 1:2])
                                      for i in range(0, len(rows), ROWS)])
    np.clip(quiet, 0.0, 1.0, out=quiet)
    out = quiet[inverse].reshape(x.shape + (len(days),))  # every customer's, in one array
    np.subtract(1.0, out, out=out)  # 1 - alive (1 - quiet), as the single day's
    out *= np.asarray(alive)[..., None]
    np.subtract(1.0, out, out=out)
    return out[..., 0] if np.ndim(t) == 0 else out
