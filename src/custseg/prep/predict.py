"""Per-customer predictions of the value models behind one interface: purchases (BG/NBD,
MBG/NBD or Pareto/NBD) and spend per purchase (Gamma-Gamma or the shrunk log-normal of
:mod:`custseg.prep.spend`), whichever the holdout chose (:mod:`custseg.prep.holdout`).

Time is in days; a purchase is a day with an order (several orders of one day count once,
as in the papers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from custseg.prep import boosted, clv, pnbd, spend
from custseg.prep.clv import Fit, _distinct
from custseg.prep.value_columns import COLUMNS

#: The purchase models, by the name the config and model.json use, and their names in words.
PURCHASES = {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD", "pnbd": "Pareto/NBD"}
#: The spend models, likewise.
SPENDS = {"gamma_gamma": "Gamma-Gamma", "lognormal": "log-normal, shrunk"}

#: The windows (days) of the purchase probabilities besides the horizon's.
WINDOWS = (30, 90)

_DIGITS = {"p_alive": 4, "p_buy_30": 4, "p_buy_90": 4, "expected_orders": 4,
           "expected_order_value": 2, "clv": 2, "churn_risk": 4}


def fit_purchases(model: str, inputs: pd.DataFrame) -> Fit:
    """Fit one purchase model (a key of :data:`PURCHASES`) on ``x``, ``t_x``, ``T``."""
    if model == "pnbd":
        return pnbd.fit_pnbd(inputs)
    return clv.fit_bgnbd(inputs, modified=model == "mbgnbd")


def fit_spend(model: str, inputs: pd.DataFrame) -> Fit:
    """Fit one spend model (a key of :data:`SPENDS`): Gamma-Gamma on the repeat buyers'
    ``x`` and ``m``, the log-normal on every customer's ``n`` and ``v``."""
    if model == "lognormal":
        return spend.fit_lognormal(inputs["n"], inputs["v"])
    return clv.fit_gamma_gamma(inputs[(inputs["x"] > 0) & (inputs["m"] > 0)])


@dataclass(frozen=True)
class Purchases:
    """A fitted purchase model's predictions for customers given as arrays of ``x``,
    ``t_x`` and ``T`` (the distinct rows: the caller maps them back)."""

    model: str
    params: dict[str, float]

    def p_alive(self, x, t_x, T) -> np.ndarray:
        if self.model == "pnbd":
            return pnbd.p_alive(self.params, x, t_x, T)
        return clv.p_alive(self.params, x, t_x, T, self.model == "mbgnbd")

    def expected(self, t: float, x, t_x, T, alive=None) -> np.ndarray:
        """Expected purchases in the ``t`` days after ``T`` (Pareto/NBD: ``alive``, its
        P(alive), when known)."""
        if self.model == "pnbd":
            return pnbd.expected_orders(self.params, t, x, t_x, T, alive)
        return clv.expected_orders(self.params, t, x, t_x, T, self.model == "mbgnbd")

    def pace(self, t: float, x, T) -> np.ndarray:
        """Expected purchases in the ``t`` days after ``T`` of a customer still alive: the
        expected purchases over P(alive), which cancels from a ratio of two spans (and
        needs no quadrature)."""
        if self.model == "pnbd":
            return pnbd.orders_if_alive(self.params, t, x, T)
        return clv.orders_if_alive(self.params, t, x, T, self.model == "mbgnbd")

    def p_buy(self, t: float, x, t_x, T, alive=None) -> np.ndarray:
        """P(at least one purchase in the ``t`` days after ``T``) (Pareto/NBD: ``alive``,
        its P(alive), when known)."""
        if self.model == "pnbd":
            return 1.0 - pnbd.p_no_purchase(self.params, t, x, t_x, T, alive)
        return 1.0 - clv.churn_risk(self.params, t, x, t_x, T, self.model == "mbgnbd")

    def discounted(self, horizon: float, rate: float, x, t_x, T, alive=None) -> np.ndarray:
        """Expected purchases in the horizon, each discounted to today at the annual
        ``rate`` (in steps of about a month, as lifetimes' ``customer_lifetime_value``)."""
        if self.model != "pnbd":
            return clv.discounted_orders(self.params, horizon, rate, x, t_x, T,
                                         self.model == "mbgnbd")
        alive = self.p_alive(x, t_x, T) if alive is None else alive
        steps = max(1, int(np.ceil(horizon / 30)))
        total, before = 0.0, 0.0
        for k in range(1, steps + 1):
            t = horizon * k / steps
            upto = self.expected(t, x, t_x, T, alive)
            total = total + (upto - before) / (1 + rate) ** (t / 365)
            before = upto
        return total

    def days_to_half(self, horizon: float, x, t_x, T, alive=None) -> np.ndarray:
        """The days until P(a purchase) reaches one half, by linear interpolation on a grid
        of days; NaN where it does not within the horizon."""
        grid = np.unique(np.concatenate([np.geomspace(1, horizon, 24).round(), [horizon]]))
        if self.model == "pnbd" and alive is None:
            alive = self.p_alive(x, t_x, T)
        if self.model == "pnbd":  # the distinct customers found once for the whole grid
            probs = 1.0 - pnbd.p_no_purchase(self.params, grid, x, t_x, T, alive)
        else:
            probs = np.column_stack([self.p_buy(float(t), x, t_x, T, alive) for t in grid])
        reached = probs >= 0.5
        first = reached.argmax(axis=1)
        out = np.full(len(probs), np.nan)
        rows = np.flatnonzero(reached.any(axis=1))
        j = first[rows]
        before_t = np.where(j > 0, grid[np.maximum(j - 1, 0)], 0.0)
        before_p = np.where(j > 0, probs[rows, np.maximum(j - 1, 0)], 0.0)
        after_t, after_p = grid[j], probs[rows, j]
        share = (0.5 - before_p) / np.maximum(after_p - before_p, 1e-12)
        out[rows] = np.ceil(before_t + share * (after_t - before_t))
        return out


