"""The shrunk log-normal spend model (prep/spend.py) recovers the parameters it is drawn
from, and shrinks a customer's value by how much it has seen of him."""

from __future__ import annotations

import numpy as np
import pytest

from custseg.prep import spend


def test_the_log_normal_recovers_its_parameters_and_shrinks_by_purchases():
    rng = np.random.default_rng(4)
    mu, tau2, sigma2 = 3.5, 0.25, 0.8
    n = 1 + rng.poisson(1.5, 40_000)
    theta = rng.normal(mu, np.sqrt(tau2), len(n))
    v = np.exp(theta + rng.normal(0, np.sqrt(sigma2 / n)))
    fit = spend.fit_lognormal(n, v)
    assert fit.converged
    assert fit.params["mu"] == pytest.approx(mu, abs=0.02)
    assert fit.params["tau2"] == pytest.approx(tau2, rel=0.1)
    assert fit.params["sigma2"] == pytest.approx(sigma2, rel=0.1)
    # the same mean spend, seen once or twenty times: the once is pulled to the middle
    high = np.exp(mu + 1.0)
    once, often = spend.expected_value(fit.params, [1, 20], [high, high])
    middle = spend.expected_value(fit.params, [1], [np.exp(mu)])[0]
    assert middle < once < often
