"""Customer value models: BG/NBD for purchases, Gamma-Gamma for spend per order.

BG/NBD (Fader, Hardie and Lee, 2005, "Counting your customers the easy way") takes, per
customer, ``x`` repeat purchases, ``t_x`` the time from the first to the last purchase and
``T`` the time from the first purchase to the end of the observation. Gamma-Gamma (Fader
and Hardie, 2013, "The Gamma-Gamma model of monetary value") takes the repeat buyers' ``x``
and mean order value. Both are fitted by maximum likelihood (the papers' method) with
SciPy with analytic gradients, BG/NBD on the distinct (x, t_x, T) rows weighted by their
counts.

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
    """Distinct rows of ``columns`` (sorted, as ``groupby(sort=True)`` gives them) and how
    many customers each stands for."""
    values = frame[columns].to_numpy(dtype=float)
    if not np.isfinite(values).all():  # groupby's handling of missing keys, as before
        grouped = frame.groupby(columns, sort=True).size()
        rows = np.array(grouped.index.tolist(), dtype=float).reshape(len(grouped),
                                                                     len(columns))
        return rows, grouped.to_numpy(dtype=float)
    rows, _, counts = _distinct(values, inverse=False)
    return rows, counts.astype(float)


def _distinct(values: np.ndarray, inverse: bool = True
              ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The distinct rows of a finite 2-D float array in lexicographic order, each row's
    index among them and their counts: what ``np.unique(values, axis=0,
    return_inverse=True, return_counts=True)`` gives, much faster. Whole non-negative
    numbers (days, order counts) are packed into one integer key; others are lexsorted."""
    n, k = values.shape
    if n == 0:
        return values.copy(), np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    top = values.max(axis=0)
    whole = bool((values.min(axis=0) >= 0).all() and (top < 2 ** 31).all()
                 and (values == np.floor(values)).all())
    sizes = top.astype(np.int64) + 1 if whole else None
    if whole and float(np.prod(sizes.astype(float))) < 2.0 ** 62:
        key = np.zeros(n, dtype=np.int64)
        for j in range(k):  # the first column most significant
            key = key * sizes[j] + values[:, j].astype(np.int64)
        if inverse:
            keys, index, counts = np.unique(key, return_inverse=True, return_counts=True)
            index = index.reshape(-1)
        else:  # a sort instead of an argsort
            (keys, counts), index = np.unique(key, return_counts=True), None
        rows = np.empty((len(keys), k))
        for j in range(k - 1, -1, -1):
            keys, rows[:, j] = np.divmod(keys, sizes[j])
        return rows, index, counts
    order = np.lexsort(values.T[::-1])  # the last key given is the primary one
    ordered = values[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    index = None
    if inverse:
        index = np.empty(n, dtype=np.intp)
        index[order] = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    return ordered[starts], index, np.diff(np.append(starts, n))


def bgnbd_log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray,
                         T: np.ndarray, modified: bool = False) -> np.ndarray:
    """Each customer's BG/NBD log-likelihood (Fader, Hardie and Lee 2005, eq. 6); with
    ``modified``, the MBG/NBD's (Batislam et al. 2007), where a customer may also leave
    right after the first purchase."""
    r, alpha, a, b = params
    shift = 1 if modified else 0  # MBG/NBD: one more chance to leave, at the first purchase
    base = (special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
            + special.betaln(a, b + x + shift) - special.betaln(a, b))
    stay = -(r + x) * np.log(alpha + T)
    return base + np.logaddexp(stay, _log_left(a, b, r, alpha, x, t_x, modified))


def _log_left(a, b, r, alpha, x, t_x, modified: bool) -> np.ndarray:
    """log of the "left after the last purchase" term over the "still here" term's base:
    log(a / (b + x - 1)) - (r + x) log(alpha + t_x); BG/NBD's is -inf without a repeat
    purchase (nobody leaves at the first)."""
    if modified:
        return np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + t_x)
    with np.errstate(divide="ignore"):
        return np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                        - (r + x) * np.log(alpha + t_x), -np.inf)


