"""A yearly cycle in purchases: how much busier a window of days is than a flat share of
its year, read from the same days of earlier years.

The value models forecast at a steady pace (a customer's rate does not change with the
calendar). Where the history covers the same window in earlier years, its share of their
purchases, against the flat share ``days / 365``, is the window's seasonal index; the run
applies it only where the holdout shows the cycle (:func:`seasonal`).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

#: A window's index must differ from a flat year's by more than this to count as a season.
CLEAR = 0.10
#: Earlier years read at most.
YEARS = 4
#: Days of a year; a window this long or longer holds every season.
YEAR = 365


def index(daily: pd.Series, start: dt.date, days: int) -> float | None:
    """The seasonal index of ``days`` days from ``start``: the mean over earlier years
    wholly in the history of the window's share of the year from it, times ``365 / days``
    (1: a flat year). ``daily`` counts purchase days by date. None: no whole earlier year,
    or a window of a year or more (which holds every season)."""
    if days >= YEAR or daily.empty:
        return None
    first = daily.index.min()
    ratios = []
    for k in range(1, YEARS + 1):
        begin = pd.Timestamp(start) - pd.Timedelta(days=365 * k)
        if begin < first:
            break
        year = daily[(daily.index >= begin) & (daily.index < begin + pd.Timedelta(days=365))]
        part = year[year.index < begin + pd.Timedelta(days=days)]
        if year.sum() > 0:
            ratios.append(float(part.sum()) / float(year.sum()) * 365 / days)
    return round(float(np.mean(ratios)), 4) if ratios else None


def seasonal(holdout_index: float | None, predicted: float, actual: float) -> bool:
    """Whether the holdout shows a yearly cycle: its window's index differs from a flat
    year's by more than :data:`CLEAR`, and applying it brings the prediction closer to what
    happened."""
    if holdout_index is None or abs(holdout_index - 1) <= CLEAR:
        return False
    return abs(predicted * holdout_index - actual) < abs(predicted - actual)
