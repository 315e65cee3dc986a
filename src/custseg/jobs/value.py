"""The value step of a run: predicted value per customer (BG/NBD and Gamma-Gamma, see
:mod:`custseg.prep.clv`) and per group of customers, with the ``clv`` block of
``summary.json``; and the backtest of the models (:func:`backtest_on`)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from custseg.core import summary as sm
from custseg.core.config import Config
from custseg.core.exceptions import InputError
from custseg.engines import Engine
from custseg.engines.base import default_as_of, timestamp
from custseg.io import Source
from custseg.outputs.rundir import atomic_file
from custseg.prep.clv import (
    COLUMNS,
    ValueModels,
    empty_columns,
    fit_value_models,
    group_value,
    value_inputs,
)

#: Calibration frequencies (repeat purchases) shown one by one in a backtest; more are
#: grouped as "7+".
GROUPS = 7

#: Why a customer table read alone has no predicted value.
NO_ORDERS = ("a customer table alone has no order history, which the value models (BG/NBD, "
             "Gamma-Gamma) are fitted on; pass the order lines, with this table as "
             "--customers, to predict value")


def predict_value(feats: pd.DataFrame, config: Config
                  ) -> tuple[pd.DataFrame, sm.Clv, ValueModels | None]:
    """The customer features with the :data:`~custseg.prep.clv.COLUMNS` added (empty, with
    the reason in the block, when the models cannot be trusted), the ``clv`` block and the
    fitted models."""
    c = config.clv
    inputs = value_inputs(feats)
    models, info = fit_value_models(inputs, horizon=c.horizon, discount_rate=c.discount_rate,
                                    min_repeat_buyers=c.min_repeat_buyers,
                                    modified=c.model == "mbgnbd")
    columns = models.predict(inputs) if models else empty_columns(feats.index)
    if models is not None:  # a number the arithmetic could not give is left empty, and said
        failed = int(columns[["p_alive", "expected_orders", "churn_risk"]].isna().any(axis=1)
                     .sum())
        if failed:
            info["warnings"].append(f"The predictions of {failed:,} customers could not be "
                                    "computed (numerical overflow); their value columns are "
                                    "empty.")
    out = pd.concat([feats, columns], axis=1)
    block = sm.Clv(
        fitted=models is not None, reason=info["reason"],
        purchases=_model("MBG/NBD" if c.model == "mbgnbd" else "BG/NBD", info["purchases"]),
        spend=_model("Gamma-Gamma", info["spend"]),
        frequency_value_correlation=info["correlation"], repeat_buyers=info["repeat_buyers"],
        customers=len(feats), horizon_days=c.horizon, discount_rate=c.discount_rate,
        churn_threshold=c.churn_threshold, time_unit="days", columns=dict(COLUMNS),
        total=value_of(out, c.churn_threshold) if models else None,
        warnings=info["warnings"] + ([f"No predicted value: {info['reason']}."]
                                     if info["reason"] else []))
    return out, block, models


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


def value_of(customers: pd.DataFrame, threshold: float) -> sm.SegmentValue:
    """The predicted value of a group of customers."""
    return sm.SegmentValue(**group_value(customers, threshold))


def values_by(customers: pd.DataFrame, column: str, threshold: float
              ) -> dict[Any, sm.SegmentValue]:
    """The predicted value of each group of ``column`` (customers with the columns)."""
    return {key: value_of(rows, threshold)
            for key, rows in customers.groupby(column, sort=True)}


#: A segment with at least this share of customers at risk is acted on for them first.
FIRST_SHARE = 0.5


def with_value_action(actions: list[str], value: sm.SegmentValue, threshold: float
                      ) -> list[str]:
    """A segment's actions with the one its at-risk customers call for, with the figures:
    first when most of the segment is at risk, else last (none when nobody is)."""
    if not value.at_risk:
        return actions
    share = value.at_risk / value.customers
    who = (f"{value.at_risk:,} customers ({share:.0%}) with {value.at_risk_value:,.0f} of "
           f"predicted value are at risk (churn risk {threshold:.0%} or more)")
    if share >= FIRST_SHARE:
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
        f"""SELECT customer_id, count(DISTINCT CAST(invoice_date AS DATE)) AS orders
            FROM lines
            WHERE status = 'purchase' AND invoice_date >= {timestamp(split)}
              AND invoice_date < {timestamp(as_of)}
            GROUP BY customer_id""")
    actual = (calibration["customer_id"].map(holdout.set_index("customer_id")["orders"])
              .fillna(0).to_numpy(dtype=float))
    return compare(calibration, actual, config, split=split, end=end, input=source.name)


def compare(calibration: pd.DataFrame, actual: np.ndarray, config: Config, *,
            split: dt.date, end: dt.date, input: str) -> sm.Backtest:
    """Fit on the calibration features, predict the holdout and compare with ``actual``
    (each calibration customer's purchase days in the holdout)."""
    horizon = (end - split).days + 1
    c = config.clv
    inputs = value_inputs(calibration)
    models, info = fit_value_models(inputs, horizon=horizon, discount_rate=c.discount_rate,
                                    min_repeat_buyers=c.min_repeat_buyers,
                                    modified=c.model == "mbgnbd")
    repeat = inputs[inputs["x"] > 0]
    gap = float((repeat["t_x"] / repeat["x"]).median()) if len(repeat) else None
    warnings, reason = list(info["warnings"]), info["reason"]
    if reason is None and gap is not None and horizon < gap:
        reason = (f"the holdout ({horizon} days from {split}) is shorter than the typical "
                  f"{gap:.0f} days between a repeat buyer's orders, so most customers could "
                  "not have bought again in it; choose an earlier split")
    if reason is not None:
        warnings.append(f"No backtest predictions: {reason}.")
    trusted = models is not None and reason == info["reason"]
    predicted = models.predict(inputs)["expected_orders"].to_numpy() if trusted else None
    bought = actual > 0
    return sm.Backtest(
        input=input, split=split.isoformat(), end=end.isoformat(), horizon_days=horizon,
        customers=len(calibration), fitted=trusted, reason=reason,
        predicted_orders=round(float(predicted.sum()), 2) if trusted else None,
        actual_orders=int(actual.sum()),
        mae=round(float(np.abs(predicted - actual).mean()), 4) if trusted else None,
        buyers=int(bought.sum()),
        auc=_auc(bought, predicted) if trusted else None,
        baseline_auc=_auc(bought, (calibration["frequency"]
                                   / calibration["tenure"].clip(lower=1)).to_numpy()),
        typical_gap_days=None if gap is None else round(gap, 2),
        purchases=_model("MBG/NBD" if c.model == "mbgnbd" else "BG/NBD", info["purchases"]),
        by_frequency=_groups(inputs["x"].to_numpy(), predicted, actual),
        warnings=warnings)


def _auc(bought: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of ``score`` for "buys again" (None when everyone or no one did)."""
    from sklearn.metrics import roc_auc_score

    if bought.all() or not bought.any():
        return None
    return round(float(roc_auc_score(bought, score)), 4)


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
