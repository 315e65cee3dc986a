"""Seeded synthetic sales order lines in the layout of the UCI Online Retail data set.

The model
---------
A fixed **catalog** of :data:`N_PRODUCTS` products (stock code, description, unit price)
is drawn once per seed. Unit prices are lognormal (median about 2, a few expensive items)
and product popularity is Zipf-like, so a few products sell on many invoices.

Each **customer** belongs to one of six planted behavioural groups (:data:`GROUPS`:
champions, loyal low spenders, lapsed big spenders, new customers, occasional bargain
hunters, regulars), written to ``groups.csv`` for recovery tests. The group
sets how many orders the customer places (a minimum plus a negative-binomial extra, so
order counts are heavy-tailed and many customers buy once), the window of days in which
they are active (lapsed customers stop long before ``end``; new customers start in the
last ~2 months), how many lines an invoice has, how many units a line has, and whether
the customer prefers cheap products. A lognormal per-customer spend factor and a few
wholesale buyers make the spend heavy-tailed. Demographics (age, gender, income, region)
are drawn loosely correlated with the group and the spend factor.

Order **dates** follow a daily weight: busier in autumn with a November-December peak,
quieter at weekends and over Christmas, and a mild growth over the period. Each invoice
has several lines, each a different product.

Then the usual **dirt** of a real export: about 1.5% of invoices are cancelled by a later
invoice ``"C" + number`` repeating some of their lines with negative quantity, 0.4% get a
later return invoice (ordinary number, negative quantity), 1.5% of invoices have no
customer id, and a few lines (about 0.1%) are exact duplicates, have a unit price of 0
or below, or a quantity of 0; the first chunk always has at least one of each.

Scale
-----
Customers are generated in chunks of ``chunk_customers`` with vectorised numpy, each chunk
from its own random stream ``SeedSequence(seed, spawn_key=(1, chunk_index))``, and written
as one Parquet row group while the next chunk is generated, so memory stays flat and the
output depends only on ``(customers, seed, chunk_customers)`` (and the period). Within a
chunk, invoices are numbered and written in date order; invoice numbers continue from one
chunk to the next, so they are unique. Text columns are dictionary-encoded in the file (no
Arrow schema is stored, so readers see plain strings).
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["GROUPS", "N_PRODUCTS", "Group", "generate"]

#: Products in the catalog.
N_PRODUCTS = 3000
#: First ordinary invoice number, and first customer id number.
FIRST_INVOICE = 500_000
FIRST_CUSTOMER = 10_001

# Stream ids for SeedSequence(seed, spawn_key=(stream, ...)).
_CATALOG_STREAM = 0
_CHUNK_STREAM = 1

# Rates of the dirty parts (per invoice or per line).
CANCEL_RATE = 0.015  # invoices cancelled later by a "C" invoice
RETURN_RATE = 0.004  # invoices with a later return invoice (negative quantities)
GUEST_RATE = 0.015  # invoices without customer id
DUPLICATE_RATE = 0.001  # lines written twice
ZERO_PRICE_RATE = 0.0005  # lines with unit price 0
NEGATIVE_PRICE_RATE = 0.00005  # lines with a negative unit price
ZERO_QUANTITY_RATE = 0.0002  # lines with quantity 0
OTHER_COUNTRY_RATE = 0.003  # invoices shipped to a country other than the customer's
WHOLESALE_RATE = 0.01  # customers buying in bulk (six times the units)
MAX_LINES = 40  # lines per invoice at most


@dataclass(frozen=True)
class Group:
    """Behaviour of one planted customer group.

    Days are given as fractions of the period from ``start`` to ``end``.

    Attributes
    ----------
    name : str
        Group name written to ``groups.csv``.
    share : float
        Share of the customers (shares add up to 1).
    orders_min, orders_extra, orders_max : int, float, int
        Orders per customer: ``orders_min`` plus a negative-binomial count with mean
        ``orders_extra``, capped at ``orders_max``.
    first : tuple of float
        Range of the first active day.
    span : tuple of float or None
        Range of the length of the active window; None: active until ``end``.
    lines_mean : float
        Mean lines per invoice.
    units_median : float
        Median units per line (before the customer's spend factor).
    cheapness : float
        Product choice weight is ``popularity * price ** -cheapness``.
    income_median, age_mean : float
        Demographics of the group.
    """

    name: str
    share: float
    orders_min: int
    orders_extra: float
    orders_max: int
    first: tuple[float, float]
    span: tuple[float, float] | None
    lines_mean: float
    units_median: float
    cheapness: float
    income_median: float
    age_mean: float


#: The planted groups, with clearly different recency, frequency and monetary value.
GROUPS: tuple[Group, ...] = (
    Group("champions", 0.08, 8, 8.0, 150, (0.0, 0.5), None, 5.5, 8.0, -0.3, 78_000, 46),
    Group("loyal_low_spenders", 0.14, 5, 5.0, 80, (0.0, 0.6), None, 3.0, 3.0, 0.6, 36_000, 57),
    Group("lapsed_big_spenders", 0.07, 3, 3.0, 30, (0.0, 0.3), (0.08, 0.25), 7.0, 10.0, -0.3,
          85_000, 51),
    Group("new_customers", 0.12, 1, 0.5, 4, (0.917, 1.0), None, 4.5, 4.0, 0.0, 44_000, 31),
    Group("occasional_bargain", 0.36, 1, 0.35, 2, (0.0, 0.9), (0.0, 0.3), 2.8, 2.5, 0.8,
          31_000, 36),
    Group("regulars", 0.23, 2, 2.0, 25, (0.0, 0.75), None, 4.3, 4.0, 0.0, 50_000, 42),
)

_MONTH_WEIGHT = np.array([0.75, 0.75, 0.95, 0.9, 1.0, 0.95, 0.95, 0.9, 1.15, 1.3, 1.9, 1.6])
_WEEKDAY_WEIGHT = np.array([1.0, 1.05, 1.05, 1.1, 0.9, 0.35, 0.6])  # Monday first
_HOUR_WEIGHT = np.array([0.3, 0.8, 1.2, 1.5, 1.7, 1.6, 1.5, 1.3, 1.0, 0.7, 0.4, 0.25, 0.15])
_FIRST_HOUR = 7
_COUNTRIES = ("United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands", "Belgium",
              "Switzerland", "Portugal", "Australia", "Norway", "Italy", "Sweden", "Denmark",
              "Japan", "USA")
_COUNTRY_WEIGHT = np.array([0.89, 0.02, 0.018, 0.016, 0.008, 0.007, 0.006, 0.005, 0.004,
                            0.004, 0.003, 0.003, 0.003, 0.002, 0.002, 0.002])
_UK_REGIONS = ("London", "South East", "South West", "Midlands", "North", "Scotland", "Wales")
_UK_REGION_WEIGHT = np.array([0.22, 0.2, 0.12, 0.17, 0.18, 0.07, 0.04])
_REGIONS = (*_UK_REGIONS, "International")
_GENDERS = ("F", "M", "X")
_GENDER_WEIGHT = np.array([0.52, 0.45, 0.03])
_ADJECTIVES = ("HANGING", "VINTAGE", "SMALL", "LARGE", "JUMBO", "MINI", "RETRO", "FELTCRAFT",
               "REGENCY", "PAPER", "GLASS", "WOODEN", "METAL", "CERAMIC", "KNITTED", "ENAMEL",
               "PAINTED", "SCANDINAVIAN", "CHRISTMAS", "GARDEN", "PARTY", "DOTTY", "STRIPED",
               "FLORAL", "HEART", "STAR", "BIRD", "LOVE", "SPOTTY", "ANTIQUE")
_COLOURS = ("WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "CREAM", "BLACK", "SILVER",
            "GOLD", "ZINC", "PURPLE", "ORANGE", "YELLOW", "NATURAL", "PASTEL", "TEA", "GREY")
_NOUNS = ("T-LIGHT HOLDER", "LANTERN", "COAT HANGER", "HOT WATER BOTTLE", "LUNCH BAG",
          "JAM JAR", "CAKE STAND", "BUNTING", "MUG", "TEACUP AND SAUCER", "DOORMAT",
          "PHOTO FRAME", "CANDLE", "SIGN", "CUSHION COVER", "NAPKINS", "GIFT WRAP", "BOWL",
          "STORAGE TIN", "WALL CLOCK", "PURSE", "NOTEBOOK", "PLANT POT", "BAKING SET",
          "CHOPSTICKS", "DRAWER KNOB", "WATER CAN", "TRINKET BOX", "ALARM CLOCK", "SHOPPER",
          "BIRTHDAY CARD", "RIBBONS", "PEG BAG", "ORNAMENT", "WREATH", "TISSUES", "COASTER",
          "CHALKBOARD", "TEA TOWEL", "MIRROR")

_STRING = pa.dictionary(pa.int32(), pa.string())
#: Arrow schema written; string columns are dictionary-encoded (read back as strings).
TRANSACTIONS_SCHEMA = pa.schema([
    ("InvoiceNo", _STRING), ("StockCode", _STRING), ("Description", _STRING),
    ("Quantity", pa.int64()), ("InvoiceDate", pa.timestamp("us")), ("UnitPrice", pa.float64()),
    ("CustomerID", _STRING), ("Country", _STRING),
])
CUSTOMERS_SCHEMA = pa.schema([
    ("CustomerID", pa.string()), ("age", pa.int64()), ("gender", _STRING),
    ("income", pa.float64()), ("region", _STRING),
])
_BUCKETS = 16 * N_PRODUCTS  # guide table buckets per group, for product draws
_US_PER_DAY = 86_400_000_000
_US_PER_MINUTE = 60_000_000


@dataclass(frozen=True)
class _Catalog:
    codes: pa.Array  # stock codes (strings)
    descriptions: pa.Array
    prices: np.ndarray  # float64
    cdf: np.ndarray  # per group g: g + cumulative choice weights, concatenated
    guide: np.ndarray  # per group g and bucket b: first j with cdf[j] > g + b / _BUCKETS


@dataclass(frozen=True)
class _Calendar:
    start_us: int  # microseconds since the epoch of start 00:00
    days: int  # days in the period
    cum_weight: np.ndarray  # cumulative daily weight, length days + 1


class _Params:
    """Per-group parameters as arrays indexed by group number."""

    def __init__(self, groups: tuple[Group, ...]) -> None:
        def col(fn: Callable[[Group], float]) -> np.ndarray:
            return np.array([fn(g) for g in groups], dtype=float)

        self.share = col(lambda g: g.share)
        self.orders_min = col(lambda g: g.orders_min).astype(np.int64)
        self.orders_extra = col(lambda g: g.orders_extra)
        self.orders_max = col(lambda g: g.orders_max).astype(np.int64)
        self.first_lo = col(lambda g: g.first[0])
        self.first_hi = col(lambda g: g.first[1])
        self.until_end = np.array([g.span is None for g in groups])
        self.span_lo = col(lambda g: g.span[0] if g.span else 0.0)
        self.span_hi = col(lambda g: g.span[1] if g.span else 0.0)
        self.lines_extra = col(lambda g: g.lines_mean - 1.0)
        self.log_units = np.log(col(lambda g: g.units_median))
        self.log_income = np.log(col(lambda g: g.income_median))
        self.age_mean = col(lambda g: g.age_mean)


def generate(customers: int, out_dir: str | Path, seed: int = 0, *,
             chunk_customers: int = 50_000, start: str = "2022-01-01",
             end: str = "2023-12-31") -> dict[str, Any]:
    """Write a synthetic transactions file, customer table and planted groups.

    Parameters
    ----------
    customers : int
        Number of customers; about 20 order lines are written per customer.
    out_dir : str or Path
        Output folder, created when missing; existing outputs are replaced.
    seed : int, default=0
        Seed of every random draw; same arguments give byte-identical files.
    chunk_customers : int, default=50_000
        Customers generated (and written as one Parquet row group) at a time.
    start, end : str, default="2022-01-01", "2023-12-31"
        First and last day (``YYYY-MM-DD``, inclusive) of the invoice dates.

    Returns
    -------
    dict
        ``lines``, ``customers``, ``transactions``, ``customers_table``, ``groups`` (paths)
        and ``seed``.

    Notes
    -----
    Writes ``transactions.parquet`` (Online Retail columns ``InvoiceNo, StockCode,
    Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country``),
    ``customers.parquet`` (``CustomerID, age, gender, income, region``) and ``groups.csv``
    (``customer_id,group``).
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}.")
    if chunk_customers < 1:
        raise ValueError(f"chunk_customers must be at least 1, got {chunk_customers}.")
    if seed < 0:
        raise ValueError(f"seed must be 0 or more, got {seed}.")
    calendar = _calendar(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"transactions": out / "transactions.parquet",
             "customers_table": out / "customers.parquet", "groups": out / "groups.csv"}
    catalog = _catalog(seed, GROUPS)
    params = _Params(GROUPS)
    names = pa.array([g.name for g in GROUPS], pa.string())

    lines = 0
    options = {"compression": "snappy", "store_schema": False, "write_statistics": True,
               "dictionary_pagesize_limit": 1 << 24}
    with (pq.ParquetWriter(paths["transactions"], TRANSACTIONS_SCHEMA, **options) as tx,
          pq.ParquetWriter(paths["customers_table"], CUSTOMERS_SCHEMA, **options) as cx,
          paths["groups"].open("wb") as gx,
          _Background() as background):
        gx.write(b"customer_id,group\n")
        groups_out = pacsv.CSVWriter(gx, pa.schema([("customer_id", pa.string()),
                                                    ("group", pa.string())]),
                                     write_options=pacsv.WriteOptions(include_header=False,
                                                                      quoting_style="none"))
        invoice_no = FIRST_INVOICE
        for index, first in enumerate(range(0, customers, chunk_customers)):
            count = min(chunk_customers, customers - first)
            rng = np.random.default_rng(np.random.SeedSequence(
                seed, spawn_key=(_CHUNK_STREAM, index)))
            chunk = _chunk(rng, first, count, invoice_no, catalog, params, calendar,
                           sure_dirt=index == 0)
            invoice_no += chunk.invoices
            lines += chunk.transactions.num_rows
            labels = pa.table({"customer_id": chunk.people.column("CustomerID"),
                               "group": pc.take(names, pa.array(chunk.group))})
            background.submit(_write_all, tx, chunk.transactions, cx, chunk.people,
                              groups_out, labels)
        background.join()
        groups_out.close()
    return {"lines": lines, "customers": customers,
            "transactions": str(paths["transactions"]),
            "customers_table": str(paths["customers_table"]), "groups": str(paths["groups"]),
            "seed": seed}


