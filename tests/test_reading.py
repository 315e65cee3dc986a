"""Reading exports without --map: roles from the values, known export formats, customer
and line attributes inside order lines, dates as exports write them, personal keys.

The exports are built in code (tests/exports.py) from each vendor's documented columns;
each carries its truth (customers, lines, revenue), computed from the history it was
written from by the rule its layout implies.
"""

from __future__ import annotations

import json
import re

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import custseg
from custseg import MappingError
from custseg.io import peek
from custseg.io._evidence import profile, says, words
from custseg.io._infer import read_roles, value_reading
from custseg.io._parse import numeric_date
from custseg.io._peek import CHUNK_BYTES, CHUNKS, HEAD_BYTES, _sample_text
from custseg.io._reading import reading_of
from exports import (
    LANGUAGES,
    amazon,
    dated,
    etsy,
    etsy_orders,
    in_language,
    loyalty_panel,
    mall,
    marketplace,
    retailer,
    shopify,
    square_items,
    square_transactions,
    stripe,
    supermarket,
    woocommerce_items,
    woocommerce_orders,
)

NO_CLV = custseg.Config(clv={"enabled": False})


def counted(result) -> tuple[int, int, float]:
    return (len(result.customers), result.summary["audit"]["rows_used"],
            float(result.customers["monetary"].sum()))


def assert_truth(result, export) -> None:
    customers, lines, revenue = counted(result)
    assert customers == export.customers
    assert lines == export.lines
    assert revenue == pytest.approx(export.revenue, rel=0.005)


# ---------------------------------------------------------------------------- formats
@pytest.mark.parametrize("build, name", [
    (shopify, "Shopify orders export"),
    (woocommerce_orders, "WooCommerce orders export (WebToffee)"),
    (woocommerce_items, "WooCommerce order items export (Advanced Order Export)"),
    (stripe, "Stripe payments export"),
    (square_items, "Square item sales export"),
    (square_transactions, "Square transactions export"),
    (etsy, "Etsy sold order items"),
    (etsy_orders, "Etsy sold orders"),
])
def test_known_export_formats_are_read_without_map(tmp_path, build, name):
    export = build(tmp_path)
    result = custseg.run_rfm(export.path, config=NO_CLV)
    assert result.summary["roles"]["format"] == name
    assert_truth(result, export)
    audit = result.summary["audit"]
    assert audit["rows_in"] == audit["rows_used"] + sum(audit["dropped"].values())


def test_shopify_order_fields_carried_down_and_statuses_dropped(tmp_path):
    export = shopify(tmp_path)
    result = custseg.run_rfm(export.path, config=NO_CLV)
    s = result.summary
    dropped = s["audit"]["dropped"]
    # voided and pending orders were never paid; refunded ones feed the return rate
    assert dropped["unpaid"] > 0 and dropped["refunded"] > 0
    assert dropped["test_order"] > 0 and dropped["cancellation"] > 0
    assert s["mapping"]["customer_id"] == "Email" and s["mapping"]["invoice_date"] == "Paid at"
    # the first line of an order carries Paid at; its other lines are dated all the same
    assert dropped["unparseable_date"] == 0
    assert "UTC-05:00" in s["audit"]["notes"]["invoice_date"]
    # the partial refunds are taken off: less than the gross of the kept lines
    assert counted(result)[2] < export.extra["gross"]
    # e-mails in upper case now and then are one customer
    assert result.customers["customer_id"].str.islower().all()


def test_amazon_report_without_a_buyer_stops_with_one_line(tmp_path):
    export = amazon(tmp_path)
    with pytest.raises(MappingError, match="names no buyer.*--map customer_id=") as err:
        custseg.run_rfm(export.path, config=NO_CLV)
    assert "\n" not in str(err.value)


