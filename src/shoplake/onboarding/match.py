"""Matching a foreign export to the built-in feeds: files to feeds, headers to contract columns.

A file matches a feed by its name (`users.csv` -> customers) or, failing that, by its header (most of
a feed's columns and its key present). A header matches a contract column by name, by a common synonym
(`user_id` -> customer_id, `id` -> the feed's key, `price_usd` -> retail_price), or by content (values
that look like emails), and only when the sample's values fit the column's type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoplake.contracts.model import Column, ColumnType, Contract
from shoplake.onboarding.profile import ColumnProfile, FileProfile, normalise

FEED_SYNONYMS: dict[str, tuple[str, ...]] = {
    "customers": ("customer", "users", "user", "clients", "client", "members", "accounts", "buyers"),
    "products": ("product", "catalog", "catalogue", "articles"),
    "orders": ("order", "sales_orders", "transactions"),
    "order_items": ("order_item", "order_lines", "order_line", "line_items", "orderitems", "order_details"),
    "inventory": ("stock", "stock_levels", "inventory_snapshots"),
    "shipping": ("shipments", "shipment", "deliveries"),
    "events": ("event", "clickstream", "clicks", "web_events", "page_views"),
    "fx_rates": ("fx", "exchange_rates", "currency_rates", "rates"),
}
COLUMN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "customer_id": ("user_id", "client_id", "buyer_id", "cust_id", "customerid", "userid", "member_id"),
    "order_id": ("orderid", "order_number", "order_no"),
    "product_id": ("productid", "sku_id", "article_id"),
    "order_item_id": ("line_id", "item_id", "line_item_id", "orderitem_id"),
    "first_name": ("firstname", "given_name", "fname", "forename"),
    "last_name": ("lastname", "surname", "family_name", "lname"),
    "email": ("email_address", "mail", "e_mail"),
    "phone": ("phone_number", "telephone", "tel", "mobile"),
    "birth_date": ("date_of_birth", "dob", "birthday", "birthdate"),
    "created_at": ("created", "creation_date", "create_time", "created_time", "order_time", "order_date",
                   "ordered_at", "signup_date", "signup_at", "signed_up_at", "registered_at", "registration_date",
                   "order_timestamp", "purchase_time", "purchased_at"),
    "updated_at": ("modified_at", "last_modified", "updated", "update_time", "last_updated", "modified"),
    "sale_price": ("price", "unit_price", "item_price", "amount", "paid_price"),
    "order_amount": ("total", "total_amount", "order_total", "grand_total", "amount", "total_price"),
    "num_items": ("num_of_item", "number_of_items", "item_count", "items", "n_items", "quantity"),
    "retail_price": ("price", "list_price", "unit_price", "sales_price"),
    "cost": ("unit_cost", "cost_price", "purchase_price"),
    "name": ("product_name", "title"),
    "category": ("product_category", "category_name"),
    "subcategory": ("sub_category", "subcategory_name"),
    "status": ("order_status", "item_status", "state_name"),
    "country": ("country_code", "country_name"),
    "segment": ("customer_segment",),
    "session_id": ("session", "visit_id"),
    "event_type": ("event", "event_name", "action", "event_kind"),
    "event_at": ("event_time", "timestamp", "ts", "occurred_at", "event_timestamp"),
    "page_url": ("url", "page"),
    "device": ("device_type", "platform"),
    "tracking_number": ("tracking_id", "tracking_no", "tracking_code"),
    "carrier": ("shipping_carrier", "courier"),
    "shipped_at": ("ship_date", "shipped_date"),
    "delivered_at": ("delivery_date", "delivered_date"),
    "promised_at": ("promised_date", "expected_delivery", "estimated_delivery_date"),
    "snapshot_date": ("date", "as_of", "stock_date"),
    "warehouse_id": ("warehouse", "location_id"),
    "quantity_on_hand": ("on_hand", "stock", "qty", "quantity"),
    "quantity_reserved": ("reserved", "qty_reserved"),
    "currency": ("currency_code",),
}
_CURRENCY_SUFFIXES = ("_usd", "_eur", "_gbp")
_FITS: dict[ColumnType, set[ColumnType]] = {  # contract type -> sample types whose values it reads
    ColumnType.STRING: set(ColumnType),
    ColumnType.INTEGER: {ColumnType.INTEGER},
    ColumnType.DECIMAL: {ColumnType.INTEGER, ColumnType.DECIMAL, ColumnType.DOUBLE},
    ColumnType.DOUBLE: {ColumnType.INTEGER, ColumnType.DECIMAL, ColumnType.DOUBLE},
    ColumnType.BOOLEAN: {ColumnType.BOOLEAN},
    ColumnType.DATE: {ColumnType.DATE},
    ColumnType.TIMESTAMP: {ColumnType.DATE, ColumnType.TIMESTAMP},
}


def singular(feed: str) -> str:
    if feed.endswith("ies"):
        return feed[:-3] + "y"
    if feed.endswith("s") and not feed.endswith("ss"):
        return feed[:-1]
    return feed


def fits(column: Column, profile: ColumnProfile) -> bool:
    """Whether every sample value of the header converts to the column's type (an empty sample fits)."""
    return not profile.values or profile.inferred in _FITS[column.type]


