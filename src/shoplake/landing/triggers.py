"""Trigger files: a date's batch starts when one arrives; it may list the files (and row counts) it expects."""

from __future__ import annotations

import json
from pathlib import Path

from shoplake.errors import BatchFailed


def read_trigger(path: Path, name: str) -> dict[str, int | None]:
    """The files a trigger file lists, with their row counts when given.

    Accepted forms: `{}` (no list: run the date's batch), `{"files": ["orders_2026_01_05.csv", ...]}`,
    `{"files": [{"name": "orders_2026_01_05.csv", "rows": 1200}, ...]}` or `{"files": {"<name>": 1200}}`.
    """
    try:
        text = path.read_text(encoding="utf-8").strip()
        content = json.loads(text) if text else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BatchFailed(f"{name}: trigger file is not valid JSON ({error})",
                          hint='write {"files": [{"name": "<file>", "rows": <count>}, ...]} or {}') from None
    listed = content.get("files", []) if isinstance(content, dict) else None
    found: dict[str, int | None] = {}
    if isinstance(listed, dict):
        listed = [{"name": k, "rows": v} for k, v in listed.items()]
    if not isinstance(listed, list):
        raise BatchFailed(f"{name}: trigger file must be a JSON object whose `files` is a list or a mapping")
    for item in listed:
        entry = {"name": item} if isinstance(item, str) else item
        rows = entry.get("rows") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not (
                rows is None or (isinstance(rows, int) and rows >= 0)):
            raise BatchFailed(f"{name}: cannot read the entry {item!r} (expected a file name and a row count >= 0)")
        found[entry["name"]] = rows
    return found