def test_a_format_is_one_declaration(tmp_path):
    """Every declared format names columns of its anchors' vendor, and the anchors
    recognise the fixture built from that vendor's documented header."""
    from custseg.io._formats import formats, recognise

    built = {"shopify_orders": shopify, "woocommerce_orders": woocommerce_orders,
             "woocommerce_items": woocommerce_items, "stripe_payments": stripe,
             "square_items": square_items, "etsy_order_items": etsy,
             "amazon_all_orders": amazon, "square_transactions": square_transactions,
             "etsy_orders": etsy_orders}
    for fmt in formats():
        assert fmt.name and fmt.anchors and fmt.fields
        if fmt.key in built:
            folder = tmp_path / fmt.key
            folder.mkdir()
            columns = peek(built[fmt.key](folder).path).columns
            assert recognise(columns).key == fmt.key
            assert set(fmt.present(columns)) == {
                f for f, cols in fmt.fields.items() if any(c in columns for c in cols)}


# ------------------------------------------------------------------------- languages
@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_headers_in_seven_languages(tmp_path, lang):
    export = in_language(tmp_path, lang)
    result = custseg.run_rfm(export.path, config=NO_CLV)
    assert {f: c for f, c in result.summary["mapping"].items()
            if f in export.extra["mapping"]} == export.extra["mapping"]
    assert_truth(result, export)
    assert "decimal comma" in result.summary["audit"]["notes"]["unit_price"]


@pytest.mark.parametrize("name, role, word", [
    ("Kundennummer", "customer_id", "kundennummer"),
    ("Rechnungsdatum", "invoice_date", "rechnungsdatum"), ("Kaufdatum", "invoice_date", "datum"),
    ("N° de commande", "invoice_id", "commande"), ("Quantità", "quantity", "quantita"),
    ("Preço unitário", "unit_price", "preco"), ("Stukprijs", "unit_price", "stukprijs"),
    ("Importe total", "amount", "importe"), ("PARTNERID", "customer_id", "partner"),
])
def test_names_say_roles_in_their_language(name, role, word):
    assert says(name, role) == word


def test_names_are_split_into_words():
    assert words("NumWebPurchases") == ["num", "web", "purchases"]
    assert words("CREATEDBY") == ["created", "by"]
    assert words("order_line/order_id/name") == ["order", "id", "name"]  # a field path
    assert words("País/Región") == ["pais", "region"]  # not a path: no underscores


# ------------------------------------------------------------------ tills and panels
def test_supermarket_units_and_line_total_are_told_apart(tmp_path):
    """AMOUNT holds units and SALES_PRICE the line total: SALES_PRICE is not multiplied
    by AMOUNT, and CUSTOMER_ID keeps its leading zeros."""
    export = supermarket(tmp_path)
    result = custseg.run_rfm(export.path, config=NO_CLV)
    s = result.summary
    assert s["mapping"]["quantity"] == "AMOUNT" and s["mapping"]["amount"] == "SALES_PRICE"
    assert "unit_price" not in s["mapping"]
    assert "not multiplied" in s["roles"]["value"]
    assert_truth(result, export)
    assert result.customers["customer_id"].str.len().eq(8).all()
    # the age group and postcode are on every line of a customer: customer attributes
    assert set(s["roles"]["customer_attributes"]) >= {"AGE_GROUP", "PIN_CODE"}


def test_retailer_with_two_digit_years(tmp_path):
    export = retailer(tmp_path)
    result = custseg.run_rfm(export.path, config=NO_CLV)
    assert result.summary["mapping"] == {"customer_id": "customer_id",
                                         "invoice_date": "trans_date", "amount": "tran_amount"}
    assert_truth(result, export)
    assert result.summary["as_of"] < "2016-01-01"  # 14-Jan-15 is 2015, not 15 AD


def test_loyalty_panel_parquet_and_its_discounts(tmp_path):
    export = loyalty_panel(tmp_path)
    result = custseg.run_rfm(export.path, config=NO_CLV)
    s = result.summary
    assert s["mapping"]["customer_id"] == "household_id"
    assert s["mapping"]["invoice_id"] == "basket_id"
    assert s["mapping"]["amount"] == "sales_value"
    assert_truth(result, export)
    # the discount columns give each household its share of spend at a discount
    share = result.customers.set_index("customer_id")["discount_share"]
    spent = result.customers["monetary"].sum()
    discounted = float((share * result.customers.set_index("customer_id")["monetary"]).sum())
    assert discounted == pytest.approx(export.extra["discounted"], rel=0.01)
    assert 0 < discounted < spent
    assert "discount_share" in s["features"]