# ----------------------------------------------------------------------------- pieces
def _write_all(tx: pq.ParquetWriter, chunk: pa.Table, cx: pq.ParquetWriter,
               people: pa.Table, groups_out: pacsv.CSVWriter, labels: pa.Table) -> None:
    tx.write_table(chunk, row_group_size=max(chunk.num_rows, 1))
    cx.write_table(people, row_group_size=max(people.num_rows, 1))
    groups_out.write_table(labels)


class _Background:
    """Runs one task at a time on a worker thread (Parquet writing overlaps generation).

    Tasks run in submission order; an error in a task is raised again in the caller.
    """

    def __init__(self) -> None:
        self._tasks: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]] | None] = (
            queue.Queue(maxsize=1))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Background:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()

    def _run(self) -> None:
        while (task := self._tasks.get()) is not None:
            if self._error is None:
                try:
                    task[0](*task[1])
                except BaseException as error:  # re-raised in the calling thread
                    self._error = error

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self._raise()
        self._tasks.put((fn, args))

    def join(self) -> None:
        if self._thread.is_alive():
            self._tasks.put(None)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _calendar(start: dt.date, end: dt.date) -> _Calendar:
    """Daily order weights from ``start`` to ``end``: season, weekday, Christmas, growth."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}.")
    days = (end - start).days + 1
    dates = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    month = dates.astype("datetime64[M]").astype(np.int64) % 12
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    day_of_month = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    weight = _MONTH_WEIGHT[month] * _WEEKDAY_WEIGHT[weekday]
    weight[(month == 11) & (day_of_month >= 24)] *= 0.15  # shops close over Christmas
    weight *= 1.0 + 0.25 * np.arange(days) / days  # the business grows
    cum = np.concatenate([[0.0], np.cumsum(weight)])
    start_us = int(np.datetime64(start, "us").astype(np.int64))
    return _Calendar(start_us=start_us, days=days, cum_weight=cum)


def _catalog(seed: int, groups: tuple[Group, ...]) -> _Catalog:
    """Products: unique codes and descriptions, lognormal prices, Zipf popularity."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_CATALOG_STREAM,)))
    n = N_PRODUCTS
    numbers = rng.choice(np.arange(10_000, 100_000), size=n, replace=False)
    suffix = np.where(rng.random(n) < 0.15, rng.integers(0, 6, n), -1)
    codes = [f"{num}{'ABCDEF'[s] if s >= 0 else ''}" for num, s in zip(numbers, suffix,
                                                                         strict=True)]
    combos = rng.choice(len(_ADJECTIVES) * len(_COLOURS) * len(_NOUNS), size=n, replace=False)
    adjective, rest = np.divmod(combos, len(_COLOURS) * len(_NOUNS))
    colour, noun = np.divmod(rest, len(_NOUNS))
    descriptions = [f"{_COLOURS[c]} {_ADJECTIVES[a]} {_NOUNS[o]}"
                    for a, c, o in zip(adjective, colour, noun, strict=True)]
    prices = np.exp(rng.normal(np.log(2.1), 0.8, n))
    premium = rng.random(n) < 0.02
    prices[premium] *= rng.uniform(5, 30, premium.sum())
    prices = np.maximum(np.round(prices, 2), 0.05)
    popularity = 1.0 / (rng.permutation(n) + 10.0) ** 1.05
    cdf = []
    for g, group in enumerate(groups):
        weight = popularity * prices ** -group.cheapness
        cum = np.cumsum(weight)
        cdf.append(g + cum / cum[-1])
    cdf_all = np.concatenate(cdf)
    cdf_all[N_PRODUCTS - 1::N_PRODUCTS] = np.arange(1, len(groups) + 1)  # exact ends
    bucket_starts = (np.arange(len(groups))[:, None]
                     + np.arange(_BUCKETS)[None, :] / _BUCKETS).ravel()
    guide = np.searchsorted(cdf_all, bucket_starts, side="right")
    return _Catalog(codes=pa.array(codes, pa.string()),
                    descriptions=pa.array(descriptions, pa.string()),
                    prices=prices, cdf=cdf_all, guide=guide)