def _lookup(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``values`` and each one's index among them."""
    distinct, index = np.unique(values, return_inverse=True)
    return distinct, index.reshape(-1)


def _bgnbd_neg_ll(weight: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                  modified: bool):
    """``p -> (-(weight * bgnbd_log_likelihood(p, x, t_x, T, modified)).sum(), gradient)``:
    each factor that depends on one column only is computed once per distinct value of that
    column (a few hundred order counts and days against a million rows) and looked up; the
    gradient is analytic (one pass per step, not one per parameter as finite differences)."""
    xs, ix = _lookup(x)
    ts, it = _lookup(t_x)
    Ts, iT = _lookup(T)
    shift = 1 if modified else 0
    repeat = x > 0
    w_x = np.bincount(ix, weights=weight)  # weights summed per distinct x

    def neg_ll(params: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = params
        base = (special.gammaln(r + xs) - special.gammaln(r) + r * np.log(alpha)
                + special.betaln(a, b + xs + shift) - special.betaln(a, b))
        rx = (r + xs)[ix]
        log_T, log_t = np.log(alpha + Ts)[iT], np.log(alpha + ts)[it]
        stay = -rx * log_T
        tail = rx * log_t
        gap = b + xs - 1 + shift  # log a - log gap: the odds of leaving at the last purchase
        if modified:
            left = (np.log(a) - np.log(gap))[ix] - tail
        else:
            with np.errstate(divide="ignore"):
                left = np.where(repeat, (np.log(a) - np.log(np.maximum(gap, 1e-300)))[ix]
                                - tail, -np.inf)
        total = np.logaddexp(stay, left)
        ll = float((w_x * base).sum() + (weight * total).sum())
        w_left = weight * np.exp(left - total)  # each row's posterior weight of "left"
        w_stay = weight - w_left
        d_r = ((w_x * (special.digamma(r + xs) - special.digamma(r) + np.log(alpha))).sum()
               - (w_stay * log_T).sum() - (w_left * log_t).sum())
        d_alpha = (w_x.sum() * r / alpha
                   - (w_stay * rx * (1 / (alpha + Ts))[iT]).sum()
                   - (w_left * rx * (1 / (alpha + ts))[it]).sum())
        left_x = np.bincount(ix, weights=w_left, minlength=len(xs))
        d_a = ((w_x * (special.digamma(a + b) - special.digamma(a + b + xs + shift))).sum()
               + left_x.sum() / a)
        with np.errstate(divide="ignore", invalid="ignore"):
            d_b = ((w_x * (special.digamma(b + xs + shift) - special.digamma(a + b + xs + shift)
                           - special.digamma(b) + special.digamma(a + b))).sum()
                   - np.where(left_x > 0, left_x / gap, 0.0).sum())
        return -ll, -np.array([d_r, d_alpha, d_a, d_b])

    return neg_ll


def _gamma_gamma_neg_ll(weight: np.ndarray, x: np.ndarray, m: np.ndarray):
    """``p -> (-(weight * gamma_gamma_log_likelihood(p, x, m)).sum(), gradient)``, the
    terms of ``x`` alone computed once per distinct order count, the gradient analytic."""
    xs, ix = _lookup(x)
    w_x = np.bincount(ix, weights=weight)
    data = float((weight * np.log(m)).sum())  # sum of log m, and of x log x m
    x_term = np.bincount(ix, weights=weight * np.log(m), minlength=len(xs)) + w_x * np.log(xs)
    xm = x * m

    def neg_ll(params: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, gamma = params
        px = p * xs
        shifted = gamma + xm
        log_shifted = np.log(shifted)
        per_x = np.bincount(ix, weights=weight * log_shifted, minlength=len(xs))
        inv_x = np.bincount(ix, weights=weight / shifted, minlength=len(xs))
        ll = ((w_x * (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q)
                      + q * np.log(gamma))).sum()
              + p * (xs * x_term).sum() - data - ((px + q) * per_x).sum())
        d_p = ((xs * w_x * (special.digamma(px + q) - special.digamma(px))).sum()
               + (xs * x_term).sum() - (xs * per_x).sum())
        d_q = ((w_x * (special.digamma(px + q) - special.digamma(q) + np.log(gamma))).sum()
               - per_x.sum())
        d_gamma = (w_x.sum() * q / gamma - ((px + q) * inv_x).sum())
        return -ll, -np.array([d_p, d_q, d_gamma])

    return neg_ll


def _fit(neg_ll, start: np.ndarray, names: tuple[str, ...], customers: int,
         polish: int = 20_000) -> Fit:
    """Maximum likelihood over the log-parameters (L-BFGS-B with the gradient; polished by
    at most ``polish`` Nelder-Mead steps when it stops short)."""
    began = time.perf_counter()

    def on_logs(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        value, grad = neg_ll(params)
        return value, grad * params  # d/d log p = p d/dp

    result = optimize.minimize(on_logs, np.log(start), jac=True, method="L-BFGS-B")
    if not result.success:  # polish from where it stopped
        result = optimize.minimize(lambda p: on_logs(p)[0], result.x, method="Nelder-Mead",
                                   options={"maxiter": polish, "xatol": 1e-10, "fatol": 1e-10})
    values = np.exp(result.x)
    return Fit(params={n: float(v) for n, v in zip(names, values, strict=True)},
               log_likelihood=float(-result.fun), converged=bool(result.success),
               seconds=round(time.perf_counter() - began, 3), customers=customers)


def fit_bgnbd(frame: pd.DataFrame, modified: bool = False) -> Fit:
    """Fit BG/NBD (``modified``: MBG/NBD) on columns ``x``, ``t_x`` and ``T`` (one row per
    customer)."""
    if len(frame) < 2 or not (frame["x"] > 0).any():
        raise DataError("BG/NBD needs customers with repeat purchases; none bought twice.")
    rows, weight = _counted(frame, ["x", "t_x", "T"])
    x, t_x, T = rows.T
    neg_ll = _bgnbd_neg_ll(weight, x, t_x, T, modified)

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
    # mean values are continuous: nearly every row is distinct, so no rows are merged
    x, m = (frame[c].to_numpy(dtype=float) for c in ("x", "m"))
    neg_ll = _gamma_gamma_neg_ll(np.ones(len(x)), x, m)

    return _fit(neg_ll, np.array([1.0, 1.0, float(np.mean(m))]), ("p", "q", "gamma"),
                len(frame))


def frequency_value_correlation(frame: pd.DataFrame) -> float:
    """Pearson correlation of repeat buyers' ``x`` and ``m``: Gamma-Gamma assumes none."""
    buyers = frame[frame["x"] > 0]
    return float(np.corrcoef(buyers["x"], buyers["m"])[0, 1]) if len(buyers) > 2 else 0.0


# ---------------------------------------------------------------- per-customer predictions
def p_alive(params: dict[str, float], x, t_x, T, modified: bool = False) -> np.ndarray:
    """P(the customer has not left by the end of the observation) (FHL 2005, eq. 13)."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    left = _log_left(a, b, r, alpha, x, t_x, modified) + (r + x) * np.log(alpha + T)
    return special.expit(-left)


def expected_orders(params: dict[str, float], t: float, x, t_x, T,
                    modified: bool = False) -> np.ndarray:
    """Expected purchases in the ``t`` days after the observation (FHL 2005, eq. 10;
    Batislam et al. 2007 for MBG/NBD).

    The paper's ``((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)`` is computed
    through Euler's transformation as ``(1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``: the
    same value, without the overflow of the first form for customers with many orders.
    """
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    return _expected_orders(params, t, x, T, p_alive(params, x, t_x, T, modified),
                            _pairs(x, T), modified)


def orders_if_alive(params: dict[str, float], t: float, x, T,
                    modified: bool = False) -> np.ndarray:
    """Expected purchases in the ``t`` days after the observation of a customer still
    here: :func:`expected_orders` over P(alive), with no need of ``t_x``."""
    x, T = (np.asarray(v, dtype=float) for v in (x, T))
    return _expected_orders(params, t, x, T, 1.0, _pairs(x, T), modified)


def _pairs(x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                  tuple[int, ...]]:
    """The distinct (x, T) of the rows (the hypergeometric term depends on nothing else:
    some ten thousand against a million distinct (x, t_x, T)), each row's index among them
    and the rows' shape."""
    x, T = np.broadcast_arrays(x, T)
    rows, inverse, _ = _distinct(np.column_stack([x.ravel(), T.ravel()]))
    return rows[:, 0], rows[:, 1], inverse, x.shape


def _expected_orders(params: dict[str, float], t: float, x: np.ndarray, T: np.ndarray,
                     alive: np.ndarray, pairs, modified: bool) -> np.ndarray:
    """:func:`expected_orders` from the rows' P(alive) and :func:`_pairs`: the same
    floating-point operations per row, the hypergeometric term once per distinct (x, T)."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    if abs(a - 1) < 1e-9:  # the closed form divides by a - 1; its limit is continuous
        a = 1 + 1e-9
    xs, Ts, inverse, shape = pairs
    k = 0 if modified else 1
    cs = a + b + xs - k
    one_minus_z = (alpha + Ts) / (alpha + Ts + t)
    with np.errstate(invalid="ignore", over="ignore"):
        tail = one_minus_z ** (a - 1) * special.hyp2f1(cs - xs - r, a - 1, cs, 1 - one_minus_z)
        orders = cs / (a - 1) * (1 - tail)  # a customer still here
    broken = ~np.isfinite(orders) | (orders < 0)
    if broken.any():  # a huge a + b: its limit, not 0 * inf
        orders[broken] = _point_mass_orders(r, alpha, a, b, t, xs[broken], Ts[broken], k)
    return alive * orders[inverse].reshape(shape)


def _point_mass_orders(r, alpha, a, b, t, x, T, k) -> np.ndarray:
    """Expected purchases of a customer still here, for a Beta of the chance to leave so
    narrow (a + b in the thousands) that the closed form overflows: given that chance p,
    (1 - E[exp(-lambda p t)]) / p over the purchase rate's posterior Gamma(r+x, alpha+T),
    averaged over p's posterior Beta(a, b+x+1-k) by Gauss-Hermite quadrature on its normal
    approximation (close, at such a + b)."""
    b_x = b + x + 1 - k
    mean = a / (a + b_x)
    sd = np.sqrt(mean * (1 - mean) / (a + b_x + 1))
    nodes, weights = np.polynomial.hermite.hermgauss(24)
    p = np.clip(mean[:, None] + np.sqrt(2) * sd[:, None] * nodes, 1e-12, 1)
    given = (1 - ((alpha + T[:, None]) / (alpha + T[:, None] + p * t))
             ** (r + x[:, None])) / p
    return given @ weights / np.sqrt(np.pi)


def churn_risk(params: dict[str, float], t: float, x, t_x, T,
               modified: bool = False) -> np.ndarray:
    """P(no purchase in the ``t`` days after the observation).

    Gone customers buy nothing; one still here buys nothing with probability
    ``E[exp(-lambda t)] = ((alpha+T)/(alpha+T+t))^(r+x)``, his purchase rate's posterior
    being Gamma(r+x, alpha+T) (and he can leave only right after a purchase). Unlike
    1 - P(alive), this is high for a one-time buyer long gone quiet, whose P(alive) under
    BG/NBD is 1.
    """
    r, alpha = params["r"], params["alpha"]
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    quiet = ((alpha + T) / (alpha + T + t)) ** (r + x)
    return 1.0 - p_alive(params, x, t_x, T, modified) * (1.0 - quiet)


def expected_order_value(params: dict[str, float], x, m) -> np.ndarray:
    """A customer's expected value per order under Gamma-Gamma (Fader and Hardie 2013,
    eq. 5): his mean ``m`` over ``x`` repeat orders shrunk to the population mean
    ``p gamma / (q - 1)`` (the whole of it without a repeat order). Where ``p x + q <= 1``
    the expectation is infinite and the value is NaN: with ``q <= 1`` (a spend so
    heavy-tailed that the population has no finite mean) for the customers without a
    repeat order."""
    p, q, gamma = params["p"], params["q"], params["gamma"]
    x = np.asarray(x, dtype=float)
    m = np.where(x > 0, np.nan_to_num(np.asarray(m, dtype=float)), 0.0)
    below = p * x + q - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(below > 0, p * (gamma + x * m) / below, np.nan)


def discounted_orders(params: dict[str, float], horizon: float, rate: float, x, t_x, T,
                      modified: bool = False) -> np.ndarray:
    """Expected purchases in the horizon, each discounted to today at the annual ``rate``:
    the horizon in steps of about a month, a step's purchases discounted from its end
    (lifetimes' ``customer_lifetime_value`` does the same in 30-day steps)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    return _discounted_orders(params, horizon, rate, x, T,
                              p_alive(params, x, t_x, T, modified), _pairs(x, T), modified)


def _discounted_orders(params: dict[str, float], horizon: float, rate: float, x, T,
                       alive, pairs, modified: bool) -> np.ndarray:
    steps = max(1, int(np.ceil(horizon / 30)))
    total, before = 0.0, 0.0
    for k in range(1, steps + 1):
        t = horizon * k / steps
        upto = _expected_orders(params, t, x, T, alive, pairs, modified)
        total = total + (upto - before) / (1 + rate) ** (t / 365)
        before = upto
    return total