def test_day_numbers_need_a_start_date(tmp_path):
    export = loyalty_panel(tmp_path, day_numbers=True)
    with pytest.raises(MappingError, match="counts days.*--start-date"):
        custseg.run_rfm(export.path, config=NO_CLV)
    result = custseg.run_rfm(export.path, config=NO_CLV.replace(start_date="2017-01-01"))
    assert result.summary["mapping"]["invoice_date"] == "DAY"
    assert_truth(result, export)
    assert result.summary["as_of"] <= "2018-01-02"


def test_mall_price_is_the_line_total_and_gender_age_are_the_customers(tmp_path):
    """The mall export of the issue: price is quantity x unit price already (multiplying
    again gave 3.7 times the revenue); gender and age are on every line of a customer;
    category, payment method and mall vary by line."""
    export = mall(tmp_path)
    result = custseg.run_rfm(export.path, config=NO_CLV)
    s = result.summary
    assert s["mapping"]["amount"] == "price" and "unit_price" not in s["mapping"]
    assert_truth(result, export)
    assert counted(result)[2] < 0.5 * export.extra["times_quantity"]
    assert set(s["roles"]["customer_attributes"]) == {"gender", "age"}
    assert {"payment_method", "shopping_mall"} <= set(s["roles"]["line_attributes"])
    table = s["customer_table"]
    assert table["columns"]["gender"]["role"] == "category"
    assert table["columns"]["age"]["role"] in ("number", "count")
    assert {"gender", "age"} <= set(result.customers.columns)


def test_mall_line_attributes_are_listed_by_lift(tmp_path):
    result = custseg.run_segments(mall(tmp_path).path, config=NO_CLV, k=3, seed=1)
    assert "payment_method" in result.summary["lift"]["columns"]
    assert any("shopping_mall" in seg["over_represented"] for seg in result.summary["segments"])


# --------------------------------------------------------------------- several tables
def test_orders_items_and_customers_joined_with_the_person_as_the_customer(tmp_path):
    """Items, orders and customers as three files: joined by their keys, the overlap
    reported; every order has its own customer record, and the person behind the
    records (customer_unique_id) is the customer."""
    export = marketplace(tmp_path)
    result = custseg.run_rfm([str(p) for p in export.extra["paths"]], config=NO_CLV)
    s = result.summary
    tables = s["input"]["tables"]
    assert tables["root"] == "order_items"
    assert any(j.startswith("100.0% of order_items's rows match a row of orders")
               for j in tables["joins"])
    assert tables["person_key"] == "customer_unique_id"
    assert s["mapping"]["customer_id"] == "customer_unique_id"
    assert s["mapping"]["invoice_date"] == "order_purchase_timestamp"
    assert "quantity" not in s["mapping"]  # order_item_id numbers the lines
    assert_truth(result, export)
    assert s["audit"]["dropped"]["cancellation"] > 0  # order_status canceled
    assert len(result.customers) < export.extra["records"]


def test_an_order_total_beside_line_prices_is_not_a_line_value(tmp_path):
    """Invoice lines joined with their invoices, whose total sums the lines (Chinook's
    layout): the total is the order's, so a line is worth quantity x unit price."""
    from exports import history

    lines = history(seed=21)
    items = pd.DataFrame({"invoice_line_id": range(1, len(lines) + 1),
                          "invoice_id": lines["order"], "track_id": lines["sku"],
                          "unit_price": lines["price"], "quantity": lines["qty"]})
    invoices = lines.groupby("order").agg(customer_id=("person", "first"),
                                          invoice_date=("time", "first"),
                                          total=("total", "sum")).reset_index()
    invoices = invoices.rename(columns={"order": "invoice_id"})
    paths = [tmp_path / "invoice_line.csv", tmp_path / "invoice.csv"]
    items.to_csv(paths[0], index=False)
    invoices.to_csv(paths[1], index=False)
    result = custseg.run_rfm([str(p) for p in paths], config=NO_CLV)
    assert "amount" not in result.summary["mapping"]
    assert counted(result)[2] == pytest.approx(float(lines["total"].sum()), rel=1e-6)


