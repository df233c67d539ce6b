"""The whole flow on an S3-compatible store: landing, archive and Delta tables in a bucket.

The store is moto's standalone server, started here as a real HTTP server in its own process; boto3
and delta-rs reach it through the standard AWS_* environment variables, as they would reach AWS.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.pipeline import run
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration

BUCKET = "shop-data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A running S3-compatible server and a client for it; fails (never skips) when it cannot start."""
    import boto3

    port = free_port()
    log = tmp_path_factory.mktemp("s3") / "server.log"  # a file, not a pipe: a full pipe would stall the server
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=log.open("w"))
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                             "AWS_REGION", "AWS_ALLOW_HTTP", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                      AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1", AWS_ALLOW_HTTP="true")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the S3 server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client
    finally:
        server.terminate()
        server.wait(timeout=30)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def keys(client: object, prefix: str) -> list[str]:
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)  # type: ignore[attr-defined]
    return sorted(item["Key"][len(prefix):] for item in listing.get("Contents", []))


def test_landing_archive_and_lake_on_s3(s3: object, tmp_path: Path) -> None:
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
