"""Pareto/NBD reproduces its published CDNOW parameters and lifetimes' predictions.

Fader, Hardie and Lee (2005), "A note on implementing the Pareto/NBD model in MATLAB":
on the 2,357 CDNOW customers (calibration to 1997-09-30, time in weeks) r = 0.5534,
alpha = 10.5802, s = 0.6061, beta = 11.6562, log-likelihood -9594.98.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custseg.prep import pnbd
from test_clv import END, cdnow_sample

PUBLISHED = {"r": 0.5534, "alpha": 10.5802, "s": 0.6061, "beta": 11.6562}


@pytest.fixture(scope="module")
def weeks() -> pd.DataFrame:
    """Per CDNOW customer: x, t_x and T in weeks, as the note has them."""
    lines = cdnow_sample()
    days = lines[lines["date"] <= END].groupby(["customer", "date"], as_index=False).size()
    per = days.groupby("customer")["date"].agg(["min", "max", "size"])
    return pd.DataFrame({"x": per["size"] - 1.0,
                         "t_x": (per["max"] - per["min"]).dt.days / 7,
                         "T": (END - per["min"]).dt.days / 7})


def test_pareto_nbd_reproduces_the_published_cdnow_fit(weeks):
    fit = pnbd.fit_pnbd(weeks)
    assert fit.converged and fit.customers == 2357
    for name, value in PUBLISHED.items():
        assert fit.params[name] == pytest.approx(value, rel=0.005), name
    assert fit.log_likelihood == pytest.approx(-9594.98, abs=0.05)


def test_a_fit_on_a_sample_of_customers_stays_near_the_whole_fit(weeks):
    """Past ``max_customers``, a seeded sample is fitted; its parameters stay within the
    sampling error, and its log-likelihood is every customer's at them."""
    whole = pnbd.fit_pnbd(weeks)
    sampled = pnbd.fit_pnbd(weeks, max_customers=1500)
    assert sampled.customers == 2357
    for name, value in whole.params.items():
        assert sampled.params[name] == pytest.approx(value, rel=0.35), name
    every = pnbd.log_likelihood([sampled.params[k] for k in pnbd.NAMES],
                                weeks["x"], weeks["t_x"], weeks["T"]).sum()
    assert sampled.log_likelihood == pytest.approx(every, rel=1e-9)
    assert whole.log_likelihood >= sampled.log_likelihood  # the whole fit is the best


# lifetimes 0.11.3's ParetoNBDFitter with the published parameters (its
# conditional_probability_alive and conditional_expected_number_of_purchases_up_to_time, 39
# weeks ahead), for customers (x, t_x, T) in weeks
CUSTOMERS = ([0, 2, 5, 1, 20], [0, 10, 30, 37, 38], [38, 38, 38, 38, 38])
LIFETIMES_ALIVE = [0.30008741, 0.28044107, 0.83711137, 0.98754718, 1.0]
LIFETIMES_EXPECTED = [0.11053091, 0.47660357, 3.09413327, 1.02102875, 13.67982351]


def test_predictions_agree_with_lifetimes():
    x, t_x, T = (np.array(v, dtype=float) for v in CUSTOMERS)
    np.testing.assert_allclose(pnbd.p_alive(PUBLISHED, x, t_x, T), LIFETIMES_ALIVE,
                               rtol=1e-6)
    np.testing.assert_allclose(pnbd.expected_orders(PUBLISHED, 39, x, t_x, T),
                               LIFETIMES_EXPECTED, rtol=1e-6)


def test_predictions_agree_with_lifetimes_on_every_cdnow_customer(weeks):
    """Against the library itself where it is installed (a test dependency)."""
    lifetimes = pytest.importorskip("lifetimes")
    fitter = lifetimes.ParetoNBDFitter()
    fitter.params_ = pd.Series(PUBLISHED)
    x, t_x, T = (weeks[c].to_numpy() for c in ("x", "t_x", "T"))
    np.testing.assert_allclose(pnbd.p_alive(PUBLISHED, x, t_x, T),
                               fitter.conditional_probability_alive(x, t_x, T), rtol=1e-5)
    np.testing.assert_allclose(
        pnbd.expected_orders(PUBLISHED, 39, x, t_x, T),
        fitter.conditional_expected_number_of_purchases_up_to_time(39, x, t_x, T), rtol=1e-5)


