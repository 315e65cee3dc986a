"""The value models checked on the data's own past, and chosen by it.

Every candidate is fitted on the customers as they were at a split date before the as-of
date, predicts the days from the split to the as-of date, and is compared with what
happened, beside a baseline that needs no model (recency and frequency ranks, and each
customer's past rate of purchase days carried forward). The candidate that ranks best who
bought again (ROC AUC; within :data:`TIE`, the best fit to the history) wins, unless
its fit is degenerate (:func:`degeneracies`) or it ranks worse than the baseline: then no
prediction is shown, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from custseg.core.exceptions import DataError
from custseg.core.threads import pooled
from custseg.prep.boosted import PAIRED_FROM
from custseg.prep.clv import Fit, frequency_value_correlation
from custseg.prep.predict import (
    PURCHASES,
    SPENDS,
    Purchases,
    fit_purchases,
    fit_spend,
    order_value,
)

#: The learned (discriminative) models' names in words (prep/boosted.py).
LEARNED = {"boosted": "gradient-boosted trees", "linear": "logistic regression"}
BOOSTED = LEARNED["boosted"]

#: AUCs this close are a tie, which the fit to the history decides (on lines drawn from
#: BG/NBD, MBG/NBD or Pareto/NBD the AUCs differ by less than this, and the likelihood
#: picks the model they were drawn from; tests/test_holdout.py).
TIE = 0.005
#: A rate's Gamma shape above this: customers' rates differ by under 10% (1 / sqrt(r)).
ALIKE = 100.0
#: Parameters beyond these (after a fit on the log scale) sit on the likelihood's flat edge.
EDGE = (1e-5, 1e6)
#: Gamma-Gamma's assumption: order count and value independent; beyond this, not trusted.
CORRELATED = 0.3


def typical_gap(inputs: pd.DataFrame) -> float | None:
    """The median over repeat buyers of their mean days between purchases."""
    repeat = inputs[inputs["x"] > 0]
    return float((repeat["t_x"] / repeat["x"]).median()) if len(repeat) else None


def holdout_days(inputs: pd.DataFrame, horizon: int) -> tuple[int | None, str | None]:
    """The days held out: the horizon, shortened to a third of the history where that is
    short (so the boosted model can learn from the same span once more before it), never
    below two typical gaps between purchases; None with the reason when the history cannot
    spare that and still leave as much to fit on."""
    span = int(inputs["T"].max()) + 1 if len(inputs) else 0
    gap = typical_gap(inputs)
    if gap is None:
        return None, "no customer bought twice, so no model of repeat purchases can be checked"
    floor = int(np.ceil(2 * max(gap, 1.0)))
    days = min(horizon, max(floor, span // 3))
    if span - days < floor:
        return None, (f"the history ({span:,} days) is too short to hold out two typical "
                      f"gaps between purchases ({floor:,} days) and fit on the rest, so "
                      "no prediction could be checked on it")
    return days, None


def degeneracies(model: str, fit: Fit, span: float) -> list[str]:
    """What makes a fit unfit to show, in words (empty: nothing)."""
    p = fit.params
    out = [] if fit.converged else ["the fit did not converge"]
    if model in ("bgnbd", "mbgnbd"):
        leave = p["a"] / (p["a"] + p["b"])
        if leave < 0.005:
            out.append(f"no dropout: the chance of leaving after a purchase is {leave:.2%} "
                       f"(a = {p['a']:.3g}), so no silence, however long, reads as gone")
    elif model == "pnbd":
        gone = 1 - (p["beta"] / (p["beta"] + span)) ** p["s"]
        if gone < 0.01:
            out.append(f"no dropout: {gone:.2%} of customers would leave within the whole "
                       f"history ({span:,.0f} days), so no silence reads as gone")
    if model in PURCHASES and p["r"] > ALIKE:
        out.append(f"no difference between customers: purchase rates differ by under "
                   f"{1 / np.sqrt(p['r']):.0%} (r = {p['r']:.3g}), so every customer gets "
                   "about the same prediction")
    if model == "gamma_gamma" and p["q"] <= 1:
        out.append(f"spend with no finite mean (q = {p['q']:.2f} <= 1): customers without a "
                   "repeat purchase would get no value")
    if model != "lognormal":
        # Pareto/NBD's dropout rates alike (s > ALIKE) are a finding, not a flaw: the
        # likelihood is flat along s / beta, the mean rate it determines, and P(alive)
        # still reads each customer's own silence
        alike = model == "pnbd" and p["s"] > ALIKE
        edge = [f"{k} = {v:.3g}" for k, v in p.items() if not EDGE[0] < v < EDGE[1]
                and not (alike and k in ("s", "beta"))]
        if edge:
            out.append(f"a fit on the boundary ({', '.join(edge)}): the likelihood is flat "
                       "there, so the parameter is not determined by the data")
    return out


@dataclass
class Candidate:
    """One model as checked on the holdout."""

    role: str  # "purchases" or "spend"
    model: str  # a key of PURCHASES or SPENDS
    fit: Fit | None = None
    problems: list[str] = field(default_factory=list)
    auc: float | None = None
    predicted_orders: float | None = None
    mse: float | None = None  # purchases: mean squared error of each customer's purchases
    value_error: float | None = None  # spend: mean absolute error per purchase, relative
    chosen: bool = False

    @property
    def name(self) -> str:
        return {**PURCHASES, **SPENDS, **LEARNED}[self.model]

    @property
    def usable(self) -> bool:
        return self.fit is not None and not self.problems


@dataclass
class Selection:
    """The holdout's verdict: every candidate's scores, the baseline's, the winners (None:
    no prediction to show, with ``reason``) and the table by decile of prediction."""

    days: int
    customers: int
    buyers: int
    actual_orders: float
    actual_revenue: float
    baseline_auc: float | None
    baseline_orders: float
    candidates: list[Candidate]
    purchases: str | None = None
    spend: str | None = None
    predicted_orders: float | None = None
    predicted_revenue: float | None = None
    deciles: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    verdict: str = ""


def auc(bought: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of ``score`` for "bought again" (None when everyone or no one did): the
    Mann-Whitney statistic on mid-ranks, as scikit-learn's ``roc_auc_score`` gives it
    (tests/test_holdout.py) with one sort instead of its curve, on millions of customers
    (pandas' ranks: scipy.stats alone takes 0.7 s to import, on every run)."""
    bought = np.asarray(bought, dtype=bool)
    if bought.all() or not bought.any() or not np.isfinite(score).all():
        return None
    pos = int(bought.sum())
    neg = len(bought) - pos
    ranks = pd.Series(score).rank().to_numpy()
    return round(float((ranks[bought].sum() - pos * (pos + 1) / 2) / pos / neg), 4)


