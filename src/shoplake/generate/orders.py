"""One business day of orders and their items, with the status timeline shipping reports on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from shoplake.generate import render
from shoplake.generate.catalog import Catalog
from shoplake.generate.customers import CURRENCY_CODES, CustomerBook
from shoplake.generate.feeds import SECONDS_PER_DAY, day_start, feed_table
from shoplake.generate.sampling import FloatArray, IntArray, choose
from shoplake.generate.vocabulary import ITEM_STATUSES, ORDER_STATUS_WEIGHTS, ORDER_STATUSES

CREATED, PROCESSING, SHIPPED, DELIVERED, CANCELLED, RETURNED = range(len(ORDER_STATUSES))
ITEMS_PER_ORDER_WEIGHTS = (0.30, 0.25, 0.20, 0.15, 0.10)  # 1..5 items, 2.5 on average
DISCOUNTED_SHARE = 0.2
# Each item of a returned order goes back with this chance, and one item always does: with
# 2.5 items per order that is about 40% of the items of returned orders.
RETURNED_ITEM_CHANCE = 0.1
PARTIAL_RETURN_SHARE = 0.04  # of the items of an order otherwise delivered

# Orders that got far along their lifecycle within the day were mostly placed early in it:
# Beta(a, b) parameters of the time of day an order was placed, per order status.
_PLACED_AT_BETA = np.array(
    [(3.0, 1.2), (2.5, 1.5), (1.6, 2.0), (1.2, 3.0), (2.0, 2.0), (1.1, 3.5)]
)
_ITEM_STATUS_OF_ORDER = np.array([
    ITEM_STATUSES.index(s)
    for s in ("placed", "placed", "shipped", "delivered", "cancelled", "delivered")
])
_ITEM_RETURNED = ITEM_STATUSES.index("returned")


@dataclass
class Orders:
    """A day's orders (one element per order) and their items (one element per item)."""

    order_id: IntArray
    customer_id: IntArray
    status: IntArray
    currency: IntArray
    created_at: IntArray
    updated_at: IntArray
    # Milestones of the parcel, filled for every order and meaningful as far as its status got.
    labelled_at: IntArray
    in_transit_at: IntArray
    delivered_at: IntArray
    returned_at: IntArray
    # Items: position of the parent order in the arrays above, and the item's own columns.
    item_order: IntArray
    item_id: IntArray
    item_product_id: IntArray
    item_status: IntArray
    item_sale_cents: IntArray

    @property
    def item_offsets(self) -> IntArray:
        """Position of each order's first item; items are grouped by order."""
        return np.searchsorted(self.item_order, np.arange(len(self.order_id)))

    def orders_table(self) -> pa.Table:
        num_items = np.bincount(self.item_order, minlength=len(self.order_id)).astype(np.int64)
        amount = np.add.reduceat(self.item_sale_cents, self.item_offsets)
        return feed_table("orders", {
            "order_id": render.integers(self.order_id),
            "customer_id": render.integers(self.customer_id),
            "status": render.pick(ORDER_STATUSES, self.status),
            "num_items": render.integers(num_items),
            "order_amount": render.money(amount),
            "currency": render.pick(CURRENCY_CODES, self.currency),
            "created_at": render.timestamps(self.created_at),
            "updated_at": render.timestamps(self.updated_at),
        })

    def items_table(self) -> pa.Table:
        return feed_table("order_items", {
            "order_item_id": render.integers(self.item_id),
            "order_id": render.integers(self.order_id[self.item_order]),
            "product_id": render.integers(self.item_product_id),
            "status": render.pick(ITEM_STATUSES, self.item_status),
            "sale_price": render.money(self.item_sale_cents),
            "created_at": render.timestamps(self.created_at[self.item_order]),
            "updated_at": render.timestamps(self.updated_at[self.item_order]),
        })


