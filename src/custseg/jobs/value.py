"""The value step of a run: predicted value per customer (BG/NBD and Gamma-Gamma, see
:mod:`custseg.prep.clv`) and per group of customers, with the ``clv`` block of
``summary.json``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from custseg.core import summary as sm
from custseg.core.config import Config
from custseg.prep.clv import (
    COLUMNS,
    ValueModels,
    empty_columns,
    fit_value_models,
    group_value,
    value_inputs,
)

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
