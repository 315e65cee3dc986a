"""Segment names a marketer would write: plain words, unique without numbers, and never
contradicting the numbers (rhythm, at-risk share, value)."""

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import custseg
from custseg import ConfigError
from custseg.jobs.run import run_segments
from custseg.profile.labels import humanise
from custseg.profile.profiles import (
    build_profiles,
    check_rules,
    default_naming_rules,
    name_segments,
    naming_clashes,
    repeated_words,
)

MINOR = {"and", "of", "per", "the", "a", "an", "to", "at", "in", "on", "by", "with"}


def repeats(name: str) -> list[str]:
    """Words a name says twice (but "and", "of", ...)."""
    words = [w for w in re.findall(r"[a-z0-9]+", name.lower()) if w not in MINOR]
    return sorted({w for w in words if words.count(w) > 1})


# ------------------------------------------------------------------------- fixtures
def marketing_table(seed: int = 0, n: int = 300) -> pd.DataFrame:
    """A marketing-campaign style customer table (columns as in the public data set) of
    four planted groups, labelled with the group as its segment."""
    rng = np.random.default_rng(seed)
    groups = [  # income, wines, meat, fruits, web, store, cmp3 rate, birth year
        (82_000, 700, 420, 60, 6, 9, 0.25, 1955),
        (30_000, 20, 15, 4, 2, 3, 0.02, 1986),
        (52_000, 260, 70, 15, 8, 5, 0.05, 1972),
        (76_000, 280, 760, 90, 4, 8, 0.08, 1964),
    ]
    parts = []
    for seg, (income, wines, meat, fruits, web, store, cmp3, born) in enumerate(groups, 1):
        parts.append(pd.DataFrame({
            "ID": [f"{seg}{i:04d}" for i in range(n)],
            "Year_Birth": rng.normal(born, 5, n).round().astype(int),
            "Income": rng.normal(income, income * 0.12, n).round(),
            "MntWines": rng.lognormal(np.log(wines), 0.3, n).round(),
            "MntMeatProducts": rng.lognormal(np.log(meat), 0.3, n).round(),
            "MntFruits": rng.lognormal(np.log(fruits), 0.4, n).round(),
            "NumWebPurchases": rng.poisson(web, n),
            "NumStorePurchases": rng.poisson(store, n),
            "AcceptedCmp3": (rng.random(n) < cmp3).astype(int),
            "segment": seg}))
    return pd.concat(parts, ignore_index=True)


def credit_card_table(seed: int = 0, n: int = 300) -> pd.DataFrame:
    """A credit-card style customer table (CC General columns), four planted groups."""
    rng = np.random.default_rng(seed)
    groups = [  # balance, purchases, oneoff share, cash advance, purchase freq, limit, full pay
        (300, 3000, 0.7, 0, 0.9, 9000, 0.8),
        (5000, 150, 0.5, 3500, 0.1, 7000, 0.0),
        (80, 40, 0.5, 0, 0.05, 1500, 0.1),
        (1200, 900, 0.1, 100, 0.8, 3000, 0.05),
    ]
    parts = []
    for seg, (balance, purchases, oneoff, cash, freq, limit, full) in enumerate(groups, 1):
        p = rng.lognormal(np.log(purchases), 0.3, n)
        parts.append(pd.DataFrame({
            "CUST_ID": [f"C{seg}{i:04d}" for i in range(n)],
            "BALANCE": rng.lognormal(np.log(balance), 0.3, n),
            "PURCHASES": p,
            "ONEOFF_PURCHASES": p * oneoff,
            "CASH_ADVANCE": rng.lognormal(np.log(cash + 1), 0.3, n) - 1,
            "PURCHASES_FREQUENCY": np.clip(rng.normal(freq, 0.05, n), 0, 1),
            "CREDIT_LIMIT": rng.normal(limit, limit * 0.1, n).round(-2),
            "PRC_FULL_PAYMENT": np.clip(rng.normal(full, 0.05, n), 0, 1),
            "TENURE": rng.choice([11, 12], n),
            "segment": seg}))
    return pd.concat(parts, ignore_index=True)


