"""Money with its unit: which currency amounts are in, read from the data, and amounts
written with it ("£5,065", "1,873 CHF").

A currency is an ISO 4217 code ("EUR") or, when the data only shows a sign that several
currencies share, the sign itself ("$"). The codes and their signs come from Babel's
CLDR data (``babel.numbers``), not from a list kept here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import cache

#: Signs that stand for one currency only (CLDR's narrow signs are shared: "$", "¥",
#: "kr"), so a value written with one names the currency.
_ONE_CURRENCY = {"€": "EUR", "£": "GBP", "₹": "INR", "R$": "BRL", "₺": "TRY", "₩": "KRW",
                 "₽": "RUB", "₱": "PHP", "₫": "VND", "₪": "ILS", "zł": "PLN", "₴": "UAH",
                 "฿": "THB", "₦": "NGN"}
#: Signs shared by several currencies: kept as the unit, without a code.
_SHARED = ("$", "¥")
_SIGN = re.compile("R\\$|" + "|".join(re.escape(s) for s in _ONE_CURRENCY if s != "R$")
                   + "|[$¥]")
_CODE = re.compile(r"(?<![A-Za-z])([A-Z]{3}|[a-z]{3})(?![A-Za-z])")
#: Least share of a column's present values written with one currency to read it so.
MOST = 0.95


@cache
def codes() -> frozenset[str]:
    """The ISO 4217 codes in use (Babel's list)."""
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def currency_in(text: str, *, lower_codes: bool = False) -> str | None:
    """The currency a piece of text names: an ISO code ("12.50 EUR", "Sales (usd)" with
    ``lower_codes``), or a sign ("€12.50": EUR; "$12.50": "$"); None when none."""
    text = str(text)
    if m := _SIGN.search(text):
        return _ONE_CURRENCY.get(m[0], m[0])
    for m in _CODE.finditer(text):
        word = m[1]
        if (word.isupper() and word in codes() and word not in _WORDS) \
                or (lower_codes and word.upper() in _COMMON):
            return word.upper()
    return None


#: Codes that are more often a word in capitals ("ALL ORDERS", "TOP 10").
_WORDS = frozenset({"ALL", "TOP", "CUP", "MOP", "BAM", "SOS", "TRY", "MAD", "PEN", "GEL",
                    "BOB", "CVE", "STD", "LAK", "SHP"})
#: Codes read in lower case too ("sales_usd"): the widely traded ones, none an English word.
_COMMON = frozenset({"USD", "EUR", "GBP", "JPY", "CNY", "INR", "BRL", "MXN", "CAD", "AUD",
                     "CHF", "SEK", "NOK", "DKK", "PLN", "ZAR", "KRW", "RUB", "IDR", "ARS",
                     "CLP", "COP", "CZK", "HUF", "NZD", "SGD", "HKD", "THB", "PHP"})


def currency_of_values(values: Iterable[object]) -> tuple[str | None, dict[str, int]]:
    """The currency of a column's values (each an amount written with its sign or code, or
    a code alone: a currency column) when at least :data:`MOST` of the present values
    name one; and every currency seen with its count. Each distinct value is read once
    (a pandas Series counts them itself: a sample's prices repeat)."""
    counts = (values.value_counts(dropna=True) if hasattr(values, "value_counts")
              else Counter(values))
    seen: Counter[str] = Counter()
    present = 0
    for v, n in counts.items():
        if v is None or v != v or str(v).strip() == "":
            continue
        present += int(n)
        if c := currency_in(str(v)):
            seen[c] += int(n)
    if not seen:
        return None, {}
    top, n = seen.most_common(1)[0]
    return (top if n >= MOST * present else None), dict(seen.most_common())


def symbol(currency: str | None) -> str:
    """The sign to write before an amount ("€", "US$" is written "$"), or the code itself
    where CLDR has no sign ("CHF"); "" for no currency."""
    if not currency:
        return ""
    if currency in _SHARED or currency not in codes():
        return currency
    from babel.numbers import get_currency_symbol

    sign = get_currency_symbol(currency, "en")
    return "$" if sign == "US$" else sign


def money(value: float | None, currency: str | None = None, *, cents: bool | None = None
          ) -> str:
    """An amount with its currency: "£5,065", "€27.53", "1,873 CHF", or the number alone
    without a currency. Amounts of 100 or more are whole, smaller ones keep two decimals
    (``cents`` forces either)."""
    if value is None or value != value:
        return "?"
    two = abs(value) < 100 if cents is None else cents
    number = f"{abs(value):,.2f}" if two else f"{abs(value):,.0f}"
    sign = "-" if value < 0 and float(number.replace(",", "")) else ""
    unit = symbol(currency)
    if not unit:
        return f"{sign}{number}"
    if unit[-1].isalpha():  # a code: after the number
        return f"{sign}{number} {unit}"
    return f"{sign}{unit}{number}"


def column_unit(column: str) -> str | None:
    """The money unit a column's name gives: its brackets as written when they name a
    currency ("Annual Income (k$)": "k$", "Preis (€)": "€"), else a currency code in the
    name ("income_usd": "USD"); None otherwise."""
    for inside in re.findall(r"[(\[]([^)\]]{1,12})[)\]]", str(column)):
        if currency_in(inside, lower_codes=True):
            return inside.strip()
    return currency_in(str(column), lower_codes=True)
