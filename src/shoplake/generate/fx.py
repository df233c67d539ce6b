"""The simulated exchange rates: a daily rate per foreign currency to US dollars, and their feed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from shoplake.generate import render
from shoplake.generate.feeds import feed_table
from shoplake.generate.sampling import FloatArray

# The shop reports in US dollars (the default reporting currency); the other currencies customers pay
# in, with a plausible opening rate (dollars per unit) and the day-to-day volatility of that rate.
REPORTING = "USD"
FOREIGN: tuple[str, ...] = ("EUR", "GBP")
_OPENING = np.array([1.08, 1.27])
_DAILY_VOLATILITY = 0.004
RATE_DECIMALS = 6  # as central banks publish reference rates


@dataclass
class FxRates:
    """Today's rate of each of :data:`FOREIGN`, in dollars per unit, rounded as published."""

    rate: FloatArray

    @classmethod
    def opening(cls, rng: np.random.Generator) -> FxRates:
        return cls(np.round(_OPENING * np.exp(rng.normal(0.0, _DAILY_VOLATILITY, len(FOREIGN))), RATE_DECIMALS))

    def advance(self, rng: np.random.Generator) -> None:
        """One day on: a small random move of every rate (a geometric random walk)."""
        moved = self.rate * np.exp(rng.normal(0.0, _DAILY_VOLATILITY, len(FOREIGN)))
        self.rate = np.round(moved, RATE_DECIMALS)

    def of(self, currencies: tuple[str, ...]) -> FloatArray:
        """The rate of each of ``currencies`` (1 for the reporting currency itself)."""
        return np.array([1.0 if c == REPORTING else float(self.rate[FOREIGN.index(c)]) for c in currencies])

    def table(self, business_date: date) -> pa.Table:
        """The day's rates as feed text, e.g. ``2026-01-05,EUR,1.083412``."""
        text = [f"{r:.{RATE_DECIMALS}f}" for r in self.rate]
        return feed_table("fx_rates", {
            "rate_date": render.repeat(business_date.isoformat(), len(FOREIGN)),
            "currency": pa.array(FOREIGN, type=pa.string()),
            "rate": pa.array(text, type=pa.string()),
        })
