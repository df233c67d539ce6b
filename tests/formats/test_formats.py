"""Files in NDJSON, JSON, Parquet, XLSX, gzip and zip land in the same bronze, silver and quarantine as
the same rows in CSV; unreadable ones fail alone with a reason naming the file (and line)."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.landing.files import has_rows, match_feed
from shoplake.pipeline import RunReport, run
from tests.conftest import FIXTURES
from tests.formats import convert

MINI = FIXTURES / "mini"
FEEDS = ("customers", "products", "orders", "order_items")
LINEAGE = ("_source_file", "_batch_id", "_ingested_at")
_FILE_NAME = re.compile(r"(\w+_2026_01_05)\.[a-z.]+")

# The mini fixture's feeds, each in another format: (file name, converter).
Converter = Callable[[Path, Path], None]
AS_FORMATS: dict[str, tuple[str, Converter]] = {
    "customers": ("customers_2026_01_05.csv.gz", convert.to_gzip),
    "products": ("products_2026_01_05.xlsx", convert.to_xlsx),
    "orders": ("orders_2026_01_05.parquet", convert.to_parquet),
    "order_items": ("order_items_2026_01_05.ndjson", convert.to_ndjson),
}
AS_OTHER_FORMATS: dict[str, tuple[str, Converter]] = {
    "customers": ("customers_2026_01_05.csv.zip", convert.to_zip),
    "products": ("products_2026_01_05.json", convert.to_json_array),
    "orders": ("orders_2026_01_05.ndjson.gz", lambda s, t: convert.to_ndjson(s, t, gzipped=True)),
    "order_items": ("order_items_2026_01_05.jsonl", convert.to_ndjson),
}


def workspace_at(root: Path) -> Settings:
    (root / "landing").mkdir(parents=True)
    return Settings(landing=root / "landing", lake=root / "lake", archive=root / "archive", gold_models=[])


def land(settings: Settings, formats: dict[str, tuple[str, Converter]] | None) -> None:
    for feed in FEEDS:
        source = MINI / f"{feed}_2026_01_05.csv"
        if formats is None:
            shutil.copy(source, settings.landing / source.name)
        else:
            name, converter = formats[feed]
            converter(source, settings.landing / name)


def rows_of(settings: Settings, layer: str, feed: str) -> list[dict[str, Any]]:
    """A table's rows, sorted, without lineage columns, and file names in error texts without their extension."""
    location = Path(settings.tables_root) / layer / feed
    if not location.exists():
        return []
    table = DeltaTable(str(location)).to_pyarrow_table()
    rows: list[dict[str, Any]] = table.to_pylist()
    for row in rows:
        for name in LINEAGE:
            row.pop(name, None)
        if "_errors" in row:
            row["_errors"] = [_FILE_NAME.sub(r"\1", e) for e in row["_errors"]]
    return sorted(rows, key=lambda r: json.dumps(r, default=str, sort_keys=True))


def counts(report: RunReport) -> dict[str, tuple[str, int, int, int, int]]:
    return {f.feed or "": (f.status, f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate)
            for b in report.batches for f in b.files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Settings, RunReport]]:
    out = {}
    for name, formats in (("csv", None), ("formats", AS_FORMATS), ("other", AS_OTHER_FORMATS)):
        settings = workspace_at(tmp_path_factory.mktemp(name))
        land(settings, formats)
        out[name] = (settings, run(settings))
    return out


@pytest.mark.parametrize("variant", ["formats", "other"])
def test_other_formats_land_the_same_rows_as_csv(runs: dict[str, tuple[Settings, RunReport]], variant: str) -> None:
    csv_settings, csv_report = runs["csv"]
    settings, report = runs[variant]
    assert counts(report) == counts(csv_report)
    assert all(status == "loaded" for status, *_ in counts(report).values()), counts(report)
    for feed in FEEDS:
        for layer in ("bronze", "silver", "quarantine"):
            assert rows_of(settings, layer, feed) == rows_of(csv_settings, layer, feed), (layer, feed)
    # Row numbers are the same as the CSV's (the quarantine keeps them): the mini orders quarantine rows 4-6.
    quarantined = {r["_row_number"] for r in rows_of(settings, "quarantine", "orders")}
    assert quarantined == {r["_row_number"] for r in rows_of(csv_settings, "quarantine", "orders")}
    assert len(quarantined) == 3
    # Every file was archived under its own name, once.
    archived = sorted(p.name for p in (settings.archive_dir / "processed").rglob("*") if p.is_file())
    assert archived == sorted(name for name, _ in (AS_FORMATS if variant == "formats" else AS_OTHER_FORMATS).values())