def test_tables_of_a_database_by_name(tmp_path):
    """--db and the names of its tables: read and joined as files are."""
    export = marketplace(tmp_path)
    db = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(db))
    for path in export.extra["paths"]:
        con.execute(f"CREATE TABLE {path.stem} AS SELECT * FROM read_csv(?, all_varchar=true)",
                    [str(path)])
    con.close()
    result = custseg.run_rfm(["order_items", "orders", "customers"], db=f"duckdb:///{db}",
                             config=NO_CLV)
    assert result.summary["mapping"]["customer_id"] == "customer_unique_id"
    assert_truth(result, export)


def test_tables_that_share_no_key_stop_with_one_line(tmp_path):
    export = retailer(tmp_path)
    other = tmp_path / "other.csv"
    pd.DataFrame({"colour": ["red", "blue"], "size": [1, 2]}).to_csv(other, index=False)
    with pytest.raises(custseg.InputError, match="share no key"):
        custseg.run_rfm([str(export.path), str(other)], config=NO_CLV)


# ------------------------------------------------------------------------------ dates
@pytest.mark.parametrize("form, note", [
    ("excel", "Excel serial days"), ("unix", "Unix seconds"), ("unix_ms", "Unix milliseconds"),
    ("two_digit", "DD/MM/YYYY"), ("offsets", "converted to UTC-05:00"),
    ("day_numbers", "day numbers, day 1 = 2023-01-02"),
])
def test_dates_as_exports_write_them(tmp_path, form, note):
    export = dated(tmp_path, form)
    config = NO_CLV.replace(start_date="2023-01-02" if form == "day_numbers" else None)
    result = custseg.run_rfm(export.path, config=config)
    s = result.summary
    assert s["mapping"]["invoice_date"] == export.extra["column"]
    assert note in s["audit"]["notes"]["invoice_date"]
    assert_truth(result, export)
    last = pd.Timestamp(s["as_of"]) - pd.Timedelta(days=1)
    # converting to one zone may move a late order to the next day, no further
    assert abs((last - export.extra["last"]).days) <= (1 if form == "offsets" else 0)


def test_numbers_that_count_dates():
    assert numeric_date([1_514_764_800, 1_600_000_000], "created") == "unix_s"
    assert numeric_date([43831.25, 45000], "Order Date") == "excel"
    assert numeric_date([12, 500], "quantity") is None


# -------------------------------------------------------------------- value readings
def _profiles(frame: pd.DataFrame):
    con = duckdb.connect()
    try:
        return profile(con, frame)
    finally:
        con.close()


