"""File-level defects: a feed file that gains a column, loses one, or ends mid-line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from shoplake.generate import render

# The trailing column a source system starts sending without notice, with its possible values.
EXTRA_COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "customers": ("loyalty_tier", ("bronze", "silver", "gold", "platinum")),
    "products": ("color_family", ("neutral", "warm", "cool", "bright")),
    "orders": ("coupon_code", ("", "WELCOME10", "SPRING15", "VIP20")),
    "order_items": ("gift_wrap", ("true", "false")),
    "inventory": ("bin_location", ("A-01", "A-02", "B-11", "C-07", "D-03")),
    "shipping": ("weight_kg", ("0.4", "1.2", "2.5", "7.8")),
    "events": ("referrer", ("direct", "google", "newsletter", "instagram")),
}
# The column a source system stops sending. Only optional columns that no row-level defect
# edits and no rule needs, so losing one changes no quarantine count.
DROPPED_COLUMNS: dict[str, str] = {
    "customers": "birth_date",
    "products": "brand",
    "orders": "currency",
    "order_items": "updated_at",
    "inventory": "quantity_reserved",
    "shipping": "promised_at",
    "events": "device",
}
# The feeds whose files drift, in rotation order. The fx_rates file (two rows a day, every column
# needed) never does: a cut line there would quarantine half of it.
DRIFTING: tuple[str, ...] = tuple(EXTRA_COLUMNS)


@dataclass(frozen=True)
class DriftPlan:
    """Which feed file of a business day gets which file-level defect (``None``: no file)."""

    extra_column: str | None
    missing_column: str | None
    truncated_last_line: str


def plan_for(day_index: int) -> DriftPlan:
    """Rotate the file-level defects over the feeds, three different feeds on any one day.

    Schema drift starts on the second day so the first day fixes the expected layout.
    """
    count = len(DRIFTING)
    drifting = day_index >= 1
    return DriftPlan(
        extra_column=DRIFTING[(day_index - 1) % count] if drifting else None,
        missing_column=DRIFTING[(day_index + 5) % count] if drifting else None,
        truncated_last_line=DRIFTING[(day_index + 2) % count],
    )


def add_extra_column(feed: str, table: pa.Table, rng: np.random.Generator) -> pa.Table:
    """The table with the feed's unannounced trailing column appended."""
    name, values = EXTRA_COLUMNS[feed]
    return table.append_column(name, render.pick(values, rng.integers(0, len(values), len(table))))


def drop_column(feed: str, table: pa.Table) -> pa.Table:
    """The table without the column the feed stops sending."""
    return table.drop_columns([DROPPED_COLUMNS[feed]])
