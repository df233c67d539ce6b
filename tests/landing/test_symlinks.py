"""Links and other non-files in landing are refused: nothing of them is read, hashed or archived."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from shoplake.config import Settings
from shoplake.errors import FileRejected
from shoplake.landing.storage import LocalStore, S3Store
from shoplake.pipeline import run
from tests.conftest import FIXTURES, copy_fixture

SECRET = "secret-first-line-that-must-not-leak"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to landing: a secret and a good CSV that must not be read through links."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "passwd").write_text(f"{SECRET}\nsecond line\n")
    shutil.copy(FIXTURES / "mini" / "orders_2026_01_05.csv", folder / "orders_2026_01_06.csv")
    return folder


def hostile_links(landing: Path, outside: Path) -> dict[str, str]:
    """Each kind of entry that must be refused, by name, with a word its refusal must say."""
    (landing / "orders_2026_01_05.csv").symlink_to(outside / "passwd")  # like a link to /etc/passwd
    (landing / "orders_2026_01_06.csv").symlink_to(outside / "orders_2026_01_06.csv")  # a good CSV, elsewhere
    (landing / "orders_2026_01_07.csv").symlink_to("orders_2026_01_07.csv")  # itself
    (landing / "orders_2026_01_08.csv").symlink_to("gone.csv")  # dangling
    (landing / "orders").symlink_to(outside, target_is_directory=True)  # a folder elsewhere
    os.mkfifo(landing / "customers_2026_01_05.csv")  # reading it would block forever
    return {
        "orders_2026_01_05.csv": "outside the landing folder",
        "orders_2026_01_06.csv": "outside the landing folder",
        "orders_2026_01_07.csv": "does not exist or loops back",
        "orders_2026_01_08.csv": "does not exist or loops back",
        "orders": "symbolic link to the folder",
        "customers_2026_01_05.csv": "not a regular file",
    }


def test_links_and_special_files_are_refused_and_nothing_of_them_is_read(
        workspace: Settings, outside: Path, caplog: pytest.LogCaptureFixture) -> None:
    landing = workspace.landing
    assert isinstance(landing, Path)
    copy_fixture("mini", landing)
    for name in ("orders_2026_01_05.csv", "customers_2026_01_05.csv", "shipping_2026_01_05.csv"):
        (landing / name).unlink()
    refused = hostile_links(landing, outside)
    before = {p.name: os.readlink(p) if p.is_symlink() else None for p in landing.iterdir()}
    with caplog.at_level(logging.WARNING, logger="shoplake.landing"):
        report = run(workspace)
    loaded = sorted(f.file for b in report.batches for f in b.files)
    assert loaded == ["order_items_2026_01_05.csv", "products_2026_01_05.csv"]
    # Each refusal is one line naming the file, once per run.
    lines = [r.getMessage() for r in caplog.records if r.name == "shoplake.landing"]
    assert len(lines) == len(refused), lines
    for name, why in refused.items():
        line = next(line for line in lines if line.startswith(f"{landing / name}: "))
        assert why in line and "\n" not in line, line
    # Nothing of them reached the ledger or the archive; they wait in landing as they were.
    with sqlite3.connect(workspace.lake / "_state" / "shoplake.db") as db:
        relatives = {r for (r,) in db.execute("SELECT relative FROM files")}
    assert relatives.isdisjoint(refused), relatives
    assert SECRET.encode() not in (workspace.lake / "_state" / "shoplake.db").read_bytes()
    archived = [p for p in Path(workspace.archive_dir).rglob("*")]
    assert not any(p.is_symlink() for p in archived)
    assert {p.name for p in archived if p.is_file() and p.parent.name != "validation-reports"} == {
        "order_items_2026_01_05.csv", "products_2026_01_05.csv"}
    assert {p.name: os.readlink(p) if p.is_symlink() else None for p in landing.iterdir()} == {
        k: v for k, v in before.items() if k in refused}
    assert (outside / "passwd").read_text().startswith(SECRET), "the target is untouched"
    again = run(workspace)  # a later run: the same refusals, no crash, nothing loaded
    assert again.batches == []


def test_a_link_to_a_file_inside_landing_is_refused_too(tmp_path: Path) -> None:
    """The archive must hold the bytes that were loaded, and a link only points at them."""
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "export.dat").write_text("order_id\n1\n")
    (tmp_path / "orders_2026_01_05.csv").symlink_to("raw/export.dat")
    store = LocalStore(tmp_path)
    assert [e.relative for e in store.list()] == ["raw/export.dat"]
    [refusal] = store.refused
    assert refusal.relative == "orders_2026_01_05.csv"
    assert refusal.reason.startswith("symbolic link to raw/export.dat, not read"), refusal.reason


def test_a_file_reached_through_a_linked_folder_is_not_handed_out(tmp_path: Path, outside: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "orders").symlink_to(outside, target_is_directory=True)
    (landing / "link.csv").symlink_to(outside / "passwd")
    store = LocalStore(landing)
    assert store.list() == []
    for relative in ("orders/orders_2026_01_06.csv", "link.csv", "../elsewhere/passwd", "./link.csv"):
        assert store.stat(relative) is None and not store.exists(relative), relative
    with pytest.raises(FileRejected, match="reached through a symbolic link"):
        store.local_copy("orders/orders_2026_01_06.csv", tmp_path / "cache")
    with pytest.raises(FileRejected, match="outside the landing folder"):
        store.local_copy("link.csv", tmp_path / "cache")


def test_a_landing_folder_that_is_itself_a_link_is_read(tmp_path: Path) -> None:
    """Where landing lives is the user's choice; only links inside it are refused."""
    real = tmp_path / "disk" / "landing"
    real.mkdir(parents=True)
    (real / "orders_2026_01_05.csv").write_text("order_id\n1\n")
    (tmp_path / "landing").symlink_to(real, target_is_directory=True)
    store = LocalStore(tmp_path / "landing")
    assert [e.relative for e in store.list()] == ["orders_2026_01_05.csv"] and store.refused == []
    assert store.local_copy("orders_2026_01_05.csv", tmp_path / "cache").read_text() == "order_id\n1\n"