@dataclass
class _Customers:
    """Per-customer draws of one chunk."""

    group: np.ndarray  # group number
    spend: np.ndarray  # log spend factor
    log_units: np.ndarray  # log median units per line
    orders: np.ndarray
    first_day: np.ndarray  # active window, day numbers from start
    last_day: np.ndarray
    country: np.ndarray  # index into _COUNTRIES


@dataclass
class _Invoices:
    """Per-invoice columns of a chunk."""

    customer: np.ndarray  # index of the customer within the chunk
    stamp: np.ndarray  # microseconds since the epoch
    country: np.ndarray
    guest: np.ndarray  # no customer id
    cancel: np.ndarray  # a "C" invoice


@dataclass
class _Lines:
    """Order lines, the lines of each invoice contiguous."""

    invoice: np.ndarray  # invoice index
    product: np.ndarray
    quantity: np.ndarray
    price: np.ndarray


@dataclass
class _Chunk:
    transactions: pa.Table
    people: pa.Table
    group: np.ndarray
    invoices: int  # invoice numbers used


def _chunk(rng: np.random.Generator, first: int, count: int, invoice_no: int,
           catalog: _Catalog, params: _Params, calendar: _Calendar, sure_dirt: bool
           ) -> _Chunk:
    """Order lines, customer rows and groups of customers ``first .. first + count - 1``.

    Invoices get numbers from ``invoice_no`` on, in date order. With ``sure_dirt`` there
    is at least one line of each kind of dirt even in a tiny chunk.
    """
    cust = _customers(rng, count, params, calendar.days)
    people = _people(rng, first, cust, params)
    inv, n_lines = _invoices(rng, cust, params, calendar)
    inv_group = cust.group[inv.customer]
    invoice, product = _invoice_products(rng, catalog, n_lines, inv_group)
    units = np.exp(cust.log_units[inv.customer[invoice]] + rng.normal(0.0, 0.6, invoice.size))
    lines = _Lines(invoice=invoice, product=product,
                   quantity=np.maximum(np.rint(units), 1).astype(np.int64),
                   price=catalog.prices[product])
    _add_dirt(rng, lines, sure_dirt)
    base = lines.invoice.size
    inv, lines = _add_reversals(rng, inv, lines, calendar)

    # Write order: invoices by date, numbered in that order; copies after their original.
    inv_order = np.argsort(inv.stamp, kind="stable")
    number = np.empty(inv_order.size, dtype=np.int64)
    number[inv_order] = invoice_no + np.arange(inv_order.size)
    take = _lines_in_invoice_order(lines.invoice, inv_order)
    copies = np.ones(lines.invoice.size, dtype=np.int64)
    copies[_some(rng, base, DUPLICATE_RATE, sure_dirt)] = 2
    take = np.repeat(take, copies[take])

    invoice = lines.invoice[take]
    invoice_text = pc.binary_join_element_wise(
        pa.array(np.where(inv.cancel, "C", "")), pc.cast(pa.array(number), pa.string()), "")
    product = lines.product[take]
    table = pa.Table.from_arrays([
        _dictionary(invoice, invoice_text),
        _dictionary(product, catalog.codes),
        _dictionary(product, catalog.descriptions),
        pa.array(lines.quantity[take]),
        pa.array(inv.stamp[invoice].astype("datetime64[us]")),
        pa.array(lines.price[take]),
        _dictionary(inv.customer[invoice], people.column("CustomerID").combine_chunks(),
                    mask=inv.guest[invoice]),
        _dictionary(inv.country[invoice], pa.array(_COUNTRIES, pa.string())),
    ], schema=TRANSACTIONS_SCHEMA)
    return _Chunk(transactions=table, people=people, group=cust.group,
                  invoices=inv_order.size)