def auc_error(value: float, bought: np.ndarray) -> float:
    """The standard error of an AUC (Hanley and McNeil 1982)."""
    pos = int(np.sum(bought))
    neg = len(bought) - pos
    q1, q2 = value / (2 - value), 2 * value * value / (1 + value)
    var = (value * (1 - value) + (pos - 1) * (q1 - value * value)
           + (neg - 1) * (q2 - value * value)) / max(pos * neg, 1)
    return float(np.sqrt(max(var, 0.0)))


def baseline_score(calibration: pd.DataFrame) -> np.ndarray:
    """Recency and frequency ranks: the more orders and the more recent, the higher."""
    return (calibration["frequency"].rank().to_numpy()
            + (-calibration["recency"]).rank().to_numpy())


def select(calibration: pd.DataFrame, inputs: pd.DataFrame, orders: np.ndarray,
           revenue: np.ndarray, days: int, models: tuple[str, ...],
           learned: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]] | str] | None = None,
           spends: tuple[str, ...] = tuple(SPENDS), keep_degenerate: bool = False
           ) -> Selection:
    """Fit each purchase model of ``models`` and each spend model on the customers as at
    the split (``calibration`` their features, ``inputs`` their :func:`value_inputs`),
    predict the ``days`` after it, and compare with each one's purchase days ``orders`` and
    ``revenue`` there. ``learned`` gives, per learned model (a key of :data:`LEARNED`), its
    P(a purchase) and expected purchases of the same customers, trained before the split (a
    string: why there is none). ``spends``: the spend models to check; ``keep_degenerate``:
    a degenerate fit may still win (a backtest of one model the user chose), its problems
    named."""
    bought = orders > 0
    span = float(inputs["T"].max()) + 1
    rate = calibration["purchase_days"].to_numpy(float) / calibration["tenure"].clip(lower=1)
    out = Selection(days=days, customers=len(inputs), buyers=int(bought.sum()),
                    actual_orders=float(orders.sum()), actual_revenue=float(revenue.sum()),
                    baseline_auc=auc(bought, baseline_score(calibration)),
                    baseline_orders=round(float((rate * days).sum()), 2), candidates=[])
    x, t_x, T = (inputs[c].to_numpy(float) for c in ("x", "t_x", "T"))

    def purchase_models() -> list[tuple[Candidate, np.ndarray | None]]:
        found = []
        for model in models:
            cand = _fitted("purchases", model, lambda m=model: fit_purchases(m, inputs), span)
            found.append((cand, None))
            if cand.fit is None:
                continue
            fitted = Purchases(model, cand.fit.params)
            alive = fitted.p_alive(x, t_x, T) if model == "pnbd" else None  # once: costly
            found[-1] = (cand, fitted.expected(days, x, t_x, T, alive))
            cand.auc = auc(bought, fitted.p_buy(days, x, t_x, T, alive))
        return found

    def learned_models() -> list[tuple[Candidate, np.ndarray | None]]:
        found = []
        for kind, predictions in (learned or {}).items():
            cand = Candidate("purchases", kind)
            found.append((cand, None))
            if isinstance(predictions, str):
                cand.problems.append(f"not trained: {predictions}")
                continue
            p_buy, predicted = predictions()
            found[-1] = (cand, predicted)
            cand.fit = Fit(params={}, log_likelihood=float("nan"), converged=True,
                           seconds=0.0, customers=len(inputs))
            if np.unique(np.round(p_buy, 6)).size < 2:
                cand.problems.append("no difference between customers: every customer "
                                     "gets the same prediction")
            cand.auc = auc(bought, p_buy)
        return found

    # The purchase models' fits (NumPy, mostly one core) and the learned models' training
    # (trees) side by side, from as many customers as a training pairs its own fits at
    # (boosted.PAIRED_FROM; 10M synthetic lines: the value stage 5.92 s to 5.52 s); each
    # candidate is its own, seeded.
    trains = any(callable(p) for p in (learned or {}).values())
    parts = pooled(lambda part: part(), [purchase_models, learned_models],
                   2 if trains and len(inputs) >= PAIRED_FROM else 1)
    expected: dict[str, np.ndarray] = {}
    for cand, predicted in (found for part in parts for found in part):
        out.candidates.append(cand)
        if predicted is not None:
            expected[cand.model] = predicted
            cand.predicted_orders = round(float(predicted.sum()), 2)
            cand.mse = round(float(((predicted - orders) ** 2).mean()), 6)
    winner = _winner([c for c in out.candidates if c.role == "purchases"
                      and (c.usable or keep_degenerate and c.fit is not None)])
    if winner is None:
        out.reason = _none_usable(out.candidates)
        return _worded(out)
    if (winner.auc is not None and out.baseline_auc is not None
            and winner.auc < out.baseline_auc - TIE):
        out.reason = (f"no model ranked who bought in the last {days:,} days better than "
                      f"recency and frequency alone ({winner.name}: AUC {winner.auc:.3f}, "
                      f"the ranks: {out.baseline_auc:.3f})")
        return _worded(out)
    if winner.auc is not None and winner.auc - 2 * auc_error(winner.auc, bought) <= 0.5:
        out.reason = (f"no model ranked who bought in the last {days:,} days better than "
                      f"chance ({winner.name}: AUC {winner.auc:.3f}, within two standard "
                      f"errors of 0.5 on {len(bought):,} customers): the history does not "
                      "tell who comes back")
        return _worded(out)
    winner.chosen, out.purchases = True, winner.model
    out.predicted_orders = winner.predicted_orders
    values = _spend(out, inputs, orders, revenue, span, spends)
    predicted = expected[winner.model]
    out.predicted_revenue = (None if values is None
                             else round(float(np.nansum(predicted * values)), 2))
    out.deciles = deciles(predicted, orders, revenue, values)
    return _worded(out)