@dataclass
class Match:
    header: str
    how: str  # "name", "key", "synonym", "content": shown in comments where it is a guess


@dataclass
class FeedMatch:
    """One file's header against one contract."""

    contract: Contract
    file: FileProfile
    columns: dict[str, Match] = field(default_factory=dict)  # contract column -> its header

    @property
    def key_matched(self) -> bool:
        return all(k in self.columns for k in self.contract.primary_key)

    @property
    def unmatched_headers(self) -> list[ColumnProfile]:
        taken = {m.header for m in self.columns.values()}
        return [c for c in self.file.columns if c.header not in taken]

    @property
    def coverage(self) -> float:
        return len(self.columns) / len(self.contract.columns)


def feed_by_name(stem: str, feeds: list[str]) -> str | None:
    """The feed whose name (or a synonym) appears in the file's name as whole words; the longest wins."""
    wrapped = f"_{stem}_"
    best: tuple[int, str] | None = None
    for feed in feeds:
        for name in (feed, *FEED_SYNONYMS.get(feed, ())):
            if f"_{name}_" in wrapped and (best is None or len(name) > best[0]):
                best = (len(name), feed)
    return best[1] if best else None


def _variants(header: str, contract: Contract) -> set[str]:
    """The names a header may stand for: itself, without a currency suffix, without the feed's prefix."""
    name = normalise(header)
    out = {name}
    for suffix in _CURRENCY_SUFFIXES:
        if name.endswith(suffix):
            out.add(name.removesuffix(suffix))
    prefix = singular(contract.feed) + "_"
    out |= {v.removeprefix(prefix) for v in out if v.startswith(prefix) and v != prefix}
    return out


def match_columns(contract: Contract, file: FileProfile) -> FeedMatch:
    """Line a file's headers up with a contract's columns, strongest evidence first."""
    result = FeedMatch(contract, file)
    free = list(file.columns)

    def take(column: Column, profile: ColumnProfile, how: str) -> None:
        result.columns[column.name] = Match(profile.header, how)
        free.remove(profile)

    for column in contract.columns:  # 1. the very name
        for profile in free:
            if normalise(profile.header) == column.name and fits(column, profile):
                take(column, profile, "name")
                break
    if len(contract.primary_key) == 1:  # 2. a bare `id` is the feed's own key (users.id -> customer_id)
        key = contract.column(contract.primary_key[0])
        bare = next((p for p in free if normalise(p.header) == "id" and fits(key, p)), None)
        if key.name not in result.columns and bare is not None:
            take(key, bare, "key")
    for column in contract.columns:  # 3. synonyms
        if column.name in result.columns:
            continue
        wanted = {column.name, *COLUMN_SYNONYMS.get(column.name, ())}
        for profile in free:
            if _variants(profile.header, contract) & wanted and fits(column, profile):
                take(column, profile, "synonym")
                break
    for column in contract.columns:  # 4. content: a text column of e-mail addresses
        if column.name not in result.columns and column.format == "email":
            mails = [p for p in free if p.looks_like_email]
            if len(mails) == 1:
                take(column, mails[0], "content")
    return result


def match_by_header(contracts: list[Contract], file: FileProfile) -> FeedMatch | None:
    """The feed a file's header fits best: its key present and at least half its columns."""
    scored = [m for m in (match_columns(c, file) for c in contracts) if m.key_matched and m.coverage >= 0.5]
    return max(scored, key=lambda m: m.coverage, default=None)
