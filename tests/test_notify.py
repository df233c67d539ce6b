"""Alert hooks: failed batches, failed files and duplicate files reach every notifier."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from shoplake import api
from shoplake.config import Settings
from shoplake.notify import BATCH_FAILED, FILE_DUPLICATE, FILE_FAILED, Event, LogNotifier
from tests.conftest import FIXTURES, copy_fixture


class Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def send(self, event: Event) -> None:
        self.events.append(event)


class Broken:
    def send(self, event: Event) -> None:
        raise RuntimeError("the chat service is down")


def test_failures_and_duplicates_are_emitted(workspace: Settings, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    seen = Collect()
    copy_fixture("mini", workspace.landing)
    with caplog.at_level(logging.WARNING, logger="shoplake.events"):
        api.run(workspace, notifiers=[Broken(), seen, LogNotifier()])
    assert [(e.kind, Path(str(e.file)).name) for e in seen.events] == [(FILE_FAILED, "shipping_2026_01_05.csv")]
    assert "binary" in seen.events[0].message and seen.events[0].batch_id
    assert "file_failed" in caplog.text and "notifier" in caplog.text, "a broken notifier is logged, not fatal"

    shutil.copy(FIXTURES / "mini" / "orders_2026_01_05.csv", workspace.landing / "orders_again_2026_01_05.csv")
    pack = Path(__file__).parents[1] / "src/shoplake/contracts/pack/orders.yml"
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "orders.yml").write_text(pack.read_text().replace(
        "    message: created_at lies in the future", "    message: created_at lies in the future\n"
        "    severity: fail_batch"))
    (workspace.landing / "orders_2026_01_06.csv").write_text(
        "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at\n"
        "500,1,delivered,1,10.00,USD,2099-01-06 09:00:00,2026-01-06 10:00:00\n")
    workspace.contracts = [contracts]
    seen.events.clear()
    api.run(workspace, notifiers=[seen])
    kinds = [(e.kind, Path(str(e.file)).name if e.file else None) for e in seen.events]
    assert kinds == [(FILE_DUPLICATE, "orders_again_2026_01_05.csv"), (BATCH_FAILED, None)]
    assert "created_not_in_future" in seen.events[1].message
    assert seen.events[1].details == {"business_date": "2026-01-06"}