def order_lines(stopped: float, seed: int = 0, n: int = 800) -> pd.DataFrame:
    """Order lines of ``n`` customers over two years: each repeat buyer orders about every
    ``gap`` days; a share ``stopped`` of them made their last order 4 to 12 gaps before
    the end, the rest are still buying to their rhythm. A third buy once."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2024-06-30")
    rows, inv = [], 0
    for c in range(n):
        gap = float(rng.lognormal(np.log(30), 0.4))
        orders = 1 if rng.random() < 0.33 else int(rng.integers(2, 16))
        big = rng.random() < 0.2
        basket = float(rng.lognormal(np.log(300 if big else 40), 0.3))
        if rng.random() < stopped:
            last = end - pd.Timedelta(days=gap * rng.uniform(4, 12))
        else:
            last = end - pd.Timedelta(days=gap * rng.uniform(0.05, 1.0))
        for o in range(orders):
            inv += 1
            when = last - pd.Timedelta(days=gap * (orders - 1 - o) * rng.uniform(0.8, 1.2))
            for _ in range(int(rng.integers(1, 4))):
                rows.append((f"T{inv}", when.floor("min"), f"K{c:05d}",
                             int(rng.integers(1, 4)), round(basket / 6, 2),
                             f"P{rng.integers(0, 80)}"))
    return pd.DataFrame(rows, columns=["ticket", "ordered", "client", "qty", "price", "sku"])


LINES_MAP = {"customer_id": "client", "invoice_id": "ticket", "invoice_date": "ordered",
             "quantity": "qty", "unit_price": "price", "product_id": "sku"}


def profiles_of(table: pd.DataFrame, key: str) -> dict:
    return build_profiles(table.drop(columns=[key]))


def names_of(profiles, **kwargs) -> dict[int, str]:
    return {i: v["name"] for i, v in name_segments(profiles, **kwargs).items()}


def plain_words_only(names, columns) -> None:
    """Unique, no repeated words, no numbering, no raw column names."""
    names = list(names)
    assert len(names) == len(set(names)), names
    for name in names:
        assert not repeats(name), name
        assert not re.search(r"\(\d+\)|\bgroup [A-Z]\b", name), name
        for column in columns:
            if humanise(column) != column.lower():
                assert column not in name and column.lower() not in name.lower(), name


# --------------------------------------------------------------------------- labels
@pytest.mark.parametrize("column, words", [
    ("MntMeatProducts", "meat product spend"),
    ("MntWines", "wine spend"),
    ("PRC_FULL_PAYMENT", "percent full payment"),
    ("NumWebVisitsMonth", "number of web visits per month"),
    ("NumDealsPurchases", "number of deal purchases"),
    ("PURCHASES_FREQUENCY", "purchase frequency"),
    ("CASH_ADVANCE_TRX", "cash advance transactions"),
    ("ONEOFF_PURCHASES_FREQUENCY", "one-off purchase frequency"),
    ("avg_order_value", "average order value"),
    ("Annual Income (k$)", "annual income"),
    ("Spending Score (1-100)", "spending score"),
    ("Year_Birth", "birth year"),
    ("Dt_Customer", "customer date"),
    ("AcceptedCmp3", "accepted campaign 3"),
    ("noOfOrders", "number of orders"),
    ("CustomerID", "customer id"),
    ("TotalQty", "total quantity"),
    ("max_txn_amt", "maximum transaction amount"),
])
def test_humanise(column, words):
    assert humanise(column) == words


def test_humanise_prefers_the_users_words():
    assert humanise("MntWines", {"MntWines": "Bordeaux spend"}) == "Bordeaux spend"
    assert humanise("MntFruits", {"MntWines": "Bordeaux spend"}) == "fruit spend"


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8)


@given(st.lists(_WORD, min_size=1, max_size=4))
def test_humanise_is_the_same_for_camel_snake_and_upper_case(words):
    camel = "".join(w.capitalize() for w in words)
    snake = "_".join(words)
    upper = "_".join(w.upper() for w in words)
    out = humanise(snake)
    assert humanise(camel) == out == humanise(upper)
    assert out == out.lower() and "_" not in out and out.strip() == out


# --------------------------------------------------------------- customer tables
def test_table_names_are_plain_words_from_the_distinguishing_columns():
    for table, key in ((marketing_table(), "ID"), (credit_card_table(), "CUST_ID")):
        profiles = profiles_of(table, key)
        names = names_of(profiles)
        plain_words_only(names.values(), table.columns)
        for i, name in names.items():
            feats = profiles[i]["features"]
            col = max(feats, key=lambda c: abs(feats[c]["z"]))
            label = humanise(col).removeprefix("number of ")
            z = feats[col]["z"]
            lowered = name.lower()
            if col == "Year_Birth":  # a later birth year reads as younger
                assert ("younger" if z > 0 else "older") in lowered, name
                continue
            assert label.split()[0] in lowered, (name, col)
            wrong = ("low", "few") if z > 0 else ("high", "many")
            assert not any(re.search(rf"\b{w} {re.escape(label)}", lowered) for w in wrong)


def test_table_names_read_as_expected():
    profiles = profiles_of(marketing_table(), "ID")
    names = names_of(profiles)
    # planted: 1 born ~1955 with high income and wine spend, 2 young and poor, 3 web
    # buyers, 4 the meat and fruit buyers
    assert re.fullmatch(r"Older, high (income|wine spend)", names[1]), names[1]
    assert names[2] in ("Low wine spend and income", "Low income and wine spend")
    assert names[3].startswith("Many web purchases")
    assert names[4] == "High meat product and fruit spend"


def test_grammar_of_two_phrases():
    def one(**z):
        return {1: {"customers": 10, "share": 0.5,
                    "features": {c: {"mean": 1.0, "median": 1.0, "z": v, "all_mean": 0.0}
                                 for c, v in z.items()}},
                2: {"customers": 10, "share": 0.5,
                    "features": {c: {"mean": 0.0, "median": 0.0, "z": -v, "all_mean": 0.0}
                                 for c, v in z.items()}}}
    assert names_of(one(Income=1.0, MntWines=0.8))[1] == "High income and wine spend"
    assert names_of(one(Income=1.0, MntWines=-0.8))[1] == "High income, low wine spend"
    assert names_of(one(MntWines=1.0, MntMeatProducts=0.8))[1] == \
        "High wine and meat product spend"
    assert names_of(one(NumWebPurchases=1.0, NumStorePurchases=0.9))[1] == \
        "Many web and store purchases"
    assert names_of(one(NumWebPurchases=-1.0))[1] == "Few web purchases"
    assert names_of(one(Age=1.0))[1] == "Older"


def test_roles_choose_the_wording():
    table = marketing_table()
    # the reader turns a date into days since it ("used_as")
    table["Dt_Customer"] = np.where(table["segment"] == 1, 3000, 400) + \
        np.arange(len(table)) % 50
    profiles = profiles_of(table, "ID")
    roles = {"AcceptedCmp3": {"role": "flag"}, "Year_Birth": {"role": "year"},
             "Dt_Customer": {"role": "date", "used_as": "days since, to 2014-06-30"}}
    names = names_of(profiles, roles=roles)
    assert "long-standing" in names[1].lower()
    # the flag reads as responders when it is among the words used
    clones = {1: profiles[1], 2: profiles[1] | {"features": {
        **profiles[1]["features"],
        "AcceptedCmp3": {**profiles[1]["features"]["AcceptedCmp3"], "z": 3.0}}}}
    assert "campaign 3 responders" in names_of(clones, roles=roles)[2]
    # a birth year the reader turned into an age: a high value is older, not younger
    aged = table.assign(Year_Birth=2014 - table["Year_Birth"])
    as_age = {"Year_Birth": {"role": "year", "used_as": "age in 2014"}}
    name = names_of(profiles_of(aged, "ID"), roles=as_age)[1].lower()
    assert "older" in name and "younger" not in name
    assert names_of(profiles, roles=roles)[1] == "Long-standing, older"  # born ~1955


def test_labels_override_appears_in_names():
    profiles = profiles_of(marketing_table(), "ID")
    names = names_of(profiles, labels={"MntWines": "Bordeaux spend"})
    assert names[2] in ("Low Bordeaux spend and income", "Low income and Bordeaux spend")
    assert not any("wine" in n for n in names.values())


def test_config_labels_reach_the_names_of_a_run():
    table = marketing_table(n=150).drop(columns="segment")
    result = run_segments(frame=table, k=4, config=custseg.Config(
        labels={"MntWines": "Bordeaux spend", "Income": "household income"}))
    names = [s["name"] for s in result.summary["segments"]]
    assert any("Bordeaux" in n or "household income" in n for n in names), names
    plain_words_only(names, table.columns)


def test_same_words_get_the_next_feature_not_a_number():
    table = marketing_table(n=200)
    twin = table[table["segment"] == 1].copy()
    twin["segment"] = 5
    twin["ID"] = "5" + twin["ID"]
    twin["NumWebPurchases"] += 3  # same top two features; the twin buys more on the web
    twin["MntFruits"] //= 3  # and less fruit
    profiles = profiles_of(pd.concat([table, twin], ignore_index=True), "ID")
    clashes = naming_clashes(profiles)
    assert len(clashes) == 1 and "segments 1 and 5" in clashes[0]
    names = names_of(profiles)
    plain_words_only(names.values(), table.columns)
    assert "fruit spend" in names[1] and "web purchases" in names[5], names
    # the original four are distinct: nothing to report
    assert naming_clashes(profiles_of(marketing_table(), "ID")) == []


def test_a_superlative_tells_apart_segments_whose_words_run_out():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "Age": np.r_[rng.normal(60, 3, 100), rng.normal(50, 3, 100), rng.normal(28, 3, 200)],
        "Annual Income (k$)": np.r_[rng.normal(30, 3, 200), rng.normal(70, 3, 200)],
        "segment": [1] * 100 + [2] * 100 + [3] * 200})
    names = names_of(build_profiles(frame))
    assert names[1].startswith("Oldest"), names
    assert re.search(r"\bolder\b", names[2].lower()) and "oldest" not in names[2].lower()
    plain_words_only(names.values(), frame.columns)


_COLUMNS = ["Income", "Year_Birth", "MntWines", "MntMeatProducts", "MntFruits",
            "NumWebPurchases", "NumStorePurchases", "NumDealsPurchases", "AcceptedCmp3",
            "BALANCE", "PURCHASES", "ONEOFF_PURCHASES", "CASH_ADVANCE", "PRC_FULL_PAYMENT",
            "CREDIT_LIMIT", "Age", "Spending Score (1-100)", "Recency", "Kidhome"]


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 8), st.lists(st.sampled_from(_COLUMNS), min_size=1, max_size=8,
                                   unique=True),
       st.data())
def test_table_names_are_always_unique_and_plain(k, columns, data):
    z = st.floats(-2.5, 2.5, allow_nan=False).map(lambda v: round(v, 2))
    profiles = {i: {"customers": 10, "share": 1 / k, "features": {
        c: {"mean": (m := data.draw(z)), "median": m, "z": m, "all_mean": 0.0}
        for c in columns}} for i in range(1, k + 1)}
    names = list(names_of(profiles).values())
    assert len(names) == len(set(names)) == k
    for name in names:
        assert not repeats(name) and not re.search(r"\(\d+\)", name), name
        assert name[0].isupper()


# ---------------------------------------------------------------------- order lines
SENSE = re.compile(r"loyal|regular|active", re.I)
#: Words that say a segment is slipping away or gone.
SAYS_SO = re.compile(r"slipping away|lapsed|lapsing|long since last order|overdue", re.I)


def agree_with_numbers(result) -> None:
    """Every loyal / regular / active / lapsed / high-value / big-spender / mid-value name
    agrees with the segment's numbers, computed here from the customer table."""
    seg = result.customers
    gaps = seg.loc[seg["frequency"] > 1].groupby("segment")["mean_days_between_orders"]
    all_gap = seg.loc[seg["frequency"] > 1, "mean_days_between_orders"].median()
    repeat = seg.assign(r=seg["frequency"] > 1).groupby("segment")["r"].mean()
    log_m = np.log1p(seg["monetary"])
    for s in result.summary["segments"]:
        i, name = s["id"], s["name"]
        rows = seg[seg["segment"] == i]
        gap = gaps.median().get(i) if repeat[i] >= 0.5 else all_gap
        ratio = rows["recency"].median() / gap
        if SENSE.search(name):
            assert ratio <= 1.5, (name, ratio)
        if re.search(r"lapsed", name, re.I):
            assert ratio > 3, (name, ratio)
        if re.search(r"high-value|big spender", name, re.I):
            means = seg.groupby("segment")["monetary"].mean()
            assert means.idxmax() == i and log_m[rows.index].mean() > log_m.mean(), name
        if "mid-value" in name:
            assert abs(s["profile"]["features"]["monetary"]["z"]) < 0.3
        risk = rows["rfm_segment"].isin(["At Risk", "Can't Lose Them", "About To Sleep"]).mean()
        assert s["profile"]["at_risk_share"] == pytest.approx(risk, abs=1e-4)
        if risk >= 0.3:
            assert SAYS_SO.search(name), (name, risk)
            assert "upsell" not in s["actions"][0].lower()


