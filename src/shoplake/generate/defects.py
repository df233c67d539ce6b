"""Row-level data defects injected into a feed's text table, each row carrying at most one.

Two families, chosen so that a pipeline's results can be checked exactly against the counts:

* defects a pipeline should *quarantine* are put on extra copies of clean rows that get a fresh
  key, so quarantining them leaves exactly the clean data (and no orphaned children) behind;
* defects a pipeline should *normalise* (``float_id``, ``view_alias``) edit existing rows in place,
  so normalising them restores exactly the clean data.

``duplicate_row`` adds exact copies of untouched rows. Copies go anywhere but after the last row,
which stays clean so the file-level ``truncated_last_line`` defect never lands on a defective row.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shoplake.generate import render
from shoplake.generate.feeds import NULLABLE_KEY
from shoplake.generate.sampling import BoolArray, IntArray

ROW_DEFECTS: dict[str, tuple[str, ...]] = {
    "customers": ("bad_email", "bad_phone", "null_key", "duplicate_row"),
    "products": ("non_positive_price", "cost_above_retail", "null_key", "duplicate_row"),
    "orders": (
        "orphan_reference", "null_key", "float_id", "future_date", "unknown_status",
        "duplicate_row",
    ),
    "order_items": (
        "non_positive_price", "orphan_reference", "null_key", "float_id", "future_date",
        "unknown_status", "duplicate_row",
    ),
    "inventory": ("null_key", "duplicate_row"),
    "shipping": ("orphan_reference", "null_key", "unknown_status", "duplicate_row"),
    "events": ("null_key", "future_date", "view_alias", "duplicate_row"),
    "fx_rates": ("null_key", "duplicate_row"),
}
NORMALISED = frozenset({"float_id", "view_alias"})

# Which columns each kind edits, per feed; one is picked per row when there are several.
_REFERENCES = {
    "orders": ("customer_id",), "order_items": ("order_id", "product_id"),
    "shipping": ("order_id",),
}
_FLOAT_IDS = {"orders": ("customer_id",), "order_items": ("order_id", "product_id")}
# A later updated_at moves along with a future created_at so that only one rule breaks.
_FUTURE_DATES = {
    "orders": ("created_at", "updated_at"), "order_items": ("created_at", "updated_at"),
    "events": ("event_at",),
}
_FRESH_INTEGER_KEY = {
    "customers": "customer_id", "products": "product_id", "orders": "order_id",
    "order_items": "order_item_id",
}
_FRESH_TEXT_KEY = {"shipping": ("tracking_number", "ZZ"), "events": ("event_id", "ev_x_")}
# Far above any id the simulation hands out, so fresh keys never collide and orphans never match.
_FRESH_ID_BASE = 9_000_000_000
_ORPHAN_ID_BASE = 99_000_000_000

_BAD_PHONES = ("12-ab", "n/a", "555-CALL-NOW", "+1-ABC-DEFG", "phone")
_UNKNOWN_STATUSES = ("teleported", "in_limbo", "misplaced")


class DefectInjector:
    """Adds row-level defects to the feed tables of one generator run."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._fresh: dict[str, int] = {}  # per feed, fresh keys handed out so far in the run

    def inject(
        self, feed: str, table: pa.Table, rng: np.random.Generator
    ) -> tuple[pa.Table, dict[str, int]]:
        """The table with defects added, and how many rows carry each kind."""
        n = table.num_rows
        kinds = ROW_DEFECTS[feed]
        quotas = _quotas(max(len(kinds), round(self.rate * n)), kinds)
        counts: dict[str, int] = {}

        untouched = np.ones(n, dtype=np.bool_)
        untouched[-1] = False  # the last row stays clean, see the module docstring
        for kind in (k for k in kinds if k in NORMALISED):
            eligible = untouched & _eligible(kind, table)
            candidates = np.flatnonzero(eligible)
            size = min(quotas[kind], len(candidates))
            rows = np.sort(rng.choice(candidates, size, replace=False))
            untouched[rows] = False
            table = _edit_in_place(kind, feed, table, rows, rng)
            counts[kind] = len(rows)

        sources = np.flatnonzero(untouched)
        extras = []
        for kind in (k for k in kinds if k not in NORMALISED):
            picked = rng.choice(sources, quotas[kind], replace=quotas[kind] > len(sources))
            copies = table.take(pa.array(picked)).combine_chunks()
            if kind != "duplicate_row":
                copies = self._with_fresh_key(feed, kind, copies)
                copies = _QUARANTINED[kind](feed, copies, rng)
            extras.append(copies)
            counts[kind] = copies.num_rows
        return _insert(table, pa.concat_tables(extras), rng), counts

    def _with_fresh_key(self, feed: str, kind: str, copies: pa.Table) -> pa.Table:
        """Give copies a key no clean row has, so they never replace or orphan real rows."""
        used = self._fresh.get(feed, 0)
        self._fresh[feed] = used + copies.num_rows
        counter = np.arange(used + 1, used + 1 + copies.num_rows, dtype=np.int64)
        if feed in _FRESH_INTEGER_KEY:
            key = render.integers(_FRESH_ID_BASE + counter)
            copies = _set(copies, _FRESH_INTEGER_KEY[feed], key)
            if feed == "products":
                copies = _set(copies, "sku", render.join("ZZZ-", key))
        elif feed in _FRESH_TEXT_KEY:
            column, prefix = _FRESH_TEXT_KEY[feed]
            copies = _set(copies, column, render.join(prefix, render.padded(counter, 12)))
        elif kind != "null_key":  # an emptied key needs no fresh value; anything else does
            raise ValueError(f"cannot inject {kind} into {feed}: no fresh key for its copies")
        return copies