def _lines(total: bool, n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    price = rng.choice([2.5, 4.0, 9.99, 15.0, 32.5, 60.0], n)
    product = pd.Series(price).map({p: f"P{i}" for i, p in enumerate(sorted(set(price)))})
    qty = rng.integers(1, 8, n)
    return pd.DataFrame({"q": qty, "m": np.round(price * qty if total else price, 2),
                         "g": product})


@pytest.mark.parametrize("total, grouped", [(True, True), (False, True), (True, False),
                                            (False, False)])
def test_a_lone_money_column_is_read_as_price_or_total(total, grouped):
    frame = _lines(total)
    p = _profiles(frame)
    verdict, why = value_reading(p["m"], p["q"], p["g"] if grouped else None)
    assert verdict == ("total" if total else "unit"), why


def test_quantities_all_one_make_price_and_total_agree():
    frame = _lines(True).assign(q=1)
    p = _profiles(frame)
    assert value_reading(p["m"], p["q"], p["g"])[0] == "same"


# ---------------------------------------------------------------------------- asking
def test_two_close_readings_stop_with_one_line_naming_both(tmp_path):
    """Two date columns that read alike, neither named as the order date."""
    rng = np.random.default_rng(1)
    n = 400
    first = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    frame = pd.DataFrame({"client": rng.integers(1, 60, n).astype(str),
                          "stamp_a": first.strftime("%Y-%m-%d"),
                          "stamp_b": (first + pd.to_timedelta(rng.integers(-2, 3, n), unit="D"))
                          .strftime("%Y-%m-%d"),
                          "amount": rng.gamma(2, 20, n).round(2)})
    path = tmp_path / "two_dates.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(MappingError) as err:
        custseg.run_rfm(path, config=NO_CLV)
    line = str(err.value)
    assert "\n" not in line and "stamp_a" in line and "stamp_b" in line
    assert "--map invoice_date=stamp_a" in line and "--map invoice_date=stamp_b" in line
    # and --map decides
    result = custseg.run_rfm(path, config=NO_CLV.replace(mapping={"invoice_date": "stamp_b"}))
    assert result.summary["mapping"]["invoice_date"] == "stamp_b"
    assert result.summary["roles"]["fields"]["invoice_date"]["reason"] == "given with --map"


def test_net_or_gross_stops_with_the_map_that_decides(tmp_path):
    rng = np.random.default_rng(2)
    n = 300
    net = rng.gamma(2, 50, n).round(2)
    frame = pd.DataFrame({"customer_id": rng.integers(1, 50, n),
                          "order_date": pd.Timestamp("2024-01-01")
                          + pd.to_timedelta(rng.integers(0, 200, n), unit="D"),
                          "net_amount": net, "gross_amount": (net * 1.19).round(2)})
    path = tmp_path / "orders.parquet"
    frame.to_parquet(path)
    with pytest.raises(MappingError, match="--map amount="):
        custseg.run_rfm(path, config=NO_CLV)


# --------------------------------------------------------------------------- privacy
def _files(folder) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_bytes().decode("utf-8", "replace")
            for p in folder.rglob("*") if p.is_file()}


def test_shopify_emails_reach_no_report_summary_or_model(tmp_path):
    export = shopify(tmp_path)
    out = tmp_path / "run"
    custseg.run_segments(export.path, out_dir=out, config=custseg.Config(), k=3, seed=1)
    files = _files(out)
    private = [*export.extra["emails"], *(e.upper() for e in export.extra["emails"]),
               *export.extra["names"]]
    for name, text in files.items():
        if name in ("segments.csv", "excluded_customers.csv"):
            continue
        leaked = [v for v in private if v in text]
        assert not leaked, (name, len(leaked))
    summary = json.loads(files["summary.json"])
    assert summary["roles"]["personal_key"] == "e-mail addresses"
    assert "read as the Shopify orders export" in files["report.html"]
    # segments.csv carries the key as given (in lower case), for the mailing tool
    seg = pd.read_csv(out / "segments.csv")
    assert seg["customer_id"].isin([e.lower() for e in export.extra["emails"]]).all()
    # and --hash-ids pseudonymises it everywhere
    hashed = tmp_path / "hashed"
    custseg.run_segments(export.path, out_dir=hashed, config=custseg.Config(hash_ids=True),
                         k=3, seed=1)
    for text in _files(hashed).values():
        assert not any(e in text for e in export.extra["emails"])


def test_etsy_buyer_names_are_personal_keys(tmp_path):
    export = etsy(tmp_path)
    out = tmp_path / "run"
    custseg.run_rfm(export.path, out_dir=out, config=NO_CLV)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["roles"]["personal_key"] == "names"
    for name, text in _files(out).items():
        if name not in ("segments.csv", "excluded_customers.csv"):
            assert not any(n in text for n in export.extra["names"]), name


