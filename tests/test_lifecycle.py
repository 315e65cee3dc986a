"""Lifecycle stages: each customer's stage read from his own rhythm, checked against the
same rule computed independently from the raw lines (engaged within 1.5 typical gaps,
cooling within 3, lapsed beyond; typical gap = days from the first to the last order over
orders - 1, the repeat buyers' median for one-time buyers)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ONLINE_RETAIL, needs_online_retail
from custseg import Config, ConfigError, run_rfm
from custseg.prep.lifecycle import STAGES, STATE, stages

END = dt.date(2024, 6, 30)
PLAIN = Config(report=False, clv={"enabled": False})
NO_VALUE = PLAIN.replace(as_of=(END + dt.timedelta(days=1)).isoformat())


def lines(histories: dict[str, list[int]]) -> pd.DataFrame:
    """One order a day listed (days before END) per customer, two lines each."""
    rows = []
    for customer, days in histories.items():
        for i, ago in enumerate(days):
            when = pd.Timestamp(END - dt.timedelta(days=ago)) + pd.Timedelta(hours=10)
            for item in ("P1", "P2"):
                rows.append((f"{customer}-{i}", customer, item, when, 2, 4.5))
    return pd.DataFrame(rows, columns=["invoice_id", "customer_id", "product_id",
                                       "invoice_date", "quantity", "unit_price"])


def independent_state(frame: pd.DataFrame, as_of: dt.date) -> pd.Series:
    """engaged / cooling / lapsed per customer from purchase lines alone."""
    orders = frame.groupby("customer_id").agg(
        first=("invoice_date", "min"), last=("invoice_date", "max"),
        orders=("invoice_id", "nunique"))
    span = (orders["last"] - orders["first"]).dt.total_seconds() / 86400
    gap = (span / (orders["orders"] - 1)).where(orders["orders"] > 1)
    gap = gap.where(gap >= 1)
    gap = gap.fillna(gap.median())
    recency = (pd.Timestamp(as_of) - orders["last"].dt.normalize()).dt.days
    silence = recency / gap
    return pd.Series(np.select([silence <= 1.5, silence <= 3], ["engaged", "cooling"],
                               "lapsed"), index=orders.index.astype(str))


def test_each_rhythm_gets_its_stage_and_reason():
    every_10 = list(range(90, -1, -10))  # ten orders, ten days apart
    histories = {
        "active": [d + 4 for d in every_10],  # recency 5 (it counts to END + 1)
        "cooling": [d + 24 for d in every_10],  # 25 days: 2.5 gaps
        "lapsed": [d + 49 for d in every_10],  # 50 days: 5 gaps
        "new": [4],  # one order, within the repeat buyers' 10 days
        "gone": [99],  # one order, ten gaps ago
        "back": [400, 390, 380, 370, 360, 2],  # 358 silent days, then back
    }
    histories.update({f"filler{i}": [d + i for d in every_10] for i in range(5)})
    result = run_rfm(frame=lines(histories), config=NO_VALUE)
    got = result.customers.set_index("customer_id")
    for name in ("active", "cooling", "lapsed", "new"):
        assert got.loc[name, "stage"] == name, got.loc[name, "stage_reason"]
    assert got.loc["gone", "stage"] == "lapsed"
    assert got.loc["back", "stage"] == "reactivated"
    assert got.loc["cooling", "stage_reason"] == (
        "silent 25 days: 2.5 of their typical 10-day gaps")
    assert got.loc["back", "stage_reason"] == (
        "back 3 days ago after 358 silent days, 35.8 of their earlier 10-day gaps")
    assert "repeat buyers buy every 10 days" in got.loc["new", "stage_reason"]
    table = {row.stage: row.customers for row in result.summary.lifecycle.stages}
    assert sum(table.values()) == len(got) == len(histories)
    assert result.summary.lifecycle.at_risk_by is None  # no checked model: no "at risk"
    assert "at risk" not in table


def test_stages_agree_with_the_rule_computed_from_the_raw_lines():
    rng = np.random.default_rng(3)
    histories = {}
    for i in range(400):  # rhythms from weekly to yearly, silences of every length
        gap, n = float(rng.choice([7, 30, 90, 365])), int(rng.integers(1, 8))
        last = int(rng.integers(1, 900))
        histories[f"C{i:04d}"] = [last + int(round(gap * k)) for k in range(n)][::-1]
    frame = lines(histories)
    result = run_rfm(frame=frame, config=NO_VALUE)
    got = result.customers.set_index("customer_id")
    want = independent_state(frame, END + dt.timedelta(days=1))
    states = got["stage"].map(STATE)
    assert (states == want.reindex(states.index)).all()
    assert set(got["stage"]) >= {"new", "active", "cooling", "lapsed"}


def test_the_demo_data_stages_agree_with_the_raw_lines(tmp_path):
    from custseg.synth import generate

    path = generate(1500, tmp_path, seed=4)["transactions"]
    raw = pd.read_parquet(path)
    result = run_rfm(path, config=PLAIN)
    got = result.customers.set_index("customer_id")["stage"].map(STATE)
    bought = raw[(raw["Quantity"] > 0) & ~raw["InvoiceNo"].astype(str).str.startswith("C")]
    bought = bought.rename(columns={"CustomerID": "customer_id", "InvoiceNo": "invoice_id",
                                    "InvoiceDate": "invoice_date"})
    bought["customer_id"] = bought["customer_id"].astype(str)
    want = independent_state(bought, dt.date.fromisoformat(result.summary.as_of))
    agree = (got == want.reindex(got.index)).mean()
    assert agree >= 0.99, agree
    assert got.value_counts(normalize=True).min() > 0.05  # engaged, cooling and lapsed


@needs_online_retail
def test_online_retail_stages_agree_with_the_raw_file():
    raw = pd.read_parquet(ONLINE_RETAIL)
    result = run_rfm(ONLINE_RETAIL, config=PLAIN)
    got = result.customers.set_index("customer_id")["stage"]
    bought = raw[(raw["Quantity"] > 0) & (raw["UnitPrice"] > 0) & raw["CustomerID"].notna()
                 & ~raw["InvoiceNo"].str.startswith("C")]
    bought = bought.assign(customer_id=bought["CustomerID"].astype(int).astype(str)).rename(
        columns={"InvoiceNo": "invoice_id", "InvoiceDate": "invoice_date"})
    want = independent_state(bought, dt.date.fromisoformat(result.summary.as_of))
    agree = (got.map(STATE) == want.reindex(got.index)).mean()
    assert agree >= 0.99, agree
    counts = got.value_counts()
    assert counts.get("lapsed", 0) > 300 and counts.get("reactivated", 0) > 10
    assert counts.get("new", 0) > 10 and counts.get("active", 0) > 500


def test_at_risk_comes_only_from_a_checked_churn_risk():
    from test_holdout import pnbd_lines

    frame = pnbd_lines(n=2500, arrivals=700)
    checked = run_rfm(frame=frame, config=Config(report=False))
    table = checked.customers
    assert checked.summary.clv.fitted and checked.summary.lifecycle.at_risk_by
    risky = table["stage"] == "at risk"
    assert risky.any()
    from custseg.jobs.value import at_risk_of

    assert at_risk_of(checked.summary.clv).mask(table)[risky].all()
    plain = run_rfm(frame=frame, config=PLAIN).customers
    assert "at risk" not in set(plain["stage"])
    # without the model the same customers are cooling: overdue, not yet lapsed
    assert (plain.set_index("customer_id").loc[table.loc[risky, "customer_id"], "stage"]
            == "cooling").all()


def test_thresholds_are_settings():
    histories = {f"C{i}": [d + 3 * i for d in range(90, -1, -10)] for i in range(12)}
    frame = lines(histories)
    default = run_rfm(frame=frame, config=NO_VALUE).customers["stage"]
    strict = run_rfm(frame=frame, config=NO_VALUE.replace(
        lifecycle={"active_gaps": 0.5, "lapsed_gaps": 1.0})).customers["stage"]
    assert (default == "active").sum() > (strict == "active").sum()
    assert (strict == "lapsed").sum() > (default == "lapsed").sum()
    with pytest.raises(ConfigError, match="active_gaps"):
        run_rfm(frame=frame, config=NO_VALUE.replace(lifecycle={"active_gaps": 3.0}))


def histories(rows) -> pd.DataFrame:
    """Customer features from (recency, purchase days, days from first to last purchase,
    days before the last purchase) rows, consistent with one another."""
    recency, days, span, before = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    days = np.where(span < 1, 1, days)
    before = np.where(days > 1, np.minimum(before, span), np.nan)
    return pd.DataFrame({
        "recency": recency, "purchase_days": days, "tenure": recency + span,
        "mean_days_between_orders": np.where(days > 1, span / np.maximum(days - 1, 1),
                                             np.nan),
        "days_before_last_purchase": before})


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 2000), st.integers(1, 30), st.integers(0, 900),
                          st.integers(0, 400)), min_size=1, max_size=40))
def test_every_customer_gets_one_stage_that_follows_his_silence(rows):
    """Whatever the histories: one stage each, lapsed exactly beyond 3 gaps, engaged
    (new, active, reactivated) exactly within 1.5."""
    feats = histories(rows)
    out = stages(feats)
    assert out.index.equals(feats.index)
    assert out["stage"].isin(STAGES).all() and out["stage_reason"].str.len().gt(0).all()
    gap = feats["mean_days_between_orders"].where(feats["mean_days_between_orders"] >= 1)
    if gap.notna().any():
        silence = feats["recency"] / gap.fillna(gap.median())
        assert ((out["stage"] == "lapsed") == (silence > 3)).all()
        assert (out["stage"].map(STATE).eq("engaged") == (silence <= 1.5)).all()
    else:
        assert (out["stage"] == "new").all()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from(STAGES), min_size=1, max_size=60), min_size=1,
                max_size=6),
       st.lists(st.one_of(st.none(), st.lists(st.sampled_from(["engaged", "cooling",
                                                               "lapsed"]),
                                              min_size=1, max_size=3, unique=True)),
                min_size=6, max_size=6),
       st.floats(0.5, 0.95))
def test_a_segment_whose_action_fits_under_the_bar_is_never_written_without_its_warning(
        segments, wanted, least):
    from custseg.jobs.run import _fit_actions
    from custseg.profile.profiles import stage_mix

    profiles = {i + 1: {"customers": len(s), **stage_mix(pd.Series(s))}
                for i, s in enumerate(segments)}
    names = {i: {"name": f"Segment {i}", "action_for": wanted[i - 1]} for i in profiles}
    warnings: list[str] = []
    _fit_actions(profiles, names, least, warnings)
    for i, members in enumerate(segments, start=1):
        state = pd.Series(members).map(STATE)
        target = wanted[i - 1] or [state.value_counts().index[0]]
        fit = state.isin(target).mean()  # counted here from the stages themselves
        assert names[i]["action_fit"] == pytest.approx(fit, abs=1e-4)
        why = names[i].get("action_warning")
        assert (why is None) == (fit >= least)
        if why is not None:
            assert any(why in w and f"Segment {i}" in w for w in warnings)
            for other, share in state[~state.isin(target)].value_counts().items():
                assert f"{share / len(state):.0%} {other}" in why


def blend(seed: int = 0) -> pd.DataFrame:
    """The demo's blend: 150 big spenders buying every two weeks up to now, 150 alike who
    stopped over a year ago, and 400 ordinary customers of every kind."""
    rng = np.random.default_rng(seed)
    histories = {}
    for i in range(150):
        histories[f"A{i:03d}"] = [int(rng.integers(0, 8)) + 14 * k for k in range(20)]
        histories[f"L{i:03d}"] = [int(rng.integers(400, 600)) + 14 * k for k in range(20)]
    for i in range(400):
        gap, n = int(rng.choice([30, 60, 120])), int(rng.integers(1, 5))
        last = int(rng.integers(0, 700))
        histories[f"O{i:03d}"] = [last + gap * k for k in range(n)]
    frame = lines(histories)
    big = frame["customer_id"].str[0].isin(["A", "L"])
    frame.loc[big, "quantity"] = 12  # the same large baskets, active or not
    return frame.assign(unit_price=np.where(big, 25.0, frame["unit_price"]))


def test_a_blend_of_active_and_lapsed_big_spenders_is_not_one_segment():
    from custseg import run_segments

    result = run_segments(frame=blend(), config=PLAIN)
    table = result.customers.set_index("customer_id")
    active = table.loc[table.index.str.startswith("A"), "segment"]
    lapsed = table.loc[table.index.str.startswith("L"), "segment"]
    assert active.mode()[0] != lapsed.mode()[0]
    assert active.eq(active.mode()[0]).mean() > 0.9 and lapsed.eq(lapsed.mode()[0]).mean() > 0.9
    first = {s.id: s.actions[0] for s in result.summary.segments}
    assert first[active.mode()[0]] != first[lapsed.mode()[0]]
    fors = {s.id: s.action_for for s in result.summary.segments}
    assert fors[active.mode()[0]] == ["engaged"] and fors[lapsed.mode()[0]] == ["lapsed"]
    assert result.summary.strategy.name == "stages"
    for seg in result.summary.segments:  # every first action fits its segment
        assert seg.action_fit >= 0.8 and not seg.get("action_warning")


def test_clusters_of_the_blend_say_where_their_action_misses():
    """--strategy clusters keeps the seed algorithms; a segment whose first action misses
    more than a fifth of it carries the warning, naming the others."""
    from custseg import run_segments

    result = run_segments(frame=blend(), config=PLAIN, strategy="clusters")
    assert result.summary.strategy.name == "clusters"
    table = result.customers
    for seg in result.summary.segments:
        mine = table.loc[table["segment"] == seg.id, "stage"].map(STATE)
        target = seg.action_for
        assert seg.action_fit == pytest.approx(mine.isin(target).mean(), abs=1e-4)
        if seg.action_fit < 0.8:
            assert any(seg.action_warning in w for w in result.summary.audit.warnings)
        else:
            assert not seg.get("action_warning")


def _plain_whole(v: float) -> str:
    return "nan" if np.isnan(v) else str(int(np.round(v)))


def _plain_tenths(v: float) -> str:
    return str(float(np.round(v, 1)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.floats(0, 1e6), st.floats(0, 1e18), st.just(float("nan")),
    st.integers(0, 10**6).map(lambda i: i / 20),  # halves and quarters: ties to even
    st.integers(0, 10**5).map(lambda i: i / 10 + 0.05)), min_size=1, max_size=60))
def test_numbers_in_reasons_are_written_as_python_writes_them(values):
    """The reasons' numbers, written by Arrow's kernels, read as Python writes numpy's
    rounded values: "12" for a whole number, "2.2" (2.25 to even), "12.0", "1e+16",
    "nan"."""
    from custseg.prep.lifecycle import _tenths, _whole

    x = np.array(values, dtype=float)
    assert _tenths(x).to_pylist() == [_plain_tenths(v) for v in x]
    small = x[~(x > 1e15)]  # a whole number is written from an int64
    assert _whole(small).to_pylist() == [_plain_whole(v) for v in small]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 2000), st.integers(1, 30), st.integers(0, 900),
                          st.integers(0, 400), st.booleans()), min_size=1, max_size=40))
def test_each_reason_reads_its_customers_numbers(rows):
    """Each customer's reason, as the rule of his stage words it with his own numbers
    (written here one customer at a time)."""
    feats = histories([row[:4] for row in rows])
    feats.index = pd.Index([f"c{i}" for i in range(len(rows))], name="customer_id")
    out = stages(feats, at_risk=pd.Series([row[4] for row in rows], index=feats.index))
    recency, days, before = (feats[c].to_numpy() for c in (
        "recency", "purchase_days", "days_before_last_purchase"))
    span = (feats["tenure"] - feats["recency"]).to_numpy()
    own = feats["mean_days_between_orders"].where(feats["mean_days_between_orders"] >= 1)
    if own.isna().all():
        assert (out["stage_reason"] == [
            f"one purchase, {_plain_whole(r)} days ago; nobody bought twice, so there is "
            "no rhythm to be overdue against" for r in recency]).all()
        return
    median = own.median()
    for i, (cid, row) in enumerate(out.iterrows()):
        g = own.iloc[i] if not np.isnan(own.iloc[i]) else median
        r, d, b = recency[i], days[i], before[i]
        typical = " of the repeat buyers' typical " if d <= 1 else " of their typical "
        if row["stage"] in ("lapsed", "cooling", "at risk"):
            want = (f"silent {_plain_whole(r)} days: {_plain_tenths(r / g)}{typical}"
                    f"{_plain_whole(g)}-day gaps")
            want += "; at risk by the checked churn risk" if row["stage"] == "at risk" else ""
        elif row["stage"] == "active":
            want = (f"last purchase {_plain_whole(r)} days ago; they buy about every "
                    f"{_plain_whole(g)} days")
        elif row["stage"] == "new":
            want = (f"first and only purchase {_plain_whole(r)} days ago (repeat buyers "
                    f"buy every {_plain_whole(g)} days)")
        else:
            e = (span[i] - b) / (d - 2) if d >= 3 else np.nan
            e = e if e >= 1 else median
            whose = " of their earlier " if d >= 3 else " of the repeat buyers' typical "
            want = (f"back {_plain_whole(r)} days ago after {_plain_whole(b)} silent days, "
                    f"{_plain_tenths(b / e)}{whose}{_plain_whole(e)}-day gaps")
        assert row["stage_reason"] == want, cid