def _customers(rng: np.random.Generator, count: int, params: _Params, days: int
               ) -> _Customers:
    """Group, spend, order count, active window and country of each customer."""
    group = rng.choice(len(params.share), size=count, p=params.share)
    spend = rng.normal(0.0, 0.5, count)
    wholesale = rng.random(count) < WHOLESALE_RATE
    log_units = params.log_units[group] + spend + np.where(wholesale, np.log(6.0), 0.0)
    orders = np.minimum(params.orders_min[group]
                        + _negative_binomial(rng, params.orders_extra[group], 1.5),
                        params.orders_max[group])
    early = rng.random(count) ** 2  # more customers start early in their range
    first_day = np.floor(days * (params.first_lo[group]
                                 + early * (params.first_hi[group] - params.first_lo[group])))
    first_day = np.clip(first_day, 0, days - 1).astype(np.int64)
    span = days * (params.span_lo[group]
                   + rng.random(count) * (params.span_hi[group] - params.span_lo[group]))
    last_day = np.where(params.until_end[group], days - 1,
                        np.minimum(first_day + span.astype(np.int64), days - 1))
    country = _draw(rng, _COUNTRY_WEIGHT, count)
    return _Customers(group=group, spend=spend, log_units=log_units, orders=orders,
                      first_day=first_day, last_day=last_day, country=country)


