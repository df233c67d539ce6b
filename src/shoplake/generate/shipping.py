"""The carrier's view of a day's orders: one tracking record per order that was not cancelled."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from shoplake.generate import render
from shoplake.generate.feeds import SECONDS_PER_DAY, feed_table
from shoplake.generate.orders import (
    CANCELLED,
    CREATED,
    DELIVERED,
    PROCESSING,
    RETURNED,
    SHIPPED,
    Orders,
)
from shoplake.generate.sampling import choose
from shoplake.generate.vocabulary import (
    CARRIER_WEIGHTS,
    CARRIERS,
    SHIPPING_STATUSES,
    TRACKING_PREFIXES,
)

LOST_SHARE = 0.02  # of the parcels still in transit
LABEL_CREATED, IN_TRANSIT, DELIVERED_PARCEL, LOST, RETURNED_PARCEL = range(len(SHIPPING_STATUSES))

# x -> (a * x + c) mod 10**12 with a coprime to 10 permutes 0..10**12-1, so tracking numbers
# look random yet stay unique while order ids stay below 10**12 (and a * id fits in int64).
_TRACKING_MULTIPLIER = 2_654_435_761
_TRACKING_OFFSET = 418_207_553_119
_TRACKING_MODULUS = 10**12


def shipping_table(rng: np.random.Generator, orders: Orders) -> pa.Table:
    """Tracking records as of the end of the business day, as feed text."""
    shipped = np.flatnonzero(orders.status != CANCELLED)
    n = len(shipped)
    order_status = orders.status[shipped]
    order_id = orders.order_id[shipped]
    carrier = choose(rng, CARRIER_WEIGHTS, n)

    status = np.select(
        [
            (order_status == CREATED) | (order_status == PROCESSING),
            order_status == SHIPPED,
            order_status == DELIVERED,
            order_status == RETURNED,
        ],
        [LABEL_CREATED, IN_TRANSIT, DELIVERED_PARCEL, RETURNED_PARCEL],
    )
    status = np.where((status == IN_TRANSIT) & (rng.random(n) < LOST_SHARE), LOST, status)

    labelled = orders.labelled_at[shipped]
    delivered = orders.delivered_at[shipped]
    # The latest scan: a lost parcel was last seen in transit, and nothing lies after the day.
    event_at = np.choose(status, [
        labelled, orders.in_transit_at[shipped], delivered, orders.in_transit_at[shipped],
        orders.returned_at[shipped],
    ])
    promised = labelled + rng.integers(2, 6, n) * SECONDS_PER_DAY
    scrambled = (order_id * _TRACKING_MULTIPLIER + _TRACKING_OFFSET) % _TRACKING_MODULUS
    # One parcel in ten goes express, promised 2-10 hours after its label: some arrive late. Chosen from the
    # tracking number, not the random stream, so the rest of a generated day stays as it was.
    express = scrambled % 10 == 0
    promised = np.where(express, labelled + (2 + scrambled % 9) * 3600, promised)

    return feed_table("shipping", {
        "tracking_number": render.join(
            render.pick(TRACKING_PREFIXES, carrier), render.padded(scrambled, 12)
        ),
        "order_id": render.integers(order_id),
        "carrier": render.pick(CARRIERS, carrier),
        "status": render.pick(SHIPPING_STATUSES, status),
        "shipped_at": render.timestamps(labelled),
        "promised_at": render.timestamps(promised),
        "delivered_at": render.optional_timestamps(delivered, status == DELIVERED_PARCEL),
        "event_at": render.timestamps(event_at),
    })
