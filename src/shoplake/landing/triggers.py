"""Trigger files: a date's batch starts when one arrives; it may list the files (and row counts) it expects.

A trigger file comes from outside, so it is read defensively: at most `MAX_TRIGGER_BYTES`, parsed and
validated by a typed model (pydantic's JSON parser bounds nesting and number sizes), and anything wrong
with it is a `BatchFailed` naming the file: only that date's batch fails, other dates keep loading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shoplake.errors import BatchFailed

MAX_TRIGGER_BYTES = 1 << 20  # a listing of ~15,000 files with counts; a trigger is a note, not data
MAX_ROWS = 2**63 - 1  # the most rows the ledger can count
FORMS = ('write {} (run the date), {"files": ["<file>", ...]} or '
         '{"files": [{"name": "<file>", "rows": <count>}, ...]}, then `shoplake reprocess --failed`')


class TriggerEntry(BaseModel):
    """One file the trigger promises; with `rows`, the batch fails unless the file has that many rows."""

    # strict: `true` is not a count and 12.0 is not either; an unknown key (`row`) would silently drop a check
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=1024)]
    rows: Annotated[int, Field(ge=0, le=MAX_ROWS)] | None = None


class Trigger(BaseModel):
    """A trigger file's content; keys other than `files` (a sender's metadata) are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    files: list[TriggerEntry] = []

    @field_validator("files", mode="before")
    @classmethod
    def _one_form(cls, value: Any) -> Any:
        """The three accepted spellings as one list of entries: a name alone, or a name -> count mapping."""
        if isinstance(value, dict):
            return [{"name": name, "rows": rows} for name, rows in value.items()]
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value


def read_trigger(path: Path, name: str) -> dict[str, int | None]:
    """The files a trigger file lists, with their row counts when given; BatchFailed if it cannot be read.

    Accepted forms: `{}` or an empty file (no list: run the date's batch), `{"files": ["orders_2026_01_05.csv",
    ...]}`, `{"files": [{"name": "orders_2026_01_05.csv", "rows": 1200}, ...]}` or `{"files": {"<name>": 1200}}`.
    """
    with path.open("rb") as handle:
        data = handle.read(MAX_TRIGGER_BYTES + 1)
    if len(data) > MAX_TRIGGER_BYTES:
        raise BatchFailed(f"{name}: trigger file is larger than {MAX_TRIGGER_BYTES >> 20} MiB", hint=FORMS)
    data = data.removeprefix(b"\xef\xbb\xbf").strip()  # a byte-order mark some Windows tools write
    try:
        trigger = Trigger.model_validate_json(data) if data else Trigger()
    except ValidationError as error:
        raise BatchFailed(f"{name}: trigger file is not valid: {_first_problem(error)}", hint=FORMS) from None
    found: dict[str, int | None] = {}
    for entry in trigger.files:
        earlier = found.get(entry.name)
        if earlier is not None and entry.rows is not None and earlier != entry.rows:
            raise BatchFailed(f"{name}: trigger file lists {entry.name!r} twice with different row counts "
                              f"({earlier} and {entry.rows})", hint=FORMS)
        found[entry.name] = earlier if entry.rows is None else entry.rows
    return found


def is_whole(data: bytes) -> bool:
    """Whether a trigger file's bytes are one whole JSON object, so that it needs no settling: a sender
    writing it in place has not finished while its closing brace is missing (no strict prefix of a JSON
    object parses as one). An empty file (`run the date` too) could be a file just created: it settles."""
    if not data or len(data) > MAX_TRIGGER_BYTES:
        return False
    try:
        value = json.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except ValueError:  # not JSON yet (or never: it settles, then fails its batch with the reason)
        return False
    return isinstance(value, dict)


def _first_problem(error: ValidationError) -> str:
    """The first problem pydantic found, on one line and short, whatever the file held."""
    first = error.errors(include_url=False)[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    more = error.error_count() - 1
    text = f"{where}: {first['msg']}" if where else first["msg"]
    given = first.get("input")
    if first["type"] != "json_invalid" and (given is None or isinstance(given, bool | int | float | str)):
        shown = json.dumps(given)
        text += f" (got {shown if len(shown) <= 40 else shown[:39] + '…'})"
    if more:
        text += f" (and {more} more problem(s))"
    return text.replace("\n", " ")[:300]
