"""Checks that turn surprises in the data into recorded warnings or one-line errors.

Each check looks at what cleaning produced (the ``lines`` table or the customer table)
and either says what it found (the warning goes into ``summary.json`` and the report) or
refuses with a :class:`~custseg.core.exceptions.DataError` naming the problem and the fix.
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd

from custseg.core.exceptions import DataError

#: A customer whose spend exceeds this many times the median customer's is reported.
OUTLIER_FACTOR = 1000
#: Fewest customers (and distinct customer profiles) clustering can work with.
MIN_TO_SEGMENT = 3
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_NAME = re.compile(r"^[A-Z][a-z'’-]+(?: [A-Z][a-z'’.-]*)+$")


def future_warning(name: str, today: dt.date, as_of: dt.date | None, count: int,
                   first: dt.date) -> str:
    if as_of is None:
        return (f"Every order of {name} is dated in the future (after today, {today}; the "
                f"first on {first}); check the dates of the export. Recency is counted from "
                "the day after the last order.")
    return (f"{count:,} line(s) of {name} are dated in the future (after today, {today}; "
            f"e.g. {first}); they are ignored as after_as_of and the as-of date is {as_of}, "
            "the day after the last order up to today. Pass --as-of to choose another.")


def customer_warnings(features: pd.DataFrame, id_column: str | None = None,
                      hide_ids: bool = False, quote_ids: bool = True) -> list[str]:
    """Warnings about the customer table: ids that differ only in leading zeros, ids that
    are personal data, spend far beyond the rest. With ``hide_ids`` (the ids are hashed in
    the outputs), or without ``quote_ids`` (they are personal data), no warning quotes
    an id."""
    warnings = []
    ids = features["customer_id"].astype(str)
    zeros = ids.str.startswith("0")
    clash = ids[:0]
    if zeros.any():
        stripped = ids.str.lstrip("0")
        clash = ids[stripped.isin(set(stripped[zeros])) & stripped.duplicated(keep=False)]
    if len(clash):
        groups = clash.groupby(stripped[clash.index]).agg(lambda s: ", ".join(
            repr(v) for v in sorted(s)[:3]))
        example = "" if hide_ids or not quote_ids else f" (e.g. {groups.iloc[0]})"
        warnings.append(f"{len(clash):,} customer ids differ from another only in leading "
                        f"zeros{example}; they are kept apart as different "
                        "customers. If they are the same customer, make the ids agree in the "
                        "export.")
    kind = None if hide_ids else _personal_ids(ids.head(1000), id_column)
    if kind:
        warnings.append(f"Customer ids look like {kind}; segments.csv and "
                        "excluded_customers.csv carry them as they are: pass --hash-ids to "
                        "write salted hashes instead.")
    if "monetary" in features and len(features) >= 2:
        spend = features["monetary"]
        median = float(spend.median())
        big = spend[spend > OUTLIER_FACTOR * median] if median > 0 else spend[:0]
        if len(big):
            warnings.append(f"{len(big):,} customer(s) spent more than {OUTLIER_FACTOR:,} "
                            f"times the median customer ({median:,.2f}), up to "
                            f"{float(big.max()):,.2f}; check for a data error (a wrong price "
                            "or quantity, a test order). They are kept.")
    return warnings


def _personal_ids(sample: pd.Series, id_column: str | None) -> str | None:
    """What kind of personal data the ids are, or None."""
    from custseg.io._roles import is_personal

    if not len(sample):
        return None
    if sample.str.match(_EMAIL).mean() > 0.5:
        return "e-mail addresses"
    if sample.str.match(_NAME).mean() > 0.5:
        return "people's names"
    if id_column is not None and is_personal(id_column):
        return f"personal data (column {id_column!r})"
    return None


def check_segmentable(table: pd.DataFrame, name: str, features: list[str] | None = None
                      ) -> None:
    """Refuse clustering with fewer than :data:`MIN_TO_SEGMENT` customers or profiles."""
    n = len(table)
    if n < MIN_TO_SEGMENT:
        raise DataError(f"Only {n} customer(s) of {name} can be segmented: clustering needs "
                        f"at least {MIN_TO_SEGMENT}; use `custseg rfm` for RFM segments, or "
                        "add more data.")
    cols = [c for c in (features or table.columns) if c != "customer_id" and c in table]
    # the first rows nearly always hold enough distinct profiles: no pass over millions
    distinct = len(table[cols].head(10_000).drop_duplicates()) if cols else 1
    if distinct < MIN_TO_SEGMENT and len(table) > 10_000:
        distinct = len(table[cols].drop_duplicates())
    if distinct < MIN_TO_SEGMENT:
        raise DataError(f"The {n:,} customers of {name} have only {distinct} distinct "
                        f"profile(s) (the same {', '.join(cols[:3])}...): too few to "
                        "cluster; use `custseg rfm` for RFM segments, or more varied data.")
