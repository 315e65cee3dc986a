"""The value models checked on the data's own past and chosen by it (prep/holdout.py).

Lines drawn from BG/NBD or from Pareto/NBD pick the model they were drawn from; a
degenerate history (every customer alike) is named and not shown; the baseline is beaten.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custseg import Config, run_rfm
from test_value import START


def bg_lines(n: int = 3000, *, modified: bool = False, days: int = 730, seed: int = 0,
             r: float = 0.8, alpha: float = 40.0, a: float = 0.6, b: float = 3.0
             ) -> pd.DataFrame:
    """Order lines drawn from BG/NBD (a customer may leave right after each repeat
    purchase) or, ``modified``, MBG/NBD (after the first purchase too)."""
    rng = np.random.default_rng(seed)
    lam, leave = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    rows = []
    for i in range(n):
        t, first = float(rng.integers(0, 365)), True
        while t < days:
            rows.append((f"C{i:05d}", START + dt.timedelta(days=int(t)),
                         round(float(rng.gamma(4.0, 10.0)) + 0.01, 2)))
            if (modified or not first) and rng.random() < leave[i]:
                break
            first = False
            t += rng.exponential(1 / lam[i])
    frame = pd.DataFrame(rows, columns=["customer_id", "invoice_date", "amount"])
    frame["invoice_date"] = pd.to_datetime(frame["invoice_date"])
    return frame


def pnbd_lines(n: int = 3000, *, days: int = 730, seed: int = 0, r: float = 0.8,
               alpha: float = 40.0, s: float = 0.7, beta: float = 200.0,
               arrivals: int = 365) -> pd.DataFrame:
    """Order lines of ``n`` customers arriving over the first ``arrivals`` days, buying at
    a Poisson rate from a Gamma until an exponential lifetime of a Gamma rate ends
    (Pareto/NBD)."""
    rng = np.random.default_rng(seed)
    lam, mu = rng.gamma(r, 1 / alpha, n), rng.gamma(s, 1 / beta, n)
    rows = []
    for i in range(n):
        t = float(rng.integers(0, arrivals))
        end = min(days, t + rng.exponential(1 / mu[i]))
        while t < end:
            rows.append((f"C{i:05d}", START + dt.timedelta(days=int(t)),
                         round(float(rng.gamma(4.0, 10.0)) + 0.01, 2)))
            t += rng.exponential(1 / lam[i])
    frame = pd.DataFrame(rows, columns=["customer_id", "invoice_date", "amount"])
    frame["invoice_date"] = pd.to_datetime(frame["invoice_date"])
    return frame


@pytest.mark.parametrize(("draw", "expected"), [
    (bg_lines, "BG/NBD"), (lambda: bg_lines(modified=True), "MBG/NBD"),
    (pnbd_lines, "Pareto/NBD")], ids=["BG/NBD", "MBG/NBD", "Pareto/NBD"])
def test_lines_drawn_from_a_model_pick_that_model(draw, expected):
    result = run_rfm(frame=draw(), config=Config(report=False))
    clv = result.summary.clv
    assert clv.fitted and clv.purchases.name == expected, clv.holdout.verdict
    holdout = clv.holdout
    chosen = next(c for c in holdout.candidates if c.chosen and c.role == "purchases")
    assert chosen.auc >= holdout.baseline_auc
    assert abs(holdout.predicted_orders / holdout.actual_orders - 1) < 0.15
    assert sum(d.customers for d in holdout.deciles) == holdout.customers
    first, last = holdout.deciles[0], holdout.deciles[-1]
    assert first.actual_orders > last.actual_orders  # the deciles rank who buys


def test_dropout_alike_for_every_customer_is_a_finding_not_a_flaw():
    """Pareto/NBD's s -> infinity at a fixed s / beta is one dropout rate for all: the
    likelihood is flat along the ridge, where a fit may stop anywhere (households shopping
    most days: s = 14,894, beta = 1.9e7, tests/test_report.py), and the fit is shown; a
    beta on the edge with rates that differ is not."""
    from custseg.prep.clv import Fit
    from custseg.prep.holdout import degeneracies

    def fit(**params) -> Fit:
        return Fit(params={"r": 6.5, "alpha": 12.0, **params}, log_likelihood=-1.0,
                   converged=True, seconds=0.0, customers=300)

    assert degeneracies("pnbd", fit(s=14_894.0, beta=1.86e7), 730.0) == []
    assert degeneracies("pnbd", fit(s=3e6, beta=3.7e9), 730.0) == []  # further along
    [no_dropout, edge] = degeneracies("pnbd", fit(s=5.0, beta=5e7), 730.0)
    assert no_dropout.startswith("no dropout") and "(beta = 5e+07)" in edge


def test_every_customer_alike_is_named_and_not_shown():
    """Every customer buys at the same rate and nobody leaves: the likelihood fits run to
    r and alpha unbounded, which is named, and they are not shown; whatever is shown ranks
    buyers at least as well as recency and frequency."""
    rng = np.random.default_rng(1)
    rows = [(f"C{i:04d}", START + dt.timedelta(days=int(d)), 20.0)
            for i in range(800) for d in np.unique(rng.uniform(0, 730, rng.poisson(8)))]
    lines = pd.DataFrame(rows, columns=["customer_id", "invoice_date", "amount"])
    clv = run_rfm(frame=lines, config=Config(report=False)).summary.clv
    likelihood = [c for c in clv.holdout.candidates
                  if c.name in ("BG/NBD", "MBG/NBD", "Pareto/NBD")]
    for cand in likelihood:
        said = " ".join(cand.problems)
        assert "no difference between customers" in said or "boundary" in said, cand.name
        assert not cand.chosen
    if clv.fitted:
        chosen = next(c for c in clv.holdout.candidates if c.chosen and c.role == "purchases")
        assert chosen.auc >= clv.holdout.baseline_auc - 0.005
    else:
        assert clv.reason and clv.total is None


def test_one_time_buyers_long_silent_are_riskier_than_recent_ones():
    result = run_rfm(frame=pnbd_lines(arrivals=700), config=Config(report=False))
    table = result.customers
    one = table[table["purchase_days"] == 1]
    assert (one.loc[one["recency"] > 300, "churn_risk"].mean()
            > one.loc[one["recency"] < 90, "churn_risk"].mean())
    assert table["churn_risk"].nunique() > 10
    assert (table["p_buy_30"] <= table["p_buy_90"] + 1e-9).all()
    assert (table["p_buy_90"] <= 1 - table["churn_risk"] + 1e-9).all()


def test_the_boosted_model_cannot_see_the_days_it_learns_to_predict():
    """Two leaks, both stopped: features as at a date after the labels' first day, and
    features as at the right date into which later purchases were copied."""
    from custseg.prep import boosted

    lines = pnbd_lines(n=600)
    end = lines["invoice_date"].max().date() + dt.timedelta(days=1)
    split = end - dt.timedelta(days=120)
    late = run_rfm(frame=lines, config=Config(report=False, clv={"enabled": False})).customers
    early = run_rfm(frame=lines, config=Config(report=False, as_of=split.isoformat(),
                                               clv={"enabled": False})).customers
    labels = pd.DataFrame({"w30": 1.0, "w90": 1.0, "w120": 1.0}, index=early.index)
    model = boosted.train(early, labels.assign(w120=np.arange(len(early)) % 2), 120,
                          as_of=split, label_start=split)  # no leak: trained
    assert model.p_buy(early, 120).shape == (len(early),)
    with pytest.raises(boosted.LeakError, match="as at .* after"):
        boosted.train(late, labels.reindex(late.index).fillna(0), 120, as_of=end,
                      label_start=split)
    leaked = early.copy()
    later = late.set_index("customer_id")["recency"]
    bought_after = leaked["customer_id"].map(later) < 120
    # the holdout buyers' recency, as it is at the end, read as if at the split
    leaked.loc[bought_after, "recency"] = 0
    with pytest.raises(boosted.LeakError, match="purchases on or after"):
        boosted.train(leaked, labels, 120, as_of=split, label_start=split)


def customer_table(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` customers' features as at a cut-off and their purchase days in the 30, 90
    and 120 days after it, drawn from Pareto/NBD-like rates and lifetimes (no lines: a
    table as large as a big shop's sample, made in a moment)."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(30, 700, n).astype(float)
    rate = rng.gamma(0.8, 1 / 40, n)
    alive = rng.random(n) < np.exp(-tenure * rng.gamma(0.7, 1 / 300, n))
    days = 1 + rng.poisson(rate * tenure)
    gap = np.where(days > 1, tenure / days, np.nan)
    silent = np.where(alive, np.minimum(rng.exponential(1 / rate), tenure),
                      rng.uniform(0, tenure))
    spend = days * rng.gamma(4.0, 10.0, n)
    features = pd.DataFrame({
        "recency": np.floor(silent) + 1, "frequency": days, "monetary": spend,
        "tenure": tenure, "avg_order_value": spend / days, "purchase_days": days,
        "mean_days_between_orders": gap})
    w30 = np.where(alive, rng.poisson(rate * 30), 0)
    w90 = w30 + np.where(alive, rng.poisson(rate * 60), 0)
    labels = pd.DataFrame({"w30": w30, "w90": w90,
                           "w120": w90 + np.where(alive, rng.poisson(rate * 30), 0)})
    return features, labels


def test_a_large_history_takes_bigger_steps_and_ranks_as_well():
    """Trained on a full sample of the most customers, the trees step twice as far: about
    half the trees, so half the work for each customer predicted, ranking who buys
    within each window as well as small steps do on customers they never saw."""
    from sklearn.metrics import roc_auc_score

    from custseg.prep import boosted

    split = dt.date(2024, 1, 1)
    features, labels = customer_table(boosted.MAX_ROWS + 20_000)
    unseen, unseen_labels = customer_table(20_000, seed=1)
    big = boosted.train(features, labels, 120, as_of=split, label_start=split)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(boosted, "learning_rate", lambda rows: 0.1)
        small = boosted.train(features, labels, 120, as_of=split, label_start=split)
    assert {m.learning_rate for m in big.classifiers.values()} == {0.2}

    def trees(model):
        return sum(m.n_iter_ for m in (*model.classifiers.values(), model.regressor))
    assert trees(big) < 0.75 * trees(small)
    for window in (30, 90, 120):
        bought = unseen_labels[f"w{window}"] > 0
        aucs = [roc_auc_score(bought, m.p_buy(unseen, window)) for m in (big, small)]
        assert aucs[0] > aucs[1] - 0.005, (window, aucs)
    few = boosted.train(features.head(5_000), labels.head(5_000), 120, as_of=split,
                        label_start=split)
    assert {m.learning_rate for m in few.classifiers.values()} == {0.1}


def test_the_fits_of_a_training_side_by_side_give_the_models_of_one_thread():
    """From PAIRED_FROM rows a training's fits (each window's classifier, the counts) run
    two at a time; each is seeded on its own, so the models are those trained one after
    another."""
    from custseg.core import threads
    from custseg.prep import boosted

    split = dt.date(2024, 1, 1)
    features, labels = customer_table(boosted.PAIRED_FROM)
    unseen, _ = customer_table(2_000, seed=1)
    seen = []
    with pytest.MonkeyPatch.context() as mp:
        pooled = boosted.pooled
        mp.setattr(boosted, "pooled", lambda fn, items, w: seen.append(
            (w, threads.cores())) or pooled(fn, items, w))
        with threads.using(2):
            paired = boosted.train(features, labels, 120, as_of=split, label_start=split)
        with threads.using(1):
            alone = boosted.train(features, labels, 120, as_of=split, label_start=split)
    assert seen == [(2, 2), (2, 1)]  # a pool of two, then one thread
    assert list(paired.classifiers) == list(alone.classifiers) == [30, 90, 120]
    for window in (30, 90, 120):
        assert np.array_equal(paired.p_buy(unseen, window), alone.p_buy(unseen, window))
    assert np.array_equal(paired.expected(unseen), alone.expected(unseen))


def test_the_purchase_models_checked_beside_the_trees_give_the_selection_of_one_thread(
        monkeypatch):
    """On a large holdout the purchase models are fitted while the learned ones train; each
    candidate is its own and seeded, so the selection is the one of one thread."""
    from custseg.prep import holdout

    monkeypatch.setattr(holdout, "PAIRED_FROM", 500)
    seen = []
    pooled = holdout.pooled
    monkeypatch.setattr(holdout, "pooled", lambda fn, items, w: seen.append(w)
                        or pooled(fn, items, w))
    lines = bg_lines(3000)
    paired, alone = (run_rfm(frame=lines, config=Config(report=False, threads=n)).summary.clv
                     for n in (2, 1))
    assert seen[0] == 2 and len(seen) == 2  # two parts side by side, in each run
    assert untimed(paired.to_dict()) == untimed(alone.to_dict())
    assert [c.name for c in paired.holdout.candidates if c.role == "purchases"] == [
        "BG/NBD", "MBG/NBD", "Pareto/NBD", "gradient-boosted trees",
        "logistic regression"]  # in the order of one thread


def untimed(block):
    """A summary block without its timings."""
    if isinstance(block, dict):
        return {k: untimed(v) for k, v in block.items() if "seconds" not in k}
    if isinstance(block, list):
        return [untimed(v) for v in block]
    return block


def test_copies_of_customers_train_the_trees_as_the_customers_alone_do():
    """An export that holds each customer five times over (a merged or repeated export)
    trains trees like those of the customers alone: early stopping holds out customers,
    not copies of those it trains on, so it stops as early and ranks unseen customers
    as well. Held out on copies, it would train all 200 trees and overfit."""
    from sklearn.metrics import roc_auc_score

    from custseg.prep import boosted

    split = dt.date(2024, 1, 1)
    features, labels = customer_table(4_000)
    unseen, unseen_labels = customer_table(10_000, seed=1)
    copies = np.repeat(np.arange(len(features)), 5)
    once = boosted.train(features, labels, 120, as_of=split, label_start=split)
    five = boosted.train(features.iloc[copies], labels.iloc[copies], 120, as_of=split,
                         label_start=split)

    def trees(model):
        return [m.n_iter_ for m in (*model.classifiers.values(), model.regressor)]
    assert max(trees(five)) < 200 and sum(trees(five)) < 2 * sum(trees(once)), (
        trees(five), trees(once))
    for window in (30, 90, 120):
        bought = unseen_labels[f"w{window}"] > 0
        aucs = [roc_auc_score(bought, m.p_buy(unseen, window)) for m in (five, once)]
        assert abs(aucs[0] - aucs[1]) < 0.01, (window, aucs)


def test_trees_train_when_the_held_out_copies_hold_every_buyer():
    """When the customers held out for early stopping hold every buyer (one customer, in
    copies), the trees train on all of them rather than on one label."""
    from custseg.prep import boosted

    split = dt.date(2024, 1, 1)
    features, labels = customer_table(1_500)
    labels[:] = 0
    buyer = np.r_[np.arange(len(features)), [7, 7, 7, 7]]
    features, labels = features.iloc[buyer].reset_index(drop=True), labels.iloc[buyer].copy()
    labels.iloc[[7, -4, -3, -2, -1]] = 1
    labels = labels.reset_index(drop=True)
    X = boosted.design(features, boosted.usable(features))
    group = boosted.copies(X, labels.to_numpy(dtype=float))
    seed = next(s for s in range(200)
                if (held := boosted.held_out(group, s)) is not None
                and held[labels["w120"].to_numpy() > 0].all())
    model = boosted.train(features, labels, 120, as_of=split, label_start=split, seed=seed)
    assert 0 < model.p_buy(features, 120).mean() < 0.1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 1.5, np.nan]), st.integers(0, 2)),
                min_size=1, max_size=40), st.integers(0, 3))
def test_copies_of_a_customer_are_held_out_together(rows, seed):
    """Early stopping holds out every copy of a customer or none (copies: the same inputs
    and labels, a missing input equal to a missing one); with no two alike, or when the
    draw would hold out all or none, the trees split for themselves (None)."""
    from custseg.prep.boosted import copies, held_out

    X = np.array([[x, 2.0] for x, _ in rows])
    Y = np.array([[float(y)] for _, y in rows])
    group = copies(X, Y)
    keys = [("nan" if np.isnan(x) else x, y) for x, y in rows]
    assert list(group) == [list(dict.fromkeys(keys)).index(k) for k in keys]
    held = held_out(group, seed)
    if len(set(keys)) == len(keys):
        assert held is None
    if held is not None:
        assert 0 < held.sum() < len(rows)
        for key in set(keys):
            assert len({bool(h) for h, k in zip(held, keys, strict=True) if k == key}) == 1


_AMOUNT = st.one_of(st.none(), st.just(float("nan")), st.integers(0, 60),
                    st.floats(-5, 500))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_AMOUNT, _AMOUNT, st.one_of(st.none(), st.integers(0, 40)),
                          st.one_of(_AMOUNT, st.just("many")), st.integers(0, 400)),
                min_size=1, max_size=30), st.booleans())
def test_the_trees_inputs_are_each_customers_features_and_ratios(rows, nullable):
    """Each row of the trees' matrix is the customer's features as floats (a missing or
    unreadable one NaN), then recency over his mean gap (NaN without a positive gap) and
    his purchase days over his tenure of at least one day: checked customer by customer
    against that definition, with floats, nullable integers and a column of objects
    holding text."""
    from custseg.prep.boosted import design

    def num(v) -> float:
        return float("nan") if v is None or isinstance(v, str) else float(v)

    recency, gap, days, products, tenure = (list(c) for c in zip(*rows, strict=True))
    features = pd.DataFrame({
        "recency": pd.Series(recency, dtype=float),
        "mean_days_between_orders": pd.Series(gap, dtype=float),
        "purchase_days": pd.Series(days, dtype="Int64" if nullable else float),
        "distinct_products": pd.Series(products, dtype=object),
        "tenure": pd.Series(tenure)})
    X = design(features, ["recency", "purchase_days", "distinct_products"])
    assert X.shape == (len(rows), 5)
    for i, (r, g, d, p, t) in enumerate(rows):
        r, g, d = num(r), num(g), num(d)
        expected = [r, d, num(p), r / g if g > 0 else float("nan"), d / max(t, 1)]
        np.testing.assert_array_equal(X[i], np.array(expected, dtype=float))


def test_a_learned_model_carries_on_past_its_checked_days_no_faster_than_a_steady_rate():
    """Checked on 120 days and asked for 365: a customer's purchases grow with the
    horizon, by at most the steady rate (leaving only slows them), and the chance of no
    purchase only falls."""
    from custseg.prep import boosted
    from custseg.prep.predict import BoostedValues, Purchases

    lines = pnbd_lines(n=1500)
    end = lines["invoice_date"].max().date() + dt.timedelta(days=1)
    split = end - dt.timedelta(days=120)
    at_split = run_rfm(frame=lines, config=Config(report=False, as_of=split.isoformat(),
                                                  clv={"enabled": False})).customers
    now = run_rfm(frame=lines, config=Config(report=False, clv={"enabled": False})).customers
    later = now.set_index("customer_id")["purchase_days"]
    gained = at_split["customer_id"].map(later) - at_split["purchase_days"]
    labels = pd.DataFrame({"w30": gained, "w90": gained, "w120": gained})  # within 120 days
    model = boosted.train(at_split, labels, 120, as_of=split, label_start=split)
    shape = Purchases("pnbd", {"r": 0.8, "alpha": 40.0, "s": 0.7, "beta": 200.0})
    checked = BoostedValues(model, None, 0.1).predict(now)
    year = BoostedValues(model, None, 0.1, horizon=365, shape=shape).predict(now)
    steady = BoostedValues(model, None, 0.1, horizon=365).predict(now)
    some = checked["expected_orders"] > 0.01  # the columns are rounded to 4 digits
    grow = (year["expected_orders"] / checked["expected_orders"])[some]
    assert ((grow >= 1 - 0.01) & (grow <= 365 / 120 + 0.01)).all()
    assert np.allclose(steady["expected_orders"], checked["expected_orders"] * 365 / 120,
                       rtol=1e-3, atol=1e-3)
    assert (year["churn_risk"] <= checked["churn_risk"] + 1e-9).all()
    with pytest.MonkeyPatch.context() as mp:  # a large table is predicted in chunks
        mp.setattr("custseg.prep.predict.CHUNK", 97)
        chunked = BoostedValues(model, None, 0.1, horizon=365, shape=shape).predict(now)
    assert len(now) > 5 * 97
    pd.testing.assert_frame_equal(chunked, year)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([("pnbd", {"r": 0.8, "alpha": 40.0, "s": 0.7, "beta": 200.0}),
                        ("pnbd", {"r": 2.0, "alpha": 9.0, "s": 1.0, "beta": 30.0}),
                        ("bgnbd", {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.43}),
                        ("mbgnbd", {"r": 0.5, "alpha": 20.0, "a": 1.2, "b": 6.0})]),
       st.integers(0, 60), st.integers(0, 700), st.integers(0, 700),
       st.integers(1, 200), st.integers(1, 400))
def test_the_pace_of_a_customer_alive_gives_the_ratio_of_expected_purchases(
        model, x, t_x, extra, days, more):
    """P(alive) cancels from the ratio of two spans' expected purchases: the pace a learned
    model is carried on at needs no quadrature and gives the same ratio."""
    from custseg.prep.predict import Purchases

    t_x = t_x if x else 0
    T = t_x + extra
    shape = Purchases(*model)
    near, far = (shape.expected(t, [x], [t_x], [T])[0] for t in (days, days + more))
    if not near > 1e-12:  # the ratio of a customer gone for sure is not taken
        return
    ratio = shape.pace(days + more, [x], [T])[0] / shape.pace(days, [x], [T])[0]
    assert ratio == pytest.approx(far / near, rel=1e-9)


def test_a_large_history_is_checked_on_a_sample_of_its_customers(monkeypatch):
    """Past clv's check size the check runs on a seeded sample, and says of how many;
    the predictions still cover every customer."""
    monkeypatch.setattr("custseg.jobs.value.CHECK_CUSTOMERS", 1000)
    result = run_rfm(frame=pnbd_lines(n=2500, arrivals=700), config=Config(report=False))
    holdout = result.summary.clv.holdout
    assert holdout.customers == 1000
    assert holdout.sample_of > 1000  # the customers as at the split, all of them
    assert holdout.sample_of <= len(result.customers)
    assert result.summary.clv.fitted
    assert result.customers["churn_risk"].notna().all()
    # the sample's features and labels alone are computed, and they are the very rows the
    # whole table's seeded sample gives: the same check, the same predictions
    from contextlib import nullcontext

    monkeypatch.setattr("custseg.jobs.value._checked_customers",
                        lambda *args: nullcontext(None))
    whole = run_rfm(frame=pnbd_lines(n=2500, arrivals=700), config=Config(report=False))
    assert whole.summary.clv.holdout == holdout
    pd.testing.assert_frame_equal(whole.customers, result.customers)


def seasonal_lines(n: int = 2500, *, years: int = 3, seed: int = 1, swing: float = 0.6
                   ) -> pd.DataFrame:
    """Pareto/NBD lines whose purchase rate peaks each December and ebbs each June
    (``1 + swing * cos``), by thinning a Poisson process at the peak rate."""
    rng = np.random.default_rng(seed)
    lam, mu = rng.gamma(1.5, 1 / 30, n), rng.gamma(0.7, 1 / 900, n)
    days = 365 * years
    rows = []
    for i in range(n):
        t = float(rng.integers(0, days // 2))
        end = min(days, t + rng.exponential(1 / mu[i]))
        while True:
            t += rng.exponential(1 / (lam[i] * (1 + swing)))
            if t >= end:
                break
            day = START + dt.timedelta(days=int(t))
            pace = 1 + swing * np.cos(2 * np.pi * (day.timetuple().tm_yday - 350) / 365)
            if rng.random() < pace / (1 + swing):
                rows.append((f"C{i:05d}", day, round(float(rng.gamma(4.0, 10.0)), 2)))
    frame = pd.DataFrame(rows, columns=["customer_id", "invoice_date", "amount"])
    frame["invoice_date"] = pd.to_datetime(frame["invoice_date"])
    return frame


def test_a_yearly_cycle_is_found_on_the_holdout_and_applied_to_the_forecast(tmp_path):
    lines = seasonal_lines()
    # the last 120 days held out end on Jan 1: the December peak, busier than a flat year
    as_of = dt.date(START.year + 3, 1, 1)
    result = run_rfm(frame=lines, out_dir=tmp_path, config=Config(
        as_of=as_of.isoformat(), clv={"horizon": 120}))
    clv = result.summary.clv
    h = clv.holdout
    assert clv.fitted and h.days == 120 and h.season_applied
    assert h.seasonal_index > 1.1
    flat, seasonal = (abs(p / h.actual_orders - 1) for p in (h.predicted_orders,
                                                             h.seasonal_orders))
    assert seasonal < flat / 1.5  # the bias on the holdout, before and after
    # the next 120 days (January to April) run at 1.13 times a flat year's pace by the
    # cycle drawn, less than the held-out autumn's 1.36: scaled by their own index, and said
    assert 1.0 < clv.season_factor < h.seasonal_index
    assert any("A yearly cycle" in w for w in clv.warnings)
    report = (tmp_path / "report.html").read_text()
    assert re.search(r'id="holdout-season">[^<]*a yearly cycle', report)


def test_a_history_without_a_cycle_is_left_flat():
    result = run_rfm(frame=seasonal_lines(swing=0.0, n=1500),
                     config=Config(report=False, clv={"horizon": 120}))
    clv = result.summary.clv
    assert clv.fitted and not clv.holdout.season_applied and clv.season_factor is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 6)), min_size=2, max_size=60))
def test_the_auc_is_scikit_learns(pairs):
    from sklearn.metrics import roc_auc_score

    from custseg.prep.holdout import auc

    bought = np.array([b for b, _ in pairs])
    score = np.array([s for _, s in pairs], dtype=float) / 3  # ties, as ranks have them
    if bought.all() or not bought.any():
        assert auc(bought, score) is None
    else:
        assert auc(bought, score) == round(roc_auc_score(bought, score), 4)


def test_the_auc_error_is_the_spread_of_aucs_drawn_again():
    """Hanley and McNeil's formula is exact for exponential scores: buyers' scores of mean 4
    against others' of mean 1 give an AUC of 0.8; its spread over 500 draws of 50 and 60
    customers is the formula's."""
    from custseg.prep.holdout import auc, auc_error

    rng = np.random.default_rng(0)
    bought = np.array([True] * 50 + [False] * 60)
    aucs = [auc(bought, np.concatenate([rng.exponential(4.0, 50), rng.exponential(1.0, 60)]))
            for _ in range(500)]
    assert np.mean(aucs) == pytest.approx(0.8, abs=0.01)
    assert np.std(aucs) == pytest.approx(auc_error(0.8, bought), rel=0.1)


def test_a_history_where_nobody_can_tell_who_comes_back_shows_no_prediction():
    """Customers who buy at random moments, each at the same steady rate: recency and
    frequency tell nothing of who buys next, so no model may claim to."""
    rng = np.random.default_rng(7)
    rows = [(f"C{i:04d}", START + dt.timedelta(days=int(d)), 30.0)
            for i in range(800) for d in np.unique(rng.integers(0, 730, rng.poisson(4) + 1))]
    lines = pd.DataFrame(rows, columns=["customer_id", "invoice_date", "amount"])
    lines["invoice_date"] = pd.to_datetime(lines["invoice_date"])
    clv = run_rfm(frame=lines, config=Config(report=False)).summary.clv
    assert not clv.fitted
    assert "better than" in clv.reason
