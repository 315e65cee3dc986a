"""Exports as shops, tills, marketplaces and panels write them, built in code from each
vendor's documented columns (no real data, no real people: names and e-mails are made
up here, on example domains).

Every builder starts from one seeded history of orders (:func:`history`) and writes it
in a layout; :class:`Export` carries the file and the truth the test checks against,
computed from the history by the rule the layout implies (never by custseg).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

FIRST = ("Ada", "Bruno", "Chloé", "Dev", "Emil", "Fatou", "Gus", "Hana", "Ivo", "Jun",
         "Kofi", "Lena", "Milo", "Nia", "Omar", "Pia", "Quinn", "Rui", "Sara", "Tomás")
LAST = ("Testperson", "Example", "Sample", "Placeholder", "Dummy", "Fictive", "Madeup",
        "Invented", "Notreal", "Mock")
PRODUCTS = [(f"SKU-{i:03d}", name, price, cat) for i, (name, price, cat) in enumerate([
    ("Speckled Mug", 18.0, "Kitchen"), ("Linen Tea Towel", 24.0, "Kitchen"),
    ("Beeswax Candle", 20.0, "Home"), ("Fern Print A5", 16.0, "Art"),
    ("Stoneware Bowl", 32.5, "Kitchen"), ("Wool Throw", 89.0, "Home"),
    ("Oak Board", 45.0, "Kitchen"), ("Poster A3", 22.0, "Art"), ("Vase", 38.0, "Home"),
    ("Tote Bag", 12.5, "Accessories"), ("Notebook", 9.9, "Stationery"),
    ("Pen Set", 14.0, "Stationery")])]


@dataclass
class Export:
    """A file in an export's layout and what is true of it."""

    path: Path
    customers: int  # distinct customers with a purchase
    lines: int  # purchase lines kept
    revenue: float  # what they spent
    extra: dict = field(default_factory=dict)


