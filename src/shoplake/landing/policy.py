"""When waiting files become a batch: the batching policy of `shoplake watch`.

For each business date, the files waiting for it become one batch when
  trigger     a trigger_<YYYY_MM_DD>.json for the date has arrived, or
  max_files   at least `max_files` files wait and every `required` feed is among them, or
  max_wait    `max_wait_minutes` have passed since the last required feed arrived (all present), or
  late        the date is not newer than a date already loaded, and its oldest file has waited
              `max_wait_minutes` (a late file never completes a set, but it must not wait forever).
The watcher holds back a `max_files` batch while other files are still settling, so a burst
dropped at once becomes one batch.
Files being reprocessed are always ready. Older dates come first. The clock starts from the ledger's
`detected_at`, so a restart does not reset it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby

from shoplake.config import Batching
from shoplake.landing.ledger import Waiting


@dataclass(frozen=True)
class Ready:
    business_date: date
    reason: str
    files: list[Waiting]
    replaces: str | None = None


def ready_batches(waiting: list[Waiting], policy: Batching, now: datetime, latest_loaded: date | None) -> list[Ready]:
    def key(w: Waiting) -> tuple[date, str]:
        return (w.business_date, w.replaces or "")

    ready = []
    for (day, replaces), group in groupby(sorted(waiting, key=lambda w: (*key(w), w.relative)), key=key):
        files = list(group)
        reason = "reprocess" if replaces else why_ready(files, policy, now, late=latest_loaded is not None and
                                                        day <= latest_loaded)
        if reason:
            ready.append(Ready(day, reason, files, replaces or None))
    return ready


def why_ready(files: list[Waiting], policy: Batching, now: datetime, *, late: bool) -> str | None:
    """Why these files of one date should run now, or None while they should wait."""
    if any(w.feed is None for w in files):
        return "trigger"
    wait = timedelta(minutes=policy.max_wait_minutes)
    arrived: dict[str, datetime] = {}
    for w in files:
        if w.feed is not None:
            arrived[w.feed] = min(arrived.get(w.feed, w.detected_at), w.detected_at)
    if all(feed in arrived for feed in policy.required):
        if len(files) >= policy.max_files:
            return "max_files"
        complete_at = max((arrived[feed] for feed in policy.required), default=min(arrived.values()))
        if now - complete_at >= wait:
            return "max_wait"
    if late and now - min(w.detected_at for w in files) >= wait:
        return "late"
    return None