def _invoices(rng: np.random.Generator, cust: _Customers, params: _Params,
              calendar: _Calendar) -> tuple[_Invoices, np.ndarray]:
    """The ordinary invoices of a chunk's customers, and their numbers of lines.

    Days are drawn in each customer's window from the calendar's daily weights.
    """
    customer = np.repeat(np.arange(cust.orders.size), cust.orders)
    n = customer.size
    cum = calendar.cum_weight
    first, last = cust.first_day[customer], cust.last_day[customer]
    lo, hi = cum[first], cum[last + 1]
    day = np.searchsorted(cum, lo + rng.random(n) * (hi - lo), side="right") - 1
    day = np.clip(day, first, last)
    minute = (_draw(rng, _HOUR_WEIGHT, n) + _FIRST_HOUR) * 60 + rng.integers(0, 60, n)
    stamp = calendar.start_us + day * _US_PER_DAY + minute * _US_PER_MINUTE
    n_lines = np.minimum(
        1 + _negative_binomial(rng, params.lines_extra[cust.group[customer]], 2.0), MAX_LINES)
    country = cust.country[customer]
    moved = np.flatnonzero(rng.random(n) < OTHER_COUNTRY_RATE)
    country[moved] = (country[moved] + rng.integers(1, len(_COUNTRIES), moved.size)
                      ) % len(_COUNTRIES)
    guest = rng.random(n) < GUEST_RATE
    return _Invoices(customer=customer, stamp=stamp, country=country, guest=guest,
                     cancel=np.zeros(n, dtype=bool)), n_lines


