"""Match input columns to custseg's canonical fields.

Column names are compared after normalisation (lower case, letters and digits only), first
against each field's synonyms in priority order, then by prefix/suffix ("Order Date (UTC)").
``--map FIELD=COLUMN`` overrides any of it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping

from custseg.core.exceptions import MappingError

#: Canonical fields of an order line, with synonyms in priority order (normalised names).
FIELDS: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "customerid", "customer", "customerno", "customernumber", "customernum", "custid",
        "custno", "customercode", "customerkey", "clientid", "client", "clientno",
        "clientnumber", "memberid", "member", "membernumber", "userid", "buyerid",
        "accountid", "accountnumber", "shopperid", "contactid",
        # German, French, Spanish, Italian, Dutch exports
        "kundennummer", "kundenid", "kunde", "kundennr", "idclient", "numeroclient", "cliente",
        "idcliente", "codcliente", "klantnummer", "klant",
    ),
    "invoice_id": (
        "invoiceno", "invoice", "invoiceid", "invoicenumber", "invoicenum", "orderid",
        "order", "orderno", "ordernumber", "ordernum", "orderkey", "transactionid",
        "transaction", "transactionno", "receiptid", "receiptno", "receiptnumber", "billno",
        "billid", "salesorder", "salesorderid", "basketid", "ticketid",
        "rechnungsnummer", "rechnungsnr", "rechnung", "bestellnummer", "belegnummer", "facture",
        "numerofacture", "numfacture", "commande", "factura", "numerofactura", "pedido",
        "numeropedido", "fattura", "factuurnummer", "bestelnummer",
    ),
    "invoice_date": (
        "invoicedate", "orderdate", "orderdatetime", "transactiondate", "transactiondatetime",
        "purchasedate", "saledate", "salesdate", "orderedat", "createdat", "date",
        "datetime", "timestamp", "orderts", "invoicedatetime", "receiptdate", "billdate",
        "rechnungsdatum", "bestelldatum", "belegdatum", "datum", "datefacture", "datecommande",
        "fechafactura", "fechapedido", "fecha", "datafattura", "factuurdatum",
    ),
    "quantity": (
        "quantity", "qty", "units", "unitssold", "quantityordered", "qtyordered", "orderqty",
        "orderquantity", "numitems", "itemcount", "pieces",
        "menge", "anzahl", "quantite", "cantidad", "quantita", "aantal",
    ),
    "unit_price": (
        "unitprice", "price", "priceeach", "unitcost", "itemprice", "priceperunit",
        "sellingprice", "saleprice", "listprice", "cost",
        "einzelpreis", "preis", "stueckpreis", "prixunitaire", "prix", "preciounitario", "precio",
        "prezzounitario", "prezzo", "prijs", "stukprijs",
    ),
    "amount": (
        "amount", "sales", "revenue", "linetotal", "lineamount", "totalprice", "totalamount",
        "total", "salesamount", "saleamount", "netsales", "grosssales", "value", "subtotal",
        "ordervalue", "totalsales", "extendedprice",
        "umsatz", "betrag", "gesamtpreis", "montant", "montanttotal", "importe", "importetotal",
        "totale", "importo", "bedrag", "omzet",
    ),
    "product_id": (
        "stockcode", "productid", "product", "sku", "productcode", "itemid", "itemcode",
        "item", "articleid", "article", "productno", "productnumber", "upc", "ean", "asin",
        "artikelnummer", "artikelnr", "artikel", "produit", "referencia", "producto", "articolo",
        "artikelcode",
    ),
    "description": (
        "description", "productname", "itemname", "itemdescription", "productdescription",
        "productdesc", "title",
    ),
    "category": (
        "subcategory", "category", "productcategory", "categoryname", "productsubcategory",
        "itemcategory", "department", "productline", "productgroup", "productfamily",
        "producttype", "kategorie", "warengruppe", "categorie", "categoria",
    ),
    "country": ("country", "countryname", "billingcountry", "customercountry", "countrycode",
                "land", "pays", "pais", "paese"),
    # a line's discount (an amount or a rate: nonzero means discounted) and coupon code
    "discount": ("discount", "discountamount", "linediscount", "lineitemdiscount", "rabatt",
                 "descuento", "desconto", "remise", "sconto", "korting"),
    "coupon": ("coupon", "couponcode", "discountcode", "promocode", "voucher", "vouchercode",
               "gutschein", "cupon", "cupom"),
}

#: Words that disqualify a column from a field even when a synonym matches
#: (a ship date is not the order date; a customer's name is not their id).
EXCLUDE: dict[str, tuple[str, ...]] = {
    "customer_id": ("name", "email", "mail", "phone", "address", "city", "zip", "segment",
                    "type", "country", "since"),
    "invoice_date": ("ship", "deliver", "due", "return", "birth", "signup", "register",
                     "updated", "modified", "cancel", "payment", "paid"),
    "invoice_id": ("date", "line", "status", "type", "priority"),
    "quantity": ("return",),
    "unit_price": ("total", "line"),
    "amount": ("discount", "tax", "shipping", "freight", "cost"),
    "category": ("customer", "client", "member", "user", "segment"),
}

#: Fields without which an order-line table cannot be used.
REQUIRED = ("customer_id", "invoice_date")
#: One of these must be present to compute monetary value.
MONEY = ("unit_price", "amount")


def normalize(name: str) -> str:
    """Lower-case letters and digits only: ``"Customer ID"`` -> ``"customerid"``."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def detect_mapping(columns: Iterable[str], fields: Mapping[str, tuple[str, ...]] = FIELDS
                   ) -> dict[str, str]:
    """Guess field -> column from column names alone.

    >>> detect_mapping(["InvoiceNo", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"])
    {'customer_id': 'CustomerID', 'invoice_id': 'InvoiceNo', 'invoice_date': 'InvoiceDate', \
'quantity': 'Quantity', 'unit_price': 'UnitPrice'}
    """
    columns = list(columns)
    norm = {c: normalize(c) for c in columns}
    taken: set[str] = set()
    found: dict[str, str] = {}

    def allowed(field: str, col: str) -> bool:
        return col not in taken and not any(w in norm[col] for w in EXCLUDE.get(field, ()))

    # Pass 1: exact synonyms, best synonym first.
    for field, synonyms in fields.items():
        for syn in synonyms:
            match = [c for c in columns if norm[c] == syn and allowed(field, c)]
            if match:
                found[field] = match[0]
                taken.add(match[0])
                break
    # Pass 2: prefix or suffix on longer names ("Order Date (UTC)", "Sales_EUR").
    for field, synonyms in fields.items():
        if field in found:
            continue
        for syn in synonyms:
            if len(syn) < 5:
                continue
            match = [c for c in columns if allowed(field, c)
                     and (norm[c].startswith(syn) or norm[c].endswith(syn))]
            if match:
                found[field] = match[0]
                taken.add(match[0])
                break
    return {f: found[f] for f in fields if f in found}


