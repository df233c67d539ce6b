"""Seeded random streams and the sizing rules shared by every feed simulator."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def stream(seed: int, day_index: int, name: str) -> np.random.Generator:
    """An independent random stream per (seed, day, purpose).

    Separate streams keep feeds independent of each other, so the clean data does not change
    when, say, the defect rate does. crc32 rather than ``hash`` because string hashing is salted
    per process and would break byte-identical reruns.
    """
    return np.random.default_rng([seed, day_index, zlib.crc32(name.encode("utf-8"))])


def scaled(base: int, scale: float, minimum: int) -> int:
    """Rows for a feed at this scale, never fewer than a handful so tiny scales exercise it."""
    return max(minimum, round(base * scale))


def choose(rng: np.random.Generator, weights: Sequence[float] | FloatArray, size: int) -> IntArray:
    """Draw ``size`` indices into ``weights`` with probability proportional to each weight."""
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(p), size=size, p=p / p.sum()).astype(np.int64)


def uniform_seconds(rng: np.random.Generator, span: IntArray | int, size: int) -> IntArray:
    """Whole seconds uniformly in ``[0, span)``, elementwise when ``span`` is an array."""
    return np.floor(rng.random(size) * span).astype(np.int64)