def test_no_loyal_segment_where_customers_stopped_buying():
    result = run_segments(frame=order_lines(stopped=1.0), k=4,
                          config=custseg.Config(mapping=LINES_MAP))
    names = [s["name"] for s in result.summary["segments"]]
    assert not any(SENSE.search(n) for n in names), names
    # by rank alone a segment looks loyal: more orders and more recent than the rest
    feats = [s["profile"]["features"] for s in result.summary["segments"]]
    assert any(f["frequency"]["z"] > 0.3 and f["recency"]["z"] < 0 for f in feats)
    agree_with_numbers(result)
    plain_words_only(names, ["mean_days_between_orders", "avg_order_value"])


def test_names_agree_with_the_rhythm_where_some_still_buy():
    result = run_segments(frame=order_lines(stopped=0.6, seed=1), k=5,
                          config=custseg.Config(mapping=LINES_MAP))
    agree_with_numbers(result)
    names = [s["name"] for s in result.summary["segments"]]
    plain_words_only(names, ["mean_days_between_orders", "avg_order_value"])
    assert any(re.search("lapsed", n, re.I) for n in names), names


def at_risk_customers(risky: float) -> pd.DataFrame:
    """Customer features of three segments; the top spenders buy to their rhythm but a
    share ``risky`` of them are RFM 'At Risk'."""
    rng = np.random.default_rng(7)
    n = 200
    parts = []
    for seg, (rec, freq, money, gap) in enumerate(
            [(10, 12, 5000, 12), (60, 4, 600, 50), (300, 1, 60, np.nan)], 1):
        rfm = np.where(rng.random(n) < (risky if seg == 1 else 0.05), "At Risk",
                       "Champions" if seg == 1 else "Hibernating")
        parts.append(pd.DataFrame({
            "recency": rng.poisson(rec, n) + 1, "frequency": rng.poisson(freq, n) + 1,
            "monetary": rng.lognormal(np.log(money), 0.3, n), "tenure": 400,
            "avg_order_value": rng.lognormal(np.log(money / freq), 0.2, n),
            "mean_days_between_orders": rng.normal(gap, 2, n), "rfm_segment": rfm,
            "segment": seg}))
    out = pd.concat(parts, ignore_index=True)
    out.loc[out["frequency"] == 1, "mean_days_between_orders"] = np.nan
    return out