def _invoice_products(rng: np.random.Generator, catalog: _Catalog, n_lines: np.ndarray,
                      inv_group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Invoice index and product of each line; products differ within an invoice.

    Lines come out grouped by invoice, products ascending within an invoice.
    """
    line_inv = np.repeat(np.arange(n_lines.size, dtype=np.int64), n_lines)
    key = line_inv * N_PRODUCTS + _pick_products(rng, catalog, inv_group[line_inv])
    for _ in range(10):  # redraw repeated products; a few rounds leave none in practice
        key.sort(kind="stable")  # nearly sorted already: fast
        repeat = np.flatnonzero(key[1:] == key[:-1]) + 1
        if repeat.size == 0:
            break
        owner = key[repeat] // N_PRODUCTS
        key[repeat] = owner * N_PRODUCTS + _pick_products(rng, catalog, inv_group[owner])
    else:
        key = np.unique(key)
    return key // N_PRODUCTS, key % N_PRODUCTS


def _add_dirt(rng: np.random.Generator, lines: _Lines, sure: bool) -> None:
    """A few lines with a unit price of 0 or below, or a quantity of 0 (in place)."""
    n = lines.invoice.size
    lines.price[_some(rng, n, ZERO_PRICE_RATE, sure)] = 0.0
    negative = _some(rng, n, NEGATIVE_PRICE_RATE, sure)
    lines.price[negative] = -np.abs(lines.price[negative])
    lines.quantity[_some(rng, n, ZERO_QUANTITY_RATE, sure)] = 0


def _add_reversals(rng: np.random.Generator, inv: _Invoices, lines: _Lines,
                   calendar: _Calendar) -> tuple[_Invoices, _Lines]:
    """Append cancellation ("C") and return invoices, each dated after its original.

    A reversal repeats the first line of the original and each other line with
    probability 1/2, with negative quantity (mostly all the units, else some).
    """
    n = inv.stamp.size
    r = rng.random(n)
    picked = np.flatnonzero(r < CANCEL_RATE + RETURN_RATE)
    new_id = np.full(n, -1, dtype=np.int64)
    new_id[picked] = n + np.arange(picked.size)
    candidates = np.flatnonzero(new_id[lines.invoice] >= 0)
    first_line = np.concatenate([[True], lines.invoice[1:] != lines.invoice[:-1]])
    keep = candidates[first_line[candidates] | (rng.random(candidates.size) < 0.5)]
    bought = np.maximum(lines.quantity[keep], 1)
    back = np.where(rng.random(keep.size) < 0.7, bought, rng.integers(1, bought + 1))
    end_us = calendar.start_us + calendar.days * _US_PER_DAY - _US_PER_MINUTE
    later = rng.integers(30, 14 * 1440, picked.size) * _US_PER_MINUTE  # 30 min to 14 days
    invoices = _Invoices(
        customer=np.concatenate([inv.customer, inv.customer[picked]]),
        stamp=np.concatenate([inv.stamp, np.minimum(inv.stamp[picked] + later, end_us)]),
        country=np.concatenate([inv.country, inv.country[picked]]),
        guest=np.concatenate([inv.guest, inv.guest[picked]]),
        cancel=np.concatenate([inv.cancel, r[picked] < CANCEL_RATE]))
    out = _Lines(invoice=np.concatenate([lines.invoice, new_id[lines.invoice[keep]]]),
                 product=np.concatenate([lines.product, lines.product[keep]]),
                 quantity=np.concatenate([lines.quantity, -back]),
                 price=np.concatenate([lines.price, lines.price[keep]]))
    return invoices, out


def _lines_in_invoice_order(line_inv: np.ndarray, inv_order: np.ndarray) -> np.ndarray:
    """Line positions putting whole invoices in ``inv_order``; each invoice's lines are
    contiguous in ``line_inv``."""
    starts = np.flatnonzero(np.concatenate([[True], line_inv[1:] != line_inv[:-1]]))
    begin = np.empty(inv_order.size, dtype=np.int64)
    begin[line_inv[starts]] = starts
    length = np.bincount(line_inv, minlength=inv_order.size)[inv_order]
    take = np.repeat(begin[inv_order] - (np.cumsum(length) - length), length)
    take += np.arange(take.size)
    return take


def _people(rng: np.random.Generator, first: int, cust: _Customers, params: _Params
            ) -> pa.Table:
    """The customer table rows: demographics loosely tied to group and spend."""
    n, group = cust.group.size, cust.group
    ids = pc.cast(pa.array(np.arange(FIRST_CUSTOMER + first, FIRST_CUSTOMER + first + n)),
                  pa.string())
    age = np.clip(np.rint(rng.normal(params.age_mean[group], 12.0)), 18, 90).astype(np.int64)
    gender = _draw(rng, _GENDER_WEIGHT, n)
    income = np.exp(params.log_income[group] + 0.5 * cust.spend + rng.normal(0.0, 0.35, n))
    region = np.where(cust.country == 0, _draw(rng, _UK_REGION_WEIGHT, n), len(_UK_REGIONS))
    return pa.Table.from_arrays([
        ids, pa.array(age), _dictionary(gender, pa.array(_GENDERS, pa.string())),
        pa.array(np.round(income, -1)), _dictionary(region, pa.array(_REGIONS, pa.string())),
    ], schema=CUSTOMERS_SCHEMA)


# ---------------------------------------------------------------------------- helpers
def _pick_products(rng: np.random.Generator, catalog: _Catalog, group: np.ndarray
                   ) -> np.ndarray:
    """One product per entry of ``group`` (the buyer's group), from that group's weights.

    Inverse-CDF draws sped up by a guide table: start at the first product of the draw's
    bucket and step forward the few draws that land past it.
    """
    r = rng.random(group.size)
    u = group + r
    bucket = np.minimum((r * _BUCKETS).astype(np.int64), _BUCKETS - 1)
    found = catalog.guide[group * _BUCKETS + bucket]
    ahead = np.flatnonzero(catalog.cdf[found] <= u)
    while ahead.size:
        found[ahead] += 1
        ahead = ahead[catalog.cdf[found[ahead]] <= u[ahead]]
    return np.minimum(found - group * N_PRODUCTS, N_PRODUCTS - 1)


def _negative_binomial(rng: np.random.Generator, mean: np.ndarray, shape: float
                       ) -> np.ndarray:
    """Counts with the given means and dispersion ``shape`` (smaller: heavier tail)."""
    return rng.negative_binomial(shape, shape / (shape + mean))


def _draw(rng: np.random.Generator, weight: np.ndarray, n: int) -> np.ndarray:
    """``n`` indices into ``weight``, drawn with probability proportional to weight."""
    cum = np.cumsum(weight)
    return np.minimum(np.searchsorted(cum, rng.random(n) * cum[-1], side="right"),
                      weight.size - 1)


def _some(rng: np.random.Generator, n: int, rate: float, sure: bool) -> np.ndarray:
    """Random positions below ``n``, about ``rate * n`` of them (at least one if ``sure``)."""
    k = rng.binomial(n, rate)
    return rng.integers(0, n, max(k, 1) if sure and n else k)


def _dictionary(indices: np.ndarray, dictionary: pa.Array,
                mask: np.ndarray | None = None) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32), mask=mask),
                                          dictionary)