def resolve_mapping(columns: Iterable[str], overrides: Mapping[str, str] | None = None,
                    source: str = "input") -> dict[str, str]:
    """Detected mapping with explicit overrides applied and checked.

    Raises :class:`MappingError` naming the missing field, the columns present and the
    closest candidates when a needed field cannot be found.
    """
    columns = list(columns)
    overrides = dict(overrides or {})
    for field, col in overrides.items():
        if field not in FIELDS:
            raise MappingError(
                f"Unknown field {field!r} in --map; fields are: {', '.join(FIELDS)}."
            )
        if col not in columns:
            raise MappingError(
                f"--map {field}={col}: {source} has no column {col!r}; "
                f"columns present: {_list(columns)}{_closest(col, columns)}."
            )
    rest = [c for c in columns if c not in overrides.values()]
    detected = detect_mapping(rest, {f: s for f, s in FIELDS.items() if f not in overrides})
    mapping = {f: c for f, c in {**detected, **overrides}.items()}
    mapping = {f: mapping[f] for f in FIELDS if f in mapping}
    for field in REQUIRED:
        if field not in mapping:
            raise MappingError(_missing_message(field, columns, source))
    if not any(f in mapping for f in MONEY):
        raise MappingError(_missing_message("unit_price", columns, source,
                                            also="or amount (a line total)"))
    return mapping