def _fitted(role: str, model: str, fit, span: float) -> Candidate:
    cand = Candidate(role, model)
    try:
        cand.fit = fit()
    except (DataError, FloatingPointError, ValueError) as exc:
        cand.problems.append(f"no fit: {exc}")
        return cand
    cand.problems.extend(degeneracies(model, cand.fit, span))
    return cand


def _winner(usable: list[Candidate]) -> Candidate | None:
    """The best AUC; within :data:`TIE` of it, the likelihood models' best fit to the
    history (all have four parameters, so the log-likelihood compares them as AIC or BIC
    would), else the least squared error."""
    if not usable:
        return None
    ranked = [c for c in usable if c.auc is not None]
    best = max((c.auc for c in ranked), default=None)
    near = [c for c in ranked if c.auc >= best - TIE] if ranked else usable
    fitted = [c for c in near if np.isfinite(c.fit.log_likelihood)]
    if fitted:
        return max(fitted, key=lambda c: c.fit.log_likelihood)
    return min(near, key=lambda c: np.inf if c.mse is None else c.mse)


def _none_usable(candidates: list[Candidate]) -> str:
    said = "; ".join(f"{c.name}: {', '.join(c.problems)}" for c in candidates
                     if c.role == "purchases")
    return f"no purchase model's fit can be shown ({said})"


