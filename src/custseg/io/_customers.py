"""Customer tables: one row per customer with demographics or other attributes."""

from __future__ import annotations

import re

import duckdb
import pandas as pd

from ..config import Config
from ..exceptions import DataError, MappingError
from ._mapping import FIELDS, _list, normalize
from ._parse import id_expr, q
from ._readers import Source, damaged_parquet, load_source

_PII = re.compile(
    r"(^|first|last|full|given|family|sur|middle|maiden|customer|contact|client|member|user"
    r"|account|billing|shipping|recipient|buyer|cardholder|holder|owner|person|display)name$"
    r"|^names?$|e?mail|phone|mobile|telephone|^tel$|fax|address|street|postcode|postalcode"
    r"|zipcode|zip$|iban|creditcard|cardnumber|ssn|passport|birthdate|dateofbirth|^dob$"
    r"|^(nom|prenom|nombre|apellidos?|vorname|nachname|familienname|cognome|naam|voornaam"
    r"|achternaam|telefon|telefono|telephone|adresse|direccion|indirizzo|strasse|correo)$"
)
_EMAIL_VALUE = re.compile(r"^\s*[^@\s]+@[^@\s]+\.[A-Za-z]{2,}\s*$")
_PHONE_VALUE = re.compile(r"^\s*(\+|00)?[\d\s().-]{6,}\s*$")


def is_personal(column: str) -> bool:
    """True for columns that hold people's names, contacts or addresses."""
    return bool(_PII.search(normalize(column)))


def looks_personal(values: pd.Series) -> str | None:
    """``"e-mail addresses"`` or ``"phone numbers"`` when most of the (text) values are
    such, else None."""
    sample = values.dropna().astype(str).head(500)
    if sample.empty or pd.api.types.is_numeric_dtype(values):
        return None
    if sample.str.match(_EMAIL_VALUE).mean() > 0.5:
        return "e-mail addresses"
    phone = sample.str.match(_PHONE_VALUE) & sample.str.count(r"\d").between(7, 15) & (
        sample.str.strip().str.startswith(("+", "(", "0"))
        | sample.str.count(r"\d").ge(9)) & sample.str.contains(r"[\s().+-]")
    if phone.mean() > 0.5:
        return "phone numbers"
    return None


def find_key(columns: list[str], key: str | None = None, source: str = "customer table") -> str:
    """The customer id column of a customer table."""
    if key is not None:
        if key not in columns:
            raise MappingError(f"{source} has no column {key!r} (customers_key); columns "
                               f"present: {_list(columns)}.")
        return key
    norm = {c: normalize(c) for c in columns}
    for syn in FIELDS["customer_id"] + ("id",):
        for c in columns:
            if norm[c] == syn:
                return c
    raise MappingError(f"No customer id column in {source}. Columns present: {_list(columns)}. "
                       "Name it with the config key customers_key.")


def load_customers(con: duckdb.DuckDBPyConnection, path, config: Config
                   ) -> tuple[pd.DataFrame, dict]:
    """Read a customer table into pandas, keyed by text ``customer_id``.

    Personal columns (names, emails, phones, addresses) are left out. Returns the table and
    a description: source, key, numeric and categorical columns, what was left out.
    """
    source: Source = load_source(con, path, config=config, relation="customers_raw")
    key = find_key(source.columns, config.customers_key, source.name)
    personal = [c for c in source.columns if c != key and is_personal(c)]
    keep = [c for c in source.columns if c not in personal and c != key]
    cols = ", ".join(q(c) for c in keep)
    try:
        frame = con.execute(
            f"SELECT {id_expr(key, source.types[key])} AS customer_id"
            f"{', ' + cols if cols else ''} FROM {q(source.relation)}").df()
    except duckdb.Error as exc:
        if source.format == "parquet":
            raise damaged_parquet(source.name, exc) from None
        raise
    warnings = list(source.warnings)
    for c in list(keep):
        kind = looks_personal(frame[c])
        if kind:
            personal.append(c)
            keep.remove(c)
            frame = frame.drop(columns=c)
            warnings.append(f"Column {c!r} of {source.name} holds {kind}: personal data, left "
                            "out.")
    missing = int(frame["customer_id"].isna().sum())
    if missing:
        warnings.append(f"{missing} row(s) of {source.name} have no customer id and are ignored.")
        frame = frame[frame["customer_id"].notna()]
    dupes = int(frame["customer_id"].duplicated().sum())
    if dupes:
        warnings.append(f"{dupes} customer id(s) repeat in {source.name}; the first row of each "
                        "is used.")
        frame = frame.drop_duplicates("customer_id", keep="first")
    if frame.empty:
        raise DataError(f"{source.name} has no customers with an id in column {key!r}.")
    for c in keep:  # text files arrive as text: numbers become numbers
        if not pd.api.types.is_numeric_dtype(frame[c]) and frame[c].notna().any():
            as_num = pd.to_numeric(frame[c], errors="coerce")
            present = frame[c].notna().sum()
            if as_num.notna().sum() >= 0.5 * present:  # a number column with some errors
                bad_values = frame[c][frame[c].notna() & as_num.isna()]
                if len(bad_values):
                    shown = ", ".join(repr(v) for v in bad_values.astype(str).unique()[:3])
                    warnings.append(f"Column {c!r} of {source.name}: {len(bad_values)} value(s) "
                                    f"are not numbers (e.g. {shown}) and count as missing.")
                frame[c] = as_num
    numeric = [c for c in keep if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    categorical = [c for c in keep if c not in numeric]
    info = {"path": source.name, "format": source.format, "rows": source.rows, "key": key,
            "customers": len(frame), "numeric": numeric, "categorical": categorical,
            "personal_columns_left_out": personal, "warnings": warnings}
    return frame.reset_index(drop=True), info
