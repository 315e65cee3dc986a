"""Column names in plain words, for segment names and descriptions.

``humanise("MntMeatProducts")`` is ``"meat product spend"``, ``"PRC_FULL_PAYMENT"`` is
``"percent full payment"``, ``"NumWebVisitsMonth"`` is ``"number of web visits per
month"``: camelCase and snake_case are split, all-caps names lower-cased, units in
brackets dropped ("Annual Income (k$)" is "annual income") and the usual abbreviations
expanded. Amount columns (``Mnt``/``Amt`` first) read as "<what> spend". A user's own
words (config ``[labels]``) win over all of this.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import pandas as pd

from custseg.io._evidence import lexicon_raw, plain

#: Abbreviations (a whole word, lower case) and what they stand for.
ABBREVIATIONS: dict[str, str] = {
    "mnt": "amount", "amt": "amount", "num": "number of", "no": "number of",
    "nbr": "number of", "nr": "number of", "cnt": "count", "qty": "quantity",
    "avg": "average", "prc": "percent", "pct": "percent", "perc": "percent",
    "freq": "frequency", "trx": "transactions", "txn": "transactions", "txns": "transactions",
    "dt": "date", "cust": "customer", "yr": "year", "yrs": "years", "min": "minimum",
    "max": "maximum", "tot": "total", "bal": "balance", "cmp": "campaign",
    "prod": "product", "prods": "products", "purch": "purchase", "mnth": "month",
    "mth": "month", "mo": "month", "wk": "week", "acct": "account", "pmt": "payment",
    "amnt": "amount", "val": "value", "rev": "revenue", "hh": "household",
    "oneoff": "one-off", "tran": "transaction", "trans": "transactions", "ct": "count",
    "chng": "change", "util": "utilisation", "mon": "months", "inact": "inactive",
    "cont": "contacts", "dep": "dependents", "kidhome": "kids at home",
    "teenhome": "teens at home", "inc": "income",
}
#: Words that mean "the amount spent on": ``Mnt Wines`` becomes "wine spend".
_SPEND = {"mnt", "amt", "amnt", "amount"}
#: Nouns after which a plural reads as singular ("purchases frequency").
_HEADS = {"frequency", "transactions", "purchases", "count", "amount", "value", "rate",
          "spend", "total", "score", "share", "ratio"}
_UP, _LOW = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"  # Latin letters with accents too
_CAMEL = re.compile(rf"[{_UP}]\d+\b|[{_UP}]+(?=[{_UP}][{_LOW}])|[{_UP}]?[{_LOW}]+|[{_UP}]+|\d+")


def humanise(column: str, labels: Mapping[str, str] | None = None) -> str:
    """Plain lower-case words for a column name; ``labels[column]`` when given."""
    if labels and column in labels:
        return labels[column]
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", str(column))  # units: (k$), (1-100)
    words = [w for part in re.split(rf"[^{_UP}{_LOW}0-9]+", text) for w in _CAMEL.findall(part)]
    words = [w.lower() for w in words]
    if not words:
        return str(column).strip().lower() or "value"
    spend = len(words) > 1 and words[0] in _SPEND
    if spend:
        words = words[1:]
    out: list[str] = []
    for w in _english(words):
        out.extend(ABBREVIATIONS.get(w, w).split())
    if len(out) == 2 and out[0] in ("date", "year"):
        out.reverse()  # Dt_Customer: customer date; Year_Birth: birth year
    if len(out) > 1 and out[-1] == "month" and out[-2] != "per":
        out.insert(-1, "per")  # NumWebVisitsMonth: web visits per month
    if spend:
        out = [*out[:-1], _singular(out[-1]), "spend"]
    out = [_singular(w) if i + 1 < len(out) and out[i + 1] in _HEADS else w
           for i, w in enumerate(out)]  # PURCHASES_FREQUENCY: purchase frequency
    return " ".join(_dedupe(out))


def _english(words: list[str]) -> list[str]:
    """A name's words in English where the glossary has every one of them ("Estado Civil":
    marital status, "Filhos": children); as they are otherwise (no half-translated
    names)."""
    english, out, skip = glossary(), [], False
    for w, after in zip(words, [*words[1:], ""], strict=True):
        if skip:
            skip = False
        elif after and plain(w + after) in english:
            out.append(english[plain(w + after)])
            skip = True
        elif plain(w) in english:
            out.append(english[plain(w)])
        else:
            return words
    return out


@cache
def glossary() -> dict[str, str]:
    """Column-name words of other languages -> the English word (``data/column_words.json``,
    "glossary"): "filhos" is "children", "marca" is "brand"."""
    return {plain(w): english for english, others in lexicon_raw()["glossary"].items()
            if not english.startswith("_") for w in others}


def _singular(word: str) -> str:
    """Wines -> wine, products -> product (spend on a kind of thing)."""
    if (len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is"))
            and word not in ("sales", "series", "news", "goods", "days", "years", "months")):
        return word[:-1]
    return word


def _dedupe(words: list[str]) -> list[str]:
    """Drop a word repeated right after itself ("purchases purchases")."""
    return [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]


def read_dictionary(path: str | Path) -> dict[str, str]:
    """``{column: description}`` of a data dictionary: a CSV (or other delimited text) of
    a column name and its description per line, with or without a header. The
    descriptions are used as written, in lower case unless they hold capitals past their
    first letter (an acronym, a name)."""
    from custseg.core.exceptions import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Data dictionary {path} does not exist; pass a CSV file of column "
                         "name and description per line.")
    try:
        table = pd.read_csv(path, sep=None, engine="python", header=None, dtype=str,
                            encoding_errors="replace")
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"Data dictionary {path} cannot be read as CSV ({exc}).") from None
    if table.shape[1] < 2:
        raise InputError(f"Data dictionary {path} needs two columns: a column name and its "
                         "description per line.")
    out = {}
    for name, text in table.iloc[:, :2].itertuples(index=False):
        if isinstance(name, str) and isinstance(text, str) and name.strip() and text.strip():
            words = text.strip().rstrip(".")
            out[name.strip()] = words[0].lower() + words[1:] if words[1:] == words[1:].lower() \
                else words
    header = next(iter(out.items()), None)
    if header and header[0].lower() in ("column", "name", "variable", "field", "column name"):
        out.pop(header[0])
    return out