@pytest.mark.parametrize("x", [0, 5, 20])
def test_no_purchase_probability_is_the_simulated_one(x):
    """A customer alive at T (t_x = T) with rates drawn from their posteriors: the share
    whose first purchase comes after he leaves or after 39 weeks, simulated."""
    rng = np.random.default_rng(x)
    p, T, t = PUBLISHED, 38.0, 39.0
    n = 400_000
    lam = rng.gamma(p["r"] + x, 1 / (p["alpha"] + T), n)
    mu = rng.gamma(p["s"], 1 / (p["beta"] + T), n)
    simulated = np.mean(rng.exponential(1 / lam) > np.minimum(rng.exponential(1 / mu), t))
    assert float(pnbd.p_no_purchase(p, t, x, T, T)) == pytest.approx(simulated, abs=0.003)


def hypergeometric_log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Each customer's log-likelihood in the note's closed form (A0 by SciPy's hyp2f1),
    which converges well for alpha < beta."""
    from scipy import special

    r, alpha, s, beta = params
    rsx = r + s + x
    top, shape, gap = beta, r + x, beta - alpha
    first = (np.log(special.hyp2f1(rsx, shape, rsx + 1, gap / (top + t_x)))
             - rsx * np.log(top + t_x))
    second = (np.log(special.hyp2f1(rsx, shape, rsx + 1, gap / (top + T)))
              - rsx * np.log(top + T))
    with np.errstate(divide="ignore"):
        log_a0 = first + np.log(-np.expm1(second - first))
    base = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return base + np.logaddexp(-(r + x) * np.log(alpha + T) - s * np.log(beta + T),
                               np.log(s / rsx) + log_a0)


MANY = (np.array([0.0, 1, 10, 100, 400, 3]), np.array([0.0, 50, 300, 600, 690, 700]),
        np.full(6, 700.0))  # the last bought on the last day: nothing to integrate


def test_the_likelihood_of_many_purchases_is_finite_and_the_hypergeometric_form():
    """The quadrature against the note's hypergeometric A0 where that converges well, up
    to customers with hundreds of purchases."""
    params = [0.8, 30.0, 0.7, 200.0]
    got = pnbd.log_likelihood(params, *MANY)
    expected = hypergeometric_log_likelihood(params, *MANY)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)  # likelihoods within 0.01%


@settings(max_examples=80, deadline=None)
@given(st.floats(0.1, 5), st.floats(1, 2000), st.floats(0.1, 5), st.floats(1, 5000),
       st.sampled_from([0, 1, 2, 5, 20, 100]), st.floats(0, 1), st.integers(30, 1500))
def test_the_quadrature_is_scipys_adaptive_one(r, alpha, s, beta, x, share, T):
    """The likelihood of having left, against SciPy's adaptive quadrature, over parameters
    in days from a fast to a slow market (the substitution once used was off by up to 2.7
    where alpha is far below beta)."""
    from scipy import integrate

    t_x = float(round(share * T)) if x else 0.0  # whole days, as the customers' are
    shift = (r + x) * np.log(alpha + t_x) + (s + 1) * np.log(beta + t_x)  # the peak: 1
    found, _ = integrate.quad(
        lambda u: np.exp(shift - (r + x) * np.log(alpha + u) - (s + 1) * np.log(beta + u)),
        t_x, T, epsabs=0, epsrel=1e-11, limit=500,
        points=[beta] if t_x < beta < T else None)
    with np.errstate(divide="ignore"):  # bought on the last day: nothing to integrate
        expected = np.log(s) + np.log(found) - shift
    assert float(pnbd._log_left(r, alpha, s, beta, x, t_x, T)) == pytest.approx(
        expected, abs=1e-3)


@pytest.mark.parametrize("params", [[0.8, 30.0, 0.7, 200.0], [0.3, 5.0, 2.0, 60.0],
                                    [2.5, 100.0, 0.2, 101.0]])
def test_the_fitted_gradient_is_the_closed_forms(params):
    """The gradient the fit follows (integrals on the quadrature's nodes) against central
    differences of the closed form, customer by customer."""
    params = np.array(params)
    for i in range(len(MANY[0])):
        customer = [v[i:i + 1] for v in MANY]
        weight = np.array([2.0])
        got = pnbd._value_and_gradient(params, weight, *customer)[1]
        expected = np.empty(4)
        for j in range(4):
            step = np.zeros(4)
            step[j] = params[j] * 1e-6
            up, down = (float(hypergeometric_log_likelihood(params + d, *customer)[0])
                        for d in (step, -step))
            expected[j] = -2.0 * (up - down) / (2 * step[j])
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-6, err_msg=str(i))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.floats(0, 1), st.floats(1, 2000))
def test_predictions_are_probabilities_and_counts(x, share, T):
    params = {"r": 0.6, "alpha": 40.0, "s": 0.8, "beta": 300.0}
    t_x = share * T if x else 0.0
    alive = float(pnbd.p_alive(params, x, t_x, T))
    quiet = float(pnbd.p_no_purchase(params, 90, x, t_x, T))
    assert 0 <= alive <= 1 and 0 <= quiet <= 1
    assert float(pnbd.expected_orders(params, 90, x, t_x, T)) >= 0
    assert quiet >= 1 - alive - 1e-9  # the gone buy nothing


def test_a_grid_of_days_gives_each_day_as_alone():
    """P(no purchase) over a grid of days (the distinct customers found once, in pieces of
    ROWS) is, column by column, the one of each day alone, to the last bit."""
    rng = np.random.default_rng(5)
    n = 3 * pnbd.ROWS + 17
    T = rng.integers(1, 800, n).astype(float)
    x = rng.poisson(4, n).astype(float)
    t_x = np.where(x > 0, np.floor(T * rng.uniform(0, 1, n)), 0.0)
    params = {"r": 0.6, "alpha": 40.0, "s": 0.8, "beta": 300.0}
    grid = np.array([1.0, 7.0, 30.0, 90.0, 365.0])
    together = pnbd.p_no_purchase(params, grid, x, t_x, T)
    assert together.shape == (n, len(grid))
    for j, t in enumerate(grid):
        assert np.array_equal(together[:, j], pnbd.p_no_purchase(params, float(t), x, t_x, T))


def customers_of(n: int, seed: int) -> pd.DataFrame:
    """``n`` customers' ``x``, ``t_x`` and ``T`` in days, many of them alike (as days are)."""
    rng = np.random.default_rng(seed)
    T = rng.integers(1, 400, n).astype(float)
    x = rng.poisson(2, n).astype(float)
    t_x = np.where(x > 0, np.floor(T * rng.uniform(0, 1, n)), 0.0)
    return pd.DataFrame({"x": x, "t_x": t_x, "T": T})


def test_p_alive_on_distinct_customers_is_each_customers_own():
    """P(alive) of many customers, computed once per distinct (x, t_x, T), is each one's
    from the integral of his own row."""
    frame = customers_of(3 * pnbd.ROWS + 11, seed=2)
    params = {"r": 0.6, "alpha": 40.0, "s": 0.8, "beta": 300.0}
    x, t_x, T = (frame[c].to_numpy() for c in ("x", "t_x", "T"))
    got = pnbd.p_alive(params, x, t_x, T)
    for i in range(0, len(frame), 997):
        alone = pnbd.p_alive(params, x[i], t_x[i], T[i])
        assert got[i] == pytest.approx(float(alone), rel=1e-12, abs=1e-300), i


def test_the_predictions_after_a_sampled_fit_take_its_integrals_once():
    """A fit on a sample computes every customer's integral for its log-likelihood; P(alive)
    of the same customers with the fitted parameters takes them (once), and equals P(alive)
    computed afresh; other parameters or customers compute their own."""
    frame = customers_of(2 * pnbd.ROWS + 500, seed=3)
    fit = pnbd.fit_pnbd(frame, max_customers=1_000)
    x, t_x, T = (frame[c].to_numpy() for c in ("x", "t_x", "T"))
    assert pnbd._kept is not None
    taken = pnbd.p_alive(fit.params, x, t_x, T)
    assert pnbd._kept is None  # used once
    fresh = pnbd.p_alive(fit.params, x, t_x, T)
    np.testing.assert_array_equal(taken, fresh)
    # the log-likelihood reported is every customer's, from the same integrals
    whole = pnbd.log_likelihood([fit.params[k] for k in pnbd.NAMES], x, t_x, T).sum()
    assert fit.log_likelihood == pytest.approx(whole, rel=1e-9)
    other = {**fit.params, "beta": fit.params["beta"] * 2}
    expected = pnbd.p_alive(other, x, t_x, T)
    pnbd.fit_pnbd(frame, max_customers=1_000)
    np.testing.assert_array_equal(pnbd.p_alive(other, x, t_x, T), expected)
    assert pnbd._kept is not None  # not the same parameters: kept for its own customers
    half = slice(0, len(frame) // 2)
    np.testing.assert_array_equal(pnbd.p_alive(fit.params, x[half], t_x[half], T[half]),
                                  fresh[half])
