"""Control groups and the uplift of a campaign: pure functions over tables.

:func:`split_groups` holds out a random share of each segment as its control group (the
same seed, the same groups); :func:`detectable_uplift` is the smallest uplift in the share
of buyers a split can detect; :func:`compare_groups` sets each segment's target group
against its control group (buyers, orders and revenue per customer, with intervals and
Holm-corrected p-values); :func:`sample_ratio` tests the group sizes against the planned
split. The tests are statsmodels' and SciPy's:

- buying: the two-proportion score test (Miettinen-Nurminen), Newcomb's hybrid score
  interval of the difference (closed form, good coverage at small shares), the relative
  uplift from the ratio's log interval;
- orders and revenue per customer: Welch's t-test on the means per customer (every
  customer of a group, buyers or not). Revenue per customer is heavy-tailed; the mean is
  the scale incremental revenue is counted on, and Welch's interval holds for it once a
  group has a few hundred customers (tests/test_uplift.py measures its coverage);
- several segments: Holm's step-down correction, for buying and for revenue apart;
- the sample ratio: Pearson's chi-squared test of the observed sizes against the split.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
POWER = 0.8
#: A sample ratio this unlikely under the planned split means the groups were not kept apart.
SRM_ALPHA = 0.001
BUYING_TEST = ("two-proportion score test (Miettinen-Nurminen) of the share of customers "
               "who bought; Newcomb's interval")
REVENUE_TEST = ("Welch's t-test on revenue (and orders) per customer, every customer of a "
                "group counted, buyers or not")
CORRECTION = "holm"


def split_groups(members: pd.DataFrame, share: float, seed: int) -> pd.Series:
    """``"target"`` or ``"control"`` for each row of ``members`` (``customer_id``,
    ``segment``): in each segment, ``round(share * n)`` customers drawn at random are the
    control group. The draw depends only on the seed and on the segments' customers (they
    are put in order first), not on the order of the rows."""
    group = pd.Series("target", index=members.index, dtype=object)
    if share <= 0:
        return group
    rng = np.random.default_rng(seed)
    ids = members["customer_id"].astype(str)
    for _, rows in members.groupby(members["segment"].astype(str), sort=True).groups.items():
        ordered = ids.loc[rows].sort_values(kind="stable").index
        held = round(share * len(ordered))
        group.loc[ordered[rng.permutation(len(ordered))[:held]]] = "control"
    return group


def detectable_uplift(rate: float, target: int, control: int, *, alpha: float = ALPHA,
                      power: float = POWER) -> float | None:
    """The smallest absolute uplift in the share of buyers (from ``rate``, the control
    group's) a two-sided test at ``alpha`` finds with ``power`` with groups of these sizes
    (None: a group under two customers, or not even everybody buying would be found).
    statsmodels' power of the two-proportion test (the null's pooled variance, the
    alternative's own), solved for the difference."""
    if target < 2 or control < 2:
        return None
    from scipy.optimize import brentq
    from statsmodels.stats.proportion import power_proportions_2indep

    rate = min(max(rate, 1e-4), 1 - 1e-3)

    def short(diff: float) -> float:
        return power_proportions_2indep(diff, rate, target, ratio=control / target,
                                        alpha=alpha, return_results=False) - power

    top = 1 - rate - 1e-9
    if short(top) < 0:  # not even everybody buying would be found
        return None
    return float(brentq(short, 1e-9, top, xtol=1e-6))


def holdout_for(rate: float, customers: int, uplift: float, *, alpha: float = ALPHA
                ) -> float | None:
    """The smallest control share (in whole percent, at most half) with which a segment of
    ``customers`` detects ``uplift`` (None: not even half does)."""
    for percent in range(1, 51):
        control = round(customers * percent / 100)
        found = detectable_uplift(rate, customers - control, control, alpha=alpha)
        if found is not None and found <= uplift:
            return percent / 100
    return None


@dataclass
class Test:
    """One comparison of target against control."""

    target: float  # the target group's value (a share or a mean per customer)
    control: float
    uplift: float  # target - control
    interval: tuple[float, float]  # 95% of the uplift
    relative: float | None  # uplift / control (None: control is 0)
    relative_interval: tuple[float, float] | None
    p_value: float


def buying(buyers_t: int, n_t: int, buyers_c: int, n_c: int) -> Test:
    """The share of buyers, target against control (score test and interval)."""
    from statsmodels.stats.proportion import (
        confint_proportions_2indep,
        test_proportions_2indep,
    )

    p_t, p_c = buyers_t / n_t, buyers_c / n_c
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if buyers_t + buyers_c in (0, n_t + n_c):  # nobody (or everybody) bought
            p_value = 1.0
        else:
            p_value = float(test_proportions_2indep(buyers_t, n_t, buyers_c, n_c,
                                                    method="score", compare="diff").pvalue)
        low, high = confint_proportions_2indep(buyers_t, n_t, buyers_c, n_c,
                                               method="newcomb", compare="diff")
        relative = relative_interval = None
        if buyers_c > 0 and buyers_t > 0:
            r_low, r_high = confint_proportions_2indep(buyers_t, n_t, buyers_c, n_c,
                                                       method="log-adjusted", compare="ratio")
            relative, relative_interval = p_t / p_c - 1, (float(r_low) - 1, float(r_high) - 1)
    return Test(p_t, p_c, p_t - p_c, (float(low), float(high)), relative, relative_interval,
                p_value)


def means(target: np.ndarray, control: np.ndarray) -> Test:
    """The mean per customer, target against control (Welch's t-test and interval)."""
    m_t, m_c = float(np.mean(target)), float(np.mean(control))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(target, control, equal_var=False)
        low, high = result.confidence_interval(1 - ALPHA)
    p_value = float(result.pvalue)
    if not math.isfinite(p_value):  # both groups constant: equal, or an exact difference
        p_value = 1.0 if m_t == m_c else 0.0
        low = high = m_t - m_c
    relative = (m_t - m_c) / m_c if m_c else None
    relative_interval = ((float(low) / m_c, float(high) / m_c) if m_c else None)
    return Test(m_t, m_c, m_t - m_c, (float(low), float(high)), relative, relative_interval,
                p_value)


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values (step-down, monotone, capped at 1), in the input order.

    Written here, not taken from statsmodels' ``multipletests`` (which gives the same
    numbers, see tests/test_uplift.py), because that one runs a full garbage collection on
    every call: 50 ms, a thousand times over in a simulation."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def compare_groups(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Each segment's target group against its control group, and ``"all"`` of them.

    ``outcomes``: one row per customer of the groups, ``segment``, ``group`` (target or
    control), ``orders`` and ``revenue`` over the campaign window (0 when he did not buy).
    One row per segment (and a last one, ``segment`` = None, for all of them): group sizes,
    buyers, the :class:`Test` of buying, orders and revenue per customer, and the
    Holm-adjusted p-values of buying and revenue over the segments."""
    rows = []
    parts = [(str(s), part) for s, part in outcomes.groupby(
        outcomes["segment"].astype(str), sort=True)]
    for segment, part in [*parts, (None, outcomes)]:
        t, c = part[part["group"] == "target"], part[part["group"] == "control"]
        row = {"segment": segment, "target": len(t), "control": len(c),
               "buyers_target": int((t["orders"] > 0).sum()),
               "buyers_control": int((c["orders"] > 0).sum())}
        if len(t) and len(c):
            row["buying"] = buying(row["buyers_target"], len(t), row["buyers_control"], len(c))
            row["orders"] = means(t["orders"].to_numpy(float), c["orders"].to_numpy(float))
            row["revenue"] = means(t["revenue"].to_numpy(float), c["revenue"].to_numpy(float))
        rows.append(row)
    table = pd.DataFrame(rows)
    for test in ("buying", "orders", "revenue"):
        if test not in table:
            table[test] = None
    segments = table.index[:-1]  # the last row, all segments, is one test of its own
    for test in ("buying", "revenue"):
        tested = [i for i in segments if isinstance(table.at[i, test], Test)]
        adjusted = dict(zip(tested, map(float, holm([table.at[i, test].p_value
                                                     for i in tested])), strict=True))
        whole = table.at[table.index[-1], test]
        adjusted[table.index[-1]] = whole.p_value if isinstance(whole, Test) else None
        table[f"{test}_p_adjusted"] = [adjusted.get(i) for i in table.index]
    return table


def sample_ratio(sizes: pd.DataFrame, share: float) -> float | None:
    """The p-value of the observed group sizes (``target``, ``control`` per segment)
    against a split holding out ``share`` of each segment (Pearson's chi-squared; each
    segment's total is given, so one degree of freedom per segment). None: nothing to
    test (no control planned, or no customers)."""
    sizes = sizes[(sizes["target"] + sizes["control"]) > 0]
    if share <= 0 or sizes.empty:
        return None
    total = (sizes["target"] + sizes["control"]).to_numpy(float)
    observed = np.concatenate([sizes["target"].to_numpy(float),
                               sizes["control"].to_numpy(float)])
    expected = np.concatenate([total * (1 - share), total * share])
    segments = len(sizes)
    result = stats.chisquare(observed, expected, ddof=2 * segments - 1 - segments)
    return float(result.pvalue)
