"""Personal data: salted hashes of customer ids (``--hash-ids``).

A hash is the HMAC-SHA-256 of the id keyed with the salt, written as its first 16 hex
digits (64 bits). Without the salt the ids cannot be recovered or checked against a list
of guesses; with the same salt the same customer gets the same hash in every output and
every run, so snapshots can still be compared with ``custseg track``. A salt that is not
given is drawn at random for the run and never written anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pandas as pd

from custseg.core.exceptions import DataError

#: Hex digits kept of each hash.
HASH_DIGITS = 16
#: What summary.json says about hashed ids (never the salt).
DESCRIPTION = f"salted hashes (HMAC-SHA-256, first {HASH_DIGITS} hex digits)"


def new_salt() -> str:
    """A random salt for one run."""
    return secrets.token_hex(16)


def salt_for(config) -> str | None:
    """The salt of a run with ``config.hash_ids``, else None."""
    return (config.salt or new_salt()) if config.hash_ids else None


def hash_ids(ids: pd.Series, salt: str) -> pd.Series:
    """Salted hashes of customer ids (missing ids stay missing)."""
    key = salt.encode("utf-8")

    def one(value) -> str | None:
        if value is None or (isinstance(value, float) and value != value):
            return None
        digest = hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()
        return digest[:HASH_DIGITS]

    hashed = pd.Series([one(v) for v in ids], index=ids.index, dtype=object)
    if hashed.dropna().duplicated().any() and not ids.dropna().duplicated().any():
        raise DataError("Two customer ids got the same hash (odds about 1 in 10^19 per pair); "
                        "run again with another --salt.")
    return hashed


def hashed_table(table: pd.DataFrame, salt: str, column: str = "customer_id") -> pd.DataFrame:
    """A copy of ``table`` with ``column`` hashed and the rows sorted by the hash (the
    order of the original ids would say something about them)."""
    if column not in table:
        return table
    out = table.copy()
    out[column] = hash_ids(out[column], salt)
    return out.sort_values(column, kind="stable").reset_index(drop=True)
