"""Customer tables read as a person reads them: codes written among numbers (``-1`` for
never contacted, ``999`` or ``9999`` for not given) are flags, never averaged; outcome
columns (churn, response, ``y``) are reported per segment as rates and not clustered on.
Fixtures are built here, shaped like a bank's campaign table and a telecom's."""

from __future__ import annotations

import json
import re
import statistics

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custseg import Config, run_segments
from custseg.io._roles import apply_roles, infer_roles, sentinel
from custseg.profile.outcomes import cohens_d, cohens_h


def bank(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A campaign table: pdays -1 for never contacted (82%), income 9999 for not given
    (5%), and the campaign's outcome y (yes/no), more likely with a high balance."""
    rng = np.random.default_rng(seed)
    pdays = np.where(rng.random(n) < 0.82, -1, rng.integers(1, 872, n))
    balance = rng.normal(1000, 3000, n).round()
    chance = 1 / (1 + np.exp(-(-2.2 + 0.0003 * balance)))
    return pd.DataFrame({
        "customer_id": [f"K{i:05d}" for i in range(n)],
        "age": rng.integers(18, 90, n),
        "balance": balance,
        "housing": rng.choice(["yes", "no"], n),
        "pdays": pdays,
        "campaign": rng.integers(1, 12, n),
        "income": np.where(rng.random(n) < 0.05, 9999, rng.integers(10, 150, n)),
        "job": rng.choice(["admin", "technician", "services", "retired", "student"], n),
        "y": np.where(rng.random(n) < chance, "yes", "no"),
    })


def test_codes_among_numbers_become_flags_and_are_never_averaged():
    frame = bank()
    roles, _ = infer_roles(frame, key="customer_id")
    table, _ = apply_roles(frame, roles)
    assert roles["pdays"].role == "missing"  # 18% real values: too few to use
    assert "-1 on 82% of the rows" in roles["pdays"].reason
    assert table["pdays not given"].mean() == pytest.approx((frame["pdays"] == -1).mean())
    assert roles["income"].role == "money" and roles["income"].sentinel == 9999
    assert table["income"].max() < 9999  # the code is missing, not a number
    assert table["income"].mean() == pytest.approx(
        frame.loc[frame["income"] != 9999, "income"].mean())
    assert table["income not given"].sum() == (frame["income"] == 9999).sum()
    assert table.attrs["custseg_roles"]["income not given"] == "flag"


@pytest.mark.parametrize("values", [
    np.random.default_rng(1).normal(1000, 3000, 500).round(),  # balances, many negatives
    np.random.default_rng(2).choice([-1, 0, 1], 500),  # a sentiment score
    np.where(np.random.default_rng(3).random(500) < 0.8, 0,
             np.random.default_rng(4).integers(1, 9, 500)),  # previous contacts
    np.random.default_rng(5).integers(0, 100, 500),  # 0..99: 99 is a value, not a code
    np.random.default_rng(6).normal(5, 10, 500).round(1),  # temperatures
], ids=["balance", "score", "previous", "to_99", "temperature"])
def test_ordinary_numbers_hold_no_code(values):
    assert sentinel(pd.Series(values, dtype=float)) is None


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 500), min_size=30, max_size=200).filter(
    lambda v: len(set(v)) >= 3), st.sampled_from([-1, -9, -999]), st.integers(5, 60))
def test_a_negative_code_among_counts_is_found_on_its_rows(counts, code, copies):
    values = pd.Series(counts + [code] * copies, dtype=float)
    assert sentinel(values) == (code, copies)
    assert sentinel(pd.Series(counts, dtype=float)) is None or max(counts) >= 99


def test_outcomes_are_told_from_attributes_by_name_and_two_values():
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({
        "customer_id": range(1000, 1000 + n),
        "y": rng.choice(["yes", "no"], n), "Churn": rng.integers(0, 2, n),
        "Exited": rng.integers(0, 2, n), "AcceptedCmp3": rng.integers(0, 2, n),
        "Attrition_Flag": rng.choice(["Existing Customer", "Attrited Customer"], n,
                                     p=[0.84, 0.16]),
        "housing": rng.choice(["yes", "no"], n), "Complain": rng.integers(0, 2, n),
        "age": rng.integers(18, 80, n)})
    roles, _ = infer_roles(frame, key="customer_id")
    got = {c: r.role for c, r in roles.items()}
    assert {c for c, r in got.items() if r == "outcome"} == {
        "y", "Churn", "Exited", "AcceptedCmp3", "Attrition_Flag"}
    assert got["housing"] == "flag" and got["age"] == "number"
    table, _ = apply_roles(frame, roles)
    rare = (frame["Attrition_Flag"] == "Attrited Customer").mean()
    assert table["Attrition_Flag"].mean() == pytest.approx(rare)  # the rarer level is 1