def _quotas(budget: int, kinds: tuple[str, ...]) -> dict[str, int]:
    """Split the defect budget evenly over the kinds, every kind getting at least one row."""
    share, extra = divmod(budget, len(kinds))
    return {kind: share + (1 if i < extra else 0) for i, kind in enumerate(kinds)}


def _eligible(kind: str, table: pa.Table) -> BoolArray:
    if kind == "view_alias":
        return np.asarray(pc.equal(table["event_type"], "page_view").to_numpy(zero_copy_only=False))
    return np.ones(table.num_rows, dtype=np.bool_)


def _edit_in_place(
    kind: str, feed: str, table: pa.Table, rows: IntArray, rng: np.random.Generator
) -> pa.Table:
    """Apply a normalisable defect to ``rows`` of the full table."""
    mask = np.zeros(table.num_rows, dtype=np.bool_)
    mask[rows] = True
    if kind == "float_id":
        columns = _FLOAT_IDS[feed]
        which = rng.integers(0, len(columns), table.num_rows)
        for i, column in enumerate(columns):
            hit = mask & (which == i)
            table = _set(table, column, pc.if_else(
                pa.array(hit), render.join(table[column], ".0"), table[column]
            ))
        return table
    # view_alias: the legacy event name, or the right one shouted by an old tracker.
    alias = np.where(rng.random(table.num_rows) < 0.5, "view", "PAGE_VIEW")
    renamed = pc.if_else(pa.array(mask), pa.array(alias), table["event_type"])
    return _set(table, "event_type", renamed)


def _bad_email(feed: str, copies: pa.Table, rng: np.random.Generator) -> pa.Table:
    email = copies["email"]
    variants = [
        pc.replace_substring(email, "@example.com", "@"),  # john.doe12@
        pc.replace_substring(email, "@", ""),  # john.doe12example.com
        pc.replace_substring(email, "@", "@@"),  # john.doe12@@example.com
    ]
    return _set(copies, "email", _one_of(rng, variants))


def _bad_phone(feed: str, copies: pa.Table, rng: np.random.Generator) -> pa.Table:
    return _set(copies, "phone", _literal(rng, _BAD_PHONES, copies.num_rows))


def _non_positive_price(feed: str, copies: pa.Table, rng: np.random.Generator) -> pa.Table:
    if feed == "products":
        # Cost goes to zero too, so that only the price rule breaks and not cost <= price.
        zero = render.repeat("0.00", copies.num_rows)
        return _set(_set(copies, "retail_price", zero), "cost", zero)
    price = copies["sale_price"]
    variants = [render.repeat("0.00", copies.num_rows), render.join("-", price)]
    return _set(copies, "sale_price", _one_of(rng, variants))


def _cost_above_retail(feed: str, copies: pa.Table, rng: np.random.Generator) -> pa.Table:
    # Clean prices always exceed cost, so swapping the two breaks exactly that rule.
    cost, retail = copies["cost"], copies["retail_price"]
    return _set(_set(copies, "cost", retail), "retail_price", cost)


def _orphan_reference(feed: str, copies: pa.Table, rng: np.random.Generator) -> pa.Table:
    n = copies.num_rows
    columns = _REFERENCES[feed]
    which = rng.integers(0, len(columns), n)
    missing = render.integers(_ORPHAN_ID_BASE + rng.integers(0, 1_000_000_000, n))
    for i, column in enumerate(columns):
        copies = _set(copies, column, pc.if_else(pa.array(which == i), missing, copies[column]))
    return copies


def _null_key(feed: str, copies: pa.Table, rng: np.random.Generator) -> pa.Table:
    return _set(copies, NULLABLE_KEY[feed], render.repeat("", copies.num_rows))


def _future_date(feed: str, copies: pa.Table, rng: np.random.Generator) -> pa.Table:
    # A dropped column (the missing_column defect) simply has no date left to move.
    for column in (c for c in _FUTURE_DATES[feed] if c in copies.column_names):
        moved = pc.utf8_replace_slice(copies[column], start=0, stop=4, replacement="2099")
        copies = _set(copies, column, moved)
    return copies


def _unknown_status(feed: str, copies: pa.Table, rng: np.random.Generator) -> pa.Table:
    return _set(copies, "status", _literal(rng, _UNKNOWN_STATUSES, copies.num_rows))


_QUARANTINED: dict[str, Callable[[str, pa.Table, np.random.Generator], pa.Table]] = {
    "bad_email": _bad_email,
    "bad_phone": _bad_phone,
    "non_positive_price": _non_positive_price,
    "cost_above_retail": _cost_above_retail,
    "orphan_reference": _orphan_reference,
    "null_key": _null_key,
    "future_date": _future_date,
    "unknown_status": _unknown_status,
}


def _insert(table: pa.Table, extras: pa.Table, rng: np.random.Generator) -> pa.Table:
    """Scatter ``extras`` through ``table``, each just before a random row (so never last)."""
    n = table.num_rows
    # Sort keys: original row i sits at 2i+1, an extra placed before row p at 2p.
    keys = np.concatenate([
        2 * np.arange(n, dtype=np.int64) + 1,
        2 * rng.integers(0, n, extras.num_rows),
    ])
    order = np.argsort(keys, kind="stable")
    return pa.concat_tables([table, extras]).take(pa.array(order)).combine_chunks()


def _set(table: pa.Table, column: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.column_names.index(column), column, values)


def _one_of(rng: np.random.Generator, variants: list[pa.Array]) -> pa.Array:
    """Per row, the value from one randomly chosen variant."""
    which = pa.array(rng.integers(0, len(variants), len(variants[0])))
    return pc.choose(which, *variants)


def _literal(rng: np.random.Generator, values: tuple[str, ...], size: int) -> pa.Array:
    return render.pick(values, rng.integers(0, len(values), size))
