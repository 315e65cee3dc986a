"""What goes with an outcome (churn, response, conversion): the customer features whose
values differ most between the customers with the outcome and those without, with an
effect size a reader can compare across features.

- a number: Cohen's d, the difference of the two means over their pooled standard
  deviation;
- a yes/no column: Cohen's h, the difference of the two shares on the arcsine scale
  (``2 asin sqrt p``), comparable with d (0.2 small, 0.5 medium, 0.8 large);
- a category: h between the outcome's rate in its most telling level and in the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from custseg.profile.labels import humanise

#: Features listed per outcome, largest effect first ...
TOP = 5
#: ... from this effect size on (Cohen's "small" is 0.2).
MIN_EFFECT = 0.1
#: A category level is weighed from this many customers on.
MIN_LEVEL = 30


def cohens_d(a: np.ndarray, b: np.ndarray) -> float | None:
    """(mean a - mean b) over the pooled standard deviation (None: too few or no spread)."""
    if len(a) < 2 or len(b) < 2:
        return None
    pooled = ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (
        len(a) + len(b) - 2)
    return float((a.mean() - b.mean()) / np.sqrt(pooled)) if pooled > 0 else None


def cohens_h(p: float, q: float) -> float:
    """2 asin sqrt p - 2 asin sqrt q."""
    return float(2 * np.arcsin(np.sqrt(p)) - 2 * np.arcsin(np.sqrt(q)))


def outcome_drivers(table: pd.DataFrame, outcome: str, numeric: list[str],
                    categorical: list[str], labels: Mapping[str, str] | None = None
                    ) -> dict[str, Any]:
    """The outcome's rate and the :data:`TOP` features that go with it most."""
    y = pd.to_numeric(table[outcome], errors="coerce")
    known = y.notna()
    yes = known & (y == 1)
    no = known & (y == 0)
    name = humanise(outcome, labels)
    rows = []
    for col in numeric:
        x = pd.to_numeric(table[col], errors="coerce")
        a, b = x[yes].dropna().to_numpy(float), x[no].dropna().to_numpy(float)
        if set(np.unique(np.concatenate([a, b]))) <= {0.0, 1.0} and len(a) and len(b):
            p, q = a.mean(), b.mean()
            effect = cohens_h(p, q)
            text = (f"{p:.0%} {humanise(col, labels)} where {name}, {q:.0%} where not "
                    f"(h = {effect:+.2f})")
        else:
            effect = cohens_d(a, b)
            if effect is None:
                continue
            text = (f"{humanise(col, labels)} {np.median(a):,.1f} (median) where {name}, "
                    f"{np.median(b):,.1f} where not (d = {effect:+.2f})")
        rows.append({"feature": col, "effect": round(effect, 3), "text": text})
    for col in categorical:
        levels = table.loc[known, col].astype("string")
        best = None
        for level, n in levels.value_counts().items():
            if n < MIN_LEVEL or n == len(levels):
                continue
            inside = levels == level
            p, q = float(y[known][inside].mean()), float(y[known][~inside].mean())
            effect = cohens_h(p, q)
            if best is None or abs(effect) > abs(best[0]):
                best = (effect, level, p, q)
        if best is not None:
            effect, level, p, q = best
            rows.append({"feature": col, "effect": round(effect, 3),
                         "text": f"{name} {p:.0%} where {humanise(col, labels)} is {level}, "
                                 f"{q:.0%} elsewhere (h = {effect:+.2f})"})
    rows = sorted((r for r in rows if abs(r["effect"]) >= MIN_EFFECT),
                  key=lambda r: -abs(r["effect"]))[:TOP]
    return {"column": outcome, "customers": int(known.sum()),
            "rate": round(float(y[known].mean()), 4) if known.any() else None,
            "drivers": rows}
