"""The whole flow on an S3-compatible store: landing, archive and Delta tables in a bucket (tests/s3server.py's
local server, reached through the standard AWS_* environment variables as AWS would be)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.pipeline import run
from tests.conftest import FIXTURES
from tests.s3server import BUCKET, keys, s3  # noqa: F401  (the module's S3 server)

pytestmark = pytest.mark.integration


def test_landing_archive_and_lake_on_s3(s3: object, tmp_path: Path) -> None:  # noqa: F811
    from deltalake import DeltaTable

    for path in sorted((FIXTURES / "mini").iterdir()):
        s3.upload_file(str(path), BUCKET, f"shop/landing/{path.name}")  # type: ignore[attr-defined]
    s3.put_object(Bucket=BUCKET, Key="shop/landing/orders/late_2026_01_04.csv",  # type: ignore[attr-defined]
                  Body=b"order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at\n"
                       b"90,1,delivered,1,10.00,USD,2026-01-04 09:00:00,2026-01-04 10:00:00\n")
    settings = Settings(landing=f"s3://{BUCKET}/shop/landing", lake=f"s3://{BUCKET}/shop/lake",
                        work_dir=tmp_path / "work")
    assert settings.archive_dir == f"s3://{BUCKET}/shop/archive"
    report = run(settings)
    assert [b.status for b in report.batches] == ["succeeded", "succeeded"]
    files = {f.file: f for b in report.batches for f in b.files}
    assert (files["orders_2026_01_05.csv"].rows_read, files["orders_2026_01_05.csv"].rows_loaded) == (6, 2)
    assert files["shipping_2026_01_05.csv"].status == "failed"
    assert files["orders_2026_01_05.csv"].archived_to == f"s3://{BUCKET}/shop/archive/processed/2026-01-05/" \
        "orders_2026_01_05.csv"

    assert keys(s3, "shop/landing/") == [], "every file left the landing prefix (copied, then deleted)"
    archived = keys(s3, "shop/archive/")
    assert [k for k in archived if not k.startswith("validation-reports/")] == sorted(
        [f"processed/2026-01-05/{p.name}" for p in (FIXTURES / "mini").iterdir() if "shipping" not in p.name]
        + ["failed/2026-01-05/shipping_2026_01_05.csv", "processed/2026-01-04/orders/late_2026_01_04.csv"])
    # Each batch's validation report sits beside the archived files, on S3 too.
    assert [k for k in archived if k.startswith("validation-reports/")] == sorted(
        f"validation-reports/{b.batch_id}.json" for b in report.batches)
    orders = DeltaTable(f"s3://{BUCKET}/shop/lake/silver/orders").to_pyarrow_table()
    assert sorted(orders.column("order_id").to_pylist()) == [100, 103]
    quarantined = DeltaTable(f"s3://{BUCKET}/shop/lake/quarantine/orders").to_pyarrow_table().to_pylist()
    assert {r["order_id"]: r["_failed_rules"] for r in quarantined}["90"] == ["customer_id.references"], \
        "the 4 January batch ran first, before customer 1 arrived"
    assert DeltaTable(f"s3://{BUCKET}/shop/lake/gold/fact_sales").to_pyarrow_table().num_rows > 0
    history = DeltaTable(f"s3://{BUCKET}/shop/lake/silver/orders").history()
    assert {h.get("shoplake.batch_id") for h in history} == {b.batch_id for b in report.batches}
    assert (tmp_path / "work" / "_state" / "shoplake.db").exists(), "the state store stays local"

    # The same file again is a duplicate: archived under failed/, nothing loaded twice.
    s3.upload_file(str(FIXTURES / "mini" / "orders_2026_01_05.csv"), BUCKET,  # type: ignore[attr-defined]
                   "shop/landing/orders_2026_01_05.csv")
    again = run(settings)
    assert again.batches == [] and [f.status for f in again.skipped_duplicates] == ["duplicate"]
    assert "failed/2026-01-05/orders_2026_01_05.csv" in keys(s3, "shop/archive/")
    assert DeltaTable(f"s3://{BUCKET}/shop/lake/silver/orders").to_pyarrow_table().num_rows == 2
