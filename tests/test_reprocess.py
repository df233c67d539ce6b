"""Reprocessing archived files and replaying the quarantine, after a contract or data fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.errors import ShoplakeError
from shoplake.landing.ledger import Ledger
from shoplake.pipeline import run
from shoplake.reprocess import SUPERSEDED, replay_quarantine, reprocess
from tests.conftest import FIXTURES, copy_fixture
from tests.test_pipeline import table

PACK = Path(__file__).parents[1] / "src/shoplake/contracts/pack"


def override_orders(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "contracts"
    folder.mkdir(exist_ok=True)
    text = (PACK / "orders.yml").read_text()
    assert old in text
    (folder / "orders.yml").write_text(text.replace(old, new))
    return folder


def counts(settings: Settings) -> dict[str, int]:
    return {f"{layer}.{feed}": len(table(settings, layer, feed))
            for layer in ("bronze", "silver", "quarantine") for feed in ("orders", "order_items", "customers")}


def test_reprocessing_a_loaded_batch_replaces_its_rows(on_engine: Settings) -> None:
    copy_fixture("mini", on_engine.landing)
    first = run(on_engine).batches[0]
    before = counts(on_engine)
    again = reprocess(on_engine, batch=first.batch_id)
    assert [b.status for b in again.batches] == ["succeeded"]
    assert counts(on_engine) == before, "rows are replaced, not added"
    assert {r[-2] for r in table(on_engine, "bronze", "orders")} == {again.batches[0].batch_id}
    ledger = Ledger(on_engine.state_db_url)
    try:
        rows = ledger.file_rows()
        assert sorted(r.status for r in rows if r.batch_id == first.batch_id) == [SUPERSEDED] * 5
        assert sorted(r.status for r in rows if r.batch_id == again.batches[0].batch_id) == ["failed"] + ["loaded"] * 4
        assert ledger.batch(again.batches[0].batch_id)["replaces"] == first.batch_id  # type: ignore[index]
    finally:
        ledger.close()
    loaded = [p for p in (FIXTURES / "mini").iterdir() if not p.name.startswith("shipping")]
    assert sorted(p.name for p in (on_engine.archive_dir / "processed" / "2026-01-05").iterdir()) == sorted(
        p.name for p in loaded), "each file went back to landing and into the archive again: one copy"


def test_failed_files_load_after_the_contract_is_fixed(workspace: Settings, tmp_path: Path) -> None:
    workspace.contracts = [override_orders(
        tmp_path, "    message: created_at lies in the future",
        "    message: created_at lies in the future\n    severity: fail_batch")]
    copy_fixture("mini", workspace.landing)
    assert run(workspace).batches[0].status == "failed"
    assert table(workspace, "silver", "orders") == []
    workspace.contracts = []  # the fix: the rule quarantines again
    again = reprocess(workspace, failed=True)
    assert [b.status for b in again.batches] == ["succeeded"]
    assert {f.file: f.status for f in again.batches[0].files} == {
        p.name: "failed" if p.name.startswith("shipping") else "loaded" for p in (FIXTURES / "mini").iterdir()}
    assert len(table(workspace, "silver", "orders")) == 2  # as in test_pipeline: 3 quarantined, 1 duplicate
    still = reprocess(workspace, failed=True)  # only the binary shipping file is left in failed/
    assert [(f.file, f.status) for b in still.batches for f in b.files] == [("shipping_2026_01_05.csv", "failed")]
    with pytest.raises(ShoplakeError, match="no batch nope"):
        reprocess(workspace, batch="nope")


def test_one_file_can_be_reprocessed_alone(workspace: Settings) -> None:
    copy_fixture("mini", workspace.landing)
    run(workspace)
    before = counts(workspace)
    again = reprocess(workspace, file="orders_2026_01_05.csv")
    assert [f.file for f in again.batches[0].files] == ["orders_2026_01_05.csv"]
    assert counts(workspace) == before


def test_quarantine_replay_moves_rows_that_pass_now(workspace: Settings, tmp_path: Path) -> None:
    workspace.contracts = [override_orders(
        tmp_path, "rules:\n", "rules:\n  - name: small_orders_only\n    expr: order_amount < 30\n")]
    copy_fixture("mini", workspace.landing)
    run(workspace)
    quarantined = {r[0]: r for r in table(workspace, "quarantine", "orders")}
    assert set(quarantined) == {"100", "101", "102", "104"}  # 101: its customer 2 is quarantined
    # The fix: the rule goes, and the customer order 102 referenced arrives.
    workspace.contracts = []
    (workspace.landing / "customers_2026_01_06.csv").write_text(
        "customer_id,first_name,last_name,email,phone,birth_date,city,country,segment,lifecycle_stage,created_at,updated_at\n"
        "99,Zoe,Late,zoe@example.com,,1990-01-01,Lima,PE,consumer,new,2026-01-06 08:00:00,2026-01-06 08:00:00\n")
    run(workspace)
    replayed = replay_quarantine(workspace, "orders")
    batch = replayed.batches[0]
    assert batch.status == "succeeded"
    assert (sum(f.rows_loaded for f in batch.files), sum(f.rows_quarantined for f in batch.files)) == (2, 2)
    assert sorted(r[0] for r in table(workspace, "silver", "orders")) == [100, 102, 103]
    left = {r[0]: r for r in table(workspace, "quarantine", "orders")}
    assert sorted(left) == ["101", "104"]
    assert "small_orders_only" not in str(left["104"]), "reasons are the current contract's"
    assert left["104"][-2] == ["status.accepted_values", "created_not_in_future"]
    assert left["101"][-2] == ["customer_id.references"]
    assert left["104"][-5] == 6 and left["104"][-4] == quarantined["104"][-4], "file and row number are kept"
    assert replay_quarantine(workspace, "orders").batches[0].files[0].rows_loaded == 0


def test_replay_of_an_unknown_feed_is_a_usage_error(workspace: Settings) -> None:
    with pytest.raises(ShoplakeError, match="unknown feed 'nope'"):
        replay_quarantine(workspace, "nope")
