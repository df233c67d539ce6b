"""Vectorised conversion of numeric columns into the text the feed files carry."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shoplake.generate.sampling import BoolArray, IntArray

# Every feed column is rendered to text before writing: defects are then plain string edits,
# and the CSV writer has nothing left to format.


def integers(values: IntArray) -> pa.Array:
    """Integers as decimal text, e.g. ``1050``."""
    return pc.cast(pa.array(values, type=pa.int64()), pa.string())


def padded(values: IntArray, width: int) -> pa.Array:
    """Non-negative integers as zero-padded text, e.g. ``000123``."""
    return pc.utf8_lpad(integers(values), width=width, padding="0")


def money(cents: IntArray) -> pa.Array:
    """Amounts held in cents as text with exactly two decimals, e.g. ``-3.05``."""
    magnitude = np.abs(cents)
    sign = pc.if_else(pa.array(cents < 0), "-", "")
    fraction = padded(magnitude % 100, 2)
    return join(sign, integers(magnitude // 100), ".", fraction)


def timestamps(seconds: IntArray) -> pa.Array:
    """Epoch seconds as ``YYYY-MM-DD HH:MM:SS``."""
    return pc.cast(pa.array(seconds, type=pa.int64()).cast(pa.timestamp("s")), pa.string())


def optional_timestamps(seconds: IntArray, present: BoolArray) -> pa.Array:
    """Like :func:`timestamps`, but empty where ``present`` is false."""
    return blank_where(timestamps(seconds), ~present)


def dates(days: IntArray) -> pa.Array:
    """Days since the epoch as ``YYYY-MM-DD``."""
    return pc.cast(pa.array(days.astype(np.int32), type=pa.int32()).cast(pa.date32()), pa.string())


def pick(vocabulary: Sequence[str], index: IntArray) -> pa.Array:
    """The vocabulary entry at each index."""
    return pa.array(vocabulary, type=pa.string()).take(pa.array(index, type=pa.int64()))


def repeat(value: str, size: int) -> pa.Array:
    """One constant text value for every row."""
    return pa.repeat(pa.scalar(value, type=pa.string()), size)


def blank_where(values: pa.Array, mask: BoolArray) -> pa.Array:
    """Replace the values where ``mask`` is true with the empty string (an empty CSV field)."""
    return pc.if_else(pa.array(mask), "", values)


def join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate text arrays and literals elementwise."""
    return pc.binary_join_element_wise(*parts, "")
