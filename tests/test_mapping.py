import pytest

from custseg import MappingError, map_columns
from custseg.io import detect_mapping


def test_uci_online_retail_columns():
    cols = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
            "CustomerID", "Country"]
    assert detect_mapping(cols) == {
        "customer_id": "CustomerID", "invoice_id": "InvoiceNo", "invoice_date": "InvoiceDate",
        "quantity": "Quantity", "unit_price": "UnitPrice", "product_id": "StockCode",
        "description": "Description", "country": "Country"}


def test_online_retail_ii_columns():
    cols = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price",
            "Customer ID", "Country"]
    m = detect_mapping(cols)
    assert m["invoice_id"] == "Invoice" and m["unit_price"] == "Price"
    assert m["customer_id"] == "Customer ID"


def test_business_export_prefers_order_date_over_ship_date_and_id_over_name():
    cols = ["Row ID", "Order ID", "Ship Date", "Order Date", "Customer Name", "Customer ID",
            "Segment", "Product ID", "Sales", "Quantity", "Discount", "Profit"]
    m = detect_mapping(cols)
    assert m["invoice_date"] == "Order Date"
    assert m["customer_id"] == "Customer ID"
    assert m["invoice_id"] == "Order ID"
    assert m["amount"] == "Sales"
    assert m["quantity"] == "Quantity"
    assert "unit_price" not in m


@pytest.mark.parametrize("cols, field, expected", [
    (["order_number", "order_date", "client_id", "revenue"], "customer_id", "client_id"),
    (["order_number", "order_date", "client_id", "revenue"], "invoice_id", "order_number"),
    (["member id", "Date", "units", "unit cost", "SKU"], "unit_price", "unit cost"),
    (["member id", "Date", "units", "unit cost", "SKU"], "quantity", "units"),
    (["member id", "Date", "units", "unit cost", "SKU"], "product_id", "SKU"),
    (["Order Date (UTC)", "Customer", "Amount_EUR"], "invoice_date", "Order Date (UTC)"),
    (["Ship Date", "Order Date", "Customer", "Amount"], "invoice_date", "Order Date"),
])
def test_common_synonyms(cols, field, expected):
    assert detect_mapping(cols)[field] == expected


def test_explicit_map_wins():
    m = map_columns(["Kunde", "Datum", "Betrag", "CustomerID"],
                    {"customer_id": "Kunde", "invoice_date": "Datum", "amount": "Betrag"})
    assert m == {"customer_id": "Kunde", "invoice_date": "Datum", "amount": "Betrag"}


def test_missing_field_lists_columns_and_closest_candidates():
    with pytest.raises(MappingError) as err:
        map_columns(["Custmer", "Date", "Amount"])
    msg = str(err.value)
    assert "customer_id" in msg and "'Custmer'" in msg and "closest" in msg
    assert "--map customer_id=COLUMN" in msg
    assert "\n" not in msg


def test_map_to_absent_column_suggests_near_names():
    with pytest.raises(MappingError, match="no column 'CustomerId'.*did you mean 'CustomerID'"):
        map_columns(["CustomerID", "InvoiceDate", "UnitPrice"], {"customer_id": "CustomerId"})


def test_unknown_field_in_map():
    with pytest.raises(MappingError, match="Unknown field 'client'"):
        map_columns(["a"], {"client": "a"})


@pytest.mark.parametrize("cols, expected", [
    # Kaggle "Sales Transaction" export
    (["TransactionNo", "Date", "ProductNo", "ProductName", "Price", "Quantity", "CustomerNo",
      "Country"],
     {"customer_id": "CustomerNo", "invoice_id": "TransactionNo", "invoice_date": "Date",
      "quantity": "Quantity", "unit_price": "Price", "product_id": "ProductNo",
      "description": "ProductName", "country": "Country"}),
    # Olist order items joined with orders
    (["order_id", "order_item_id", "product_id", "seller_id", "price", "freight_value",
      "customer_id", "order_status", "order_purchase_timestamp", "order_delivered_customer_date"],
     {"customer_id": "customer_id", "invoice_id": "order_id",
      "invoice_date": "order_purchase_timestamp", "unit_price": "price",
      "product_id": "product_id"}),
    # a German ERP export
    (["Rechnungsnummer", "Rechnungsdatum", "Kundennummer", "Kundenname", "Artikelnummer",
      "Menge", "Einzelpreis", "Land"],
     {"customer_id": "Kundennummer", "invoice_id": "Rechnungsnummer",
      "invoice_date": "Rechnungsdatum", "quantity": "Menge", "unit_price": "Einzelpreis",
      "product_id": "Artikelnummer", "country": "Land"}),
])
def test_real_export_layouts(cols, expected):
    assert detect_mapping(cols) == expected