def test_hidden_links_are_neither_read_nor_reported(tmp_path: Path) -> None:
    (tmp_path / ".#orders_2026_01_05.csv").symlink_to("user@host.1234")  # an editor's lock
    store = LocalStore(tmp_path)
    assert store.list() == [] and store.refused == []


class FakeS3:
    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        return {"Contents": [{"Key": k, "Size": 1, "LastModified": datetime(2026, 1, 5)} for k in self.keys]}


def test_object_keys_that_climb_out_of_the_cache_are_refused() -> None:
    store = S3Store("s3://bucket/landing")
    store._client = FakeS3(["landing/orders_2026_01_05.csv", "landing/../../../etc/cron.d/x.csv",
                            "landing/a//b.csv", "landing/folder/"])
    assert [e.relative for e in store.list()] == ["orders_2026_01_05.csv"]
    assert sorted(r.relative for r in store.refused) == ["../../../etc/cron.d/x.csv", "a//b.csv"]


def test_the_cli_refuses_links_with_one_line_each_on_every_run(tmp_path: Path, outside: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (tmp_path / "shoplake.yml").write_text("landing: landing\nlake: lake\narchive: archive\n")
    (landing / "orders_2026_01_05.csv").symlink_to(outside / "passwd")
    (landing / "orders_2026_01_07.csv").symlink_to("orders_2026_01_07.csv")
    for _ in range(2):
        result = subprocess.run([sys.executable, "-m", "shoplake", "run"], cwd=tmp_path, capture_output=True,
                                text=True, env={**os.environ, "COLUMNS": "200"}, timeout=300)
        text = result.stdout + result.stderr
        assert result.returncode == 0, text
        assert "Traceback" not in text and SECRET not in text, text
        lines = [line for line in text.splitlines() if line.startswith("warning: ")]
        assert lines == [
            "warning: landing/orders_2026_01_05.csv: symbolic link to "
            f"{outside / 'passwd'} (outside the landing folder), not read; copy the file itself into landing or "
            "remove the link",
            "warning: landing/orders_2026_01_07.csv: symbolic link to orders_2026_01_07.csv, which does not exist "
            "or loops back, not read; remove the link",
        ], text
    assert SECRET.encode() not in (tmp_path / "lake" / "_state" / "shoplake.db").read_bytes()