def test_same_file_twice_is_loaded_once(runs: dict[str, tuple[Settings, RunReport]]) -> None:
    settings, _ = runs["formats"]
    name, converter = AS_FORMATS["orders"]
    converter(MINI / "orders_2026_01_05.csv", settings.landing / name)  # the same bytes again
    again = run(settings)
    assert not any(f.status == "loaded" for b in again.batches for f in b.files)
    assert len(rows_of(settings, "bronze", "orders")) == len(rows_of(runs["csv"][0], "bronze", "orders"))


def test_the_pack_recognises_each_format_by_its_name() -> None:
    contracts = load_contracts()
    expected = {
        "orders_2026_01_05.parquet": "orders",
        "events_2026_01_05.ndjson": "events",
        "customers_2026_01_05.csv.gz": "customers",
        "products_2026_01_05.xlsx": "products",
        "order_items_2026_01_05.csv.zip": "order_items",  # the most specific pattern still wins
        "shipping/part-0001.json": "shipping",
        "events/2026/x.ndjson": None,  # a folder pattern's `*` stays in its folder, as for CSV
        "orders_2026_01_05.parquet.gz": None,  # Parquet compresses inside
        "orders_2026_01_05.txt": None,
    }
    assert {name: match_feed(name, contracts) for name in expected} == expected


def test_a_declared_format_narrows_the_names(tmp_path: Path) -> None:
    folder = tmp_path / "contracts"
    folder.mkdir()
    declared = EVENTS_CONTRACT.replace("format: ndjson", "format: parquet").replace("events_*.ndjson", "events_*.csv")
    (folder / "events.yml").write_text(declared)
    contracts = load_contracts([folder])
    assert match_feed("events_2026_01_05.parquet", contracts) == "events"
    assert match_feed("events_2026_01_05.ndjson", contracts) is None


def test_has_rows_reads_through_gzip(tmp_path: Path) -> None:
    header_only, with_rows = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    header_only.write_bytes(gzip.compress(b"order_id,status\n"))
    with_rows.write_bytes(gzip.compress(b"order_id,status\n1,new\n"))
    assert (has_rows(header_only), has_rows(with_rows)) == (False, True)


EVENTS_CONTRACT = """
feed: events
files: ["events_*.ndjson"]
format: ndjson
primary_key: [event_id]
columns:
  event_id: {type: string, required: true}
  session_id: {type: string, source: session.id}
  customer_id: {type: integer}
  event_type: {type: string, required: true, case: lower}
  event_at: {type: timestamp, required: true}
  page_url: {type: string, source: context.page.url}
  device: {type: string, source: context.device, case: lower}
"""


