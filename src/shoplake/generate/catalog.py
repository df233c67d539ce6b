"""The simulated product catalogue and warehouse stock, and their daily snapshot feeds."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

import numpy as np
import pyarrow as pa

from shoplake.generate import render
from shoplake.generate.feeds import SECONDS_PER_DAY, day_start, feed_table
from shoplake.generate.sampling import FloatArray, IntArray, choose, uniform_seconds
from shoplake.generate.vocabulary import (
    ADJECTIVES,
    BRANDS,
    COLORS,
    DEPARTMENT_CODES,
    DEPARTMENT_WEIGHTS,
    HIERARCHY,
    WAREHOUSES,
)

CHANGED_SHARE = 0.01
NEW_SHARE = 0.003

# The hierarchy flattened to one entry per subcategory ("leaf"); products point at a leaf.
_LEAVES: tuple[tuple[str, str, str, float], ...] = tuple(
    (department, category, subcategory, price)
    for department, categories in HIERARCHY.items()
    for category, subcategories in categories.items()
    for subcategory, price in subcategories.items()
)
_LEAF_WEIGHTS = np.array(
    [
        DEPARTMENT_WEIGHTS[dep] / sum(len(c) for c in HIERARCHY[dep].values())
        for dep, _, _, _ in _LEAVES
    ]
)
_LEAF_PRICE = np.array([price for _, _, _, price in _LEAVES])


@dataclass
class Catalog:
    """Every product in the catalogue, one array element per product (column-oriented)."""

    product_id: IntArray
    leaf: IntArray
    brand: IntArray
    adjective: IntArray
    color: IntArray
    cost_cents: IntArray
    retail_cents: IntArray
    updated_at: IntArray
    # Popularity: bestsellers get most of the orders and page views.
    weight: FloatArray

    @classmethod
    def opening(cls, rng: np.random.Generator, size: int, business_date: date) -> Catalog:
        """The catalogue on the first business day, last edited some time in the year before."""
        start = day_start(business_date)
        updated = start - 1 - uniform_seconds(rng, 365 * SECONDS_PER_DAY, size)
        return _draw(rng, np.arange(1, size + 1, dtype=np.int64), updated)

    @property
    def size(self) -> int:
        return len(self.product_id)

    def advance(self, rng: np.random.Generator, business_date: date) -> None:
        """Apply one business day: ~1% get a new price or name, a few products are added."""
        start = day_start(business_date)
        changed = np.flatnonzero(rng.random(self.size) < CHANGED_SHARE)
        repriced = changed[rng.random(len(changed)) < 0.5]
        renamed = np.setdiff1d(changed, repriced)

        old_retail = self.retail_cents[repriced]
        retail = _round_to_99(old_retail / 100 * rng.uniform(0.85, 1.15, len(repriced)))
        # A price that rounds back to the same .99 would not be a change at all.
        retail = np.where(retail == old_retail, retail + 100, retail)
        self.retail_cents[repriced] = retail
        self.cost_cents[repriced] = np.minimum(self.cost_cents[repriced], retail * 6 // 10)
        self.adjective[renamed] = (
            self.adjective[renamed] + rng.integers(1, len(ADJECTIVES), len(renamed))
        ) % len(ADJECTIVES)
        self.updated_at[changed] = start + uniform_seconds(rng, SECONDS_PER_DAY, len(changed))

        new = round(self.size * NEW_SHARE)
        if new:
            first_id = int(self.product_id.max()) + 1
            ids = np.arange(first_id, first_id + new, dtype=np.int64)
            added = _draw(rng, ids, start + uniform_seconds(rng, SECONDS_PER_DAY, new))
            for field in fields(self):
                merged = np.concatenate([getattr(self, field.name), getattr(added, field.name)])
                setattr(self, field.name, merged)

    def sample(self, rng: np.random.Generator, size: int) -> IntArray:
        """Positions of ``size`` products, bestsellers more often."""
        return choose(rng, self.weight, size)

    def table(self) -> pa.Table:
        """Today's full products snapshot as feed text."""
        department = [dep for dep, _, _, _ in _LEAVES]
        subcategory = render.pick([sub for _, _, sub, _ in _LEAVES], self.leaf)
        sku_prefix = render.pick([DEPARTMENT_CODES[dep] for dep in department], self.leaf)
        return feed_table("products", {
            "product_id": render.integers(self.product_id),
            "sku": render.join(sku_prefix, "-", render.padded(self.product_id, 6)),
            "name": render.join(
                render.pick(ADJECTIVES, self.adjective), " ",
                render.pick(COLORS, self.color), " ", subcategory,
            ),
            "brand": render.pick(BRANDS, self.brand),
            "department": render.pick(department, self.leaf),
            "category": render.pick([cat for _, cat, _, _ in _LEAVES], self.leaf),
            "subcategory": subcategory,
            "cost": render.money(self.cost_cents),
            "retail_price": render.money(self.retail_cents),
            "updated_at": render.timestamps(self.updated_at),
        })