def simulate_orders(
    rng: np.random.Generator,
    business_date: date,
    size: int,
    *,
    customers: CustomerBook,
    catalog: Catalog,
    first_order_id: int,
    first_item_id: int,
    rates: FloatArray,
) -> Orders:
    """Place ``size`` orders during the business day, ids continuing from the previous day.

    An order is in its customer's currency; ``rates`` (dollars per unit of each of
    :data:`CURRENCY_CODES`) converts the dollar shelf prices into it."""
    start = day_start(business_date)
    status = choose(rng, ORDER_STATUS_WEIGHTS, size)
    beta = _PLACED_AT_BETA[status]
    placed = start + np.minimum(
        np.floor(rng.beta(beta[:, 0], beta[:, 1]) * SECONDS_PER_DAY), SECONDS_PER_DAY - 1
    ).astype(np.int64)
    # The shop numbers orders as they come in, so the export is in time order.
    by_time = np.argsort(placed, kind="stable")
    status, placed = status[by_time], placed[by_time]
    customer = customers.sample(rng, size, before=start)

    end = start + SECONDS_PER_DAY - 1
    labelled = _later(rng, placed, end, 0.02, 0.4)
    in_transit = _later(rng, labelled, end, 0.05, 0.5)
    delivered = _later(rng, in_transit, end, 0.1, 0.9)
    returned = _later(rng, delivered, end, 0.2, 1.0)
    cancelled = _later(rng, placed, end, 0.0, 0.5)
    updated = np.choose(status, [placed, labelled, in_transit, delivered, cancelled, returned])

    items_per_order = 1 + choose(rng, ITEMS_PER_ORDER_WEIGHTS, size)
    item_order = np.repeat(np.arange(size, dtype=np.int64), items_per_order)
    n_items = len(item_order)
    product = catalog.sample(rng, n_items)
    item_status = _item_statuses(rng, status, item_order, items_per_order)
    currency = customers.currency(customer)
    dollars = _sale_prices(rng, catalog.retail_cents[product])
    local = np.maximum(1, np.rint(dollars / rates[currency[item_order]])).astype(np.int64)

    return Orders(
        order_id=np.arange(first_order_id, first_order_id + size, dtype=np.int64),
        customer_id=customers.customer_id[customer],
        status=status,
        currency=currency,
        created_at=placed,
        updated_at=updated,
        labelled_at=labelled,
        in_transit_at=in_transit,
        delivered_at=delivered,
        returned_at=returned,
        item_order=item_order,
        item_id=np.arange(first_item_id, first_item_id + n_items, dtype=np.int64),
        item_product_id=catalog.product_id[product],
        item_status=item_status,
        item_sale_cents=local,
    )


def _later(
    rng: np.random.Generator, after: IntArray, end: int, low: float, high: float
) -> IntArray:
    """A moment between ``after`` and ``end``: a random share in [low, high) of the time left."""
    share: FloatArray = rng.uniform(low, high, len(after))
    return after + np.floor((end - after) * share).astype(np.int64)


def _sale_prices(rng: np.random.Generator, retail_cents: IntArray) -> IntArray:
    """The shelf price, with a 10-30% discount on some items."""
    n = len(retail_cents)
    discount = np.where(rng.random(n) < DISCOUNTED_SHARE, rng.uniform(0.1, 0.3, n), 0.0)
    return np.maximum(1, np.rint(retail_cents * (1.0 - discount))).astype(np.int64)


def _item_statuses(
    rng: np.random.Generator, status: IntArray, item_order: IntArray, items_per_order: IntArray
) -> IntArray:
    """Each item follows its order; returned orders return some items, delivered ones a few."""
    order_status = status[item_order]
    item_status = _ITEM_STATUS_OF_ORDER[order_status]
    chance = rng.random(len(item_order))
    is_returned = ((order_status == RETURNED) & (chance < RETURNED_ITEM_CHANCE)) | (
        (order_status == DELIVERED) & (chance < PARTIAL_RETURN_SHARE)
    )
    # A returned order has at least one returned item: a random one, if chance picked none.
    first_item = np.concatenate([[0], np.cumsum(items_per_order)[:-1]]).astype(np.int64)
    returned_per_order = np.add.reduceat(is_returned.astype(np.int64), first_item)
    unreturned = np.flatnonzero((status == RETURNED) & (returned_per_order == 0))
    pick = np.floor(rng.random(len(unreturned)) * items_per_order[unreturned]).astype(np.int64)
    is_returned[first_item[unreturned] + pick] = True
    return np.where(is_returned, _ITEM_RETURNED, item_status).astype(np.int64)
