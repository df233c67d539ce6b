"""The simulated customer base: its opening population, daily changes and the customers snapshot."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shoplake.generate import render
from shoplake.generate.feeds import SECONDS_PER_DAY, day_start, epoch_days, feed_table
from shoplake.generate.sampling import FloatArray, IntArray, choose, uniform_seconds
from shoplake.generate.vocabulary import (
    CALLING_CODES,
    CITIES,
    CITY_WEIGHTS,
    CURRENCIES,
    ESTABLISHED_STAGE_WEIGHTS,
    FIRST_NAMES,
    LAST_NAMES,
    LIFECYCLE_STAGES,
    SEGMENT_WEIGHTS,
    SEGMENTS,
)

CHANGED_SHARE = 0.02
NEW_SHARE = 0.01
NEW_STAGE_DAYS = 60
_YEAR = 365 * SECONDS_PER_DAY
_CITY_COUNTRY = tuple(country for _, country in CITIES)
_CITY_CALLING_CODE = np.array([CALLING_CODES[c] for c in _CITY_COUNTRY], dtype=np.int64)
CURRENCY_CODES: tuple[str, ...] = ("USD", "EUR", "GBP")
_CITY_CURRENCY = np.array(
    [CURRENCY_CODES.index(CURRENCIES[c]) for c in _CITY_COUNTRY], dtype=np.int64
)
# Columns whose change opens a new SCD2 version downstream; country moves with city.
_TRACKED = ("email", "phone", "city", "segment", "lifecycle_stage")


@dataclass
class CustomerBook:
    """Every customer known so far, one array element per customer (column-oriented)."""

    customer_id: IntArray
    first_name: IntArray
    last_name: IntArray
    email_number: IntArray
    phone_number: IntArray
    birth_day: IntArray
    city: IntArray
    segment: IntArray
    lifecycle_stage: IntArray
    created_at: IntArray
    updated_at: IntArray
    # How often each customer orders relative to the others; a few loyal customers order a lot.
    weight: FloatArray

    @classmethod
    def opening(cls, rng: np.random.Generator, size: int, business_date: date) -> CustomerBook:
        """The population on the first business day, created over the three years before it."""
        start = day_start(business_date)
        created = start - 1 - uniform_seconds(rng, 3 * _YEAR, size)
        # Most customers have not been touched since sign-up; some were edited recently.
        updated = created + np.floor((start - created) * rng.random(size) ** 3).astype(np.int64)
        book = _draw(rng, np.arange(1, size + 1, dtype=np.int64), created, updated, business_date)
        # Stage "new" is for recent sign-ups; everyone else is somewhere later in the lifecycle.
        established = choose(rng, ESTABLISHED_STAGE_WEIGHTS, size) + 1
        recent = created >= start - NEW_STAGE_DAYS * SECONDS_PER_DAY
        book.lifecycle_stage = np.where(recent, 0, established)
        return book

    @property
    def size(self) -> int:
        return len(self.customer_id)

    def advance(self, rng: np.random.Generator, business_date: date) -> None:
        """Apply one business day: ~2% change a tracked column, ~1% new customers sign up."""
        start = day_start(business_date)
        changed = np.flatnonzero(rng.random(self.size) < CHANGED_SHARE)
        column = rng.integers(0, len(_TRACKED), len(changed))
        for position, name in enumerate(_TRACKED):
            rows = changed[column == position]
            self._change(rng, name, rows)
        # Strictly after the previous version, which ended no later than yesterday.
        self.updated_at[changed] = start + uniform_seconds(rng, SECONDS_PER_DAY, len(changed))

        new = max(1, round(self.size * NEW_SHARE))
        first_id = int(self.customer_id.max()) + 1
        created = start + uniform_seconds(rng, SECONDS_PER_DAY, new)
        ids = np.arange(first_id, first_id + new, dtype=np.int64)
        newcomers = _draw(rng, ids, created, created.copy(), business_date)
        for field in fields(self):
            merged = np.concatenate([getattr(self, field.name), getattr(newcomers, field.name)])
            setattr(self, field.name, merged)

    def _change(self, rng: np.random.Generator, name: str, rows: IntArray) -> None:
        """Give ``rows`` a different value in one tracked column."""
        if name == "email":
            self.email_number[rows] = _rotate(rng, self.email_number[rows] - 1, 999) + 1
        elif name == "phone":
            self.phone_number[rows] = _phone_numbers(rng, self.city[rows])
        elif name == "city":
            self.city[rows] = _rotate(rng, self.city[rows], len(CITIES))
        elif name == "segment":
            self.segment[rows] = _rotate(rng, self.segment[rows], len(SEGMENTS))
        else:
            self.lifecycle_stage[rows] = _rotate(
                rng, self.lifecycle_stage[rows], len(LIFECYCLE_STAGES)
            )

    def sample(self, rng: np.random.Generator, size: int, before: int) -> IntArray:
        """Positions of ``size`` customers who existed before ``before``, favouring loyal ones."""
        eligible = np.flatnonzero(self.created_at < before)
        if len(eligible) == 0:
            eligible = np.arange(self.size)
        return eligible[choose(rng, self.weight[eligible], size)]

    def currency(self, positions: IntArray) -> IntArray:
        """Index into :data:`CURRENCY_CODES` of the currency each customer pays in."""
        return _CITY_CURRENCY[self.city[positions]]

    def table(self) -> pa.Table:
        """Today's full customers snapshot as feed text."""
        first = render.pick(FIRST_NAMES, self.first_name)
        last = render.pick(LAST_NAMES, self.last_name)
        email = render.join(
            pc.utf8_lower(first), ".", pc.utf8_lower(last), render.integers(self.email_number),
            "@example.com",
        )
        return feed_table("customers", {
            "customer_id": render.integers(self.customer_id),
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": render.join("+", render.integers(self.phone_number)),
            "birth_date": render.dates(self.birth_day),
            "city": render.pick([city for city, _ in CITIES], self.city),
            "country": render.pick(_CITY_COUNTRY, self.city),
            "segment": render.pick(SEGMENTS, self.segment),
            "lifecycle_stage": render.pick(LIFECYCLE_STAGES, self.lifecycle_stage),
            "created_at": render.timestamps(self.created_at),
            "updated_at": render.timestamps(self.updated_at),
        })