def test_a_campaign_table_reports_its_outcome_and_averages_no_code(tmp_path):
    frame = bank()
    frame.to_csv(tmp_path / "bank.csv", index=False)
    result = run_segments(tmp_path / "bank.csv", out_dir=tmp_path / "out",
                          config=Config(figures=False))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    used = summary["features"]["used"]
    assert "y" not in used and "pdays" not in used and "pdays not given" in used
    rate = (frame["y"] == "yes").mean()
    outcome = summary["outcomes"][0]
    assert outcome["column"] == "y" and outcome["rate"] == pytest.approx(rate, abs=1e-4)
    assert outcome["drivers"][0]["feature"] == "balance"  # the planted cause
    assert outcome["drivers"][0]["effect"] > 0.3
    sizes = 0
    for seg in summary["segments"]:
        mine = result.customers["segment"] == seg["id"]
        share = (frame.set_index("customer_id").loc[
            result.customers.loc[mine, "customer_id"], "y"] == "yes").mean()
        assert f"{share:.0%} y against {rate:.0%} overall" in seg["description"]
        assert "pdays -" not in seg["description"] and "9,999" not in seg["description"]
        # a code's flag reads as who has the value on record, not "rarely pdays not given"
        assert "not given" not in seg["name"]
        # its actions carry the numbers behind them: "(100% of them, 57% of all customers)"
        assert any(re.search(r"\d% of (all customers|them)|for all customers\)", a)
                   for a in seg["actions"])
        sizes += seg["size"]
    assert sizes == len(frame)
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "What goes with y" in report


def test_effect_sizes_match_their_definitions_and_cohens_table():
    a = np.array([2, 4, 4, 4, 5, 5, 7, 9], dtype=float)
    b = np.array([1, 2, 2, 3, 3, 4, 6], dtype=float)
    pooled = ((len(a) - 1) * statistics.variance(a) + (len(b) - 1) * statistics.variance(b)
              ) / (len(a) + len(b) - 2)
    assert cohens_d(a, b) == pytest.approx((statistics.mean(a) - statistics.mean(b))
                                           / pooled ** 0.5)
    assert cohens_h(0.50, 0.30) == pytest.approx(0.41, abs=0.005)  # Cohen (1988), table 6.2.1
    assert cohens_h(0.30, 0.50) == pytest.approx(-cohens_h(0.50, 0.30))


def test_unknown_written_as_a_level_is_not_given_and_never_names_a_segment(tmp_path):
    frame = bank(1500, seed=4)
    rng = np.random.default_rng(4)
    frame["contact"] = np.where(rng.random(len(frame)) < 0.3, "unknown",
                                rng.choice(["cellular", "telephone"], len(frame)))
    frame.loc[frame.index[:40], "job"] = "Unknown"
    frame.to_csv(tmp_path / "bank.csv", index=False)
    result = run_segments(tmp_path / "bank.csv", config=Config(report=False))
    table = result.customers
    assert table["contact"].isna().sum() == (frame["contact"] == "unknown").sum()
    assert table["job"].isna().sum() == 40
    notes = result.summary.customer_table["notes"]
    assert any(n.startswith("contact: 'unknown'") for n in notes)
    for seg in result.summary.segments:
        assert "unknown" not in seg.name.lower()
        assert not any("unknown" in a.lower() for a in seg.actions)


def test_a_data_dictionary_explains_abbreviations_in_names(tmp_path):
    """Names made of column words use the dictionary's, never the raw abbreviation."""
    rng = np.random.default_rng(5)
    n = 900
    group = rng.integers(0, 3, n)
    frame = pd.DataFrame({"customer_id": [f"K{i:04d}" for i in range(n)],
                          "MntWines": rng.normal(100 + 400 * (group == 0), 30, n).clip(0),
                          "NumWebVisitsMonth": rng.normal(2 + 6 * (group == 1), 1, n).clip(0),
                          "AcctBal": rng.normal(500 + 3000 * (group == 2), 200, n)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "columns.csv").write_text(
        "column,description\nMntWines,Wine spend last 2 years\n"
        "NumWebVisitsMonth,Web visits per month\nAcctBal,Account balance\n", encoding="utf-8")
    result = run_segments(tmp_path / "t.csv", config=Config(
        report=False, dictionary=str(tmp_path / "columns.csv")))
    text = " ".join(s.name + " " + s.description + " " + " ".join(s.actions)
                    for s in result.summary.segments)
    for raw in ("MntWines", "NumWebVisitsMonth", "AcctBal", "acct", "mnt"):
        assert raw.lower() not in text.lower()
    assert "account balance" in text or "wine spend last 2 years" in text
    firsts = [s.actions[0] for s in result.summary.segments]
    assert len(set(firsts)) == len(firsts)


def test_a_missing_data_dictionary_is_a_one_line_error(tmp_path):
    from custseg.core.exceptions import InputError

    frame = bank(200)
    frame.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(InputError, match="Data dictionary .*nothere.csv does not exist"):
        run_segments(tmp_path / "b.csv", config=Config(
            report=False, dictionary=str(tmp_path / "nothere.csv")))


def test_bare_levels_carry_their_column_and_codes_read_as_on_record():
    from custseg.profile.profiles import _Context, _phrase, level_text

    assert level_text("Dependents", "No") == "no dependents"
    assert level_text("Partner", "Yes") == "with partner"
    assert level_text("Gender", "F") == "gender F"
    assert level_text("Kidhome", "2") == "kids at home 2"
    assert level_text("Marca", "LG") == "LG"  # a brand keeps its capitals
    assert level_text("Contract", "Month-to-month") == "Month-to-month"
    ctx = _Context({"pdays": "days since the last contact"}, {"pdays not given": "flag"}, 0.3,
                   {})
    high, low = _phrase("pdays not given", 1.5, ctx), _phrase("pdays not given", -1.5, ctx)
    assert high.words == "mostly no days since the last contact"  # the dictionary's words
    assert low.words == "mostly with days since the last contact"