def _missing_message(field: str, columns: list[str], source: str, also: str = "") -> str:
    wanted = f"{field} {also}".strip()
    guesses: list[str] = []
    for syn in FIELDS[field][:6]:
        guesses += difflib.get_close_matches(syn, [normalize(c) for c in columns], n=2, cutoff=0.6)
    by_norm = {normalize(c): c for c in columns}
    closest = list(dict.fromkeys(by_norm[g] for g in guesses))[:3]
    hint = f"; closest: {_list(closest)}" if closest else ""
    return (f"No column for {wanted} in {source}. Columns present: {_list(columns)}{hint}. "
            f"Name it with --map {field}=COLUMN.")


def _closest(col: str, columns: list[str]) -> str:
    close = difflib.get_close_matches(col, columns, n=3, cutoff=0.5)
    return f"; did you mean {_list(close)}?" if close else ""


def _list(cols: Iterable[str], limit: int = 30) -> str:
    cols = list(cols)
    shown = ", ".join(repr(c) for c in cols[:limit])
    return shown + (f" (+{len(cols) - limit} more)" if len(cols) > limit else "")


_DATE8 = re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$")
_DATE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?\d+[.,]\d+$")


def guess_from_values(sample: Mapping[str, Iterable[str]]) -> dict[str, str] | None:
    """Fields of a file without a header, from its values (column -> sample values as text):
    the order date is the column of dates (``19970101``, ``1997-01-01``, ``1/1/1997``), the
    customer id the first other column, and of the numbers after it a column with decimals
    is the line amount and a whole-number one the quantity (CDNOW: ``id date qty amount``).
    None unless exactly one reading fits."""
    kinds = {}
    for col, values in sample.items():
        vals = [str(v).strip() for v in values if v is not None and str(v).strip()]
        if not vals:
            return None
        share = {name: sum(bool(rx.match(v)) for v in vals) / len(vals)
                 for name, rx in (("date", _DATE8), ("sepdate", _DATE), ("int", _INTEGER),
                                  ("dec", _DECIMAL))}
        if share["date"] >= 0.99 or share["sepdate"] >= 0.99:
            kinds[col] = "date"
        elif share["int"] >= 0.99:
            kinds[col] = "int"
        elif share["int"] + share["dec"] >= 0.99:
            kinds[col] = "dec"
        else:
            kinds[col] = "text"
    cols = list(kinds)
    dates = [c for c in cols if kinds[c] == "date"]
    if len(dates) != 1 or cols[0] == dates[0]:
        return None
    mapping = {"customer_id": cols[0], "invoice_date": dates[0]}
    numbers = [c for c in cols[1:] if c != dates[0] and kinds[c] in ("int", "dec")]
    decimals = [c for c in numbers if kinds[c] == "dec"]
    whole = [c for c in numbers if kinds[c] == "int"]
    if len(numbers) == 1:
        mapping["amount"] = numbers[0]
    elif len(numbers) == 2 and len(decimals) == 1:
        mapping["amount"], mapping["quantity"] = decimals[0], whole[0]
    else:
        return None
    return mapping


#: Names of columns that may merely number the rows (``Row ID``, pandas' ``Unnamed: 0``);
#: their values decide (:func:`is_row_number`).
ROW_NUMBER_NAME = re.compile(
    r"unnamed:?\s*\d+|column0+|_c0|index|idx|level_0|#|n[o°º]\.?|nr\.?|num|"
    r"(row|line|record|serial|sr|s)[\s_.-]*(id|no\.?|nr\.?|num|number|#|index|idx)?|rowid|"
    r"rownum", re.IGNORECASE)


def row_number_name(name: str, first: bool = False) -> bool:
    """Whether a column may merely number the rows by its place or name: the first
    column, a nameless one, or one named like :data:`ROW_NUMBER_NAME`."""
    return first or not name.strip() or bool(ROW_NUMBER_NAME.fullmatch(name.strip()))


def is_row_number(rows: int, integers: int, low: int | None, high: int | None,
                  distinct: Callable[[], int]) -> bool:
    """Whether a column numbers the rows: ``rows`` integers (none missing), consecutive
    (``high - low + 1 == rows``) and all different, in any order. ``distinct()``, asked
    only for a column that passes the rest, counts the different values (0 when some
    value is not written as a plain integer)."""
    if rows < 2 or integers != rows or low is None or high - low + 1 != rows:
        return False
    return distinct() == rows
