"""What the monitor says: one finding per problem, with a level, the feed it is about and its numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

Number = int | float | str | None


class Level(StrEnum):
    CRITICAL = "critical"  # someone must act now: data is missing, late or wrong, or the lake cannot be read
    WARNING = "warning"  # worth a look: unusual, not yet a broken promise


class Check(StrEnum):
    """The monitor's checks, in the order the report lists them."""

    REACHABILITY = "reachability"
    PIPELINE = "pipeline"
    FRESHNESS = "freshness"
    VOLUME = "volume"
    QUARANTINE = "quarantine"


class Code(StrEnum):
    """What a finding found: one name per kind of problem, stable for alert rules and dashboards."""

    LAKE_UNREACHABLE = "lake_unreachable"
    STORE_UNREACHABLE = "store_unreachable"
    BATCH_FAILED = "batch_failed"
    BATCH_ROLLED_BACK = "batch_rolled_back"
    BATCH_STUCK = "batch_stuck"
    BATCH_SLOW = "batch_slow"
    STALE = "stale"  # the newest loaded file arrived longer ago than the contract's max_age_hours
    MISSING_FILE = "missing_file"  # a business date other feeds delivered, without a file of this feed
    OVERDUE = "overdue"  # the feed's next business date is later than its usual arrival
    NEVER_ARRIVED = "never_arrived"  # a feed with a freshness SLA and no file at all
    VOLUME_LOW = "volume_low"
    VOLUME_HIGH = "volume_high"
    QUARANTINE_ABOVE_LIMIT = "quarantine_above_limit"
    QUARANTINE_RISING = "quarantine_rising"


@dataclass(frozen=True)
class Finding:
    check: Check
    code: Code
    level: Level
    message: str  # one line a person can act on; no clock-dependent numbers, so a repeat reads the same
    feed: str | None = None
    business_date: date | None = None
    batch_id: str | None = None
    numbers: dict[str, Number] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """What the finding is about, the same on every run that finds it (alerts deduplicate on it)."""
        about = self.batch_id or (self.business_date.isoformat() if self.business_date else "")
        return ":".join((self.check.value, self.code.value, self.feed or "", about))

    def as_json(self) -> dict[str, Any]:
        return {"check": self.check.value, "code": self.code.value, "level": self.level.value,
                "feed": self.feed, "business_date": self.business_date.isoformat() if self.business_date else None,
                "batch_id": self.batch_id, "message": self.message, "numbers": dict(self.numbers), "key": self.key}