def test_at_risk_share_changes_name_and_first_action():
    calm = name_segments(build_profiles(at_risk_customers(0.1)))
    assert calm[1]["name"] == "High-value loyal"
    risky_profiles = build_profiles(at_risk_customers(0.44))
    assert risky_profiles[1]["rhythm"]["status"] == "within"
    assert risky_profiles[1]["at_risk_share"] == pytest.approx(0.44, abs=0.06)
    risky = name_segments(risky_profiles)
    assert risky[1]["name"] == "Big spenders slipping away"
    assert risky[1]["actions"][0].startswith("Win them back")
    assert risky[1]["actions"][0] != calm[1]["actions"][0]
    # the threshold is the at_risk_share setting
    assert name_segments(risky_profiles, at_risk_share=0.5)[1]["name"] == "High-value loyal"


def test_at_risk_segments_no_rule_names_still_say_so():
    profiles = build_profiles(at_risk_customers(0.44))
    only = [{"name": "Whales", "when": {"monetary": "top"}, "actions": ["Upsell", "b"]}]
    named = name_segments(profiles, only)
    assert named[1]["name"] != "Whales"  # the rule does not take at-risk segments
    assert named[1]["name"].endswith("slipping away")
    assert named[1]["actions"][0].startswith("Win them back")


_STATUS = st.sampled_from(["within", "between", "beyond", "unknown"])
_TX = ("recency", "frequency", "monetary", "tenure", "avg_order_value",
       "mean_days_between_orders", "return_rate")


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 8), st.data())
def test_transaction_names_never_contradict_their_profile(k, data):
    z = st.floats(-2, 2, allow_nan=False).map(lambda v: round(v, 2))
    share = st.floats(0, 1, allow_nan=False).map(lambda v: round(v, 3))
    profiles = {}
    for i in range(1, k + 1):
        feats = {c: {"mean": (m := data.draw(z)), "median": m, "z": m, "all_mean": 0.0}
                 for c in _TX}
        profiles[i] = {"customers": 10, "share": 1 / k, "features": feats,
                       "at_risk_share": data.draw(share), "one_time_share": data.draw(share),
                       "rhythm": {"status": data.draw(_STATUS)}}
    named = name_segments(profiles)
    names = [v["name"] for v in named.values()]
    assert len(set(names)) == k
    top = max(profiles[i]["features"]["monetary"]["mean"] for i in profiles)
    for i, v in named.items():
        p, name = profiles[i], v["name"].lower()
        status, money = p["rhythm"]["status"], p["features"]["monetary"]
        assert not repeats(name), name
        if SENSE.search(name):
            assert status == "within", (name, status)
        if "lapsed" in name:
            assert status == "beyond", (name, status)
        if "high-value" in name or "big spenders" in name:
            assert money["mean"] == top and money["z"] > 0, (name, money)
        if "mid-value" in name:
            assert abs(money["z"]) < 0.3
        if re.search(r"\blow(-value)? spenders|low-value", name):
            assert money["z"] < -0.3
        if p["at_risk_share"] >= 0.3:
            assert SAYS_SO.search(name), (name, p["at_risk_share"])
            assert "upsell" not in v["actions"][0].lower()