def test_nested_json_fields_by_path_and_the_rest_rescued(workspace: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "contracts"
    folder.mkdir()
    (folder / "events.yml").write_text(EVENTS_CONTRACT)
    workspace.contracts, workspace.gold_models = [folder], []
    records = [  # ` customer_id `: a key is matched as a header (trimmed), and read as the file spells it
        {"event_id": "e1", "session": {"id": "s1"}, " customer_id ": 7, "event_type": "page_view",
         "event_at": "2026-01-05 10:00:00", "context": {"device": "Mobile", "page": {"url": "/p/1"}},
         "campaign": {"name": "winter", "id": 3}},
        {"event_id": "e2", "session": {"id": "s1"}, " customer_id ": 7.0, "event_type": "PURCHASE",
         "event_at": "2026-01-05 10:05:00", "context": {"device": "desktop"}, "coupon": "X1"},
    ]
    (workspace.landing / "events_2026_01_05.ndjson").write_text(
        "\n".join(json.dumps(r) for r in records) + "\n\n")  # a blank last line is no record
    report = run(workspace)
    assert counts(report)["events"] == ("loaded", 2, 2, 0, 0)
    bronze = {r["event_id"]: r for r in rows_of(workspace, "bronze", "events")}
    assert {k: bronze["e1"][k] for k in ("session_id", "customer_id", "page_url", "device", "_row_number")} == {
        "session_id": "s1", "customer_id": "7", "page_url": "/p/1", "device": "Mobile", "_row_number": 1}
    assert (bronze["e2"]["page_url"], bronze["e2"]["customer_id"], bronze["e2"]["_row_number"]) == (None, "7.0", 2)
    # Fields no column reads are kept in _rescued (an object as its JSON text); `context` and `session`
    # are read through their paths, so they are not rescued.
    # A field only some records have is null in the others (as an extra CSV column is in every row).
    assert json.loads(bronze["e1"]["_rescued"]) == {"campaign": '{"name":"winter","id":3}', "coupon": None}
    assert json.loads(bronze["e2"]["_rescued"]) == {"campaign": None, "coupon": "X1"}
    silver = {r["event_id"]: r for r in rows_of(workspace, "silver", "events")}
    assert (silver["e1"]["device"], silver["e2"]["event_type"], silver["e2"]["customer_id"]) == (
        "mobile", "purchase", 7)


def test_typed_cells_of_a_workbook_read_as_a_csv_would_hold_them(workspace: Settings) -> None:
    workspace.gold_models = []
    convert.to_xlsx(MINI / "products_2026_01_05.csv", workspace.landing / "products_2026_01_05.xlsx", values=True)
    report = run(workspace)
    assert counts(report)["products"] == ("loaded", 3, 2, 1, 0)
    bronze = {r["product_id"]: r for r in rows_of(workspace, "bronze", "products")}
    assert set(bronze) == {"10", "11", "12"}  # whole numbers without a `.0`
    assert (bronze["10"]["cost"], bronze["10"]["retail_price"]) == ("10", "25")  # 10.00 typed as a number
    assert [bronze[k]["_row_number"] for k in ("10", "11", "12")] == [1, 2, 3]


def test_each_unreadable_file_fails_alone_naming_file_and_line(workspace: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "contracts"
    folder.mkdir()
    (folder / "events.yml").write_text(EVENTS_CONTRACT)
    products = (Path(__file__).parents[2] / "src/shoplake/contracts/pack/products.yml").read_text()
    (folder / "products.yml").write_text(products + "\nsheet: Products\n")
    workspace.contracts, workspace.gold_models = [folder], []
    landing = workspace.landing
    (landing / "orders_2026_01_05.parquet").write_bytes(b"PAR1 not really parquet")
    full = gzip.compress((MINI / "customers_2026_01_05.csv").read_bytes())
    (landing / "customers_2026_01_05.csv.gz").write_bytes(full[: len(full) // 2])
    convert.to_xlsx(MINI / "products_2026_01_05.csv", landing / "products_2026_01_05.xlsx", sheet="Export")
    (landing / "events_2026_01_05.ndjson").write_text(
        '{"event_id": "e1", "event_type": "page_view", "event_at": "2026-01-05 10:00:00"}\n{"event_id": "e2", oops}\n')
    convert.to_ndjson(MINI / "order_items_2026_01_05.csv", landing / "order_items_2026_01_05.ndjson")
    report = run(workspace)
    errors = {f.feed: f.error for b in report.batches for f in b.files}
    assert counts(report)["order_items"][:2] == ("loaded", 5), errors
    assert sum(counts(report)["order_items"][2:]) == 5  # every row read is loaded or quarantined
    assert {feed for feed, (status, *_) in counts(report).items() if status == "failed"} == {
        "orders", "customers", "products", "events"}
    assert f"{landing / 'orders_2026_01_05.parquet'}: not a readable Parquet file" in str(errors["orders"])
    assert "truncated or corrupt gzip" in str(errors["customers"])
    assert str(landing / "customers_2026_01_05.csv.gz") in str(errors["customers"])
    assert "no sheet 'Products' (its sheets: Export)" in str(errors["products"])
    assert f"{landing / 'events_2026_01_05.ndjson'}: line 2 is not valid JSON" in str(errors["events"])
    failed = sorted(p.name for p in (workspace.archive_dir / "failed").rglob("*") if p.is_file())
    assert failed == sorted(["orders_2026_01_05.parquet", "customers_2026_01_05.csv.gz",
                             "products_2026_01_05.xlsx", "events_2026_01_05.ndjson"])


def test_a_record_that_is_not_an_object_rejects_its_file(workspace: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "contracts"
    folder.mkdir()
    (folder / "events.yml").write_text(EVENTS_CONTRACT)
    workspace.contracts, workspace.gold_models = [folder], []
    (workspace.landing / "events_2026_01_05.ndjson").write_text('{"event_id": "e1"}\n[1, 2]\n')
    (workspace.landing / "events_2026_01_06.ndjson").write_text("\n")
    report = run(workspace)
    errors = {f.file: str(f.error) for b in report.batches for f in b.files}
    assert "record 2 is a JSON array, not an object" in errors["events_2026_01_05.ndjson"]
    assert "no fields: the ndjson file holds no records" in errors["events_2026_01_06.ndjson"]


def test_an_archive_of_two_files_and_a_broken_json_array_are_rejected(workspace: Settings) -> None:
    workspace.gold_models = []
    with zipfile.ZipFile(workspace.landing / "customers_2026_01_05.csv.zip", "w") as archive:
        archive.write(MINI / "customers_2026_01_05.csv", "a.csv")
        archive.write(MINI / "customers_2026_01_05.csv", "b.csv")
    (workspace.landing / "products_2026_01_05.json").write_text('[\n  {"product_id": "10"},\n  {"product_id": }\n]\n')
    report = run(workspace)
    errors = {f.feed: str(f.error) for b in report.batches for f in b.files}
    assert "the zip archive holds 2 files (a.csv, b.csv)" in errors["customers"]
    assert "products_2026_01_05.json: not valid JSON (Expecting value at line 3, column 18)" in errors["products"]
