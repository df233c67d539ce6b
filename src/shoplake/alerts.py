"""Alert channels configured in shoplake.yml (a Slack-compatible webhook, SMTP email), each sending an alert at
most once per resend window, remembered in the operational store so that every process sees it.

`alert_notifiers(settings, store)` is what a session notifies through: the log always, then each configured
channel for events at or above `alerts.min_level`. A channel that cannot deliver raises `AlertNotSent`, which
`Notifiers` logs; the pipeline never fails because an alert did not go out.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import re
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import sqlalchemy as sa

from shoplake.config import ALERT_LEVELS, AlertLevel, EmailAlerts, Settings, WebhookAlerts, env_secret
from shoplake.errors import ConfigError, ShoplakeError
from shoplake.landing.ledger import now
from shoplake.notify import Event, LogNotifier, Notifier, Notifiers

log = logging.getLogger("shoplake.events")
RETRY_PAUSE_SECONDS = 1.0  # between a failed attempt and the one retry
_TEXT_LIMIT = 2900  # Slack cuts a section's text at 3000 characters

metadata = sa.MetaData()

# When each channel last sent each alert: one row per channel and alert, keyed by a hash of both.
alerts_sent = sa.Table(
    "alerts_sent", metadata,
    sa.Column("alert_key", sa.String(64), primary_key=True),  # sha256 of channel, kind and what it is about
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("message", sa.Text, nullable=False),  # the last message sent, for a person reading the table
    sa.Column("sent_at", sa.DateTime, nullable=False),  # UTC
)


class AlertNotSent(ShoplakeError):
    """A channel could not deliver an alert (after its retry); logged, never fails the pipeline."""

    retryable = True


def alert_notifiers(settings: Settings, store: sa.Engine | None = None) -> Notifiers:
    """The log, then every channel configured under `alerts:`, each deduplicated through `store` (the
    operational store; default: an engine on `settings.state_db_url`, opened at the first alert)."""
    config = settings.alerts
    channels: list[tuple[str, Notifier]] = []
    if config.webhook is not None:
        channels.append(("webhook", WebhookNotifier(config.webhook, _secret("alerts.webhook.url_env",
                                                                             config.webhook.url_env),
                                                    lake=settings.tables_root)))
    if config.email is not None:
        password = (_secret("alerts.email.password_env", config.email.password_env)
                    if config.email.password_env else None)
        channels.append(("email", EmailNotifier(config.email, password, lake=settings.tables_root)))
    if not channels:
        return Notifiers()
    sent = SentAlerts(store or (lambda: sa.create_engine(settings.state_db_url)))
    window = timedelta(minutes=config.resend_after_minutes)
    return Notifiers([LogNotifier(), *(OncePerWindow(name, channel, sent, window=window,
                                                     min_level=config.min_level) for name, channel in channels)])


def _secret(setting: str, variable: str) -> str:
    """The secret now; settings checked it at load time, but the environment may have changed since."""
    try:
        return env_secret(variable)
    except ValueError as error:
        raise ConfigError(f"{setting}: {error}", hint=f"export {variable}, or remove the channel from shoplake.yml") \
            from None


class SentAlerts:
    """When each alert was last sent, in the operational store; a send first claims the alert, so that two
    processes raising the same alert at once send it once."""

    def __init__(self, engine: sa.Engine | Callable[[], sa.Engine]) -> None:
        self._engine = engine
        self._created = False

    @property
    def engine(self) -> sa.Engine:
        # Opened and created at the first alert: building the notifiers never touches the store, so an alert
        # about an unreachable store can still be raised.
        if not isinstance(self._engine, sa.Engine):
            self._engine = self._engine()
        if not self._created:
            alerts_sent.create(self._engine, checkfirst=True)
            self._created = True
        return self._engine

    @staticmethod
    def key(channel: str, event: Event) -> str:
        return hashlib.sha256(f"{channel}\x1f{event.identity}".encode()).hexdigest()

    def claim(self, key: str, channel: str, event: Event, at: datetime,
              window: timedelta) -> tuple[bool, datetime | None]:
        """Whether this process may send the alert now, and when it was sent before (None: never)."""
        with self.engine.begin() as conn:
            before = conn.execute(sa.select(alerts_sent.c.sent_at).where(alerts_sent.c.alert_key == key)).scalar()
            if before is not None:
                if before > at - window:
                    return False, before
                # Compare and set: another process that claimed it meanwhile changed sent_at.
                taken = conn.execute(sa.update(alerts_sent).where(alerts_sent.c.alert_key == key,
                                                                  alerts_sent.c.sent_at == before)
                                     .values(sent_at=at, message=event.message)).rowcount == 1
                return taken, before
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(alerts_sent).values(alert_key=key, channel=channel, kind=event.kind,
                                                           message=event.message, sent_at=at))
        except sa.exc.IntegrityError:
            return False, None  # another process claimed it first
        return True, None

    def release(self, key: str, at: datetime, before: datetime | None) -> None:
        """Undo a claim whose send failed, so that the next occurrence tries again."""
        mine = sa.and_(alerts_sent.c.alert_key == key, alerts_sent.c.sent_at == at)
        with self.engine.begin() as conn:
            if before is None:
                conn.execute(sa.delete(alerts_sent).where(mine))
            else:
                conn.execute(sa.update(alerts_sent).where(mine).values(sent_at=before))


class OncePerWindow:
    """A channel that sends events at or above a level, and the same alert at most once per window."""

    def __init__(self, name: str, channel: Notifier, sent: SentAlerts, *, window: timedelta,
                 min_level: AlertLevel) -> None:
        self.name = name
        self.channel = channel
        self.sent = sent
        self.window = window
        self.min_rank = ALERT_LEVELS.index(min_level)

    def __repr__(self) -> str:
        return f"<{self.name} alerts>"  # never the URL: it holds the webhook's token

    def send(self, event: Event) -> None:
        if ALERT_LEVELS.index(event.urgency) < self.min_rank:
            return
        key, at = self.sent.key(self.name, event), now()
        try:
            claimed, before = self.sent.claim(key, self.name, event, at, self.window)
        except sa.exc.SQLAlchemyError as error:
            # Better a repeated alert than none while the store is down (it may be what the alert is about).
            log.warning("%s: the state store cannot tell when this alert was last sent (%s); sending it",
                        self.name, str(error).splitlines()[0])
            self.channel.send(event)
            return
        if not claimed:
            return
        try:
            self.channel.send(event)
        except BaseException:
            self.sent.release(key, at, before)
            raise


class WebhookNotifier:
    """POSTs Slack-compatible JSON: `text` (and `blocks`) for people, `event` with every field for programs."""

    def __init__(self, config: WebhookAlerts, url: str, *, lake: str) -> None:
        url = url.strip()  # a variable set from a file often ends in a line break
        # Checked here, not by urllib when sending: its error about a bad URL would quote the URL, token and all.
        if not re.fullmatch(r"https?://[^\s/]+\S*", url, re.IGNORECASE):
            raise ConfigError(f"alerts.webhook.url_env: {config.url_env} does not hold an http(s) URL",
                              hint="set it to the webhook's URL, such as https://hooks.slack.com/services/...")
        self.config = config
        self._url = url
        self.lake = lake

    def __repr__(self) -> str:
        return f"<webhook from {self.config.url_env}>"

    def payload(self, event: Event) -> dict[str, Any]:
        where = [f"batch {event.batch_id}" if event.batch_id else "", f"file {event.file}" if event.file else ""]
        text = _slack_escape(f"[{event.urgency}] {event.kind}: {event.message[:_TEXT_LIMIT]}"
                             + "".join(f" ({w})" for w in where if w))
        body: dict[str, Any] = {"text": text, "event": _fields(event, self.lake)}
        if self.config.blocks:
            context = " · ".join(_slack_escape(f"{name}: {value}") for name, value in _facts(event, self.lake))
            body["blocks"] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
                              {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}]
        return body

    def send(self, event: Event) -> None:
        data = json.dumps(self.payload(event), default=str).encode()
        request = urllib.request.Request(self._url, data=data, method="POST",
                                         headers={"Content-Type": "application/json; charset=utf-8",
                                                  "User-Agent": "shoplake-alerts"})

        def post() -> None:
            with urllib.request.urlopen(request, timeout=self.config.timeout_seconds) as response:
                response.read()

        def permanent(error: BaseException) -> bool:
            # A refused payload or a revoked URL stays refused; a 429, a 5xx or a network error may pass later.
            return isinstance(error, urllib.error.HTTPError) and 400 <= error.code < 500 and error.code != 429

        _twice(post, permanent, f"webhook ({self.config.url_env})")


class EmailNotifier:
    """Sends each alert as a plain-text mail to every address in `to`."""

    def __init__(self, config: EmailAlerts, password: str | None, *, lake: str) -> None:
        self.config = config
        self._password = password
        self.lake = lake

    def __repr__(self) -> str:
        return f"<email via {self.config.host}:{self.config.smtp_port}>"

    def message(self, event: Event) -> EmailMessage:
        mail = EmailMessage()
        first = event.message.splitlines()[0] if event.message else ""
        mail["Subject"] = f"[shoplake {event.urgency}] {event.kind}: {first[:150]}"
        mail["From"] = self.config.from_
        mail["To"] = ", ".join(self.config.to)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain="shoplake")
        facts = "\n".join(f"{name}: {value}" for name, value in _facts(event, self.lake))
        mail.set_content(f"{event.message}\n\n{facts}\n")
        return mail

    def send(self, event: Event) -> None:
        mail, c = self.message(event), self.config
        context = ssl.create_default_context()

        def deliver() -> None:
            smtp: smtplib.SMTP = (smtplib.SMTP_SSL(c.host, c.smtp_port, timeout=c.timeout_seconds, context=context)
                                  if c.ssl else smtplib.SMTP(c.host, c.smtp_port, timeout=c.timeout_seconds))
            with smtp:
                if c.starttls:
                    smtp.starttls(context=context)
                if c.username and self._password is not None:
                    smtp.login(c.username, self._password)
                smtp.send_message(mail)

        def permanent(error: BaseException) -> bool:
            # Refused credentials, sender or recipients, or a 5xx reply, stay refused on a second try.
            if isinstance(error, smtplib.SMTPAuthenticationError | smtplib.SMTPRecipientsRefused
                          | smtplib.SMTPSenderRefused | smtplib.SMTPNotSupportedError):
                return True
            return isinstance(error, smtplib.SMTPResponseException) and error.smtp_code >= 500

        _twice(deliver, permanent, f"email via {c.host}:{c.smtp_port}")


def _twice(attempt: Callable[[], None], permanent: Callable[[BaseException], bool], channel: str) -> None:
    """One attempt and, unless the failure is permanent, one retry after a pause."""
    for tries in (1, 2):
        try:
            attempt()
            return
        except (OSError, http.client.HTTPException) as error:  # socket, urllib and SMTP errors are OSErrors
            if tries == 2 or permanent(error):
                raise AlertNotSent(f"{channel}: the alert was not delivered: {error}",
                                   hint="check that the service is reachable and the settings under alerts:") \
                    from None
        time.sleep(RETRY_PAUSE_SECONDS)


def _facts(event: Event, lake: str) -> list[tuple[str, str]]:
    """The event's fields that a person reads below the message."""
    facts = [("kind", event.kind), ("level", event.urgency)]
    facts += [(name, str(value)) for name, value in (("batch", event.batch_id), ("file", event.file)) if value]
    facts += [(name, str(value)) for name, value in sorted(event.details.items())]
    return [*facts, ("lake", lake)]


def _fields(event: Event, lake: str) -> dict[str, Any]:
    return {"kind": event.kind, "level": event.urgency, "message": event.message, "batch_id": event.batch_id,
            "file": event.file, "key": event.key, "details": event.details, "lake": lake}


def _slack_escape(text: str) -> str:
    """Slack reads &, < and > as markup (links, mentions); a message naming `<missing>` must show as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
