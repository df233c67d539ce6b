"""The simulated shop whose customers, catalogue, stock and id counters carry over day to day."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import NamedTuple

import pyarrow as pa

from shoplake.generate.catalog import Catalog, Stock
from shoplake.generate.clickstream import events_table
from shoplake.generate.customers import CURRENCY_CODES, CustomerBook
from shoplake.generate.fx import FxRates
from shoplake.generate.orders import simulate_orders
from shoplake.generate.sampling import scaled, stream
from shoplake.generate.shipping import shipping_table


class Size(NamedTuple):
    """Rows per day at scale 1, and the floor that keeps tiny scales meaningful."""

    at_scale_one: int
    minimum: int


CUSTOMERS = Size(200_000, 50)
PRODUCTS = Size(20_000, 20)
ORDERS = Size(1_000_000, 30)
EVENTS = Size(1_500_000, 60)


class Shop:
    """Simulates one business day after another and hands out each day's feed tables."""

    def __init__(self, seed: int, scale: float) -> None:
        self.seed = seed
        self.scale = scale
        self._customers: CustomerBook | None = None
        self._catalog: Catalog | None = None
        self._stock: Stock | None = None
        self._fx: FxRates | None = None
        self._next_order_id = 1
        self._next_item_id = 1

    def open_day(self, day_index: int, business_date: date) -> dict[str, Callable[[], pa.Table]]:
        """Simulate the day and return, per feed, a callable that renders its table.

        Rendering lazily keeps only one feed's text in memory at a time. The callables read the
        shop's state, so call them before opening the next day.
        """
        customers, catalog, stock = self._advance(day_index, business_date)
        fx = self._rates(day_index)
        orders = simulate_orders(
            stream(self.seed, day_index, "orders"), business_date, self._rows(ORDERS),
            customers=customers, catalog=catalog,
            first_order_id=self._next_order_id, first_item_id=self._next_item_id,
            rates=fx.of(CURRENCY_CODES),
        )
        self._next_order_id += len(orders.order_id)
        self._next_item_id += len(orders.item_id)
        events = self._rows(EVENTS)
        return {
            "customers": customers.table,
            "products": catalog.table,
            "orders": orders.orders_table,
            "order_items": orders.items_table,
            "inventory": lambda: stock.table(business_date, catalog),
            "shipping": lambda: shipping_table(stream(self.seed, day_index, "shipping"), orders),
            "events": lambda: events_table(
                stream(self.seed, day_index, "events"), business_date, events, customers, catalog
            ),
            "fx_rates": lambda: fx.table(business_date),
        }

    def _rows(self, size: Size) -> int:
        return scaled(size.at_scale_one, self.scale, size.minimum)

    def _rates(self, day_index: int) -> FxRates:
        """The day's exchange rates: opened on the first day, then one random-walk step a day."""
        rng = stream(self.seed, day_index, "fx_rates")
        if self._fx is None:
            self._fx = FxRates.opening(rng)
        else:
            self._fx.advance(rng)
        return self._fx

    def _advance(self, day_index: int, business_date: date) -> tuple[CustomerBook, Catalog, Stock]:
        """Open the shop on the first day, or move its slowly changing state one day on."""
        customers_rng = stream(self.seed, day_index, "customers")
        catalog_rng = stream(self.seed, day_index, "products")
        stock_rng = stream(self.seed, day_index, "inventory")
        if self._customers is None or self._catalog is None or self._stock is None:
            self._customers = CustomerBook.opening(
                customers_rng, self._rows(CUSTOMERS), business_date
            )
            self._catalog = Catalog.opening(catalog_rng, self._rows(PRODUCTS), business_date)
            self._stock = Stock.opening(stock_rng, self._catalog)
        else:
            self._customers.advance(customers_rng, business_date)
            self._catalog.advance(catalog_rng, business_date)
            self._stock.advance(stock_rng, self._catalog)
        return self._customers, self._catalog, self._stock
