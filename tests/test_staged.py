"""Segments made lifecycle stage first (``--strategy stages``, the default for order
lines): the estimator, its saved model, the names and actions, and the strategy chosen."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custseg import Config, run_segments
from custseg.cluster import StagedSegmenter
from custseg.cluster._staged import GROUPS
from custseg.core.exceptions import ConfigError
from custseg.prep.lifecycle import STATE
from custseg.synth import generate

PLAIN = Config(report=False, clv={"enabled": False})


def customers(n: int = 900, seed: int = 0, stages=None) -> pd.DataFrame:
    """Customers with a stage and two features that split each stage in two."""
    rng = np.random.default_rng(seed)
    stage = (rng.choice(["active", "cooling", "lapsed", "new"], n, p=[0.4, 0.2, 0.3, 0.1])
             if stages is None else np.asarray(stages))
    big = rng.random(len(stage)) < 0.5
    return pd.DataFrame({
        "monetary": np.where(big, rng.lognormal(7, 0.2, len(stage)),
                             rng.lognormal(3, 0.2, len(stage))),
        "avg_order_value": np.where(big, rng.normal(300, 20, len(stage)),
                                    rng.normal(20, 3, len(stage))),
        "stage": stage})


def test_no_segment_mixes_stage_groups_and_predict_repeats_the_fit():
    frame = customers()
    model = StagedSegmenter(n_bootstrap=3).fit(frame)
    groups = np.asarray(model.segment_groups_)[model.labels_]
    for seg in range(model.n_clusters_):
        assert len(set(frame["stage"][model.labels_ == seg])) == 1
    assert (groups == frame["stage"].to_numpy()).all()
    # the two planted spend levels split each stage
    assert [g["k"] for g in model.groups_] == [2, 2, 2, 2]
    assert (model.predict(frame) == model.labels_).all()
    # numbered stage by stage, the engaged first
    assert model.segment_groups_ == ["new", "new", "active", "active", "cooling", "cooling",
                                     "lapsed", "lapsed"]


def test_groups_split_two_at_a_time_give_the_segments_of_one_at_a_time(monkeypatch):
    """The groups split two at a time (each its own seeded Segmenter), one at a time past
    PAIRED_UP_TO customers: the same segments, notes and reasons either way."""
    from custseg.cluster import _staged
    from custseg.core import threads

    frame = customers(1_200, seed=3)
    workers = []
    pooled = _staged.pooled
    monkeypatch.setattr(_staged, "pooled",
                        lambda fn, items, w: workers.append(w) or pooled(fn, items, w))
    with threads.using(2):
        paired = StagedSegmenter(n_bootstrap=3).fit(frame)
        monkeypatch.setattr(_staged, "PAIRED_UP_TO", len(frame) - 1)
        alone = StagedSegmenter(n_bootstrap=3).fit(frame)
    assert workers == [2, 1]
    assert np.array_equal(paired.labels_, alone.labels_) and paired.n_clusters_ > 4
    assert paired.notes_ == alone.notes_
    assert [g["reason"] for g in paired.groups_] == [g["reason"] for g in alone.groups_]


def test_a_small_stage_joins_the_largest_group_of_its_state_or_a_neighbouring_one():
    stages = ["active"] * 500 + ["reactivated"] * 10 + ["lapsed"] * 300 + ["at risk"] * 8
    model = StagedSegmenter(n_bootstrap=3).fit(customers(stages=stages))
    by = {g["group"]: g["stages"] for g in model.groups_}
    # no other cooling group: at risk goes to the lapsed (nearer in need than the active)
    assert by == {"active": ["active", "reactivated"], "lapsed": ["at risk", "lapsed"]}


def test_a_small_stage_joins_a_neighbour_only_where_its_action_still_fits():
    # 30 cooling of 1,030 is under 3%; joining the 100 lapsed would make them 23% of it
    stages = ["new"] * 900 + ["cooling"] * 30 + ["lapsed"] * 100
    model = StagedSegmenter(n_bootstrap=3).fit(customers(stages=stages))
    assert {g["group"]: g["stages"] for g in model.groups_}["new"] == ["new", "cooling"]
    model = StagedSegmenter(n_bootstrap=3, least_fit=0.75).fit(customers(stages=stages))
    assert {g["group"]: g["stages"] for g in model.groups_}["lapsed"] == ["cooling", "lapsed"]
    # new customers have no neighbour but cooling: 20 of them stay a segment of their own
    model = StagedSegmenter(n_bootstrap=3).fit(customers(stages=["new"] * 20
                                                          + ["lapsed"] * 1000))
    group = next(g for g in model.groups_ if g["group"] == "new")
    assert group["stages"] == ["new"] and group["k"] == 1
    assert "segment of its own" in group["reason"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(list(GROUPS)), min_size=60, max_size=300),
       st.integers(0, 10_000))
def test_every_segment_is_mostly_its_groups_state(stages, seed):
    frame = customers(stages=stages, seed=seed)
    model = StagedSegmenter(n_bootstrap=0).fit(frame)
    state = frame["stage"].map(STATE)
    assert (model.labels_ >= 0).all()
    for seg in range(model.n_clusters_):  # its group's state, whose action it gets
        own = state[model.labels_ == seg] == GROUPS[model.segment_groups_[seg]]
        assert own.mean() >= model.least_fit
    assert (model.predict(frame) == model.labels_).all()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("staged")
    paths = generate(1500, root / "data", seed=9)
    result = run_segments(paths["transactions"], out_dir=root / "run",
                          config=Config(figures=False, clv={"enabled": False}))
    return root, paths, result


def test_the_saved_model_segments_the_same_customers_alike(demo):
    from custseg import load_model

    root, paths, result = demo
    model = load_model(root / "run" / "model.json")
    assert model.data["clustering"]["assignment"]["kind"] == "staged"
    scored = model.predict(paths["transactions"]).set_index("customer_id")
    mine = result.customers.set_index("customer_id")
    assert (scored.loc[mine.index, "segment"] == mine["segment"]).all()


def test_names_and_first_actions_agree_with_the_numbers(demo):
    _, _, result = demo
    s = result.summary
    assert s.strategy.name == "stages" and "lifecycle stage" in s.strategy.reason
    firsts = [seg.actions[0] for seg in s.segments]
    assert len(set(firsts)) == len(firsts)
    assert len({seg.name for seg in s.segments}) == len(s.segments)
    table = result.customers
    spend = table["monetary"]
    for seg in s.segments:
        mine = table[table["segment"] == seg.id]
        state = mine["stage"].map(STATE)
        assert state.isin(seg.action_for).mean() >= 0.8
        rank = (spend < mine["monetary"].median()).mean()  # counted here, from the table
        if seg.name.startswith("High-value") or seg.name.startswith("New big"):
            assert rank >= 2 / 3 - 0.01
        if seg.name.startswith(("Low-value", "Low-spend")):
            assert rank <= 1 / 3 + 0.01
        if "lapsed" in seg.name:
            assert seg.action_for == ["lapsed"] and (state == "lapsed").mean() >= 0.8
        if "cooling" in seg.name.lower():
            assert seg.action_for == ["cooling"]
        if "one-time" in seg.name.lower():
            assert (mine["frequency"] == 1).mean() >= 0.5
        for word in ("bargain", "deal", "price-sensitive"):  # no discount data here
            assert word not in seg.name.lower()
        # what sets it apart from the others of its name, with the numbers that show it
        said = re.search(r"\(\D?([\d.,]+)[^(]*?, median, against \D?([\d.,]+)",
                         " ".join(seg.actions))
        if ": " in seg.name and said:
            mine, theirs = (float(x.replace(",", "")) for x in said.groups())
            apart = seg.name.split(": ", 1)[1].split()[0]
            if apart in ("big", "wide", "many", "long", "high", "higher"):
                assert mine > theirs
            if apart in ("small", "narrow", "few", "short", "low", "lower"):
                assert mine < theirs
    assert any(": " in seg.name for seg in s.segments)


def test_the_report_says_which_strategy_and_each_segments_action_fit(demo):
    root, _, result = demo
    html = (root / "run" / "report.html").read_text(encoding="utf-8")
    assert 'id="strategy"' in html and 'id="stage-groups"' in html
    for seg in result.summary.segments:
        assert f"it fits <b>{seg.action_fit:.1%}</b>" in html


def test_a_given_k_clusters_all_customers_and_says_why(demo):
    _, paths, _ = demo
    result = run_segments(paths["transactions"], config=PLAIN, k=3)
    assert result.summary.strategy.name == "clusters" and result.summary.k == 3
    assert "--k" in result.summary.strategy.reason


def test_stages_on_a_customer_table_is_a_one_line_error(tmp_path):
    table = pd.DataFrame({"customer_id": range(60), "age": np.arange(60) % 50 + 20,
                          "income": np.arange(60) * 1000.0})
    with pytest.raises(ConfigError, match="--strategy stages needs order lines"):
        run_segments(frame=table, config=PLAIN, strategy="stages")


def one_time_lines(n: int = 900, seed: int = 1) -> pd.DataFrame:
    """A mall's till: every customer buys once, in one of five categories of very
    different prices, paying by one of three methods, at one of three malls."""
    rng = np.random.default_rng(seed)
    categories = np.array(["Clothing", "Shoes", "Books", "Toys", "Cosmetics"])
    price = {"Clothing": 300.0, "Shoes": 600.0, "Books": 15.0, "Toys": 35.0,
             "Cosmetics": 40.0}
    category = rng.choice(categories, n, p=[0.35, 0.15, 0.2, 0.15, 0.15])
    day = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    return pd.DataFrame({
        "invoice_no": [f"I{i:05d}" for i in range(n)],
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "gender": rng.choice(["Female", "Male"], n),
        "age": rng.integers(18, 70, n),
        "category": category,
        "quantity": rng.integers(1, 5, n),
        "price": [price[c] * rng.uniform(0.8, 1.2) for c in category],
        "payment_method": rng.choice(["Cash", "Credit Card", "Debit Card"], n),
        "invoice_date": day.strftime("%d/%m/%Y"),
        "shopping_mall": rng.choice(["Kanyon", "Forum", "Metrocity"], n)})


def test_one_time_buyers_are_segmented_by_what_and_how_they_bought(tmp_path):
    from custseg import load_model

    frame = one_time_lines()
    result = run_segments(frame=frame, out_dir=tmp_path / "run",
                          config=Config(figures=False, clv={"enabled": False}))
    s = result.summary
    assert "bought once" in s.strategy.reason and "category" in s.strategy.reason
    assert s.k >= 2
    table = result.customers.merge(frame[["customer_id", "category"]], on="customer_id",
                                   suffixes=("", "_line"))
    assert (table["category"] == table["category_line"]).all()  # each one's own category
    # segmented by what they bought: each category's buyers in one segment
    assert (table.groupby("category")["segment"].agg(
        lambda v: v.value_counts(normalize=True).iloc[0]) >= 0.9).all()
    for seg in s.segments:
        assert "new" not in seg.name.lower()  # nobody bought twice: no rhythm to be new in
        assert "regular" not in seg.name.lower() and "lapsed" not in seg.name.lower()
        assert "second" in seg.actions[0] or "next offer" in seg.actions[0]
    firsts = [seg.actions[0] for seg in s.segments]
    assert len(set(firsts)) == len(firsts)
    assert not any(f"({seg.name})" in seg.actions[0] for seg in s.segments)
    scored = load_model(tmp_path / "run" / "model.json").predict(frame=frame)
    assert (scored.set_index("customer_id")["segment"]
            == result.customers.set_index("customer_id")["segment"]).all()


def test_a_stage_clustering_cannot_split_is_split_by_its_main_category():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"monetary": rng.normal(100, 10, 600),  # one round cloud
                          "avg_items_per_order": rng.normal(3, 0.3, 600),
                          "category": rng.choice(["a", "b", "c", "d"], 600,
                                                 p=[0.5, 0.3, 0.18, 0.02]),
                          "stage": "new"})
    model = StagedSegmenter(n_bootstrap=5, fallback="category", min_stability=0.99,
                            features=["monetary", "avg_items_per_order"]).fit(frame)
    (group,) = model.groups_
    assert group["levels"] is not None and "split by category" in group["reason"]
    # one segment per level of at least 3% of all customers, then the others together
    by = pd.crosstab(frame["category"], model.labels_)
    assert (by.gt(0).sum(axis=1) == 1).all()
    assert [by.loc[c].idxmax() for c in "abcd"] == [0, 1, 2, 3]
    assert group["levels"]["other"] == 3
    assert (model.predict(frame) == model.labels_).all()


def test_a_split_by_category_names_each_level_as_the_data_writes_it():
    config = Config(report=False, min_stability=0.999, clv={"enabled": False})
    s = run_segments(frame=one_time_lines(), config=config).summary
    (group,) = s.strategy.groups
    assert "split by category" in group.reason
    levels = ("Clothing", "Shoes", "Books", "Toys", "Cosmetics")
    for seg in s.segments:
        level = seg.name.rsplit(": ", 1)[-1]
        assert level in levels or level == "other categories"
        if level in levels:  # its stage's action, built on what they bought
            assert seg.actions[0].startswith("Give them a reason for a second order")
            assert f"build it on {level}" in seg.actions[0]
    firsts = [seg.actions[0] for seg in s.segments]
    assert len(set(firsts)) == len(firsts)