def people(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Made-up customers: id, name, e-mail (example domains), gender, age, city."""
    first = rng.choice(FIRST, n)
    last = rng.choice(LAST, n)
    ids = np.arange(1, n + 1)
    return pd.DataFrame({
        "person": ids,
        "name": [f"{f} {s}" for f, s in zip(first, last, strict=True)],
        "email": [f"{f.lower().replace('é', 'e').replace('á', 'a')}.{s.lower()}{i}"
                  f"@example.com" for f, s, i in zip(first, last, ids, strict=True)],
        "gender": rng.choice(["Female", "Male"], n),
        "age": rng.integers(18, 80, n),
        "city": rng.choice(["Springfield", "Albany", "Leeds", "Lyon"], n),
    })


def history(n_customers: int = 120, n_orders: int = 600, seed: int = 3,
            start: str = "2022-01-03", days: int = 540) -> pd.DataFrame:
    """Order lines of a small shop: one row per line with the person, order, time,
    product, quantity, unit price and the line total. Repeat buyers come back."""
    rng = np.random.default_rng(seed)
    who = people(n_customers, rng)
    weight = rng.gamma(0.6, 1.0, n_customers)
    buyer = rng.choice(n_customers, n_orders, p=weight / weight.sum())
    when = (pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, days * 24 * 60, n_orders),
                                                  unit="min")).sort_values()
    rows = []
    for o in range(n_orders):
        for p in rng.choice(len(PRODUCTS), rng.integers(1, 4), replace=False):
            sku, name, price, cat = PRODUCTS[p]
            qty = int(rng.choice([1, 1, 1, 2, 3]))
            rows.append((o + 1, buyer[o] + 1, when[o], sku, name, cat, qty, price))
    lines = pd.DataFrame(rows, columns=["order", "person", "time", "sku", "item", "category",
                                        "qty", "price"])
    lines["total"] = (lines["qty"] * lines["price"]).round(2)
    return lines.merge(who, on="person", how="left").sort_values(["order", "sku"],
                                                                  ignore_index=True)


def _header(text: str, sep: str = ",") -> list[str]:
    return text.split(sep)


def _first_only(frame: pd.DataFrame, key: str, columns: list[str]) -> pd.DataFrame:
    """Blank ``columns`` on every row of an order but its first (Shopify's layout)."""
    later = frame[key].duplicated()
    frame.loc[later, columns] = ""
    return frame


# --------------------------------------------------------------------------- shopify
SHOPIFY_HEADER = _header(
    "Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,"
    "Currency,Subtotal,Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,"
    "Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem compare at price,"
    "Lineitem sku,Lineitem requires shipping,Lineitem taxable,Lineitem fulfillment status,"
    "Billing Name,Billing Street,Billing Address1,Billing Address2,Billing Company,"
    "Billing City,Billing Zip,Billing Province,Billing Country,Billing Phone,Shipping Name,"
    "Shipping Street,Shipping Address1,Shipping Address2,Shipping Company,Shipping City,"
    "Shipping Zip,Shipping Province,Shipping Country,Shipping Phone,Notes,Note Attributes,"
    "Cancelled at,Payment Method,Payment Reference,Refunded Amount,Vendor,Outstanding Balance,"
    "Employee,Location,Device ID,Id,Tags,Risk Level,Source,Lineitem discount,Tax 1 Name,"
    "Tax 1 Value,Tax 2 Name,Tax 2 Value,Tax 3 Name,Tax 3 Value,Tax 4 Name,Tax 4 Value,"
    "Tax 5 Name,Tax 5 Value,Phone,Receipt Number,Duties,Billing Province Name,"
    "Shipping Province Name,Payment ID,Payment Terms Name,Next Payment Due At,"
    "Payment References")
#: Filled on an order's first line only (the rest of the header is on every line).
SHOPIFY_ORDER_LEVEL = [
    "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at", "Accepts Marketing",
    "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount",
    "Shipping Method", "Billing Name", "Billing Street", "Billing Address1", "Billing City",
    "Billing Zip", "Billing Province", "Billing Country", "Billing Phone", "Shipping Name",
    "Shipping City", "Shipping Country", "Notes", "Cancelled at", "Payment Method",
    "Refunded Amount", "Id", "Tags", "Risk Level", "Source"]


def shopify(folder: Path, seed: int = 3) -> Export:
    """A Shopify orders export: e-mail the only customer key (in mixed case now and
    then), order fields on the first line only, times with the shop's UTC offset
    (daylight saving: -0500 and -0400), refunded, partially refunded, voided, cancelled
    and test (Bogus gateway) orders, a POS order without e-mail, notes with line breaks."""
    lines = history(seed=seed)
    rng = np.random.default_rng(seed + 1)
    orders = lines.groupby("order").agg(total=("total", "sum"), time=("time", "first"),
                                        email=("email", "first"))
    status = pd.Series("paid", index=orders.index)
    pick = rng.permutation(orders.index)
    status[pick[:12]] = "refunded"
    status[pick[12:24]] = "partially_refunded"
    status[pick[24:30]] = "voided"
    status[pick[30:34]] = "pending"
    cancelled = set(pick[34:38])  # cancelled and refunded
    status[list(cancelled)] = "refunded"
    test = set(pick[38:41])  # paid through the Bogus gateway: test orders
    no_email = set(pick[41:44])  # POS sales without a customer
    refunded = pd.Series(0.0, index=orders.index)
    refunded[pick[12:24]] = (orders.loc[pick[12:24], "total"] * 0.25).round(2)
    refunded[status == "refunded"] = orders.loc[status == "refunded", "total"]

    def stamp(t: pd.Timestamp) -> str:
        offset = "-0400" if 3 <= t.month <= 10 else "-0500"  # the shop's zone, with DST
        return t.strftime("%Y-%m-%d %H:%M:%S ") + offset

    out = pd.DataFrame(index=lines.index, columns=SHOPIFY_HEADER, dtype=object).fillna("")
    o = lines["order"]
    out["Name"] = "#" + (1000 + o).astype(str)
    email = lines["email"].where(~o.isin(no_email), "")
    upper = rng.random(len(lines)) < 0.2
    out["Email"] = email.where(~upper, email.str.upper())
    out["Financial Status"] = o.map(status)
    out["Paid at"] = [stamp(t) if status[k] not in ("voided", "pending") else ""
                      for k, t in zip(o, lines["time"], strict=True)]
    out["Created at"] = [stamp(t - pd.Timedelta(seconds=2)) for t in lines["time"]]
    out["Currency"] = "USD"
    out["Subtotal"] = o.map(orders["total"]).map("{:.2f}".format)
    out["Total"] = (o.map(orders["total"]) + 5).map("{:.2f}".format)
    out["Shipping"] = "5.00"
    out["Lineitem quantity"] = lines["qty"].astype(str)
    out["Lineitem name"] = lines["item"]
    out["Lineitem price"] = lines["price"].map("{:.2f}".format)
    out["Lineitem sku"] = lines["sku"]
    out["Lineitem discount"] = "0.00"
    out["Lineitem requires shipping"] = "true"
    out["Billing Name"] = lines["name"]
    out["Billing Street"] = "12 Example Street"
    out["Billing City"] = lines["city"]
    out["Billing Country"] = "US"
    out["Billing Phone"] = "+15550100001"
    out["Cancelled at"] = [stamp(t + pd.Timedelta(hours=3)) if k in cancelled else ""
                           for k, t in zip(o, lines["time"], strict=True)]
    out["Payment Method"] = ["Bogus" if k in test else "Shopify Payments" for k in o]
    out["Refunded Amount"] = o.map(refunded).map("{:.2f}".format)
    out["Notes"] = ["Leave at the door\nplease" if k % 17 == 0 else "" for k in o]
    out["Id"] = (5_500_000_000_000 + o).astype(str)
    out["Source"] = np.where(o.isin(no_email), "pos", "web")
    out["Vendor"] = "Fake Pottery Co"
    out = _first_only(out, "Name", SHOPIFY_ORDER_LEVEL)
    path = folder / "orders_export_1.csv"
    out.to_csv(path, index=False)
    # the truth: paid and partially refunded orders, not cancelled, not tests, with an
    # e-mail; a partial refund taken off the order's lines in proportion
    keep = o.map(status).isin(["paid", "partially_refunded"]) & ~o.isin(cancelled | test
                                                                        | no_email)
    share = 1 - o.map(refunded) / o.map(orders["total"])
    revenue = float((lines["total"] * share)[keep].sum())
    return Export(path, customers=lines.loc[keep, "email"].str.lower().nunique(),
                  lines=int(keep.sum()), revenue=revenue,
                  extra={"emails": sorted(set(lines["email"])), "names": sorted(
                      set(lines["name"])), "gross": float(lines.loc[keep, "total"].sum())})


# ------------------------------------------------------------------------ woocommerce
def woocommerce_orders(folder: Path, seed: int = 4) -> Export:
    """WebToffee's orders export: one row per order, the header its column keys, items
    packed in line_item_N; statuses without 'wc-', a UTF-8 byte-order mark."""
    lines = history(seed=seed)
    orders = lines.groupby("order").agg(total=("total", "sum"), time=("time", "first"),
                                        email=("email", "first"), person=("person", "first"))
    rng = np.random.default_rng(seed)
    status = rng.choice(["completed", "processing", "refunded", "cancelled", "failed",
                         "on-hold"], len(orders), p=[.7, .12, .06, .05, .04, .03])
    out = pd.DataFrame({
        "order_id": orders.index + 2000, "order_number": orders.index + 2000,
        "order_date": orders["time"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "paid_date": [t.strftime("%Y-%m-%dT%H:%M:%S+00:00") if s in ("completed",
                      "processing", "refunded") else "" for t, s in
                      zip(orders["time"], status, strict=True)],
        "status": status, "shipping_total": "5.00", "discount_total": "0.00",
        "order_total": (orders["total"] + 5).map("{:.2f}".format),
        "order_currency": "EUR", "payment_method": "stripe",
        "customer_id": orders["person"], "billing_email": orders["email"],
        "billing_country": "FR",
        "line_item_1": "name:Speckled Mug|product_id:101|sku:MUG-BLU|quantity:2|total:32.40"})
    path = folder / "order_export_2024-03-05.csv"
    path.write_bytes(b"\xef\xbb\xbf" + out.to_csv(index=False).encode("utf-8"))
    keep = np.isin(status, ["completed", "processing"])
    return Export(path, customers=orders.loc[keep, "email"].nunique(), lines=int(keep.sum()),
                  revenue=float((orders["total"] + 5)[keep].sum()))


def woocommerce_items(folder: Path, seed: int = 5) -> Export:
    """AlgolPlus' Advanced Order Export, default fields: one row per product with the
    order's fields repeated; quoted headers; status labels."""
    lines = history(seed=seed)
    rng = np.random.default_rng(seed)
    labels = pd.Series(rng.choice(["Completed", "Processing", "Refunded", "Cancelled",
                                   "Pending payment"], lines["order"].max(),
                                  p=[.75, .1, .06, .05, .04]),
                       index=np.arange(1, lines["order"].max() + 1))
    out = pd.DataFrame({
        "Order Number": lines["order"] + 2100, "Order Status": lines["order"].map(labels),
        "Order Date": lines["time"].dt.strftime("%Y-%m-%d %H:%M"),
        "First Name (Billing)": lines["name"].str.split().str[0],
        "Last Name (Billing)": lines["name"].str.split().str[1],
        "City (Billing)": lines["city"], "Country Code (Billing)": "US",
        "Email (Billing)": lines["email"], "SKU": lines["sku"],
        "Item #": lines.groupby("order").cumcount() + 1, "Item Name": lines["item"],
        "Quantity": lines["qty"], "Item Cost": lines["price"],
        "Order Total Amount": lines.groupby("order")["total"].transform("sum").round(2)})
    path = folder / "woo-order-export.csv"
    out.to_csv(path, index=False, quoting=1)
    keep = lines["order"].map(labels).isin(["Completed", "Processing"])
    return Export(path, customers=lines.loc[keep, "email"].nunique(), lines=int(keep.sum()),
                  revenue=float(lines.loc[keep, "total"].sum()))


# ----------------------------------------------------------------------------- stripe
STRIPE_HEADER = _header("id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,"
                 "Converted Amount,Converted Amount Refunded,Converted Currency,Decline Reason,"
                 "Description,Fee,Refunded date (UTC),Statement Descriptor,Status,"
                 "Seller Message,Taxes On Fee,Card ID,Customer ID,Customer Description,"
                 "Customer Email,Invoice ID,Transfer")


def stripe(folder: Path, seed: int = 6) -> Export:
    """Stripe's unified_payments.csv: one row per payment, amounts in the major unit,
    statuses Paid, Failed, Refunded; a partial refund keeps Paid with Amount Refunded;
    guest payments have an e-mail but no customer id."""
    lines = history(seed=seed)
    pays = lines.groupby("order").agg(amount=("total", "sum"), time=("time", "first"),
                                      email=("email", "first"), person=("person", "first"))
    rng = np.random.default_rng(seed)
    status = rng.choice(["Paid", "Failed", "Refunded"], len(pays), p=[.85, .08, .07])
    refunded = np.where(status == "Refunded", pays["amount"], 0.0)
    partial = (status == "Paid") & (rng.random(len(pays)) < 0.1)
    refunded = np.where(partial, (pays["amount"] * 0.5).round(2), refunded)
    guest = rng.random(len(pays)) < 0.2
    out = pd.DataFrame("", index=pays.index, columns=STRIPE_HEADER)
    out["id"] = [f"ch_3Fake{i:012d}" for i in pays.index]
    out["Created date (UTC)"] = pays["time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    out["Amount"] = pays["amount"].map("{:.2f}".format)
    out["Amount Refunded"] = pd.Series(refunded, index=pays.index).map("{:.2f}".format)
    out["Currency"] = "usd"
    out["Captured"] = np.where(status == "Failed", "false", "true")
    out["Converted Amount"] = out["Amount"]
    out["Fee"] = (pays["amount"] * 0.029 + 0.3).map("{:.2f}".format)
    out["Status"] = status
    out["Customer ID"] = np.where(guest, "", "cus_Fake" + pays["person"].astype(str))
    out["Customer Email"] = pays["email"]
    path = folder / "unified_payments.csv"
    out.to_csv(path, index=False)
    value = pays["amount"] - refunded
    keep = (status == "Paid") & (value > 0)
    return Export(path, customers=pays.loc[keep, "email"].nunique(), lines=int(keep.sum()),
                  revenue=float(value[keep].sum()))


# ----------------------------------------------------------------------------- square
SQUARE_ITEMS = _header("Date,Time,Time Zone,Category,Item,Qty,Price Point Name,SKU,"
                "Modifiers Applied,Gross Sales,Discounts,Net Sales,Tax,Transaction ID,Payment ID,"
                "Device Name,"
                "Notes,Details,Event Type,Location,Dining Option,Customer ID,Customer Name,"
                "Customer Reference ID,Unit,Count,GTIN,Itemization Type,Commission,Employee,"
                "Fulfillment Note,Channel,Token,Card Brand,PAN Suffix")


def _dollars(x: float) -> str:
    return f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"


def square_items(folder: Path, seed: int = 7) -> Export:
    """Square's item sales export: money as $12.50, Qty as 1.0, refunds as rows of
    Event Type Refund with negative money, walk-in sales without a customer id,
    'None' for items without a category."""
    lines = history(seed=seed)
    rng = np.random.default_rng(seed)
    walk_in = lines["order"].isin(rng.choice(lines["order"].unique(), 80, replace=False))
    discount = np.where(rng.random(len(lines)) < 0.15, -(lines["total"] * 0.1).round(2), 0.0)
    net = (lines["total"] + discount).round(2)
    out = pd.DataFrame("", index=lines.index, columns=SQUARE_ITEMS)
    out["Date"] = lines["time"].dt.strftime("%Y-%m-%d")
    out["Time"] = lines["time"].dt.strftime("%H:%M:%S")
    out["Time Zone"] = "Eastern Time (US & Canada)"
    out["Category"] = np.where(lines["category"] == "Art", "None", lines["category"])
    out["Item"] = lines["item"]
    out["Qty"] = lines["qty"].map("{:.1f}".format)
    out["SKU"] = lines["sku"]
    out["Gross Sales"] = lines["total"].map(_dollars)
    out["Discounts"] = pd.Series(discount).map(_dollars)
    out["Net Sales"] = net.map(_dollars)
    out["Transaction ID"] = "FakeTxn" + lines["order"].astype(str).str.zfill(8)
    out["Event Type"] = "Payment"
    out["Location"] = "Market Street Shop"
    out["Customer ID"] = np.where(walk_in, "", "FAKECUST" + lines["person"].astype(str)
                                  .str.zfill(18))
    refund = lines.sample(15, random_state=seed).copy()
    back = pd.DataFrame("", index=range(15), columns=SQUARE_ITEMS)
    back["Date"] = (refund["time"] + pd.Timedelta(days=2)).dt.strftime("%Y-%m-%d").values
    back["Time"] = "09:15:30"
    back["Time Zone"] = "Eastern Time (US & Canada)"
    back["Item"] = refund["item"].values
    back["Qty"] = (-refund["qty"]).map("{:.1f}".format).values
    back["Net Sales"] = (-refund["total"]).map(_dollars).values
    back["Gross Sales"] = back["Net Sales"]
    back["Transaction ID"] = ("FakeTxn" + refund["order"].astype(str).str.zfill(8)).values
    back["Event Type"] = "Refund"
    back["Customer ID"] = ""
    out = pd.concat([out, back], ignore_index=True)
    path = folder / "items-2024-01-01-2024-12-31.csv"
    out.to_csv(path, index=False)
    keep = ~walk_in
    return Export(path, customers=lines.loc[keep, "person"].nunique(), lines=int(keep.sum()),
                  revenue=float(net[keep].sum()))


# ------------------------------------------------------------------------------- etsy
ETSY_ITEMS = _header("Sale Date,Item Name,Buyer,Quantity,Price,Coupon Code,Coupon Details,"
              "Discount Amount,Shipping Discount,Order Shipping,Order Sales Tax,Item Total,"
              "Currency,Transaction ID,Listing ID,Date Paid,Date Shipped,Ship Name,"
              "Ship Address1,Ship Address2,Ship City,Ship State,Ship Zipcode,Ship Country,"
              "Order ID,Variations,Order Type,Listings Type,Payment Type,InPerson Discount,"
              "InPerson Location,VAT Paid by Buyer,SKU")


def etsy(folder: Path, seed: int = 8) -> Export:
    """Etsy's sold order items: the buyer as 'Display Name (username)', no e-mail; Sale
    Date MM/DD/YY next to Date Paid MM/DD/YYYY; Item Total = Price x Quantity."""
    lines = history(seed=seed)
    out = pd.DataFrame("", index=lines.index, columns=ETSY_ITEMS)
    out["Sale Date"] = lines["time"].dt.strftime("%m/%d/%y")
    out["Date Paid"] = lines["time"].dt.strftime("%m/%d/%Y")
    out["Item Name"] = lines["item"]
    out["Buyer"] = lines["name"] + " (" + lines["name"].str.replace(" ", "").str.lower() \
        + lines["person"].astype(str) + ")"
    out["Quantity"] = lines["qty"]
    out["Price"] = lines["price"].map("{:.2f}".format)
    out["Item Total"] = lines["total"].map("{:.2f}".format)
    out["Currency"] = "USD"
    out["Transaction ID"] = (4_000_000_000 + lines.index).astype(str)
    out["Listing ID"] = lines["sku"].str[-3:].astype(int) + 1_500_000_000
    out["Ship Name"] = lines["name"]
    out["Ship Country"] = "United States"
    out["Order ID"] = (3_000_000_000 + lines["order"]).astype(str)
    out["SKU"] = lines["sku"]
    path = folder / "EtsySoldOrderItems2024.csv"
    out.to_csv(path, index=False)
    return Export(path, customers=lines["person"].nunique(), lines=len(lines),
                  revenue=float(lines["total"].sum()),
                  extra={"names": sorted(set(lines["name"]))})


AMAZON = _header("amazon-order-id\tmerchant-order-id\tpurchase-date\tlast-updated-date"
          "\torder-status\tfulfillment-channel\tsales-channel\torder-channel\turl\tship-service-level"
          "\tproduct-name\tsku\tasin\titem-status\tquantity\tcurrency\titem-price\titem-tax"
          "\tshipping-price\tshipping-tax\tgift-wrap-price\tgift-wrap-tax"
          "\titem-promotion-discount\tship-promotion-discount\tship-city\tship-state"
          "\tship-postal-code\tship-country\tpromotion-ids", "\t")


def amazon(folder: Path, seed: int = 9) -> Export:
    """Amazon's All Orders report (tab-separated): no buyer column at all."""
    lines = history(seed=seed)
    out = pd.DataFrame("", index=lines.index, columns=AMAZON)
    out["amazon-order-id"] = "111-" + lines["order"].astype(str).str.zfill(7) + "-0000001"
    out["purchase-date"] = lines["time"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    out["order-status"] = "Shipped"
    out["product-name"] = lines["item"]
    out["sku"] = lines["sku"]
    out["asin"] = "B0" + lines["sku"].str[-3:].str.zfill(8)
    out["quantity"] = lines["qty"]
    out["currency"] = "USD"
    out["item-price"] = lines["total"].map("{:.2f}".format)
    out["ship-postal-code"] = "01101"
    out["ship-country"] = "US"
    path = folder / "all-orders.txt"
    out.to_csv(path, index=False, sep="\t")
    return Export(path, customers=0, lines=len(lines), revenue=float(lines["total"].sum()))


# ------------------------------------------------------------------- tills and panels
def supermarket(folder: Path, seed: int = 10) -> Export:
    """A supermarket's history as a till writes it: TRANSACTION_DT month-first without
    leading zeros (11/1/2000), CUSTOMER_ID with leading zeros, AMOUNT the units and
    SALES_PRICE the line total (ASSET the cost); no order id; every line carries the
    customer's age group and postcode."""
    lines = history(n_customers=200, n_orders=900, seed=seed, start="2000-11-01", days=120)
    rng = np.random.default_rng(seed)
    lines["qty"] = rng.choice([1, 1, 1, 2, 3, 4, 6], len(lines))
    lines["total"] = (lines["qty"] * lines["price"]).round().astype(int)  # whole NT$
    age = pd.Series(rng.choice(["<25", "25-29", "30-34", "35-39", "40-44", "45+"], 200),
                    index=np.arange(1, 201))
    pin = pd.Series(rng.choice(["105", "106", "110", "114", "115", "221"], 200),
                    index=np.arange(1, 201))
    out = pd.DataFrame({
        "TRANSACTION_DT": lines["time"].map(lambda t: f"{t.month}/{t.day}/{t.year}"),
        "CUSTOMER_ID": lines["person"].astype(str).str.zfill(8),
        "AGE_GROUP": lines["person"].map(age), "PIN_CODE": lines["person"].map(pin),
        "PRODUCT_SUBCLASS": lines["category"], "PRODUCT_ID": lines["sku"].str[-3:]
        .str.zfill(13), "AMOUNT": lines["qty"],
        "ASSET": (lines["total"] * 0.8).round().astype(int), "SALES_PRICE": lines["total"]})
    path = folder / "ta_feng_all_months_merged.csv"
    out.to_csv(path, index=False)
    once = ~out.duplicated()  # a line written twice the same counts once (custseg's rule)
    return Export(path, customers=lines["person"].nunique(), lines=int(once.sum()),
                  revenue=float(lines.loc[once, "total"].sum()))


def retailer(folder: Path, seed: int = 11) -> Export:
    """A retailer's file with a row per transaction: customer_id, trans_date written
    14-Jan-15 (two-digit years), tran_amount."""
    lines = history(seed=seed, start="2011-05-16", days=1400)
    tx = lines.groupby("order").agg(person=("person", "first"), time=("time", "first"),
                                    total=("total", "sum"))
    out = pd.DataFrame({"customer_id": "CS" + (1000 + tx["person"]).astype(str),
                        "trans_date": tx["time"].dt.strftime("%d-%b-%y"),
                        "tran_amount": tx["total"].round().astype(int)})
    path = folder / "Retail_Data_Transactions.csv"
    out.to_csv(path, index=False)
    return Export(path, customers=tx["person"].nunique(), lines=len(tx),
                  revenue=float(out["tran_amount"].sum()))


def loyalty_panel(folder: Path, seed: int = 12, day_numbers: bool = False) -> Export:
    """A loyalty-card panel in Parquet: household_id, basket_id, product_id, quantity,
    sales_value (the line total), retail_disc and coupon_disc (discounts, zero or
    negative), transaction_timestamp; with ``day_numbers`` a DAY column (1 = the first
    day) instead of the timestamp."""
    lines = history(n_customers=80, n_orders=1500, seed=seed, start="2017-01-01", days=365)
    rng = np.random.default_rng(seed)
    disc = np.where(rng.random(len(lines)) < 0.3, -(lines["total"] * 0.2).round(2), 0.0)
    coupon = np.where(rng.random(len(lines)) < 0.05, -0.5, 0.0)
    value = (lines["total"] + disc).round(2)
    frame = pd.DataFrame({
        "household_id": (lines["person"] + 1000).astype(str),
        "store_id": rng.choice(["367", "403", "445"], len(lines)),
        "basket_id": (31_000_000_000 + lines["order"]).astype(str),
        "product_id": lines["sku"].str[-3:].astype(int) + 800_000,
        "quantity": lines["qty"], "sales_value": value, "retail_disc": disc,
        "coupon_disc": coupon, "coupon_match_disc": 0.0})
    if day_numbers:
        frame["DAY"] = (lines["time"].dt.normalize() - pd.Timestamp("2017-01-01")).dt.days + 1
        frame["WEEK_NO"] = (frame["DAY"] - 1) // 7 + 1
    else:
        frame["transaction_timestamp"] = lines["time"]
        frame["week"] = lines["time"].dt.isocalendar().week.astype(int)
    path = folder / ("transaction_data.parquet" if day_numbers else "transactions.parquet")
    frame.to_parquet(path, index=False)
    return Export(path, customers=lines["person"].nunique(), lines=len(lines),
                  revenue=float(value.sum()),
                  extra={"discounted": float(value[(disc < 0) | (coupon < 0)].sum())})


def mall(folder: Path, seed: int = 13) -> Export:
    """A mall chain's till export: every customer bought once; gender and age on every
    line; price is already the line total (quantity x unit price of the category);
    invoice dates day-first (16/05/2021)."""
    rng = np.random.default_rng(seed)
    n = 1500
    unit = {"Clothing": 300.08, "Shoes": 600.17, "Books": 15.15, "Cosmetics": 40.66,
            "Food & Beverage": 5.23, "Toys": 35.84, "Technology": 1050.0, "Souvenir": 11.73}
    category = rng.choice(list(unit), n)
    qty = rng.integers(1, 6, n)
    price = np.round([unit[c] * q for c, q in zip(category, qty, strict=True)], 2)
    when = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 790, n), unit="D")
    frame = pd.DataFrame({
        "invoice_no": [f"I{100000 + i}" for i in range(n)],
        "customer_id": [f"C{200000 + i}" for i in range(n)],
        "gender": rng.choice(["Female", "Male"], n, p=[.6, .4]),
        "age": rng.integers(18, 70, n), "category": category, "quantity": qty,
        "price": price,
        "payment_method": rng.choice(["Cash", "Credit Card", "Debit Card"], n),
        "invoice_date": when.strftime("%d/%m/%Y"),
        "shopping_mall": rng.choice(["Kanyon", "Forum Istanbul", "Metrocity", "Zorlu"], n)})
    path = folder / "customer_shopping_data.csv"
    frame.to_csv(path, index=False)
    return Export(path, customers=n, lines=n, revenue=float(price.sum()),
                  extra={"times_quantity": float((price * qty).sum())})


# ------------------------------------------------------------------------ languages
LANGUAGES = {
    # language: (customer, order, date, quantity, unit price, product, date format)
    "de": ("Kundennummer", "Rechnungsnummer", "Rechnungsdatum", "Menge", "Einzelpreis",
           "Artikelnummer", "%d.%m.%Y"),
    "es": ("Id. del cliente", "Número de pedido", "Fecha del pedido", "Cantidad",
           "Precio unitario", "Código de producto", "%d/%m/%Y"),
    "pt": ("Código do cliente", "Número do pedido", "Data da compra", "Quantidade",
           "Preço unitário", "Código do produto", "%d/%m/%Y"),
    "fr": ("N° client", "N° de commande", "Date de commande", "Quantité", "Prix unitaire",
           "Référence produit", "%d/%m/%Y"),
    "it": ("Codice cliente", "Numero ordine", "Data ordine", "Quantità", "Prezzo unitario",
           "Codice articolo", "%d/%m/%Y"),
    "nl": ("Klantnummer", "Bestelnummer", "Besteldatum", "Aantal", "Stukprijs",
           "Artikelcode", "%d-%m-%Y"),
}


def in_language(folder: Path, lang: str, seed: int = 14) -> Export:
    """Order lines with headers in ``lang`` and a decimal comma, ';'-separated, in the
    column order a local ERP might write (money before quantity, the date last)."""
    cust, order, date, qty, price, product, fmt = LANGUAGES[lang]
    lines = history(seed=seed)
    frame = pd.DataFrame({
        product: lines["sku"], price: lines["price"].map(lambda p: f"{p:.2f}".replace(".", ",")),
        cust: "K" + lines["person"].astype(str).str.zfill(5),
        qty: lines["qty"], order: (70000 + lines["order"]).astype(str),
        date: lines["time"].dt.strftime(fmt)})
    path = folder / f"export_{lang}.csv"
    frame.to_csv(path, index=False, sep=";")
    return Export(path, customers=lines["person"].nunique(), lines=len(lines),
                  revenue=float(lines["total"].sum()),
                  extra={"mapping": {"customer_id": cust, "invoice_id": order,
                                     "invoice_date": date, "quantity": qty,
                                     "unit_price": price, "product_id": product}})


# ------------------------------------------------------------------------------ dates
def dated(folder: Path, form: str, seed: int = 15) -> Export:
    """Transactions whose dates are written as ``form``: ``excel`` (serial days),
    ``unix`` (seconds), ``unix_ms``, ``two_digit`` (05/03/24, day-first), ``offsets``
    (ISO with mixed UTC offsets of two zones), ``day_numbers`` (DAY 1..N)."""
    lines = history(seed=seed, start="2023-01-02", days=400)
    tx = lines.groupby("order").agg(person=("person", "first"), time=("time", "first"),
                                    total=("total", "sum"))
    t = tx["time"]
    epoch = (t - pd.Timestamp("1970-01-01")).dt.total_seconds()
    written = {
        "excel": (epoch / 86400 + 25569).round(5).astype(str),
        "unix": epoch.astype(np.int64).astype(str),
        "unix_ms": (epoch * 1000).astype(np.int64).astype(str),
        "two_digit": t.dt.strftime("%d/%m/%y"),
        "offsets": [(x + pd.Timedelta(hours=6 if i % 3 == 0 else 0)).strftime(
            "%Y-%m-%dT%H:%M:%S") + ("+01:00" if i % 3 == 0 else "-05:00")
            for i, x in enumerate(t)],
        "day_numbers": ((t.dt.normalize() - pd.Timestamp("2023-01-02")).dt.days + 1)
        .astype(str),
    }[form]
    name = {"excel": "Order Date", "unix": "created_at", "unix_ms": "timestamp_ms",
            "two_digit": "Date", "offsets": "order_date", "day_numbers": "DAY"}[form]
    frame = pd.DataFrame({"customer": "U" + tx["person"].astype(str), name: written,
                          "amount": tx["total"].round(2)})
    path = folder / f"dates_{form}.csv"
    frame.to_csv(path, index=False)
    return Export(path, customers=tx["person"].nunique(), lines=len(tx),
                  revenue=float(tx["total"].sum()),
                  extra={"first": t.min().normalize(), "last": t.max().normalize(),
                         "column": name})


# -------------------------------------------------------------------- several tables
def marketplace(folder: Path, seed: int = 16) -> Export:
    """A marketplace's tables, as one public marketplace publishes them: order items
    (order_id, order_item_id 1, 2, 3 within an order, product_id, price, freight_value),
    orders (a new customer_id for every order, order_status, purchase timestamp) and
    customers (customer_id -> the person's customer_unique_id, city and state); canceled
    orders among them."""
    lines = history(n_customers=150, n_orders=700, seed=seed)
    rng = np.random.default_rng(seed)
    orders = lines.groupby("order").agg(person=("person", "first"), time=("time", "first"))
    status = pd.Series(rng.choice(["delivered", "shipped", "canceled"], len(orders),
                                  p=[.9, .06, .04]), index=orders.index)
    record = {o: f"{rng.integers(16**14, 16**15):015x}" for o in orders.index}
    person = {p: f"{rng.integers(16**14, 16**15):015x}" for p in orders["person"].unique()}
    items = pd.DataFrame({
        "order_id": lines["order"].map(lambda o: f"o{o:06d}"),
        "order_item_id": lines.groupby("order").cumcount() + 1,
        "product_id": lines["sku"], "price": lines["total"],
        "freight_value": (lines["total"] * 0.1).round(2)})
    order_table = pd.DataFrame({
        "order_id": [f"o{o:06d}" for o in orders.index],
        "customer_id": [record[o] for o in orders.index],
        "order_status": status.values,
        "order_purchase_timestamp": orders["time"].dt.strftime("%Y-%m-%d %H:%M:%S").values,
        "order_delivered_customer_date": (orders["time"] + pd.Timedelta(days=5))
        .dt.strftime("%Y-%m-%d %H:%M:%S").values})
    customers = pd.DataFrame({
        "customer_id": [record[o] for o in orders.index],
        "customer_unique_id": [person[p] for p in orders["person"]],
        "customer_city": rng.choice(["sao paulo", "rio de janeiro", "curitiba"], len(orders)),
        "customer_state": rng.choice(["SP", "RJ", "PR"], len(orders))})
    paths = []
    for name, table in (("order_items", items), ("orders", order_table),
                        ("customers", customers)):
        paths.append(folder / f"{name}.csv")
        table.to_csv(paths[-1], index=False)
    keep = lines["order"].map(status) != "canceled"
    return Export(paths[0], customers=lines.loc[keep, "person"].nunique(),
                  lines=int(keep.sum()), revenue=float(lines.loc[keep, "total"].sum()),
                  extra={"paths": paths, "records": len(orders)})


SQUARE_TRANSACTIONS = _header(
    "Date,Time,Time Zone,Gross Sales,Discounts,Service Charges,Net Sales,Gift Card Sales,Tax,"
    "Tip,Partial Refunds,Total Collected,Source,Card,Card Entry Methods,Cash,"
    "Square Gift Card,Other Tender,Other Tender Type,Tender Note,Fees,Net Total,"
    "Transaction ID,Payment ID,Card Brand,PAN Suffix,Device Name,Staff Name,Staff ID,Details,"
    "Description,Event Type,Location,Dining Option,Customer ID,Customer Name,"
    "Customer Reference ID,Device Nickname,Third Party Fees,Deposit ID,Deposit Date,"
    "Deposit Details,Fee Percentage Rate,Fee Fixed Rate,Refund Reason,Discount Name,"
    "Transaction Status,Cash App,Order Reference ID,Fulfillment Note,Free Processing Applied,"
    "Channel,Unattributed Tips,Table Info,International Fee")


def square_transactions(folder: Path, seed: int = 17) -> Export:
    """Square's transactions export: one row per payment (Net Sales as $12.50), refunds
    as rows of Event Type Refund with negative money."""
    lines = history(seed=seed)
    tx = lines.groupby("order").agg(person=("person", "first"), time=("time", "first"),
                                    total=("total", "sum"))
    out = pd.DataFrame("", index=tx.index, columns=SQUARE_TRANSACTIONS)
    out["Date"] = tx["time"].dt.strftime("%Y-%m-%d")
    out["Time"] = tx["time"].dt.strftime("%H:%M:%S")
    out["Time Zone"] = "Pacific Time (US & Canada)"
    out["Net Sales"] = tx["total"].map(_dollars)
    out["Gross Sales"] = out["Net Sales"]
    out["Transaction ID"] = "FakeTxn" + tx.index.astype(str).str.zfill(8)
    out["Event Type"] = "Payment"
    out["Customer ID"] = "FAKECUST" + tx["person"].astype(str).str.zfill(18)
    back = out.sample(12, random_state=seed).copy()
    back["Event Type"] = "Refund"
    back["Net Sales"] = (-tx.loc[back.index, "total"]).map(_dollars)
    out = pd.concat([out, back], ignore_index=True)
    path = folder / "transactions-2024-01-01-2025-01-01.csv"
    out.to_csv(path, index=False)
    return Export(path, customers=tx["person"].nunique(), lines=len(tx),
                  revenue=float(tx["total"].sum()))


ETSY_ORDERS = _header(
    "Sale Date,Order ID,Buyer User ID,Full Name,First Name,Last Name,Number of Items,"
    "Payment Method,Date Shipped,Street 1,Street 2,Ship City,Ship State,Ship Zipcode,"
    "Ship Country,Currency,Order Value,Coupon Code,Coupon Details,Discount Amount,"
    "Shipping Discount,Shipping,Sales Tax,Order Total,Status,Card Processing Fees,Order Net,"
    "Adjusted Order Total,Adjusted Card Processing Fees,Adjusted Net Order Amount,Buyer,"
    "Order Type,Payment Type,InPerson Discount,InPerson Location,SKU")


def etsy_orders(folder: Path, seed: int = 18) -> Export:
    """Etsy's sold orders (one row per order): the buyer a username, Order Value the
    merchandise, some orders fully refunded."""
    lines = history(seed=seed)
    o = lines.groupby("order").agg(person=("person", "first"), time=("time", "first"),
                                   value=("total", "sum"), items=("qty", "sum"),
                                   name=("name", "first"))
    rng = np.random.default_rng(seed)
    status = rng.choice(["Completed", "Fully Refunded"], len(o), p=[.95, .05])
    out = pd.DataFrame("", index=o.index, columns=ETSY_ORDERS)
    out["Sale Date"] = o["time"].dt.strftime("%m/%d/%y")
    out["Order ID"] = (3_000_000_000 + o.index).astype(str)
    out["Buyer"] = o["name"].str.replace(" ", "").str.lower() + o["person"].astype(str)
    out["Buyer User ID"] = out["Buyer"]
    out["Full Name"] = o["name"]
    out["Number of Items"] = o["items"]
    out["Order Value"] = o["value"].map("{:.2f}".format)
    out["Order Total"] = (o["value"] + 4.5).map("{:.2f}".format)
    out["Currency"] = "USD"
    out["Status"] = status
    path = folder / "EtsySoldOrders2024.csv"
    out.to_csv(path, index=False)
    keep = status == "Completed"
    return Export(path, customers=o.loc[keep, "person"].nunique(), lines=int(keep.sum()),
                  revenue=float(o.loc[keep, "value"].sum()),
                  extra={"names": sorted(set(o["name"]))})
