"""One business day of web sessions, flattened into the events feed."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shoplake.generate import render
from shoplake.generate.catalog import Catalog
from shoplake.generate.customers import CustomerBook
from shoplake.generate.feeds import SECONDS_PER_DAY, day_start, feed_table
from shoplake.generate.sampling import IntArray, choose, uniform_seconds
from shoplake.generate.vocabulary import DEVICE_WEIGHTS, DEVICES, EVENT_TYPES, HIERARCHY, SHOP_URL

PAGE_VIEW, ADD_TO_CART, REMOVE_FROM_CART, CHECKOUT, PURCHASE, SEARCH = range(len(EVENT_TYPES))
SESSION_LENGTH_WEIGHTS = (0.22, 0.20, 0.16, 0.13, 0.10, 0.08, 0.06, 0.05)  # 1..8 events
MEAN_SESSION_LENGTH = sum((i + 1) * w for i, w in enumerate(SESSION_LENGTH_WEIGHTS))
ANONYMOUS_SHARE = 0.4
# Of signed-in sessions, those an older app version exports without a session id (gold cuts them by
# inactivity instead).
SESSIONLESS_SHARE = 0.05
# How far down the funnel a session gets: browse only, cart, checkout, purchase.
FUNNEL_DEPTH_WEIGHTS = (0.60, 0.22, 0.06, 0.12)
_FUNNEL = np.array([ADD_TO_CART, CHECKOUT, PURCHASE])
# Events before the funnel: mostly product views, some searches, a few cart removals.
_BROWSE_WEIGHTS = (0.85, 0.0, 0.05, 0.0, 0.0, 0.10)
_FIRST_IS_SEARCH_SHARE = 0.2
_SESSION_PRODUCT_SHARE = 0.4  # of product views that show the product the session is about
_SEARCH_TERMS = tuple(sorted({
    subcategory.lower().replace(" ", "+")
    for categories in HIERARCHY.values()
    for subcategories in categories.values()
    for subcategory in subcategories
}))
_PAGE_PATHS = ("/products/", "/cart", "/cart", "/checkout", "/checkout/complete", "/search?q=")


def events_table(
    rng: np.random.Generator,
    business_date: date,
    size: int,
    customers: CustomerBook,
    catalog: Catalog,
) -> pa.Table:
    """About ``size`` events in sessions of 1-8 events, ordered by time, as feed text."""
    start = day_start(business_date)
    sessions = max(1, round(size / MEAN_SESSION_LENGTH))
    length = 1 + choose(rng, SESSION_LENGTH_WEIGHTS, sessions)
    session = np.repeat(np.arange(sessions, dtype=np.int64), length)
    first = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
    position = np.arange(len(session), dtype=np.int64) - first[session]
    from_end = length[session] - 1 - position

    event_type = _event_types(rng, length, session, position, from_end)
    n = len(session)

    # Products: funnel steps are about the session's product, views sometimes about others.
    session_product = catalog.product_id[catalog.sample(rng, sessions)][session]
    browsed = catalog.product_id[catalog.sample(rng, n)]
    own = (event_type != PAGE_VIEW) | (rng.random(n) < _SESSION_PRODUCT_SHARE)
    product = np.where(own, session_product, browsed)
    is_search = event_type == SEARCH

    # Seconds between consecutive events of a session; a session never runs past midnight.
    gap = np.where(position == 0, 0, rng.integers(5, 240, n))
    offset = np.cumsum(gap) - np.repeat(np.cumsum(gap)[first], length)
    duration = offset[first + length - 1]
    session_start = start + uniform_seconds(rng, SECONDS_PER_DAY - duration, sessions)
    event_at = session_start[session] + offset

    anonymous = rng.random(sessions) < ANONYMOUS_SHARE
    customer = customers.customer_id[customers.sample(rng, sessions, before=start)]
    device = choose(rng, DEVICE_WEIGHTS, sessions)
    term = rng.integers(0, len(_SEARCH_TERMS), n)
    # Drawn last, so the rest of the day's events are what they were before this share existed.
    sessionless = ~anonymous & (rng.random(sessions) < SESSIONLESS_SHARE)

    # Clickstream exports are in time order; ids are handed out in that order.
    by_time = np.argsort(event_at, kind="stable")
    session, event_type, product, event_at, term = (
        a[by_time] for a in (session, event_type, product, event_at, term)
    )
    is_search = is_search[by_time]
    day_tag = f"{business_date:%Y%m%d}"
    product_text = render.integers(product)
    return feed_table("events", {
        "event_id": render.join(f"ev_{day_tag}_", render.padded(np.arange(1, n + 1), 9)),
        "session_id": render.blank_where(
            render.join(f"s_{day_tag}_", render.padded(session + 1, 7)), sessionless[session]
        ),
        "customer_id": render.blank_where(
            render.integers(customer[session]), anonymous[session]
        ),
        "event_type": render.pick(EVENT_TYPES, event_type),
        "product_id": render.blank_where(product_text, is_search),
        "event_at": render.timestamps(event_at),
        "page_url": render.join(
            SHOP_URL,
            render.pick(_PAGE_PATHS, event_type),
            pc.if_else(
                pa.array(is_search),
                render.pick(_SEARCH_TERMS, term),
                render.blank_where(product_text, event_type != PAGE_VIEW),
            ),
        ),
        "device": render.pick(DEVICES, device[session]),
    })


def _event_types(
    rng: np.random.Generator,
    length: IntArray,
    session: IntArray,
    position: IntArray,
    from_end: IntArray,
) -> IntArray:
    """Browsing first, then the funnel steps the session reached, in funnel order."""
    n = len(session)
    depth = choose(rng, FUNNEL_DEPTH_WEIGHTS, len(length))
    # The first event is always browsing, so short sessions stop early in the funnel.
    funnel_steps = np.minimum(depth, length - 1)[session]
    in_funnel = from_end < funnel_steps
    browse = choose(rng, _BROWSE_WEIGHTS, n)
    opening = np.where(rng.random(n) < _FIRST_IS_SEARCH_SHARE, SEARCH, PAGE_VIEW)
    browse = np.where(position == 0, opening, browse)
    step = np.clip(funnel_steps - 1 - from_end, 0, len(_FUNNEL) - 1)
    return np.where(in_funnel, _FUNNEL[step], browse).astype(np.int64)