def _draw(
    rng: np.random.Generator,
    ids: IntArray,
    created: IntArray,
    updated: IntArray,
    business_date: date,
) -> CustomerBook:
    """Brand-new customers with the given ids and timestamps."""
    n = len(ids)
    city = choose(rng, CITY_WEIGHTS, n)
    # Ages 18-80 on the business date, with a margin so they stay in range for a long run.
    age_days = rng.integers(18 * 365 + 30, 79 * 365, n)
    return CustomerBook(
        customer_id=ids,
        first_name=rng.integers(0, len(FIRST_NAMES), n),
        last_name=rng.integers(0, len(LAST_NAMES), n),
        email_number=rng.integers(1, 1000, n),
        phone_number=_phone_numbers(rng, city),
        birth_day=epoch_days(business_date) - age_days,
        city=city,
        segment=choose(rng, SEGMENT_WEIGHTS, n),
        lifecycle_stage=np.zeros(n, dtype=np.int64),
        created_at=created,
        updated_at=updated,
        weight=rng.lognormal(0.0, 1.0, n),
    )


def _phone_numbers(rng: np.random.Generator, city: IntArray) -> IntArray:
    """E.164 digits: the country calling code, a 3-digit area code and a 7-digit number."""
    n = len(city)
    area = rng.integers(201, 990, n)
    line = rng.integers(0, 10_000_000, n)
    return _CITY_CALLING_CODE[city] * 10_000_000_000 + area * 10_000_000 + line


def _rotate(rng: np.random.Generator, values: IntArray, count: int) -> IntArray:
    """A different value in ``0..count-1`` for every element, so a change is always a change."""
    return (values + rng.integers(1, count, len(values))) % count
