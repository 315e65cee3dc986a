"""What to do first: segments ranked by the money at stake, with the kind of stake in words
and the command that writes each audience."""

from __future__ import annotations

import shlex

import pandas as pd
import pytest

import custseg
from custseg.core import summary as sm
from custseg.jobs.export import audience_table
from custseg.profile.priorities import (
    AT_RISK_VALUE,
    COOLING_VALUE,
    PAST_ORDERS,
    SECOND_ORDER,
    first_actions,
    in_folder,
    slug,
)
from custseg.profile.profiles import stage_mix
from test_cluster import PLANTED_MAP, planted_lines

HORIZON = 365


def segment(seg_id: int, name: str, stages: dict[str, int], *, once: float, basket: float,
            at_risk: int = 0, at_risk_value: float = 0.0, mean_value: float | None = 120.0,
            actions: list[str] | None = None) -> sm.Segment:
    """A segment as a run writes it: its stages counted from its customers' stages, the
    share of one-time buyers, the median order value and the predicted value."""
    customers = sum(stages.values())
    stage = pd.Series([s for s, n in stages.items() for _ in range(n)])
    profile = {"customers": customers, "one_time_share": once, **stage_mix(stage),
               "features": {"avg_order_value": {"mean": basket * 1.3, "median": basket,
                                                "z": 0.0, "all_mean": 80.0}}}
    value = sm.SegmentValue(
        customers=customers, valued=customers,
        predicted_value=(mean_value or 0.0) * customers, mean_predicted_value=mean_value,
        expected_orders=1.8 * customers, at_risk=at_risk, at_risk_value=at_risk_value)
    return sm.Segment(id=seg_id, name=name, size=customers, share=0.1, description="...",
                      actions=actions or [f"Act on {name}", "Then this"], profile=profile,
                      value=value)


def run_summary(segments: list[sm.Segment], *, checked: bool = True) -> sm.RunSummary:
    """A run's summary around ``segments``, its value models checked on the data's past
    (``checked``) or not: no model beat the baseline on the held-out days."""
    failed = "no purchase model ranks buyers better than recency and frequency alone"
    holdout = sm.Holdout(
        split="2023-07-01", days=183, customers=2400, buyers=900, actual_orders=1500.0,
        actual_revenue=120_000.0, predicted_orders=1400.0 if checked else None,
        predicted_revenue=None, baseline_auc=0.74, baseline_orders=1600.0,
        typical_gap_days=41.0, candidates=[], deciles=[],
        verdict="BG/NBD chosen" if checked else f"None shown: {failed}.",
        reason=None if checked else failed)
    clv = sm.Clv(fitted=checked, reason=None if checked else failed, purchases=None, spend=None,
                 frequency_value_correlation=0.05, repeat_buyers=1500, customers=2400,
                 horizon_days=HORIZON, discount_rate=0.1, churn_threshold=0.7, time_unit="days",
                 columns={}, total=None, warnings=[], holdout=holdout)
    return sm.RunSummary(
        custseg_version="0", input=sm.Input(path="orders.csv", rows=50_000, format="csv"),
        mapping={}, engine="duckdb",
        audit=sm.Audit(rows_in=50_000, rows_used=49_000, dropped={}, warnings=[], notes={}),
        customers=sum(s.size for s in segments), excluded_customers={}, as_of="2024-01-01",
        features=sm.ClusterFeatures(used=["recency"], notes=[], cluster_on="behaviour"),
        rfm_edges={}, rfm_segments=[], timings_s={}, clv=clv, algorithm="kmeans",
        k=len(segments), k_selection=None, clustering_params={}, clustering_extra={},
        metrics=sm.Metrics(silhouette=None, calinski_harabasz=None, davies_bouldin=None,
                           stability_ari=None, silhouette_sample=0),
        segments=segments)


def shop(lapsed_at_risk_value: float = 30_000.0) -> list[sm.Segment]:
    """A shop of five segments: new customers, VIP regulars (none at risk), cooling
    regulars, high-value lapsed and low-value lapsed customers."""
    return [
        segment(1, "New customers", {"new": 400}, once=0.97, basket=50.0),
        segment(2, "High-value regulars", {"active": 500}, once=0.0, basket=300.0,
                mean_value=2500.0),
        segment(3, "Cooling", {"cooling": 180, "at risk": 20}, once=0.1, basket=60.0,
                at_risk=20, at_risk_value=2_500.0, mean_value=35.0),
        segment(4, "High-value, lapsed", {"lapsed": 300}, once=0.0, basket=350.0,
                at_risk=250, at_risk_value=lapsed_at_risk_value),
        segment(5, "Low-value, lapsed", {"lapsed": 900}, once=0.3, basket=15.0,
                at_risk=800, at_risk_value=8_000.0),
    ]


