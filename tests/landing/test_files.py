from __future__ import annotations

from datetime import date
from pathlib import Path

from shoplake.contracts import load_contracts
from shoplake.landing.files import match_feed


def test_feeds_are_matched_by_the_most_specific_pattern() -> None:
    contracts = load_contracts()
    assert match_feed("order_items_2026_01_05.csv", contracts) == "order_items"
    assert match_feed("orders_2026_01_05.csv", contracts) == "orders"
    assert match_feed("orders/export-17.csv", contracts) == "orders"
    assert match_feed("refunds_2026_01_05.csv", contracts) is None


def test_scanning_dates_hashes_and_reports_what_it_leaves(tmp_path: Path) -> None:
    from shoplake.config import Settings
    from shoplake.pipeline import Session

    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / "2026").mkdir()
    (tmp_path / "orders_2026_01_06.csv").write_text("order_id\n1\n")
    (tmp_path / "orders" / "late_2026_01_05.csv").write_text("order_id\n2\n")
    (tmp_path / "orders" / "2026" / "orders_2026_01_04.csv").write_text("order_id\n3\n")
    (tmp_path / "trigger_2026_01_06.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / ".orders_2026_01_07.csv.part").write_text("order_id\n")
    with Session(Settings(landing=tmp_path, lake=tmp_path.parent / "lake")) as session:
        waiting = sorted(session.scan(), key=lambda w: (w.business_date, w.relative))
    assert [(f.relative, f.business_date) for f in waiting] == [
        ("orders/late_2026_01_05.csv", date(2026, 1, 5)),
        ("orders_2026_01_06.csv", date(2026, 1, 6)),
        ("trigger_2026_01_06.json", date(2026, 1, 6)),
    ]
    assert sorted(Path(p).name for p in session.report.unrecognised) == ["notes.txt", "orders_2026_01_04.csv"]
    assert len({f.sha256 for f in waiting}) == 3


def test_header_only_files_are_not_duplicates_of_each_other(tmp_path: Path) -> None:
    from shoplake.config import Settings
    from shoplake.pipeline import run

    landing = tmp_path / "landing"
    landing.mkdir()
    header = "tracking_number,order_id,carrier,status,shipped_at,promised_at,delivered_at,event_at\n"
    (landing / "shipping_2026_01_05.csv").write_text(header)
    (landing / "shipping_2026_01_06.csv").write_text(header)
    report = run(Settings(landing=landing, lake=tmp_path / "lake", archive=tmp_path / "archive"))
    assert report.skipped_duplicates == []
    assert [f.status for b in report.batches for f in b.files] == ["loaded", "loaded"]
