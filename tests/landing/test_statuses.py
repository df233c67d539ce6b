"""Ledger statuses are defined once (landing/ledger.py): every status a real run, a duplicate and a
reprocess leave in the state store is one of those names, and the README lists exactly them."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

from shoplake.config import Settings
from shoplake.landing.ledger import BATCH_STATUSES, DUPLICATE, FAILED, FILE_STATUSES, LOADED, REPROCESSED, SUCCEEDED
from shoplake.pipeline import run
from shoplake.reprocess import reprocess
from tests.conftest import FIXTURES, copy_fixture

README = Path(__file__).parents[2] / "README.md"


def statuses(settings: Settings, table: str) -> set[str]:
    with sqlite3.connect(settings.lake / "_state" / "shoplake.db") as conn:
        return {status for (status,) in conn.execute(f"SELECT DISTINCT status FROM {table}")}


def test_every_status_in_the_ledger_is_one_defined_in_ledger_py(workspace: Settings) -> None:
    copy_fixture("mini", workspace.landing)  # its shipping file is binary: a failed file
    run(workspace)
    shutil.copy(FIXTURES / "mini" / "products_2026_01_05.csv", workspace.landing / "products_2026_01_05.csv")
    run(workspace)  # the same content again: a duplicate
    reprocess(workspace, file="orders_2026_01_05.csv")  # its first ledger row becomes reprocessed
    files, batches = statuses(workspace, "files"), statuses(workspace, "batches")
    assert files == {LOADED, FAILED, DUPLICATE, REPROCESSED}
    assert files <= set(FILE_STATUSES)
    assert batches == {SUCCEEDED} and batches <= set(BATCH_STATUSES)


def test_the_readme_lists_the_statuses_ledger_py_defines() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    files = re.search(r"date, status `([a-z_ |]+)`", text)
    batches = re.search(r"`batches` \(status `([a-z_ |]+)`", text)
    assert files and batches, "the README's Storage section lists file and batch statuses"
    assert tuple(files.group(1).split(" | ")) == FILE_STATUSES
    assert tuple(batches.group(1).split(" | ")) == BATCH_STATUSES
