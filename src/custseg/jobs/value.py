"""The value step of a run: the value models checked on the data's own past and chosen by
it (:mod:`custseg.prep.holdout`), the winners refitted on all of it to predict each
customer and group of customers, with the ``clv`` block of ``summary.json``; and the
backtest of a split the user chooses (:func:`backtest_on`)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from custseg.core import summary as sm
from custseg.core.config import Config
from custseg.core.exceptions import DataError, InputError
from custseg.core.money import money
from custseg.engines import Engine
from custseg.engines.base import default_as_of, purchases, timestamp
from custseg.io import Source
from custseg.io._parse import q
from custseg.outputs.rundir import atomic_file
from custseg.prep import boosted, season
from custseg.prep.clv import frequency_value_correlation
from custseg.prep.holdout import (
    LEARNED,
    Selection,
    auc,
    baseline_score,
    degeneracies,
    holdout_days,
    select,
    typical_gap,
)
from custseg.prep.predict import (
    COLUMNS,
    PURCHASES,
    SPENDS,
    AtRisk,
    BoostedValues,
    Purchases,
    ValueModels,
    empty_columns,
    fit_purchases,
    fit_spend,
    group_value,
    value_inputs,
)

#: Calibration frequencies (repeat purchases) shown one by one in a backtest; more are
#: grouped as "7+".
GROUPS = 7

#: Why a customer table read alone has no predicted value.
NO_ORDERS = ("a customer table alone has no order history, which the value models (BG/NBD, "
             "Pareto/NBD, Gamma-Gamma) are fitted on; pass the order lines, with this table "
             "as --customers, to predict value")


@dataclass(frozen=True)
class Past:
    """The customers as they were at ``split`` (their features) and what each did from
    then to the as-of date (``labels``, by customer id: purchase days within 30, 90 and
    ``days`` days, ``w30``, ``w90``, ``w{days}``, and ``revenue``); the same one holdout
    earlier (``before``: features as at ``split - days``, labels from then to ``split``)
    for training the boosted model; or only the ``reason`` there is no such check."""

    split: dt.date | None = None
    days: int | None = None
    calibration: pd.DataFrame | None = None
    labels: pd.DataFrame | None = None
    before: tuple[pd.DataFrame, pd.DataFrame] | None = None
    reason: str | None = None
    daily: pd.Series | None = None  # purchase days by date, the whole history
    customers: int | None = None  # at the split: ``calibration`` is a sample when fewer

    def index(self, start: dt.date, days: int) -> float:
        """The seasonal index of ``days`` days from ``start`` (1 where unknown)."""
        value = None if self.daily is None else season.index(self.daily, start, days)
        return 1.0 if value is None else value

    @property
    def orders(self) -> np.ndarray:
        """Each calibration customer's purchase days after the split."""
        return self._label(f"w{self.days}")

    @property
    def revenue(self) -> np.ndarray:
        return self._label("revenue")

    def _label(self, column: str) -> np.ndarray:
        ids = self.calibration["customer_id"]
        return ids.map(self.labels[column]).fillna(0).to_numpy(dtype=float)


def window_labels(engine: Engine, start: dt.date, days: int, customers: str | None = None
                  ) -> pd.DataFrame:
    """Per customer with a purchase in the ``days`` from ``start`` (of those in the
    registered table ``customers`` when given): his purchase days within 30, 90 and
    ``days`` days (``w30``, ``w90``, ``w{days}``) and his revenue."""
    end = start + dt.timedelta(days=days)
    windows = ",\n".join(
        f"count(DISTINCT CASE WHEN invoice_date < {timestamp(start + dt.timedelta(days=w))} "
        f"THEN CAST(invoice_date AS DATE) END) AS w{w}" for w in (30, 90) if w < days)
    among = (f"AND customer_id IN (SELECT customer_id FROM {q(customers)})"
             if customers else "")
    source, money = purchases(engine)
    return engine.query(
        f"""SELECT customer_id, {windows + ',' if windows else ''}
                   count(DISTINCT CAST(invoice_date AS DATE)) AS w{days},
                   CAST({money} AS DOUBLE) AS revenue
            FROM {source}
            WHERE status = 'purchase' AND invoice_date >= {timestamp(start)}
              AND invoice_date < {timestamp(end)} {among}
            GROUP BY customer_id""").set_index("customer_id")