def test_the_bigger_value_at_risk_ranks_first():
    ranked = first_actions(run_summary(shop()))
    assert [a.name for a in ranked.actions] == ["High-value, lapsed", "New customers",
                                                "Low-value, lapsed", "Cooling"]
    lapsed = ranked.actions[0]
    assert (lapsed.stake, lapsed.stake_kind) == (30_000.0, AT_RISK_VALUE)
    assert lapsed.stake_words == ("the predicted value of its 250 customers at risk over the "
                                  "next 365 days")
    assert lapsed.action == "Act on High-value, lapsed" and lapsed.customers == 300
    # the same shop with less at stake in its lapsed high spenders: they drop below
    ranked = first_actions(run_summary(shop(lapsed_at_risk_value=9_000.0)))
    assert [a.name for a in ranked.actions][:3] == ["New customers", "High-value, lapsed",
                                                    "Low-value, lapsed"]


def test_a_cooling_segment_stakes_the_value_of_all_its_customers():
    """Few cooling customers are called at risk yet: that is why it is time to act, so the
    whole segment's predicted value is at stake, not only its at-risk customers'."""
    segments = shop()
    segments[2] = segment(3, "High-value, cooling", {"cooling": 180, "at risk": 20},
                          once=0.0, basket=300.0, at_risk=20, at_risk_value=9_000.0,
                          mean_value=600.0)
    ranked = first_actions(run_summary(segments))
    first = ranked.actions[0]
    assert (first.name, first.stake_kind, first.stake) == ("High-value, cooling",
                                                           COOLING_VALUE, 200 * 600.0)
    assert "cooling customers" in first.stake_words and "cooling segment" in ranked.rule


def test_new_customers_are_worth_a_second_order_at_their_median_basket():
    new = next(a for a in first_actions(run_summary(shop())).actions
               if a.name == "New customers")
    assert new.stake_kind == SECOND_ORDER
    assert new.stake == 400 * 50.0
    assert new.stake_words == ("a second order from each of its 400 customers at their "
                               "median order value, 50.00")


def test_without_a_checked_prediction_the_stake_comes_from_past_orders_and_says_so():
    ranked = first_actions(run_summary(shop(), checked=False))
    by_name = {a.name: a for a in ranked.actions}
    assert "past orders" in ranked.rule and "no value prediction passed" in ranked.rule
    # lapsed and cooling customers: one order each at their median basket, not the
    # predicted value the unchecked models gave
    assert by_name["Low-value, lapsed"].stake == 900 * 15.0
    assert by_name["High-value, lapsed"].stake == 300 * 350.0
    assert by_name["High-value, lapsed"].stake_kind == PAST_ORDERS
    assert by_name["High-value, lapsed"].stake_words.endswith(
        "(past orders: no value prediction passed its check)")
    assert by_name["New customers"].stake_kind == SECOND_ORDER
    assert [a.name for a in ranked.actions] == ["High-value, lapsed", "New customers",
                                                "Low-value, lapsed", "Cooling"]
    assert ranked.actions[3].stake == 200 * 60.0
    # regulars buying in rhythm have nothing at stake by past orders
    assert "High-value regulars" not in by_name
    # with the value models turned off (clv.enabled), the same stakes say so
    off = run_summary(shop())
    off.clv = sm.UNSET
    ranked_off = first_actions(off)
    assert [(a.name, a.stake) for a in ranked_off.actions] == [
        (a.name, a.stake) for a in ranked.actions]
    assert "as value predictions are off" in ranked_off.rule
    assert ranked_off.actions[0].stake_words.endswith("(past orders: value predictions are off)")


def test_three_to_five_actions_and_fewer_with_fewer_segments():
    def stakes(values: list[float]) -> list[float]:
        segments = [segment(i, f"Lapsed {i}", {"lapsed": 100}, once=0.0, basket=80.0,
                            at_risk=90, at_risk_value=v) for i, v in enumerate(values, 1)]
        return [a.stake for a in first_actions(run_summary(segments)).actions]

    # a fourth and fifth when theirs is at least a tenth of the first's
    assert stakes([10_000, 9_000, 8_000, 7_000, 6_000, 5_000, 4_000]) == [
        10_000, 9_000, 8_000, 7_000, 6_000]
    assert stakes([1_000, 50_000, 800, 700, 600]) == [50_000, 1_000, 800]
    assert stakes([10_000, 9_000, 8_000, 1_200, 900]) == [10_000, 9_000, 8_000, 1_200]
    assert stakes([2_000, 5_000]) == [5_000, 2_000]
    # nobody at risk: nothing at stake, nothing listed (the rule is still said)
    nothing = first_actions(run_summary([segment(1, "Regulars", {"active": 300}, once=0.0,
                                                 basket=60.0)]))
    assert nothing.actions == [] and nothing.rule.startswith("Ranked by the money at stake")


