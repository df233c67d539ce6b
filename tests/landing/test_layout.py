"""Drops laid out in feed folders (`raw-data/order-items/part-0000.csv`): recognised, dated and archived."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shoplake.config import Settings, load_settings
from shoplake.errors import ConfigError
from shoplake.landing.files import business_date
from shoplake.landing.ledger import Ledger
from shoplake.pipeline import run
from tests.conftest import FIXTURES

FOLDERS = {"customers": "customers", "products": "Products", "orders": "orders", "order_items": "order-items"}
LONG_AGO = datetime(2001, 2, 3, 12, tzinfo=UTC).timestamp()


def aws_drop(root: Path, stem: str = "part-0000") -> None:
    """The mini fixture as an AWS-style export: one folder per feed, the same file name in each."""
    for feed, folder in FOLDERS.items():
        target = root / "raw-data" / folder / f"{stem}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((FIXTURES / "mini" / f"{feed}_2026_01_05.csv").read_bytes())
        os.utime(target, (LONG_AGO, LONG_AGO))  # a copy's modification time says nothing of its arrival


def detected(settings: Settings) -> dict[str, datetime]:
    ledger = Ledger(settings.state_db_url)
    try:
        return {r["relative"]: r["detected_at"] for r in ledger.files_where()}
    finally:
        ledger.close()


def test_feed_folders_load_with_the_built_in_pack_and_keep_their_folder_in_the_archive(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    aws_drop(drop)
    # Far east of UTC: for 14 hours of every day the shop's date is not UTC's.
    settings = Settings(landing=drop, lake=tmp_path / "lake", archive=tmp_path / "archive",
                        timezone="Pacific/Kiritimati")
    report = run(settings)

    assert [b.status for b in report.batches] == ["succeeded"]
    assert report.unrecognised == []
    files = {f.file: f for f in report.batches[0].files}
    assert {name: f.feed for name, f in files.items()} == {
        f"raw-data/{folder}/part-0000.csv": feed for feed, folder in FOLDERS.items()}
    assert {name: (f.rows_read, f.rows_loaded) for name, f in files.items()} == {
        "raw-data/customers/part-0000.csv": (3, 2), "raw-data/Products/part-0000.csv": (3, 2),
        "raw-data/orders/part-0000.csv": (6, 2), "raw-data/order-items/part-0000.csv": (5, 3)}

    # No date in the names: the business date is the shop-local day shoplake first saw the files.
    arrived = detected(settings)["raw-data/orders/part-0000.csv"]
    local_day = arrived.replace(tzinfo=UTC).astimezone(ZoneInfo("Pacific/Kiritimati")).date()
    assert report.batches[0].business_date == local_day
    archived = settings.archive_dir / "processed" / local_day.isoformat()  # type: ignore[operator]
    for feed, folder in FOLDERS.items():
        name = f"raw-data/{folder}/part-0000.csv"
        target = archived / folder / "part-0000.csv"
        assert files[name].archived_to == str(target), "the feed folder is kept, the file keeps its name"
        assert target.read_bytes() == (FIXTURES / "mini" / f"{feed}_2026_01_05.csv").read_bytes()


def test_the_same_name_archived_by_two_batches_of_a_day_is_never_overwritten(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    settings = Settings(landing=drop, lake=tmp_path / "lake", archive=tmp_path / "archive")
    orders = drop / "orders" / "export.csv"
    orders.parent.mkdir(parents=True)
    header = (FIXTURES / "mini" / "orders_2026_01_05.csv").read_text().splitlines()[0]
    first = f"{header}\n300,1,delivered,1,10.00,USD,2026-01-05 09:00:00,2026-01-05 10:00:00\n"
    second = f"{header}\n301,1,delivered,1,11.00,USD,2026-01-06 09:00:00,2026-01-06 10:00:00\n"
    orders.write_text(first)
    one = run(settings).batches[0]
    orders.write_text(second)  # the export's next delivery, under the same name
    two = run(settings).batches[0]
    assert one.business_date == two.business_date
    paths = [Path(str(b.files[0].archived_to)) for b in (one, two)]
    folder = settings.archive_dir / "processed" / one.business_date.isoformat() / "orders"  # type: ignore[operator]
    assert paths == [folder / "export.csv", folder / f"export.{two.batch_id}.csv"]
    assert [p.read_text() for p in paths] == [first, second]


def test_an_undated_name_takes_the_arrival_day_in_the_shop_time_zone() -> None:
    evening_utc = datetime(2026, 1, 5, 20, 30, tzinfo=UTC)
    assert business_date("orders/export.csv", evening_utc, "UTC") == date(2026, 1, 5)
    assert business_date("orders/export.csv", evening_utc, "Asia/Tokyo") == date(2026, 1, 6)
    assert business_date("orders/export.csv", evening_utc.replace(tzinfo=None), "America/Lima") == date(2026, 1, 5)
    assert business_date("orders/orders_2026_01_02.csv", evening_utc, "Asia/Tokyo") == date(2026, 1, 2)


def test_an_unknown_time_zone_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "shoplake.yml").write_text("timezone: Europe/Atlantis\n")
    with pytest.raises(ConfigError, match=r"timezone: .*unknown time zone 'Europe/Atlantis'"):
        load_settings(tmp_path / "shoplake.yml")