def labelled(features: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``labels`` in the order of ``features``' customers (0 for those without)."""
    return (labels.reindex(features["customer_id"].to_numpy()).fillna(0)
            .reset_index(drop=True))


def past_of(engine: Engine, feats: pd.DataFrame, as_of: dt.date, config: Config,
            has_products: bool, has_discounts: bool) -> Past:
    """The holdout of a run: the last days of the data (:func:`holdout_days`) held back,
    and the same span before them when the history has customers there."""
    days, reason = holdout_days(value_inputs(feats), config.clv.horizon)
    if days is None:
        return Past(reason=reason)
    split = as_of - dt.timedelta(days=days)
    cut = split - dt.timedelta(days=days)
    tenure = pd.to_numeric(feats["tenure"], errors="coerce")
    customers = int((tenure > days).sum())  # a first purchase before the split
    with _checked_customers(engine, feats["customer_id"][tenure > days], "split") as ids:
        calibration = _sampled(engine.features(split, has_products,
                                               has_discounts=has_discounts, customers=ids))
        labels = window_labels(engine, split, days, ids)
    with _checked_customers(engine, feats["customer_id"][tenure > 2 * days], "cut") as ids:
        earlier = _sampled(engine.features(cut, has_products, has_discounts=has_discounts,
                                           customers=ids))
        before = None
        if len(earlier) >= config.clv.min_repeat_buyers:
            before = (earlier, labelled(earlier, window_labels(engine, cut, days, ids)))
    daily = None
    if days < season.YEAR:  # a holdout of a year or more holds every season: no index
        # the distinct (day, customer) first, then counted: a plain aggregate DuckDB can
        # spill, and faster than count(DISTINCT) per day (23M orders: 4.4-6.4 s, 7.1-7.6 s)
        found = engine.query(
            f"""SELECT day, count(*) AS n FROM (
                    SELECT DISTINCT CAST(invoice_date AS DATE) AS day, customer_id
                    FROM {purchases(engine)[0]} WHERE status = 'purchase') AS days
                GROUP BY day""")
        daily = pd.Series(found["n"].to_numpy(float),
                          index=pd.to_datetime(found["day"])).sort_index()
    return Past(split=split, days=days, calibration=calibration, labels=labels,
                before=before, daily=daily, customers=customers)


def predict_value(feats: pd.DataFrame, config: Config, past: Past | None = None,
                  as_of: dt.date | None = None
                  ) -> tuple[pd.DataFrame, sm.Clv, ValueModels | None]:
    """The customer features with the :data:`~custseg.prep.predict.COLUMNS` added (empty,
    with the reason in the block, when no model passed the check on ``past``), the ``clv``
    block and the fitted models."""
    with boosted.threads(len(feats)):
        return _predict_value(feats, config, past, as_of)


def _predict_value(feats: pd.DataFrame, config: Config, past: Past | None,
                   as_of: dt.date | None) -> tuple[pd.DataFrame, sm.Clv, ValueModels | None]:
    c = config.clv
    inputs = value_inputs(feats)
    repeat = int((inputs["x"] > 0).sum())
    warnings: list[str] = []
    selection, holdout, reason = None, None, None
    if repeat < c.min_repeat_buyers:
        reason = (f"only {repeat:,} customers bought more than once, fewer than the "
                  f"{c.min_repeat_buyers:,} the value models need (clv.min_repeat_buyers); "
                  "the value columns are left empty")
    elif past is None or past.calibration is None:
        reason = ("no prediction is shown untested, and " + (past.reason if past else
                  "no holdout was given"))
    else:
        selection, reason = _checked(past, config)
        holdout = _holdout_block(selection, past, reason)
        if past.customers and past.customers > len(past.calibration):
            holdout.sample_of = past.customers
    models, fits = None, {}
    if selection is not None and reason is None and selection.purchases in LEARNED:
        models, fits = _trees(past, inputs, selection, config, warnings,
                              selection.purchases)
    elif selection is not None and reason is None:
        models, fits, reason = _refitted(inputs, selection, config, warnings)
        fallback = next((c for c in sorted(selection.candidates, key=lambda c: -(c.auc or 0))
                         if c.model in LEARNED and c.usable), None)
        if models is None and fallback is not None:
            warnings.append(f"{fallback.name} makes the predictions, the holdout's next "
                            "best.")
            models, fits = _trees(past, inputs, selection, config, warnings, fallback.model)
            reason = None
    if isinstance(models, BoostedValues):
        columns = models.predict(feats, as_of)
    else:
        columns = models.predict(inputs, as_of) if models else empty_columns(feats.index)
    factor = None
    if models is not None and holdout is not None and holdout.season_applied:
        factor = _season_factor(past, selection, as_of, models.horizon)
        columns = _scaled(columns, factor)
        warnings.append(
            f"A yearly cycle: in earlier years the {past.days:,} days before the as-of date "
            f"held {holdout.seasonal_index:.2f} times a flat share of their year's purchases "
            f"(the holdout predicted {selection.predicted_orders:,.0f} purchases flat, "
            f"{holdout.seasonal_orders:,.0f} with the season, against "
            f"{selection.actual_orders:,.0f}); expected orders and CLV over the next "
            f"{models.horizon:,} days are scaled by {factor:.2f}, their window's index.")
    if models is not None:  # a number the arithmetic could not give is left empty, and said
        checked = ["expected_orders", "churn_risk"] + (
            [] if isinstance(models, BoostedValues) else ["p_alive"])
        failed = int(columns[checked].isna().any(axis=1).sum())
        if failed:
            warnings.append(f"The predictions of {failed:,} customers could not be "
                            "computed (numerical overflow); their value columns are empty.")
    out = pd.concat([feats, columns], axis=1)
    rule = AtRisk(c.churn_threshold)
    if models is not None:
        rule, note = at_risk_rule(columns["churn_risk"], c.churn_threshold, models.horizon)
        warnings.extend([note] if note else [])
    buyers = inputs[(inputs["x"] > 0) & (inputs["m"] > 0)]
    block = sm.Clv(
        fitted=models is not None, reason=reason,
        purchases=fits.get("purchases"),
        spend=(_model(SPENDS[models.spend_model], fits.get("spend"))
               if models and models.spend is not None else None),
        frequency_value_correlation=(round(frequency_value_correlation(buyers), 4)
                                     if len(buyers) > 2 else None),
        repeat_buyers=repeat, customers=len(feats),
        horizon_days=models.horizon if models else c.horizon,
        discount_rate=c.discount_rate, churn_threshold=rule.threshold,
        overdue_risk=rule.overdue_risk, time_unit="days",
        columns=dict(COLUMNS), total=value_of(out, rule) if models else None,
        warnings=warnings + ([f"No predicted value: {reason}."] if reason else []),
        holdout=holdout, season_factor=factor)
    return out, block, models if isinstance(models, ValueModels) else None


def _season_factor(past: Past, selection: Selection, as_of: dt.date | None,
                   horizon: int) -> float:
    """The seasonal index of the days predicted, against the chosen model's own (a learned
    model's is its training window's: the held-out days before the as-of date)."""
    start = as_of or past.split + dt.timedelta(days=past.days)
    base = past.index(past.split, past.days) if selection.purchases in LEARNED else 1.0
    return round(past.index(start, horizon) / base, 4)


def _scaled(columns: pd.DataFrame, factor: float) -> pd.DataFrame:
    out = columns.copy()
    for name in ("expected_orders", "clv"):
        out[name] = (out[name] * factor).round(4 if name == "expected_orders" else 2)
    return out


def at_risk_rule(churn_risk: pd.Series, setting: float, days: int
                 ) -> tuple[AtRisk, str | None]:
    """Who counts as at risk (:class:`~custseg.prep.predict.AtRisk`): a churn risk of
    ``setting`` (clv.churn_threshold) or more, lowered where most customers buy within the
    horizon (so that few reach it) to the risk at which a customer's chance of buying is
    half the average customer's; or an overdue customer riskier than the average; with the
    note where the threshold was lowered."""
    mean = float(churn_risk.mean())
    if not np.isfinite(mean):
        return AtRisk(setting), None
    buy, overdue = 1.0 - mean, round(mean, 4)
    if 1.0 - buy / 2 >= setting:
        return AtRisk(setting, overdue), None
    threshold = round(1.0 - buy / 2, 4)
    return AtRisk(threshold, overdue), (
        f"At risk from a churn risk of {threshold:.0%}, not the {setting:.0%} of "
        f"clv.churn_threshold: over the {days:,} days ahead the average customer buys with "
        f"probability {buy:.0%}, so a customer counts as at risk when his chance of buying "
        "is half of that or less.")


def at_risk_of(block: sm.Clv) -> AtRisk:
    """The at-risk rule a run's ``clv`` block records."""
    return AtRisk(block.churn_threshold, block.overdue_risk)


def _trees(past: Past, inputs: pd.DataFrame, selection: Selection, config: Config,
           warnings: list[str], kind: str) -> tuple[BoostedValues, dict[str, Any]]:
    """A learned model trained at the split on what followed it (the spend model refitted
    on all the data), for the customers as at the as-of date."""
    model = boosted.train(past.calibration, labelled(past.calibration, past.labels),
                          past.days, as_of=past.split, label_start=past.split, kind=kind)
    fits: dict[str, Any] = {"purchases": sm.ValueModel(
        name=LEARNED[kind], params={"days": float(past.days),
                                    "features": float(len(model.columns) + 2)},
        log_likelihood=None, converged=True, fit_seconds=0.0,
        customers=len(past.calibration))}
    shape = _shape(selection)
    if past.days < config.clv.horizon:
        pace = (f"at the pace {PURCHASES[shape.model]} (fitted on the same history) gives "
                "each customer" if shape else "at each customer's predicted rate")
        warnings.append(f"The {LEARNED[kind]} model was checked on {past.days:,} days, the "
                        "most the history allows; its predictions over the "
                        f"{config.clv.horizon:,} days of clv.horizon carry on from them "
                        f"{pace}.")
    spend = None
    if selection.spend is not None:
        fit = fit_spend(selection.spend, inputs)
        spend, fits["spend"] = fit.params, fit
    warnings.append(f"The {LEARNED[kind]} model is not stored in model.json; custseg score "
                    "gives segments without predicted value.")
    return BoostedValues(model, spend, config.clv.discount_rate,
                         spend_model=selection.spend or "lognormal",
                         horizon=config.clv.horizon, shape=shape), fits


def _shape(selection: Selection) -> Purchases | None:
    """The likelihood model of the holdout's best AUC with a fit: its time profile carries
    a learned model's predictions past the checked days (a degenerate fit still has one)."""
    fitted = [c for c in selection.candidates
              if c.model in PURCHASES and c.fit is not None and c.auc is not None]
    best = max(fitted, key=lambda c: c.auc, default=None)
    return None if best is None else Purchases(best.model, best.fit.params)


#: Customers the holdout checks the models on at most: past that, a seeded random sample
#: (an AUC on 200,000 customers is within about 0.002 of the whole's).
CHECK_CUSTOMERS = 200_000


def _sampled(features: pd.DataFrame, most: int | None = None, seed: int = 0
             ) -> pd.DataFrame:
    """``features`` with its customers sampled down to ``most`` (:data:`CHECK_CUSTOMERS`
    unless given), in their order."""
    most = CHECK_CUSTOMERS if most is None else most
    if len(features) <= most:
        return features
    return features.iloc[_pick(len(features), most, seed)].reset_index(drop=True)


def _pick(n: int, most: int, seed: int = 0) -> np.ndarray:
    """The positions of a seeded sample of ``most`` of ``n`` rows, in order."""
    return np.sort(np.random.default_rng(seed).choice(n, most, replace=False))


@contextmanager
def _checked_customers(engine: Engine, ids: pd.Series, when: str) -> Iterator[str | None]:
    """The customers the check reads, as a registered table's name: :data:`CHECK_CUSTOMERS`
    of ``ids`` (those with a purchase before the date), the very sample :func:`_sampled`
    draws from their feature table (sorted by id), so that the features and labels of the
    others are never computed (the holdout stage of 102M lines and 5M customers: 46 s before);
    None (every customer) when there are no more than that."""
    if len(ids) <= CHECK_CUSTOMERS:
        yield None
        return
    ordered = ids.sort_values(ignore_index=True)  # 0.35 s for 5M ids, NumPy's 2 s
    name = f"custseg_check_{when}"
    engine.register(name, pd.DataFrame(
        {"customer_id": ordered.iloc[_pick(len(ordered), CHECK_CUSTOMERS)].to_numpy()}))
    try:
        yield name
    finally:
        engine.unregister(name)


def _checked(past: Past, config: Config) -> tuple[Selection, str | None]:
    """The candidates of ``clv.model`` checked on the holdout, and why none is shown."""
    c = config.clv
    inputs = value_inputs(past.calibration)
    repeat = int((inputs["x"] > 0).sum())
    models = (tuple(PURCHASES) if c.model == "auto" else
              () if c.model in LEARNED else (c.model,))
    if repeat < c.min_repeat_buyers:
        selection = Selection(days=past.days, customers=len(inputs),
                              buyers=int((past.orders > 0).sum()),
                              actual_orders=float(past.orders.sum()),
                              actual_revenue=float(past.revenue.sum()), baseline_auc=None,
                              baseline_orders=0.0, candidates=[])
        reason = (f"as at {past.split} only {repeat:,} customers had bought more than once, "
                  f"fewer than the {c.min_repeat_buyers:,} needed to check the value models "
                  "on the later days (clv.min_repeat_buyers)")
        selection.reason = reason
        selection.verdict = f"Not checked: {reason}."
        return selection, reason
    learned = {kind: _learned_check(past, kind) for kind in LEARNED
               if c.model in ("auto", kind)}
    selection = select(past.calibration, inputs, past.orders, past.revenue, past.days, models,
                       learned=learned, spends=_spends(config))
    return selection, selection.reason


def _holdout_season(past: Past, selection: Selection) -> dict[str, Any]:
    """The holdout's seasonal index against the chosen model's (a learned model's: its
    training window's, one holdout earlier), the prediction with it, and whether it
    applies (:func:`custseg.prep.season.seasonal`)."""
    if selection.purchases is None or selection.predicted_orders is None:
        return {}
    held = None if past.daily is None else season.index(past.daily, past.split, past.days)
    if held is None:
        return {}
    if selection.purchases in LEARNED:
        held /= past.index(past.split - dt.timedelta(days=past.days), past.days)
    held = round(held, 4)
    return {"seasonal_index": held,
            "seasonal_orders": round(selection.predicted_orders * held, 2),
            "season_applied": season.seasonal(held, selection.predicted_orders,
                                              selection.actual_orders)}


def _spends(config: Config) -> tuple[str, ...]:
    model = config.clv.spend_model
    return tuple(SPENDS) if model == "auto" else (model,)


def _learned_check(past: Past, kind: str):
    """A learned model trained one holdout before the split, as a function giving its
    predictions for the customers as at the split; or why it cannot be trained."""
    if past.before is None:
        return (f"too few customers before {past.split - dt.timedelta(days=past.days)} to "
                f"learn from (the history is shorter than two holdouts of {past.days:,} "
                "days)")
    earlier, labels = past.before
    cut = past.split - dt.timedelta(days=past.days)
    if kind == "boosted" and len(earlier) < boosted.MIN_ROWS:
        return (f"only {len(earlier):,} customers before {cut} to learn from; trees need "
                f"{boosted.MIN_ROWS:,} (the logistic regression stands in)")

    def check() -> tuple[np.ndarray, np.ndarray]:
        model = boosted.train(earlier, labels, past.days, as_of=cut, label_start=cut,
                              kind=kind, windows=False)
        X = model.inputs(past.calibration)
        return (model.p_buy(past.calibration, past.days, X),
                model.expected(past.calibration, X))
    return check


def _refitted(inputs: pd.DataFrame, selection: Selection, config: Config,
              warnings: list[str]) -> tuple[ValueModels | None, dict[str, Any], str | None]:
    """The holdout's winners refitted on all the data; a refit that turns degenerate gives
    way to the next usable candidate of the holdout, in its order."""
    span = float(inputs["T"].max()) + 1
    order = [selection.purchases] + [
        c.model for c in sorted((c for c in selection.candidates
                                 if c.model in PURCHASES and c.usable and not c.chosen),
                                key=lambda c: -(c.auc or 0))]
    fits: dict[str, Any] = {}
    chosen = None
    for model in order:
        try:
            fit = fit_purchases(model, inputs)
        except DataError as exc:
            warnings.append(f"{PURCHASES[model]} refitted on all the data failed: {exc}")
            continue
        problems = degeneracies(model, fit, span)
        if not problems:
            chosen, fits["purchases"] = model, fit
            break
        warnings.append(f"{PURCHASES[model]} refitted on all the data is degenerate ("
                        f"{'; '.join(problems)}); it is not used.")
    if chosen is None:
        return None, fits, ("no purchase model stays fit to show when refitted on all the "
                            "data; the value columns are left empty")
    if chosen != selection.purchases:
        warnings.append(f"{PURCHASES[chosen]} makes the predictions, the holdout's next best.")
    raw = fits["purchases"]
    fits["purchases"] = _model(PURCHASES[chosen], raw)
    spend_params, spend_model = None, selection.spend or "gamma_gamma"
    if selection.spend is not None:
        try:
            fit = fit_spend(selection.spend, inputs)
            problems = degeneracies(selection.spend, fit, span)
            if problems:
                warnings.append(f"{SPENDS[selection.spend]} refitted on all the data is "
                                f"degenerate ({'; '.join(problems)}); expected_order_value "
                                "and clv are left empty.")
            else:
                spend_params, fits["spend"] = fit.params, fit
        except DataError as exc:
            warnings.append(f"No spend model: {exc}; expected_order_value and clv are left "
                            "empty.")
    else:
        warnings.append("No spend model passed the holdout; expected_order_value and clv are "
                        "left empty.")
    c = config.clv
    return ValueModels(raw.params, spend_params, c.horizon, c.discount_rate,
                       model=chosen, spend_model=spend_model), fits, None


def _holdout_block(selection: Selection, past: Past, reason: str | None) -> sm.Holdout:
    return sm.Holdout(
        split=past.split.isoformat(), days=past.days, customers=selection.customers,
        buyers=selection.buyers, actual_orders=round(selection.actual_orders, 2),
        actual_revenue=round(selection.actual_revenue, 2),
        predicted_orders=selection.predicted_orders,
        predicted_revenue=selection.predicted_revenue, baseline_auc=selection.baseline_auc,
        baseline_orders=selection.baseline_orders,
        typical_gap_days=_rounded(typical_gap(value_inputs(past.calibration))),
        candidates=[sm.ModelCheck(
            role=c.role, name=c.name, chosen=c.chosen,
            params=None if c.fit is None else {k: round(v, 6) for k, v in c.fit.params.items()},
            problems=list(c.problems), auc=c.auc, predicted_orders=c.predicted_orders, mse=c.mse,
            value_error=c.value_error) for c in selection.candidates],
        deciles=[sm.Decile(**row) for row in selection.deciles],
        verdict=selection.verdict, reason=reason, **_holdout_season(past, selection))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def unavailable(config: Config, reason: str = NO_ORDERS) -> sm.Clv:
    """The ``clv`` block of a run without predicted value, saying why."""
    c = config.clv
    return sm.Clv(fitted=False, reason=reason, purchases=None, spend=None,
                  frequency_value_correlation=None, repeat_buyers=0, customers=0,
                  horizon_days=c.horizon, discount_rate=c.discount_rate,
                  churn_threshold=c.churn_threshold, time_unit="days", columns=dict(COLUMNS),
                  total=None, warnings=[])


def _model(name: str, fit) -> sm.ValueModel | None:
    if fit is None:
        return None
    return sm.ValueModel(name=name, params={k: round(v, 6) for k, v in fit.params.items()},
                         log_likelihood=round(fit.log_likelihood, 4), converged=fit.converged,
                         fit_seconds=fit.seconds, customers=fit.customers)


def value_of(customers: pd.DataFrame, rule: AtRisk) -> sm.SegmentValue:
    """The predicted value of a group of customers."""
    return sm.SegmentValue(**group_value(customers, rule))


def values_by(customers: pd.DataFrame, column: str, rule: AtRisk
              ) -> dict[Any, sm.SegmentValue]:
    """The predicted value of each group of ``column`` (customers with the columns)."""
    read = [c for c in dict.fromkeys((column, "clv", "expected_orders", "churn_risk",
                                      "mean_days_between_orders", "recency"))
            if c in customers]  # each group's rows of these only, not of every column
    return {key: value_of(rows, rule)
            for key, rows in customers[read].groupby(column, sort=True)}


#: A segment with at least this share of customers at risk is acted on for them first.
FIRST_SHARE = 0.5


def with_value_action(actions: list[str], value: sm.SegmentValue, rule: AtRisk,
                      first: bool = True, currency: str | None = None) -> list[str]:
    """A segment's actions with the one its at-risk customers call for, with the figures:
    first when most of the segment is at risk (and ``first``), else last (none when
    nobody is)."""
    if not value.at_risk:
        return actions
    share = value.at_risk / value.customers
    who = (f"{value.at_risk:,} customers ({share:.0%}) with "
           f"{money(value.at_risk_value, currency, cents=False)} of predicted value are at "
           f"risk ({rule.words})")
    if first and share >= FIRST_SHARE:
        return [f"{who}: win them back first.", *actions]
    return [*actions, f"{who}: contact them before they lapse."]


# ------------------------------------------------------------------------- backtest
def backtest_on(engine: Engine, source: Source, mapping: dict[str, str], config: Config,
                split: dt.date) -> sm.Backtest:
    """The backtest on order lines the engine has read; leaves the engine's ``lines``
    cleaned up to the end of the data (``config.as_of``, or the day after the last line)."""
    engine.clean(source, mapping, config.replace(as_of=split.isoformat()))
    calibration = engine.features(split, "product_id" in mapping)
    engine.clean(source, mapping, config)
    as_of = dt.date.fromisoformat(config.as_of) if config.as_of else default_as_of(engine)
    end = as_of - dt.timedelta(days=1)
    if split > end:
        raise InputError(f"--split {split} is after the last order of {source.name} ({end}); "
                         "choose a date inside the data, so that some orders come after it.")
    holdout = engine.query(
        f"""SELECT customer_id, count(DISTINCT CAST(invoice_date AS DATE)) AS orders,
                   CAST(sum(value) AS DOUBLE) AS revenue
            FROM lines
            WHERE status = 'purchase' AND invoice_date >= {timestamp(split)}
              AND invoice_date < {timestamp(as_of)}
            GROUP BY customer_id""").set_index("customer_id")
    ids = calibration["customer_id"]
    actual = ids.map(holdout["orders"]).fillna(0).to_numpy(dtype=float)
    revenue = ids.map(holdout["revenue"]).fillna(0).to_numpy(dtype=float)
    return compare(calibration, actual, config, split=split, end=end, input=source.name,
                   revenue=revenue)


def compare(calibration: pd.DataFrame, actual: np.ndarray, config: Config, *,
            split: dt.date, end: dt.date, input: str,
            revenue: np.ndarray | None = None) -> sm.Backtest:
    """Fit the candidates of ``clv.model`` on the calibration features, predict the
    holdout and compare with ``actual`` (each calibration customer's purchase days in the
    holdout; ``revenue``, his spend there)."""
    horizon = (end - split).days + 1
    c = config.clv
    inputs = value_inputs(calibration)
    repeat = int((inputs["x"] > 0).sum())
    gap = typical_gap(inputs)
    warnings, reason, selection = [], None, None
    if repeat < c.min_repeat_buyers:
        reason = (f"only {repeat:,} customers bought more than once, fewer than the "
                  f"{c.min_repeat_buyers:,} the value models need (clv.min_repeat_buyers)")
    elif gap is not None and horizon < gap:
        reason = (f"the holdout ({horizon} days from {split}) is shorter than the typical "
                  f"{gap:.0f} days between a repeat buyer's orders, so most customers could "
                  "not have bought again in it; choose an earlier split")
    else:
        models = (tuple(PURCHASES) if c.model in ("auto", "boosted") else (c.model,))
        selection = select(calibration, inputs, actual,
                           np.zeros(len(actual)) if revenue is None else revenue, horizon,
                           models, spends=_spends(config), keep_degenerate=c.model != "auto")
        reason = selection.reason
        warnings.extend(f"{cand.name}: {p}" for cand in selection.candidates
                        for p in cand.problems if cand.role == "purchases")
    if reason is not None:
        warnings.append(f"No backtest predictions: {reason}.")
    chosen = (None if selection is None or selection.purchases is None else
              next(x for x in selection.candidates if x.chosen and x.role == "purchases"))
    predicted = None
    if chosen is not None:
        x, t_x, T = (inputs[k].to_numpy(float) for k in ("x", "t_x", "T"))
        predicted = Purchases(chosen.model, chosen.fit.params).expected(horizon, x, t_x, T)
    bought = actual > 0
    return sm.Backtest(
        input=input, split=split.isoformat(), end=end.isoformat(), horizon_days=horizon,
        customers=len(calibration), fitted=chosen is not None, reason=reason,
        predicted_orders=round(float(predicted.sum()), 2) if chosen else None,
        actual_orders=int(actual.sum()),
        mae=round(float(np.abs(predicted - actual).mean()), 4) if chosen else None,
        buyers=int(bought.sum()),
        auc=chosen.auc if chosen else None,
        baseline_auc=auc(bought, baseline_score(calibration)),
        typical_gap_days=None if gap is None else round(gap, 2),
        purchases=_model(chosen.name, chosen.fit) if chosen else None,
        by_frequency=_groups(inputs["x"].to_numpy(), predicted, actual),
        warnings=warnings)


def _groups(x: np.ndarray, predicted: np.ndarray | None, actual: np.ndarray
            ) -> list[sm.FrequencyGroup]:
    """Mean predicted and actual holdout orders per calibration frequency."""
    key = np.minimum(x, GROUPS).astype(int)
    rows = []
    for g in np.unique(key):
        mask = key == g
        rows.append(sm.FrequencyGroup(
            repeat_orders=f"{g}+" if g == GROUPS else str(g), customers=int(mask.sum()),
            predicted=None if predicted is None else round(float(predicted[mask].mean()), 4),
            actual=round(float(actual[mask].mean()), 4)))
    return rows


def backtest_files(result: sm.Backtest, folder: Path) -> None:
    """``backtest.json`` and the calibration chart ``calibration.png`` into a folder."""
    from custseg.outputs.report import write_backtest_chart

    with atomic_file(folder / "backtest.json") as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    write_backtest_chart(result.to_dict(), folder)


def with_backtest(summary, extra=None):
    """The ``extra`` writer of a run folder, adding the backtest's files when the run has
    one (``summary.backtest``)."""
    backtest = summary.get("backtest")
    if backtest is None:
        return extra

    def write(folder: Path) -> None:
        backtest_files(backtest, folder)
        if extra is not None:
            extra(folder)
    return write
