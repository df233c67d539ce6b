"""Trigger files: the forms a sender may write, and hostile ones failing only their own date's batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.errors import BatchFailed
from shoplake.landing.triggers import MAX_TRIGGER_BYTES, read_trigger
from shoplake.pipeline import run
from tests.conftest import copy_fixture

NAME = "landing/trigger_2026_01_04.json"


def read(tmp_path: Path, content: str | bytes) -> dict[str, int | None]:
    path = tmp_path / "trigger_2026_01_04.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return read_trigger(path, NAME)


@pytest.mark.parametrize(("content", "listed"), [
    ("", {}),
    ("{}", {}),
    ('{"files": ["a.csv", "b.csv"]}', {"a.csv": None, "b.csv": None}),
    ('{"files": [{"name": "a.csv", "rows": 12}, "b.csv"]}', {"a.csv": 12, "b.csv": None}),
    ('{"files": {"a.csv": 0, "b.csv": null}}', {"a.csv": 0, "b.csv": None}),
    ('{"files": ["a.csv", {"name": "a.csv", "rows": 3}], "sent_at": "2026-01-04T23:00:00Z"}', {"a.csv": 3}),
    (b'\xef\xbb\xbf{"files": ["a.csv"]}', {"a.csv": None}),
])
def test_the_accepted_forms(tmp_path: Path, content: str | bytes, listed: dict[str, int | None]) -> None:
    assert read(tmp_path, content) == listed


HOSTILE = {
    "nested 100,000 deep": ('{"files": ' + "[" * 100_000 + "]" * 100_000 + "}", "recursion limit exceeded"),
    "a 5,000-digit count": ('{"files": [{"name": "a.csv", "rows": ' + "9" * 5000 + "}]}", "number out of range"),
    "rows true": ('{"files": [{"name": "a.csv", "rows": true}]}', "files[0].rows: Input should be a valid integer"),
    "rows true in a mapping": ('{"files": {"a.csv": true}}', "files[0].rows: Input should be a valid integer"),
    "rows 12.0": ('{"files": [{"name": "a.csv", "rows": 12.0}]}', "files[0].rows: Input should be a valid integer"),
    "negative rows": ('{"files": [{"name": "a.csv", "rows": -1}]}', "greater than or equal to 0"),
    "rows past the ledger's counter": ('{"files": [{"name": "a.csv", "rows": 9223372036854775808}]}',
                                       "less than or equal to 9223372036854775807"),
    "a misspelt key": ('{"files": [{"name": "a.csv", "row": 12}]}', "files[0].row: Extra inputs are not permitted"),
    "not an object": ("[]", "Input should be an object"),
    "files null": ('{"files": null}', "files: Input should be a valid array"),
    "a number as a name": ('{"files": [3]}', "files[0]: Input should be an object"),
    "two counts for one file": ('{"files": [{"name": "a.csv", "rows": 1}, {"name": "a.csv", "rows": 2}]}',
                                "lists 'a.csv' twice with different row counts (1 and 2)"),
    "not UTF-8": (b"\xff\xfe{", "Invalid JSON"),
    "too large": (" " * (MAX_TRIGGER_BYTES + 1), "larger than 1 MiB"),
}


@pytest.mark.parametrize(("content", "problem"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_trigger_is_one_line_naming_the_file(tmp_path: Path, content: str | bytes, problem: str) -> None:
    with pytest.raises(BatchFailed) as raised:
        read(tmp_path, content)
    message = raised.value.message
    assert message.startswith(f"{NAME}: trigger file ") and problem in message, message
    assert "\n" not in message and len(message) < 400
    assert raised.value.hint is not None and "shoplake reprocess --failed" in raised.value.hint


@pytest.mark.parametrize("hostile", ["nested 100,000 deep", "a 5,000-digit count", "rows true"])
def test_a_hostile_trigger_fails_its_own_date_and_the_next_date_loads(workspace: Settings, hostile: str) -> None:
    content, problem = HOSTILE[hostile]
    copy_fixture("mini", workspace.landing)  # 2026-01-05
    (workspace.landing / "shipping_2026_01_05.csv").unlink()  # binary: it would fail its file
    (workspace.landing / "trigger_2026_01_04.json").write_text(content)
    report = run(workspace)
    by_date = {str(b.business_date): b for b in report.batches}
    assert sorted(by_date) == ["2026-01-04", "2026-01-05"]
    assert by_date["2026-01-04"].status == "failed"
    assert "trigger_2026_01_04.json: trigger file is not valid" in str(by_date["2026-01-04"].error)
    assert problem in str(by_date["2026-01-04"].error)
    assert by_date["2026-01-05"].status == "succeeded", by_date["2026-01-05"].error
    assert (workspace.archive_dir / "failed" / "2026-01-04" / "trigger_2026_01_04.json").exists()
    assert run(workspace).batches == [], "a later run has nothing left to fail on"