def order_value(model: str, params: dict[str, float], inputs: pd.DataFrame) -> np.ndarray:
    """Each customer's expected value per purchase under a fitted spend model."""
    if model == "lognormal":
        return spend.expected_value(params, inputs["n"], inputs["v"])
    return np.asarray(clv.expected_order_value(params, inputs["x"], inputs["m"]), dtype=float)


@dataclass(frozen=True)
class ValueModels:
    """The fitted models of a run and the settings their predictions use."""

    purchases: dict[str, float]
    spend: dict[str, float] | None  # None: no trusted spend model
    horizon: int
    discount_rate: float
    model: str = "bgnbd"  # a key of PURCHASES
    spend_model: str = "gamma_gamma"  # a key of SPENDS

    def predict(self, inputs: pd.DataFrame, as_of: Any = None) -> pd.DataFrame:
        """The :data:`COLUMNS` of customers given as :func:`value_inputs`, in their order;
        computed once per distinct (x, t_x, T). ``next_order_date`` counts from ``as_of``
        (a date; without it, the column holds days)."""
        values = inputs[["x", "t_x", "T"]].to_numpy(dtype=float)
        if np.isfinite(values).all():
            keys, inverse, _ = _distinct(values)
        else:
            keys, inverse = np.unique(values, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        x, t_x, T = keys.T
        model = Purchases(self.model, self.purchases)
        out: dict[str, Any] = {}
        alive = model.p_alive(x, t_x, T)
        given = alive if self.model == "pnbd" else None  # Pareto/NBD's: costly, once
        out["p_alive"] = alive[inverse]
        for days in WINDOWS:
            out[f"p_buy_{days}"] = model.p_buy(days, x, t_x, T, given)[inverse]
        out["expected_orders"] = model.expected(self.horizon, x, t_x, T, given)[inverse]
        days = model.days_to_half(self.horizon, x, t_x, T, given)[inverse]
        if as_of is None:
            out["next_order_date"] = days
        else:
            start = pd.Timestamp(as_of)
            out["next_order_date"] = (start + pd.to_timedelta(days, unit="D")).normalize()
        if self.spend is not None:
            value = order_value(self.spend_model, self.spend, inputs)
            out["expected_order_value"] = value
            out["clv"] = value * model.discounted(self.horizon, self.discount_rate,
                                                  x, t_x, T, given)[inverse]
        else:
            out["expected_order_value"] = out["clv"] = np.full(len(inputs), np.nan)
        out["churn_risk"] = 1.0 - model.p_buy(self.horizon, x, t_x, T, given)[inverse]
        # new arrays, each kept as a column of its own rather than copied into one block
        # (5M customers: 1-3 s of this machine's fresh memory)
        return pd.DataFrame({name: (np.round(v, _DIGITS[name]) if name in _DIGITS else v)
                             for name, v in ((c, out[c]) for c in COLUMNS)},
                            index=inputs.index, copy=False)


#: Customers a learned model predicts at a time.
CHUNK = 500_000


@dataclass(frozen=True)
class BoostedValues:
    """A learned model trained at the split on the ``model.days`` that followed it (the
    longest the history could check), and a spend model: the predictions of customers as
    at the as-of date over ``horizon`` days. Past the checked days, purchases go on at the
    pace ``shape`` (a purchase model fitted on the same history) gives each customer, or
    at a steady rate without one."""

    model: boosted.Boosted
    spend: dict[str, float] | None
    discount_rate: float
    spend_model: str = "lognormal"
    horizon: int = 0  # 0: the checked days
    shape: Purchases | None = None

    def stretch(self, inputs: pd.DataFrame) -> np.ndarray:
        """Each customer's expected purchases over the horizon over those of the checked
        days (1 when the horizon is those days)."""
        days, horizon = self.model.days, max(self.horizon, self.model.days)
        if horizon == days:
            return np.ones(len(inputs))
        if self.shape is None:
            return np.full(len(inputs), horizon / days)
        x, T = (inputs[c].to_numpy(float) for c in ("x", "T"))
        near = self.shape.pace(days, x, T)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = self.shape.pace(horizon, x, T) / near
        return np.where(np.isfinite(ratio) & (near > 0), ratio, horizon / days)

    def predict(self, features: pd.DataFrame, as_of: Any = None) -> pd.DataFrame:
        """The :data:`COLUMNS` of customers given by their features (P(alive) is empty:
        the trees predict purchases, not whether a customer has left), :data:`CHUNK`
        customers at a time (each model's inputs are a float matrix of them)."""
        if len(features) <= CHUNK:
            return self._predict(features, as_of)
        return pd.concat([self._predict(features.iloc[i:i + CHUNK], as_of)
                          for i in range(0, len(features), CHUNK)])

    def _predict(self, features: pd.DataFrame, as_of: Any) -> pd.DataFrame:
        inputs = value_inputs(features)
        days = max(self.horizon, self.model.days)
        X = self.model.inputs(features)  # once for every model
        probs = {w: self.model.p_buy(features, w, X) for w in self.model.windows}
        out: dict[str, Any] = {"p_alive": np.full(len(features), np.nan)}
        stretch = self.stretch(inputs)
        if days not in probs:  # no purchase in the checked days, then none in the rest
            quiet = 1.0 - probs[self.model.days]
            probs[days] = 1.0 - quiet ** stretch
        for w in WINDOWS:
            out[f"p_buy_{w}"] = probs.get(w, np.full(len(features), np.nan))
        out["expected_orders"] = self.model.expected(features, X) * stretch
        ahead = boosted.days_to_half(probs, len(features))
        out["next_order_date"] = (ahead if as_of is None else
                                  (pd.Timestamp(as_of)
                                   + pd.to_timedelta(ahead, unit="D")).normalize())
        if self.spend is not None:
            value = order_value(self.spend_model, self.spend, inputs)
            out["expected_order_value"] = value
            # purchases spread over the days: discounted from the middle of the span
            out["clv"] = (value * out["expected_orders"]
                          / (1 + self.discount_rate) ** (days / 2 / 365))
        else:
            out["expected_order_value"] = out["clv"] = np.full(len(features), np.nan)
        out["churn_risk"] = 1.0 - probs[days]
        return pd.DataFrame({name: (np.round(v, _DIGITS[name]) if name in _DIGITS else v)
                             for name, v in ((c, out[c]) for c in COLUMNS)},
                            index=features.index, copy=False)


def value_inputs(features: pd.DataFrame) -> pd.DataFrame:
    """The models' inputs from the customer features, in days: ``x`` repeat purchases
    (purchase days after the first), ``t_x`` days from the first to the last purchase,
    ``T`` days from the first purchase to the end of the observation (the day before the
    as-of date), ``m`` the mean value of the repeat purchases, ``n`` the purchase days and
    ``v`` the mean value of a purchase day."""
    n = features["purchase_days"].astype(float)
    return pd.DataFrame({
        "x": n - 1,
        "t_x": (features["tenure"] - features["recency"]).astype(float),
        "T": features["tenure"].astype(float) - 1,
        "m": pd.to_numeric(features.get("repeat_purchase_value"), errors="coerce"),
        "n": n,
        "v": pd.to_numeric(features["monetary"], errors="coerce") / n,
    }, index=features.index, copy=False)


def empty_columns(index: pd.Index) -> pd.DataFrame:
    """The :data:`COLUMNS`, empty (no trusted model)."""
    return pd.DataFrame({c: np.full(len(index), np.nan) for c in COLUMNS}, index=index)


#: Silent for this many of his own typical gaps between purchases: overdue.
OVERDUE_GAPS = 3


@dataclass(frozen=True)
class AtRisk:
    """Who counts as at risk: a churn risk of ``threshold`` or more; or, from
    ``overdue_risk`` on, a customer silent for :data:`OVERDUE_GAPS` of his own typical
    gaps between purchases (his history says he has lapsed, the model that he is riskier
    than the average customer)."""

    threshold: float
    overdue_risk: float | None = None

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        risk = frame["churn_risk"]
        out = risk >= self.threshold
        if self.overdue_risk is not None and "mean_days_between_orders" in frame:
            gap = pd.to_numeric(frame["mean_days_between_orders"], errors="coerce")
            overdue = frame["recency"] >= OVERDUE_GAPS * gap
            out |= overdue & (risk >= self.overdue_risk)
        return out

    @property
    def words(self) -> str:
        text = f"churn risk {self.threshold:.0%} or more"
        if self.overdue_risk is not None:
            text += (f", or silent for {OVERDUE_GAPS} of their own gaps between purchases "
                     f"with a churn risk of {self.overdue_risk:.0%} or more")
        return text


def group_value(frame: pd.DataFrame, rule: AtRisk) -> dict[str, Any]:
    """Predicted value of a group of customers (rows with the :data:`COLUMNS`); the value
    sums over the ``valued`` customers, those with a ``clv``; the 10-90% interval of the
    group's value and orders is the bootstrap's over its customers (its normal limit)."""
    clv_ = frame["clv"]
    risk = rule.mask(frame)
    valued = int(clv_.notna().sum())
    return {"customers": len(frame), "valued": valued,
            "predicted_value": round(float(clv_.sum()), 2),
            "mean_predicted_value": round(float(clv_.mean()), 2) if valued else None,
            "expected_orders": round(float(frame["expected_orders"].sum()), 2),
            "at_risk": int(risk.sum()),
            "at_risk_value": round(float(clv_[risk].sum()), 2),
            "value_interval": _interval(clv_.dropna().to_numpy(dtype=float)),
            "orders_interval": _interval(frame["expected_orders"].dropna()
                                         .to_numpy(dtype=float))}


#: The 10% and 90% quantiles of a standard normal.
_Z90 = 1.2815515655446004


def _interval(values: np.ndarray) -> list[float] | None:
    """The 10-90% interval of a sum over these customers, resampled: the bootstrap's normal
    limit, ``n mean +- z sqrt(n) sd``."""
    if len(values) < 2:
        return None
    n, total, sd = len(values), float(values.sum()), float(values.std(ddof=1))
    half = _Z90 * np.sqrt(n) * sd
    return [round(float(max(total - half, 0.0)), 2), round(float(total + half), 2)]