# ------------------------------------------------------------------------------ speed
def test_a_large_text_file_is_sampled_not_read(tmp_path):
    """The roles are decided on the first megabyte and slices spread through the file,
    whatever its size."""
    export = retailer(tmp_path)
    body = export.path.read_text().splitlines()
    big = tmp_path / "big.csv"
    with big.open("w") as fh:
        fh.write(body[0] + "\n")
        for _ in range(400):
            fh.write("\n".join(body[1:]) + "\n")
    size = big.stat().st_size
    assert size > 4 * HEAD_BYTES
    text, whole = _sample_text(big, size, "utf-8", ",", True)
    assert not whole and len(text.encode()) <= HEAD_BYTES + CHUNKS * CHUNK_BYTES
    look = peek(big)
    assert look.rows is None and look.approx_rows == pytest.approx(400 * (len(body) - 1),
                                                                   rel=0.1)
    assert reading_of(look, custseg.Config()).mapping["invoice_date"] == "trans_date"


# --------------------------------------------------------------------------- property
@pytest.fixture(scope="module")
def in_languages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("languages")
    return {lang: (pd.read_csv(e.path, sep=";", dtype=str), e.extra["mapping"])
            for lang in LANGUAGES for e in [in_language(folder, lang)]}


@settings(max_examples=12, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(range(6))), lang=st.sampled_from(sorted(LANGUAGES)))
def test_column_order_does_not_change_the_reading(in_languages, order, lang):
    frame, expected = in_languages[lang]
    frame = frame[[frame.columns[i] for i in order]]
    con = duckdb.connect()
    roles = read_roles(profile(con, frame), frame, source="shuffled")
    assert {f: c for f, c in roles.mapping.items() if f in expected} == expected


def test_inspect_shows_the_evidence_in_one_screen(tmp_path):
    from typer.testing import CliRunner

    from custseg.cli import app

    export = supermarket(tmp_path)
    shown = CliRunner().invoke(app, ["inspect", str(export.path)])
    assert shown.exit_code == 0, shown.output
    text = re.sub(r"\s+", " ", shown.output)
    assert "SALES_PRICE" in text and "line total" in text and "AGE_GROUP" in text


@pytest.mark.parametrize("split", [False, True])
def test_a_parquet_sample_is_its_head_and_slices_spread_through_it(tmp_path, split):
    """The sample holds the first 4,000 rows and 16 slices of 250 rows spread through the
    file (cut where a row group ends), with the file's own types: a category stays a
    category, a time zone stays, an integer with gaps stays a nullable integer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 120_000
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "row": np.arange(n),
        "shop": pd.Categorical(rng.choice(["north", "south"], n)),
        "at": pd.date_range("2024-01-01", periods=n, freq="min", tz="Europe/Paris"),
        "items": pd.array(rng.integers(1, 5, n), dtype="Int64"),
        "price": rng.random(n).round(2)})
    frame.loc[7, "items"] = pd.NA
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if split:  # a folder of two files of 7,000-row groups
        path = tmp_path / "lines"
        path.mkdir()
        pq.write_table(table.slice(0, 50_000), path / "a.parquet", row_group_size=7_000)
        pq.write_table(table.slice(50_000), path / "b.parquet", row_group_size=7_000)
        group_starts = sorted({*range(0, 50_000, 7_000), *range(50_000, n, 7_000), n})
    else:
        path = tmp_path / "lines.parquet"
        pq.write_table(table, path, row_group_size=7_000)
        group_starts = [*range(0, n, 7_000), n]
    sample = peek(path).frame
    expected = list(range(4_000))
    for i in range(1, 17):
        at = 4_000 + (n - 4_000 - 250) * i // 16
        end = min(s for s in group_starts if s > at)
        expected += list(range(at, min(at + 250, end)))
    assert sample["row"].tolist() == expected
    assert isinstance(sample["shop"].dtype, pd.CategoricalDtype)
    assert str(sample["at"].dt.tz) == "Europe/Paris"
    assert sample["items"].dtype == "Int64" and sample["items"].isna().sum() == 1
    pd.testing.assert_frame_equal(sample.drop(columns="row"),
                                  frame.iloc[expected].drop(columns="row")
                                  .reset_index(drop=True))
