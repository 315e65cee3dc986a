"""Money with its unit: the currency read from the data (a column of codes, the amounts'
signs, a column's name) or the config, written with every amount; a mix of currencies
warned about; customer-table columns with their unit; column names in other languages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from babel.numbers import get_currency_symbol
from hypothesis import given
from hypothesis import strategies as st

from custseg import Config, run_segments
from custseg.core.money import column_unit, currency_in, currency_of_values, money
from custseg.io import peek
from custseg.io._reading import reading_of
from custseg.profile.labels import humanise

PLAIN = Config(figures=False, clv={"enabled": False})


def test_amounts_are_written_with_the_currency_sign_babel_gives():
    assert money(5065.3, "GBP") == "£5,065"
    assert money(27.534, "EUR") == "€27.53"
    assert money(-3.2, "USD") == "-$3.20"
    assert money(1873, "CHF") == "1,873 CHF"  # CLDR has no sign: the code after
    assert money(1873, None) == "1,873"
    for code in ("JPY", "INR", "BRL", "KRW"):  # the sign is Babel's, not a list of ours
        assert money(1000, code) == f"{get_currency_symbol(code, 'en')}1,000"


@given(st.floats(-1e9, 1e9, allow_nan=False), st.sampled_from([None, "EUR", "GBP", "CHF",
                                                                "$"]))
def test_an_amount_written_with_its_unit_reads_back_as_itself(value, currency):
    text = money(value, currency)
    number = text.replace("CHF", "").strip(" €£$").replace("€", "").replace("£", "")
    number = number.replace("$", "").replace(",", "")
    digits = 2 if abs(value) < 100 else 0
    assert float(number) == pytest.approx(round(value, digits), abs=10 ** -digits)


def test_the_currency_of_values_needs_nearly_all_of_them():
    assert currency_of_values(["£1.00", "£2", None, "£3"])[0] == "GBP"
    assert currency_of_values(["9,90 BRL"] * 3)[0] == "BRL"
    one, seen = currency_of_values(["€1"] * 9 + ["$1"])
    assert one is None and seen == {"EUR": 9, "$": 1}  # 90%: not one currency
    assert currency_in("TOP 10 products") is None  # a word in capitals, not Albania's lek
    assert currency_in("sales_usd", lower_codes=True) == "USD"
    assert currency_in("sales_usd") is None


def _one_by_one(values) -> tuple[str | None, dict[str, int]]:
    """The currency of values read one by one (what :func:`currency_of_values` returns)."""
    seen: dict[str, int] = {}
    present = 0
    for v in values:
        if v is None or v != v or str(v).strip() == "":
            continue
        present += 1
        if c := currency_in(str(v)):
            seen[c] = seen.get(c, 0) + 1
    if not seen:
        return None, {}
    top = max(seen, key=seen.get)
    return (top if seen[top] >= 0.95 * present else None), seen


@given(st.lists(st.sampled_from(["£1.00", "£2", "€3,50", "9,90 BRL", "$4", "12.5", "7", "",
                                 "  ", None, "EUR", "TOP 10", "12 usd"]), max_size=60))
def test_the_currency_of_values_is_the_same_read_once_a_distinct_value(values):
    """Each distinct value is read once, from a list or a pandas column of text."""
    expected = _one_by_one(values)
    for given_values in (values, pd.Series(values, dtype="str"),
                         pd.Series(values, dtype=object)):
        one, seen = currency_of_values(given_values)
        assert (one, seen) == (expected[0], expected[1])


def lines(n: int = 1500, seed: int = 0, **columns) -> pd.DataFrame:
    """Order lines of 300 customers over two years, with extra columns."""
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, 300, n)
    day = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    frame = pd.DataFrame({"order_id": [f"O{i:05d}" for i in range(n)],
                          "customer_id": [f"C{c:04d}" for c in customer],
                          "order_date": day.strftime("%Y-%m-%d"),
                          "quantity": rng.integers(1, 4, n),
                          "unit_price": np.round(rng.lognormal(3, 0.7, n), 2)})
    for name, value in columns.items():
        frame[name] = value(frame) if callable(value) else value
    return frame


def reading(tmp_path, frame: pd.DataFrame):
    path = tmp_path / "lines.csv"
    frame.to_csv(path, index=False)
    return reading_of(peek(path, Config()), Config())


def test_the_currency_is_read_from_a_column_of_codes_the_amounts_or_a_name(tmp_path):
    r = reading(tmp_path, lines(Currency="eur"))  # Stripe writes codes in lower case
    assert (r.currency, r.currency_from) == ("EUR", "column 'Currency'")
    r = reading(tmp_path, lines(unit_price=lambda f: "£" + f["unit_price"].astype(str)))
    assert (r.currency, r.currency_from) == ("GBP", "the values of 'unit_price'")
    r = reading(tmp_path, lines().rename(columns={"unit_price": "Preis (CHF)"}))
    assert (r.currency, r.currency_from) == ("CHF", "the name 'Preis (CHF)'")
    r = reading(tmp_path, lines())
    assert r.currency is None and not r.warnings  # nothing names one: none claimed


def test_lines_in_several_currencies_are_warned_about_not_given_one(tmp_path):
    frame = lines(Currency=lambda f: np.where(np.arange(len(f)) % 4 == 0, "USD", "EUR"))
    r = reading(tmp_path, frame)
    assert r.currency is None
    (warning,) = r.warnings
    assert "'Currency' names 2 currencies" in warning and "EUR 75%" in warning
    result = run_segments(frame=frame, config=PLAIN.replace(report=False))
    assert warning in result.summary.audit.warnings  # in the run's output too
    assert not result.summary.get("currency")


def test_a_run_writes_its_currency_with_every_amount(tmp_path):
    result = run_segments(frame=lines(Currency="EUR"), out_dir=tmp_path / "run", config=PLAIN)
    s = result.summary
    assert (s.currency.code, s.currency.read_from) == ("EUR", "column 'Currency'")
    for seg in s.segments:  # "€31.50 per order (median)"
        assert "€" in seg.description and " per order" in seg.description
    money_actions = [a for seg in s.segments for a in seg.actions
                     if "spent each" in a or "basket" in a and any(c.isdigit() for c in a)]
    assert money_actions and all("€" in a for a in money_actions)
    html = (tmp_path / "run" / "report.html").read_text("utf-8")
    assert "€" in html
    # the config names it, or says none
    s = run_segments(frame=lines(Currency="EUR"), config=PLAIN.replace(
        report=False, currency="chf")).summary
    assert s.currency.code == "CHF" and "CHF" in s.segments[0].description
    s = run_segments(frame=lines(Currency="EUR"), config=PLAIN.replace(
        report=False, currency="none")).summary
    assert not s.get("currency") and "€" not in s.segments[0].description


def test_customer_table_columns_keep_the_money_unit_of_their_name():
    assert column_unit("Annual Income (k$)") == "k$"
    assert column_unit("Preis [€]") == "€"
    assert column_unit("balance_usd") == "USD"
    assert column_unit("Spending Score (1-100)") is None
    rng = np.random.default_rng(1)
    rich = rng.random(400) < 0.5
    table = pd.DataFrame({"CustomerID": range(400),
                          "Annual Income (k$)": np.where(rich, rng.normal(120, 5, 400),
                                                         rng.normal(30, 5, 400)),
                          "Spending Score (1-100)": np.where(rich, rng.normal(80, 5, 400),
                                                             rng.normal(20, 5, 400))})
    s = run_segments(frame=table, config=PLAIN.replace(report=False)).summary
    texts = " ".join(seg.description for seg in s.segments)
    assert "annual income" in texts and " k$ on average" in texts


def test_column_names_in_other_languages_read_in_english_only_when_whole():
    assert humanise("Filhos") == "children"
    assert humanise("Estado Civil") == "marital status"
    assert humanise("Marca") == "brand"
    assert humanise("Preço Unitário") == "preço unitário"  # accents kept, not split
    # half a name in the glossary: left as written, not half translated
    assert humanise("Descripción del Producto") == "descripción del producto"
    assert humanise("Filhos", {"Filhos": "kids at home"}) == "kids at home"
