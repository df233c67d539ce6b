"""Events worth telling someone about, sent through one notifier interface.

The pipeline emits; notifiers deliver. `LogNotifier` writes them to the `shoplake.events` logger;
`shoplake.alerts` adds the channels configured in shoplake.yml (webhook, email) behind the same interface.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from shoplake.config import AlertLevel

BATCH_FAILED = "batch_failed"
BATCH_ROLLED_BACK = "batch_rolled_back"
FILE_FAILED = "file_failed"
FILE_DUPLICATE = "file_duplicate"

# How urgent each kind is when its event does not say: a failed batch kept data out of the lake; a rejected
# or rolled-back file or batch needs a look; a duplicate was already loaded once and changes nothing.
KIND_LEVELS: dict[str, AlertLevel] = {BATCH_FAILED: "critical", BATCH_ROLLED_BACK: "warning",
                                      FILE_FAILED: "warning", FILE_DUPLICATE: "info"}

log = logging.getLogger("shoplake.events")


@dataclass(frozen=True)
class Event:
    kind: str  # one of the constants above
    message: str  # one line a person can act on
    batch_id: str | None = None
    file: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    level: AlertLevel | None = None  # None: the kind's level in KIND_LEVELS (warning for other kinds)
    # What the alert is about (a feed, a check): one kind and one key are the same alert, not sent again within
    # the resend window. None: the batch, the file, else the message.
    key: str | None = None

    @property
    def urgency(self) -> AlertLevel:
        return self.level or KIND_LEVELS.get(self.kind, "warning")

    @property
    def identity(self) -> str:
        """The alert this event is, for de-duplication: its kind and what it is about."""
        about = self.key if self.key is not None else "\x1f".join(
            part for part in (self.batch_id or "", self.file or "") if part) or self.message
        return f"{self.kind}\x1f{about}"


class Notifier(Protocol):
    def send(self, event: Event) -> None: ...


class LogNotifier:
    """Every event as one warning line on the `shoplake.events` logger."""

    def send(self, event: Event) -> None:
        where = " ".join(part for part in (f"batch={event.batch_id}" if event.batch_id else "",
                                           f"file={event.file}" if event.file else "") if part)
        log.warning("%s: %s%s", event.kind, event.message, f" ({where})" if where else "",
                    extra={"shoplake_event": event})  # the whole event, for `--log-format json` (jsonlog.py)


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
