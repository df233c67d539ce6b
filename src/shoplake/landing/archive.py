"""Moving handled files out of the landing folder: processed/<date>/ or failed/<date>/."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path


def archive_file(path: Path, archive: Path, outcome: str, business_date: date, batch_id: str | None) -> Path:
    """Move a file to <archive>/<outcome>/<date>/, never overwriting an earlier file of the same name."""
    folder = archive / outcome / business_date.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        target = folder / f"{path.stem}.{batch_id or 'dup'}{path.suffix}"
        n = 1
        while target.exists():
            target = folder / f"{path.stem}.{batch_id or 'dup'}.{n}{path.suffix}"
            n += 1
    shutil.move(str(path), str(target))
    return target
