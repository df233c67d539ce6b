"""Files of the other formats in a remote landing (S3): downloaded to the local cache under their own names,
read there, archived on S3 (a real S3-compatible server: tests/s3server.py)."""

from __future__ import annotations

from pathlib import Path

from shoplake.config import Settings
from shoplake.pipeline import run
from tests.formats.test_formats import AS_FORMATS, FEEDS, MINI, counts
from tests.s3server import BUCKET, keys, s3  # noqa: F401  (the module's S3 server)


def test_formats_from_an_s3_landing(s3: object, tmp_path: Path) -> None:  # noqa: F811
    local = tmp_path / "made"
    local.mkdir()
    for feed in FEEDS:
        name, converter = AS_FORMATS[feed]
        converter(MINI / f"{feed}_2026_01_05.csv", local / name)
        s3.upload_file(str(local / name), BUCKET, f"formats/landing/{name}")  # type: ignore[attr-defined]
    settings = Settings(landing=f"s3://{BUCKET}/formats/landing", lake=tmp_path / "lake",
                        archive=f"s3://{BUCKET}/formats/archive", work_dir=tmp_path / "work", gold_models=[])
    report = run(settings)
    assert counts(report) == {
        "customers": ("loaded", 3, 2, 1, 0), "products": ("loaded", 3, 2, 1, 0),
        "orders": ("loaded", 6, 2, 3, 1), "order_items": ("loaded", 5, 3, 2, 0)}  # as the CSVs (tests/test_pipeline.py)
    assert keys(s3, "formats/landing/") == []
    archived = [k for k in keys(s3, "formats/archive/") if k.startswith("processed/")]
    assert archived == sorted(f"processed/2026-01-05/{name}" for name, _ in AS_FORMATS.values())