# ------------------------------------------------------------------------ the rules
def test_rules_accept_the_extended_conditions():
    rules = [{"name": "X", "when": {"rhythm": ["within", "between"], "at_risk": ">0.3",
                                    "one_time": "<0.5", "monetary": ["top", ">0"]},
              "actions": ["a", "b"]}]
    assert check_rules(rules) is rules
    check_rules(default_naming_rules())


@pytest.mark.parametrize("rule, message", [
    ({"name": "X", "when": {"rhythm": "soon"}, "actions": ["a", "b"]}, "rhythm: 'soon'"),
    ({"name": "X", "when": {"at_risk": ">2"}, "actions": ["a", "b"]}, "at_risk: '>2'"),
    ({"name": "X", "when": {"one_time": "high"}, "actions": ["a", "b"]}, "one_time: 'high'"),
    ({"name": "X", "when": {"monetary": "huge"}, "actions": ["a", "b"]}, "monetary: 'huge'"),
    ({"name": "X", "when": {}, "action": ["a", "b"]}, "unknown key 'action'"),
    ({"name": "X", "when": ["monetary"], "actions": ["a", "b"]}, "table of conditions"),
    ({"name": "X", "when": {}, "actions": "ab"}, "list of texts"),
])
def test_bad_rules_get_one_line_errors(rule, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        custseg.Config(naming_rules=[rule])
    assert "\n" not in str(err.value)


def test_repeated_words_count_plurals_once():
    assert repeated_words("Low purchases, few purchase transactions") == ["purchase"]
    assert repeated_words("High income and wine spend") == []


def test_clashes_ignore_word_order():
    def seg(mean_age, z_age, mean_score, z_score):
        return {"customers": 50, "share": 0.25, "features": {
            "Age": {"mean": mean_age, "median": mean_age, "z": z_age, "all_mean": 40.0},
            "Spending Score (1-100)": {"mean": mean_score, "median": mean_score,
                                       "z": z_score, "all_mean": 50.0}}}
    profiles = {1: seg(29, -0.75, 68, 0.70), 2: seg(28, -0.76, 71, 0.83),
                3: seg(55, 1.1, 30, -0.9), 4: seg(45, 0.1, 50, 0.05)}
    clashes = naming_clashes(profiles)
    assert len(clashes) == 1 and clashes[0].startswith("segments 1 and 2 would share"), clashes
    names = names_of(profiles)
    plain_words_only(names.values(), ["Spending Score (1-100)"])
    # segment 2 is the youngest and the highest spending score of all
    assert "youngest" in names[2].lower() or "highest" in names[2].lower(), names


def test_clashes_of_order_lines_are_first_fitting_rules():
    table = at_risk_customers(0.1)
    twin = table[table["segment"] == 3].assign(segment=4)
    profiles = build_profiles(pd.concat([table, twin], ignore_index=True))
    clashes = naming_clashes(profiles)
    assert any(c.startswith("segments 3 and 4 would share the name") for c in clashes), clashes
    assert any("first action" in c for c in clashes)
    assert naming_clashes(build_profiles(table)) == []
    names = names_of(profiles)
    assert len(set(names.values())) == 4


def test_a_segment_is_not_beyond_its_rhythm_when_its_median_customer_is_within():
    """Median recency over median gap can be far beyond while most customers buy on time
    (the gaps and recencies belong to different customers): then it is not 'beyond'."""
    from custseg.profile.profiles import build_profiles as profiles_of

    parts = [(40, 100, 90), (30, 100, 10), (30, 10, 10)]  # share, recency, own gap
    rows = [{"recency": r, "mean_days_between_orders": g, "frequency": 5, "monetary": 100.0}
            for share, r, g in parts for _ in range(share)]
    frame = pd.DataFrame(rows).assign(customer_id=lambda d: d.index.astype(str), segment=1)
    rhythm = profiles_of(frame)[1]["rhythm"]
    assert rhythm["ratio"] == 10.0  # median recency 100 over median gap 10
    assert rhythm["customer_ratio"] == pytest.approx(100 / 90, abs=0.01)
    assert rhythm["status"] == "between"
