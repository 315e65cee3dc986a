"""The columns a run's value models add per customer, and what they hold (apart from the
models, which need SciPy: the profiles only need the names)."""

COLUMNS = {
    "p_alive": "probability the customer has not left (empty under the boosted trees, "
               "which predict purchases, not leaving)",
    "p_buy_30": "probability of at least one purchase in the next 30 days",
    "p_buy_90": "probability of at least one purchase in the next 90 days",
    "expected_orders": "expected purchases (days with an order) over the horizon",
    "next_order_date": "the day by which the customer has more likely than not bought again "
                       "(empty: not within the horizon)",
    "expected_order_value": "expected value per purchase",
    "clv": "expected value over the horizon, discounted at the annual discount rate",
    "churn_risk": "probability of no purchase over the horizon",
}