def _spend(out: Selection, inputs: pd.DataFrame, orders: np.ndarray, revenue: np.ndarray,
           span: float, spends: tuple[str, ...]) -> np.ndarray | None:
    """Fit the spend models, score each on the holdout buyers' value per purchase and
    choose; the winner's values per customer (None: no usable spend model)."""
    buyers = (orders > 0) & (revenue > 0)
    actual = np.where(buyers, revenue / np.maximum(orders, 1), np.nan)
    best, best_values = None, None
    for model in spends:
        cand = _fitted("spend", model, lambda m=model: fit_spend(m, inputs), span)
        out.candidates.append(cand)
        if model == "gamma_gamma" and cand.fit is not None:
            rho = frequency_value_correlation(inputs[(inputs["x"] > 0) & (inputs["m"] > 0)])
            if abs(rho) > CORRELATED:
                cand.problems.append(
                    f"order count and value correlated (rho {rho:.2f}), which Gamma-Gamma "
                    "assumes they are not")
        if cand.fit is None:
            continue
        values = order_value(model, cand.fit.params, inputs)
        weight = orders[buyers]
        miss = np.abs(values[buyers] - actual[buyers])
        cand.value_error = (round(float((weight * miss).sum()
                                        / (weight * actual[buyers]).sum()), 4)
                            if buyers.any() and np.isfinite(miss).all() else None)
        if cand.usable and (best is None or _worse(best, cand)):
            best, best_values = cand, values
    if best is None:
        return None
    best.chosen, out.spend = True, best.model
    return best_values


def _worse(best: Candidate, other: Candidate) -> bool:
    a = np.inf if best.value_error is None else best.value_error
    b = np.inf if other.value_error is None else other.value_error
    return b < a


def deciles(predicted: np.ndarray, orders: np.ndarray, revenue: np.ndarray,
            values: np.ndarray | None) -> list[dict[str, Any]]:
    """Predicted against actual purchases (and revenue) by decile of predicted purchases,
    the highest first."""
    if len(predicted) < 10:
        return []
    rank = pd.Series(predicted).rank(method="first", ascending=False).to_numpy()
    group = np.minimum(((rank - 1) * 10 // len(predicted)).astype(int), 9)
    rows = []
    for g in range(10):
        mask = group == g
        rows.append({
            "decile": g + 1, "customers": int(mask.sum()),
            "predicted_orders": round(float(predicted[mask].sum()), 2),
            "actual_orders": round(float(orders[mask].sum()), 2),
            "buyers": int((orders[mask] > 0).sum()),
            "predicted_revenue": (None if values is None else
                                  round(float(np.nansum(predicted[mask] * values[mask])), 2)),
            "actual_revenue": round(float(revenue[mask].sum()), 2)})
    return rows


def _worded(out: Selection) -> Selection:
    """The verdict in one sentence a marketer reads."""
    ranked = sorted((c for c in out.candidates if c.role == "purchases" and c.auc is not None),
                    key=lambda c: -c.auc)
    scores = ", ".join(f"{c.name} {c.auc:.3f}" + (" (not shown: degenerate)" if c.problems
                                                   else "") for c in ranked)
    base = ("" if out.baseline_auc is None
            else f"; recency and frequency ranks {out.baseline_auc:.3f}")
    if out.purchases is None:
        out.verdict = (f"Checked on the last {out.days:,} days (AUC for buying again: "
                       f"{scores or 'none'}{base}): {out.reason}.")
        return out
    chosen = next(c for c in out.candidates if c.chosen and c.role == "purchases")
    change = (out.predicted_orders or 0) / max(out.actual_orders, 1) - 1
    out.verdict = (f"{chosen.name} would have predicted the last {out.days:,} days best "
                   f"(AUC for buying again: {scores}{base}); it predicted "
                   f"{out.predicted_orders:,.0f} purchases against {out.actual_orders:,.0f} "
                   f"that happened ({change:+.0%}).")
    return out
