"""Alert channels: a real local HTTP server receives the webhook and a real local SMTP server (aiosmtpd) the
mail; secrets only from the environment; the same alert once per window, across processes."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from deltalake import DeltaTable

from shoplake import alerts, api
from shoplake.alerts import alert_notifiers, alerts_sent
from shoplake.config import Alerts, EmailAlerts, Settings, WebhookAlerts, load_settings
from shoplake.errors import ConfigError
from shoplake.notify import BATCH_FAILED, FILE_DUPLICATE, Event
from tests.conftest import FIXTURES, copy_fixture

HOOK_ENV, PASSWORD_ENV = "SHOPLAKE_TEST_WEBHOOK_URL", "SHOPLAKE_TEST_SMTP_PASSWORD"
TOKEN = "T000/B000/s3cr3tt0ken"  # the secret part of a webhook URL: never in a log line
PASSWORD = "correct horse"


@dataclass
class Webhook:
    url: str
    received: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)  # path, headers, JSON
    statuses: list[int] = field(default_factory=list)  # the replies to give next; 200 once they run out


@dataclass
class Mailbox:
    port: int
    mails: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)  # envelope from, to, mail
    logins: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook(url="")

    class Receive(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.received.append((self.path, dict(self.headers), json.loads(body)))
            status = hook.statuses.pop(0) if hook.statuses else 200
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/services/{TOKEN}"
    yield hook
    server.shutdown()
    server.server_close()


def free_port() -> int:
    """A port nothing listens on (aiosmtpd's controller needs its port before it starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())

    class Deliver:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            mail = message_from_bytes(envelope.original_content, policy=policy.default)
            assert isinstance(mail, EmailMessage)
            box.mails.append((envelope.mail_from, list(envelope.rcpt_tos), mail))
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login = (data.login.decode(), data.password.decode())
        box.logins.append(login)
        return AuthResult(success=login == ("shop", PASSWORD))

    # AUTH without TLS: the test server has no certificate; the client logs in the same way over TLS.
    controller = Controller(Deliver(), hostname="127.0.0.1", port=box.port, authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture(autouse=True)
def fresh(webhook: Webhook, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    webhook.received.clear()
    webhook.statuses.clear()
    mailbox.mails.clear()
    mailbox.logins.clear()
    monkeypatch.setenv(HOOK_ENV, webhook.url)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    monkeypatch.setattr(alerts, "RETRY_PAUSE_SECONDS", 0.01)


def channels(mailbox: Mailbox, **options: Any) -> Alerts:
    return Alerts(webhook=WebhookAlerts(url_env=HOOK_ENV),
                  email=EmailAlerts(host="127.0.0.1", port=mailbox.port, from_="shoplake@shop.example",
                                    to=["ops@shop.example", "data@shop.example"], username="shop",
                                    password_env=PASSWORD_ENV),
                  **options)


def store(tmp_path: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")


FAILED = Event(BATCH_FAILED, "orders.created_not_in_future (1 rows) <fail_batch> & stopped", batch_id="b-20260105",
               details={"business_date": "2026-01-05"})


def test_the_webhook_receives_slack_json_with_the_events_fields(workspace: Settings, webhook: Webhook,
                                                                 mailbox: Mailbox, tmp_path: Path) -> None:
    workspace.alerts = channels(mailbox)
    alert_notifiers(workspace, store(tmp_path)).send(FAILED)
    assert len(webhook.received) == 1
    path, headers, body = webhook.received[0]
    assert path == f"/services/{TOKEN}"
    assert headers["Content-Type"].startswith("application/json")
    # Slack reads <, > and & as markup: escaped in the text, as written in the event's own fields.
    assert body["text"] == ("[critical] batch_failed: orders.created_not_in_future (1 rows) &lt;fail_batch&gt; "
                            "&amp; stopped (batch b-20260105)")
    assert body["event"] == {"kind": "batch_failed", "level": "critical", "message": FAILED.message,
                             "batch_id": "b-20260105", "file": None, "key": None,
                             "details": {"business_date": "2026-01-05"}, "lake": workspace.tables_root}
    section, context = body["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": body["text"]}}
    assert "business_date: 2026-01-05" in context["elements"][0]["text"]


def test_the_mail_arrives_with_subject_recipients_and_the_batch(workspace: Settings, mailbox: Mailbox,
                                                               tmp_path: Path) -> None:
    workspace.alerts = channels(mailbox)
    alert_notifiers(workspace, store(tmp_path)).send(FAILED)
    assert mailbox.logins == [("shop", PASSWORD)], "the password comes from the environment variable"
    [(sender, recipients, mail)] = mailbox.mails
    assert (sender, recipients) == ("shoplake@shop.example", ["ops@shop.example", "data@shop.example"])
    assert mail["Subject"] == ("[shoplake critical] batch_failed: orders.created_not_in_future (1 rows) "
                               "<fail_batch> & stopped")
    assert mail["To"] == "ops@shop.example, data@shop.example"
    body = mail.get_content()
    assert body.startswith(FAILED.message)
    assert "batch: b-20260105" in body and "business_date: 2026-01-05" in body


@pytest.mark.parametrize(("alerts_yml", "setting", "variable"), [
    ("webhook: {url_env: SHOPLAKE_TEST_UNSET}", "alerts.webhook.url_env", "SHOPLAKE_TEST_UNSET"),
    ("webhook: {url_env: SHOPLAKE_TEST_EMPTY}", "alerts.webhook.url_env", "SHOPLAKE_TEST_EMPTY"),
    ("email: {host: mail, from: a@shop.example, to: [b@shop.example], username: shop, "
     "password_env: SHOPLAKE_TEST_UNSET}", "alerts.email.password_env", "SHOPLAKE_TEST_UNSET"),
])
def test_a_missing_or_empty_secret_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             alerts_yml: str, setting: str, variable: str) -> None:
    monkeypatch.delenv("SHOPLAKE_TEST_UNSET", raising=False)
    monkeypatch.setenv("SHOPLAKE_TEST_EMPTY", "  ")
    config = tmp_path / "shoplake.yml"
    config.write_text(f"alerts:\n  {alerts_yml}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert setting in str(raised.value) and f"environment variable {variable} is not set or is empty" in str(
        raised.value)
    assert raised.value.exit_code == 2


def test_a_secret_written_into_shoplake_yml_is_refused_without_echoing_it(tmp_path: Path) -> None:
    config = tmp_path / "shoplake.yml"
    for alerts_yml in (f"webhook: {{url: 'https://hooks.example/{TOKEN}'}}",
                       f"webhook: {{url_env: 'https://hooks.example/{TOKEN}'}}"):
        config.write_text(f"alerts:\n  {alerts_yml}\n")
        with pytest.raises(ConfigError, match=r"alerts\.webhook") as raised:
            load_settings(config)
        assert "environment variable" in str(raised.value)
        assert TOKEN not in str(raised.value)


def test_the_same_alert_waits_for_the_window_across_processes(workspace: Settings, webhook: Webhook,
                                                             mailbox: Mailbox, tmp_path: Path) -> None:
    workspace.alerts = channels(mailbox, resend_after_minutes=30)
    first = alert_notifiers(workspace, store(tmp_path))
    first.send(FAILED)
    first.send(FAILED)
    # Another process (its own connection to the same store) raising the same alert is quiet too.
    alert_notifiers(workspace, store(tmp_path)).send(FAILED)
    assert (len(webhook.received), len(mailbox.mails)) == (1, 1)

    other_batch = Event(BATCH_FAILED, FAILED.message, batch_id="b-20260106")
    first.send(other_batch)
    assert [body["event"]["batch_id"] for _, _, body in webhook.received] == ["b-20260105", "b-20260106"]

    # 31 minutes later: the window has passed, and the alert goes again on both channels.
    with store(tmp_path).begin() as conn:
        for key, sent_at in conn.execute(sa.select(alerts_sent.c.alert_key, alerts_sent.c.sent_at)).all():
            conn.execute(sa.update(alerts_sent).where(alerts_sent.c.alert_key == key)
                         .values(sent_at=sent_at - timedelta(minutes=31)))
    first.send(FAILED)
    assert [body["event"]["batch_id"] for _, _, body in webhook.received] == ["b-20260105", "b-20260106",
                                                                             "b-20260105"]
    assert len(mailbox.mails) == 3


def test_events_below_the_minimum_level_reach_the_log_only(workspace: Settings, webhook: Webhook,
                                                          mailbox: Mailbox, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    workspace.alerts = channels(mailbox)  # min_level: warning
    duplicate = Event(FILE_DUPLICATE, "orders_again.csv has the content of orders.csv", file="orders_again.csv")
    with caplog.at_level(logging.WARNING, logger="shoplake.events"):
        alert_notifiers(workspace, store(tmp_path)).send(duplicate)
    assert "file_duplicate: orders_again.csv has the content" in caplog.text
    assert (webhook.received, mailbox.mails) == ([], [])
    workspace.alerts = channels(mailbox, min_level="info")
    alert_notifiers(workspace, store(tmp_path)).send(duplicate)
    assert (len(webhook.received), len(mailbox.mails)) == (1, 1)


def test_a_server_error_is_retried_once_and_a_refusal_is_not(workspace: Settings, webhook: Webhook,
                                                             tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    workspace.alerts = Alerts(webhook=WebhookAlerts(url_env=HOOK_ENV))
    notifiers = alert_notifiers(workspace, store(tmp_path))
    webhook.statuses[:] = [503]
    notifiers.send(FAILED)
    assert len(webhook.received) == 2, "one retry after a 503"

    webhook.statuses[:] = [404, 200]
    with caplog.at_level(logging.ERROR, logger="shoplake.events"):
        notifiers.send(Event(BATCH_FAILED, "another", batch_id="b-2"))
    assert len(webhook.received) == 3, "a 404 is not retried"
    assert f"webhook ({HOOK_ENV}): the alert was not delivered: HTTP Error 404" in caplog.text
    webhook.statuses.clear()
    notifiers.send(Event(BATCH_FAILED, "another", batch_id="b-2"))
    assert len(webhook.received) == 4, "an alert that was not delivered is not remembered as sent"


def landing_with_a_failing_batch(workspace: Settings) -> None:
    """orders for 2026-01-05 and a trigger that also lists a file that never arrived: the batch fails."""
    shutil.copy(FIXTURES / "mini" / "orders_2026_01_05.csv", workspace.landing)
    (workspace.landing / "trigger_2026_01_05.json").write_text(json.dumps(
        {"files": [{"name": "orders_2026_01_05.csv", "rows": 6}, {"name": "returns_2026_01_05.csv", "rows": 3}]}))


def test_a_failing_batch_alerts_once_through_each_channel(workspace: Settings, webhook: Webhook,
                                                          mailbox: Mailbox) -> None:
    workspace.alerts = channels(mailbox)
    landing_with_a_failing_batch(workspace)
    batch = api.run(workspace).batches[0]
    assert batch.status == "failed"
    [(_, _, body)] = webhook.received
    assert body["event"]["kind"] == "batch_failed" and body["event"]["batch_id"] == batch.batch_id
    assert "returns_2026_01_05.csv" in body["text"]
    [(_, _, mail)] = mailbox.mails
    assert mail["Subject"].startswith("[shoplake critical] batch_failed: ")
    assert f"batch: {batch.batch_id}" in mail.get_content()
    assert "business_date: 2026-01-05" in mail.get_content()
    # The state store remembers each channel's alert (the next process will not send it again).
    with sa.create_engine(workspace.state_db_url).connect() as conn:
        assert sorted(conn.execute(sa.select(alerts_sent.c.channel, alerts_sent.c.kind))) == [
            ("email", "batch_failed"), ("webhook", "batch_failed")]


def test_a_batch_breaking_an_error_check_keeps_gold_and_alerts_through_both_channels(
        workspace: Settings, webhook: Webhook, mailbox: Mailbox, tmp_path: Path) -> None:
    workspace.alerts = channels(mailbox)
    copy_fixture("mini", workspace.landing)
    assert [b.status for b in api.run(workspace).batches] == ["succeeded"]
    webhook.received.clear()  # day 1's rejected shipping file was alerted too
    mailbox.mails.clear()
    sales = DeltaTable(str(Path(workspace.tables_root) / "gold" / "fact_sales")).to_pyarrow_table().to_pylist()
    (workspace.landing / "orders_2026_01_06.csv").write_text(
        "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at\n"
        "200,1,delivered,1,5000.00,USD,2026-01-06 09:00:00,2026-01-06 10:00:00\n")
    (workspace.landing / "order_items_2026_01_06.csv").write_text(  # a sale gold would show
        "order_item_id,order_id,product_id,status,sale_price,created_at,updated_at\n"
        "2000,200,10,delivered,5000.00,2026-01-06 09:00:00,2026-01-06 10:00:00\n")
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "no_big_orders.sql").write_text("-- severity: error\n-- description: no order of 1000 or more\n"
                                              "select order_id from silver.orders where order_amount >= 1000\n")
    workspace.checks = [checks]
    [batch] = api.run(workspace).batches
    assert batch.status == "failed" and "no_big_orders (1 rows)" in str(batch.error)
    assert DeltaTable(str(Path(workspace.tables_root) / "gold" / "fact_sales")).to_pyarrow_table().to_pylist() \
        == sales, "gold stays at the previous batch's rows"
    [(_, _, body)] = webhook.received
    assert (body["event"]["kind"], body["event"]["batch_id"]) == ("batch_failed", batch.batch_id)
    assert "no_big_orders (1 rows)" in body["text"]
    [(_, _, mail)] = mailbox.mails
    assert "no_big_orders (1 rows)" in mail["Subject"] and "business_date: 2026-01-06" in mail.get_content()


def test_a_channel_that_is_down_is_logged_and_the_pipeline_goes_on(workspace: Settings, mailbox: Mailbox,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    down = f"http://127.0.0.1:{free_port()}/services/{TOKEN}"
    monkeypatch.setenv(HOOK_ENV, down)
    workspace.alerts = channels(mailbox)
    landing_with_a_failing_batch(workspace)
    with caplog.at_level(logging.ERROR, logger="shoplake.events"):
        batch = api.run(workspace).batches[0]
    assert batch.status == "failed" and "returns_2026_01_05.csv" in str(batch.error)
    assert f"webhook ({HOOK_ENV}): the alert was not delivered" in caplog.text
    assert "Connection refused" in caplog.text
    assert TOKEN not in caplog.text, "the webhook URL holds a token and is never logged"
    assert len(mailbox.mails) == 1, "the channel that works still delivers"


def test_a_webhook_variable_that_holds_no_url_is_refused_without_echoing_it(
        workspace: Settings, webhook: Webhook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace.alerts = Alerts(webhook=WebhookAlerts(url_env=HOOK_ENV))
    for value in (f"hooks.example/{TOKEN}", f"ftp://hooks.example/{TOKEN}", f"https://hooks.example/a {TOKEN}"):
        monkeypatch.setenv(HOOK_ENV, value)
        with pytest.raises(ConfigError, match=f"{HOOK_ENV} does not hold an http") as raised:
            alert_notifiers(workspace, store(tmp_path))
        assert TOKEN not in str(raised.value)
    monkeypatch.setenv(HOOK_ENV, webhook.url + "\n")  # set from a file: the line break is not part of the URL
    alert_notifiers(workspace, store(tmp_path)).send(FAILED)
    assert [path for path, _, _ in webhook.received] == [f"/services/{TOKEN}"]


def test_an_unreachable_state_store_does_not_silence_alerts(workspace: Settings, webhook: Webhook, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    workspace.alerts = Alerts(webhook=WebhookAlerts(url_env=HOOK_ENV))
    gone = sa.create_engine(f"sqlite:///{tmp_path / 'no such folder' / 'state.db'}")
    with caplog.at_level(logging.WARNING, logger="shoplake.events"):
        alert_notifiers(workspace, gone).send(FAILED)
    assert len(webhook.received) == 1
    assert "webhook: the state store cannot tell when this alert was last sent" in caplog.text
