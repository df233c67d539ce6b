"""Events worth telling someone about, sent through one notifier interface.

The pipeline emits; notifiers deliver. `LogNotifier` writes them to the `shoplake.events` logger; the
monitoring work adds channels (mail, chat, webhooks) as further notifiers behind the same interface.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

BATCH_FAILED = "batch_failed"
BATCH_ROLLED_BACK = "batch_rolled_back"
FILE_FAILED = "file_failed"
FILE_DUPLICATE = "file_duplicate"

log = logging.getLogger("shoplake.events")


@dataclass(frozen=True)
class Event:
    kind: str  # one of the constants above
    message: str  # one line a person can act on
    batch_id: str | None = None
    file: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Notifier(Protocol):
    def send(self, event: Event) -> None: ...


class LogNotifier:
    """Every event as one warning line on the `shoplake.events` logger."""

    def send(self, event: Event) -> None:
        where = " ".join(part for part in (f"batch={event.batch_id}" if event.batch_id else "",
                                           f"file={event.file}" if event.file else "") if part)
        log.warning("%s: %s%s", event.kind, event.message, f" ({where})" if where else "")


class Notifiers:
    """Fan an event out to every notifier; a failing notifier is logged, never fails the pipeline."""

    def __init__(self, notifiers: list[Notifier] | None = None) -> None:
        self.notifiers: list[Notifier] = notifiers if notifiers is not None else [LogNotifier()]

    def send(self, event: Event) -> None:
        for notifier in self.notifiers:
            try:
                notifier.send(event)
            except Exception:
                log.exception("notifier %r failed on %s", notifier, event.kind)