def _draw(rng: np.random.Generator, ids: IntArray, updated: IntArray) -> Catalog:
    """Brand-new products with the given ids, priced around their subcategory's typical price."""
    n = len(ids)
    leaf = choose(rng, _LEAF_WEIGHTS, n)
    retail = _round_to_99(_LEAF_PRICE[leaf] * rng.lognormal(0.0, 0.3, n))
    cost = np.maximum(1, np.floor(retail * rng.uniform(0.35, 0.7, n))).astype(np.int64)
    return Catalog(
        product_id=ids,
        leaf=leaf,
        brand=rng.integers(0, len(BRANDS), n),
        adjective=rng.integers(0, len(ADJECTIVES), n),
        color=rng.integers(0, len(COLORS), n),
        cost_cents=cost,
        retail_cents=retail,
        updated_at=updated,
        weight=rng.pareto(1.5, n) + 0.05,
    )


def _round_to_99(dollars: FloatArray) -> IntArray:
    """Shelf prices in cents ending in .99, never below 0.99."""
    return (np.maximum(1, np.rint(dollars)) * 100 - 1).astype(np.int64)


@dataclass
class Stock:
    """Units on hand per warehouse (rows) and catalogue position (columns)."""

    on_hand: IntArray
    reserved: IntArray

    @classmethod
    def opening(cls, rng: np.random.Generator, catalog: Catalog) -> Stock:
        on_hand = _opening_stock(rng, (len(WAREHOUSES), catalog.size))
        return cls(on_hand, _reserve(rng, on_hand))

    def advance(self, rng: np.random.Generator, catalog: Catalog) -> None:
        """One day of sales and restocking; products new to the catalogue arrive stocked."""
        missing = catalog.size - self.on_hand.shape[1]
        if missing:
            fresh = _opening_stock(rng, (len(WAREHOUSES), missing))
            self.on_hand = np.concatenate([self.on_hand, fresh], axis=1)
        demand = 3.0 * catalog.weight / catalog.weight.mean()
        sold = rng.poisson(np.broadcast_to(demand, self.on_hand.shape))
        on_hand = np.maximum(self.on_hand - sold, 0)
        restock = (on_hand < 10) & (rng.random(on_hand.shape) < 0.6)
        lots = rng.integers(50, 300, on_hand.shape)
        self.on_hand = np.where(restock, on_hand + lots, on_hand)
        self.reserved = _reserve(rng, self.on_hand)

    def table(self, business_date: date, catalog: Catalog) -> pa.Table:
        """Today's inventory snapshot as feed text, warehouse by warehouse."""
        warehouses, products = self.on_hand.shape
        return feed_table("inventory", {
            "snapshot_date": render.repeat(business_date.isoformat(), warehouses * products),
            "warehouse_id": render.pick(
                WAREHOUSES, np.repeat(np.arange(warehouses, dtype=np.int64), products)
            ),
            "product_id": render.integers(np.tile(catalog.product_id, warehouses)),
            "quantity_on_hand": render.integers(self.on_hand.ravel()),
            "quantity_reserved": render.integers(self.reserved.ravel()),
        })


def _opening_stock(rng: np.random.Generator, shape: tuple[int, int]) -> IntArray:
    """Initial units on hand; a few products are out of stock somewhere."""
    stock = rng.integers(5, 400, shape)
    return np.where(rng.random(shape) < 0.04, 0, stock).astype(np.int64)


def _reserve(rng: np.random.Generator, on_hand: IntArray) -> IntArray:
    """Units held for open orders: a small share of what is on the shelf, never more."""
    return rng.binomial(on_hand, 0.06).astype(np.int64)
