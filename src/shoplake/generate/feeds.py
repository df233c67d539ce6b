"""The feed files the generator writes: their names, exact columns, keys and business-day clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import pyarrow as pa

FEEDS: tuple[str, ...] = (
    "customers", "products", "orders", "order_items", "inventory", "shipping", "events", "fx_rates",
)

COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id", "first_name", "last_name", "email", "phone", "birth_date", "city",
        "country", "segment", "lifecycle_stage", "created_at", "updated_at",
    ),
    "products": (
        "product_id", "sku", "name", "brand", "department", "category", "subcategory", "cost",
        "retail_price", "updated_at",
    ),
    "orders": (
        "order_id", "customer_id", "status", "num_items", "order_amount", "currency",
        "created_at", "updated_at",
    ),
    "order_items": (
        "order_item_id", "order_id", "product_id", "status", "sale_price", "created_at",
        "updated_at",
    ),
    "inventory": (
        "snapshot_date", "warehouse_id", "product_id", "quantity_on_hand", "quantity_reserved",
    ),
    "shipping": (
        "tracking_number", "order_id", "carrier", "status", "shipped_at", "promised_at",
        "delivered_at", "event_at",
    ),
    "events": (
        "event_id", "session_id", "customer_id", "event_type", "product_id", "event_at",
        "page_url", "device",
    ),
    "fx_rates": ("rate_date", "currency", "rate"),
}

# The column a `null_key` defect empties; for inventory it is one part of the composite key.
NULLABLE_KEY: dict[str, str] = {
    "customers": "customer_id",
    "products": "product_id",
    "orders": "order_id",
    "order_items": "order_item_id",
    "inventory": "product_id",
    "shipping": "tracking_number",
    "events": "event_id",
    "fx_rates": "currency",
}

SECONDS_PER_DAY = 86_400
_EPOCH = date(1970, 1, 1)


def file_name(feed: str, business_date: date) -> str:
    """Name of one feed's file for a business date, e.g. ``orders_2026_01_05.csv``."""
    return f"{feed}_{business_date:%Y_%m_%d}.csv"


def trigger_name(business_date: date) -> str:
    """Name of the trigger file that announces a business date's feed files."""
    return f"trigger_{business_date:%Y_%m_%d}.json"


def day_start(business_date: date) -> int:
    """Seconds since the Unix epoch at 00:00:00 of the business date (timestamps are naive)."""
    return (business_date - _EPOCH).days * SECONDS_PER_DAY


def epoch_days(business_date: date) -> int:
    """Days since the Unix epoch, the unit the generator keeps dates in."""
    return (business_date - _EPOCH).days


def feed_table(feed: str, columns: Mapping[str, pa.Array]) -> pa.Table:
    """Assemble a feed's string columns in the exact published order, refusing any other set."""
    expected = COLUMNS[feed]
    if set(columns) != set(expected):
        raise ValueError(
            f"{feed}: generator built columns {sorted(columns)} but the feed has {list(expected)}"
        )
    return pa.table({name: columns[name] for name in expected})