def test_an_engaged_segment_at_risk_gets_the_action_for_those_at_risk():
    warn = ("12 customers (2%) with 40,000 of predicted value are at risk (churn risk 70% "
            "or more): contact them before they lapse.")
    vip = segment(9, "VIP regulars", {"active": 600}, once=0.0, basket=300.0,
                  at_risk=12, at_risk_value=40_000.0,
                  actions=["Keep them in a VIP tier", "Offer premium products", warn])
    top = first_actions(run_summary([*shop(), vip])).actions[0]
    assert (top.name, top.action, top.stake) == ("VIP regulars", warn, 40_000.0)
    # without the at-risk action among its actions, it is not listed
    vip.actions[:] = ["Keep them in a VIP tier", "Offer premium products"]
    assert "VIP regulars" not in [a.name for a in first_actions(run_summary([*shop(), vip])
                                                                 ).actions]


def test_one_time_buyers_who_lapsed_are_valued_at_risk_not_by_a_second_order():
    lapsed_once = segment(1, "One-time buyers, lapsed", {"lapsed": 700}, once=1.0,
                          basket=60.0, at_risk=650, at_risk_value=1_300.0)
    cooling_once = segment(2, "One-time buyers, cooling", {"cooling": 300}, once=0.7,
                           basket=55.0, at_risk=10, at_risk_value=900.0)
    by_name = {a.name: a for a in first_actions(run_summary([lapsed_once,
                                                             cooling_once])).actions}
    assert by_name["One-time buyers, lapsed"].stake == 1_300.0
    assert by_name["One-time buyers, cooling"].stake == 300 * 55.0
    assert by_name["One-time buyers, cooling"].stake_words.startswith(
        "one more order from each of its 300 customers (70% have bought only once)")


def test_audience_commands_name_a_file_and_quote_the_segment():
    assert slug("High-value, cooling") == "high-value-cooling"
    assert slug("Can't Lose Them") == "cant-lose-them"
    assert slug("Café crème, Körbe") == "cafe-creme-korbe"
    assert slug("***") == "segment"
    odd = segment(7, 'Say "$HOME" `now`', {"lapsed": 50}, once=0.0, basket=10.0,
                  at_risk=50, at_risk_value=500.0)
    command = first_actions(run_summary([odd])).actions[0].audience
    assert shlex.split(in_folder(command, "my runs/june")) == [
        "custseg", "export", "my runs/june", "--segment", "7", "--holdout", "10%", "--out",
        "say-home-now.csv"]


@pytest.fixture(scope="module")
def planted_runs(tmp_path_factory):
    frame, _ = planted_lines(seed=2)
    config = custseg.Config(mapping=PLANTED_MAP, report=False)
    root = tmp_path_factory.mktemp("first")
    return (custseg.run_segments(frame=frame, config=config, out_dir=root / "run"),
            custseg.run_rfm(frame=frame, config=config, out_dir=root / "rfm"))


@pytest.mark.parametrize("kind", ["run", "rfm"])
def test_each_audience_command_selects_its_segment(planted_runs, kind):
    result = planted_runs[0 if kind == "run" else 1]
    first = result.summary.first_actions
    assert 3 <= len(first.actions) <= 5
    table = result.customers
    label = "segment_name" if kind == "run" else "rfm_segment"
    for a in first.actions:
        args = shlex.split(in_folder(a.audience, str(result.out_dir)))
        chosen = args[args.index("--segment") + 1]
        audience, by_name = audience_table(table, [chosen])
        assert by_name == {a.name: a.customers}
        assert set(audience["customer_id"]) == set(
            table.loc[table[label].astype(str) == a.name, "customer_id"])


def test_stakes_of_a_run_agree_with_its_customers(planted_runs):
    """From segments.csv: a second order at the median basket of the segment's customers;
    the predicted value (clv) of its customers at risk: a churn risk at the threshold or
    more, or silent for three of their own gaps with the overdue risk or more."""
    result = planted_runs[0]
    clv = result.summary.clv
    table = pd.read_csv(result.out_dir / "segments.csv")
    at_risk = (table["churn_risk"] >= clv.churn_threshold) | (
        (table["recency"] >= 3 * table["mean_days_between_orders"])
        & (table["churn_risk"] >= clv.overdue_risk))
    kinds = set()
    for a in result.summary.first_actions.actions:
        rows = table["segment"] == a.segment
        kinds.add(a.stake_kind)
        if a.stake_kind == SECOND_ORDER:
            basket = table.loc[rows, "avg_order_value"].median()
            assert a.stake == pytest.approx(rows.sum() * basket, abs=0.01)
        elif a.stake_kind == COOLING_VALUE:
            assert a.stake == pytest.approx(table.loc[rows, "clv"].sum(), abs=0.5)
            assert (table.loc[rows, "stage"] == "cooling").mean() > 0.5
        else:
            assert a.stake == pytest.approx(table.loc[rows & at_risk, "clv"].sum(), abs=0.5)
            assert a.stake < table.loc[rows, "clv"].sum()
    assert len(kinds) >= 2 and kinds <= {SECOND_ORDER, AT_RISK_VALUE, COOLING_VALUE}
