"""`shoplake maintain`: compaction, vacuum by retention, archived files past retention, on a real lake."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import Result
from deltalake import DeltaTable
from typer.testing import CliRunner

from shoplake import api
from shoplake.cli import app
from shoplake.config import Maintenance, Settings
from shoplake.engines import open_engine
from shoplake.errors import LakeBusy, LeaseLost
from shoplake.landing import ledger as L
from shoplake.pipeline import run
from shoplake.transaction import LOCK
from tests.conftest import ENGINES, copy_fixture

runner = CliRunner()
HEADER = "customer_id,first_name,last_name,email,phone,birth_date,city,country,segment,lifecycle_stage,created_at," \
         "updated_at\n"
CITIES = ["Lyon", "Nice", "Lille"]


def build(root: Path) -> Settings:
    """The mini fixture and three more days of customers: bronze/customers gets a small file per batch."""
    landing = root / "landing"
    landing.mkdir(parents=True)
    copy_fixture("mini", landing)
    (landing / "shipping_2026_01_05.csv").unlink()  # binary: its batch would fail
    for day, city in enumerate(CITIES, start=6):
        (landing / f"customers_2026_01_{day:02d}.csv").write_text(
            HEADER + f"1,Ann,Lee,ann@example.com,+14155550123,1990-01-01,{city},FR,consumer,active,"
            f"2026-01-01 10:00:00,2026-01-{day:02d} 10:00:00\n", encoding="utf-8")
    settings = Settings(landing=landing, lake=root / "lake", archive=root / "archive")
    run(settings)
    return settings


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("maintain") / "lake0"
    build(root)
    return root


@pytest.fixture
def lake(built: Path, tmp_path: Path) -> Settings:
    """A fresh copy of the built lake per test (maintain changes it)."""
    root = tmp_path / "copy"
    shutil.copytree(built, root)
    return Settings(landing=root / "landing", lake=root / "lake", archive=root / "archive")


def table(settings: Settings, name: str) -> DeltaTable:
    return DeltaTable(f"{settings.tables_root}/{name}")


def rows(settings: Settings, name: str) -> list[tuple[object, ...]]:
    data = table(settings, name).to_pyarrow_table().to_pylist()
    return sorted(tuple(sorted(r.items())) for r in data)


def on_disk(settings: Settings) -> set[Path]:
    return {p for p in Path(settings.tables_root).rglob("*.parquet")}


def shoplake(settings: Settings, *args: str, config: Path | None = None) -> Result:
    """A command on this lake; maintain and reprocess are told every place, the others the lake."""
    places = ["--lake", str(settings.lake)]
    if args[0] in ("maintain", "reprocess"):
        places += ["--landing", str(settings.landing), "--archive", str(settings.archive)]
    return runner.invoke(app, [*args, *places, *(["-c", str(config)] if config else [])])


def age_archive(settings: Settings, name: str, days: float) -> None:
    """Pretend a file was archived `days` ago (the ledger's processed_at)."""
    engine = sa.create_engine(settings.state_db_url)
    with engine.begin() as conn:
        conn.execute(L.files.update().where(L.files.c.relative == name).values(
            processed_at=L.now() - timedelta(days=days)))
    engine.dispose()


def ledger_row(settings: Settings, name: str) -> dict[str, object]:
    ledger = L.Ledger(settings.state_db_url)
    try:
        return ledger.files_where(L.files.c.relative == name)[-1]
    finally:
        ledger.close()


def test_compaction_leaves_fewer_files_and_the_same_rows(lake: Settings) -> None:
    before_files = len(table(lake, "bronze/customers").file_uris())
    before_rows = rows(lake, "bronze/customers")
    assert before_files == 4  # a file per batch
    report = api.maintain(lake)
    assert len(table(lake, "bronze/customers").file_uris()) == 1
    assert rows(lake, "bronze/customers") == before_rows
    done = {t.table: t for t in report.tables}
    assert (done["bronze/customers"].files_compacted, done["bronze/customers"].files_written) == (4, 1)
    assert not report.dry_run and report.seconds > 0


def test_vacuum_keeps_old_versions_within_retention_and_deletes_them_past_it(lake: Settings) -> None:
    api.maintain(lake)  # compacts; the replaced files are a day younger than the default week's retention
    replaced = {Path(p) for p in DeltaTable(f"{lake.tables_root}/bronze/customers", version=0).file_uris()}
    assert replaced <= on_disk(lake)
    first = shoplake(lake, "show", "bronze/customers", "--as-of", "0")
    assert first.exit_code == 0 and "at version 0 " in first.output, first.output
    current = rows(lake, "bronze/customers")

    lake.maintenance = Maintenance(vacuum_retention_hours=0)
    report = api.maintain(lake)
    assert not replaced & on_disk(lake)
    vacuumed = next(t for t in report.tables if t.table == "bronze/customers")
    assert len(vacuumed.files_vacuumed) >= len(replaced)
    assert vacuumed.bytes_vacuumed is not None and vacuumed.bytes_vacuumed > 0
    assert rows(lake, "bronze/customers") == current
    gone = shoplake(lake, "show", "bronze/customers", "--as-of", "0")
    assert gone.exit_code == 2
    assert gone.output.startswith("error: version 0 of ")
    assert "cannot be read: vacuum deleted 1 of its 1 data file(s)" in gone.output
    assert "Traceback" not in gone.output


def test_archived_files_past_retention_go_and_the_ledger_still_tells_what_loaded(lake: Settings) -> None:
    old, young = "customers_2026_01_06.csv", "customers_2026_01_07.csv"
    archived = Path(str(lake.archive)) / "processed" / "2026-01-06" / old
    assert archived.is_file()
    age_archive(lake, old, days=100)
    age_archive(lake, young, days=10)
    before = ledger_row(lake, old)
    report = api.maintain(lake)  # default: 90 days
    assert [Path(a.path).name for a in report.archived] == [old]
    assert not archived.exists()
    assert (Path(str(lake.archive)) / "processed" / "2026-01-07" / young).is_file()
    after = ledger_row(lake, old)
    assert after["archive_key"] is None and after["archive_deleted_at"] is not None
    assert {k: after[k] for k in ("status", "rows_read", "rows_loaded", "sha256", "archived_path")} == {
        k: before[k] for k in ("status", "rows_read", "rows_loaded", "sha256", "archived_path")}
    again = shoplake(lake, "reprocess", "--file", old)
    assert again.exit_code == 1
    assert again.output.lstrip().startswith(
        f"error: cannot reprocess {before['archived_path']}: `shoplake maintain` deleted it on ")
    assert "Traceback" not in again.output
    status = shoplake(lake, "status")
    assert "deleted" in status.output and "(maintain)" in status.output


def test_archive_retention_null_keeps_files_forever(lake: Settings) -> None:
    age_archive(lake, "customers_2026_01_06.csv", days=10_000)
    lake.maintenance = Maintenance(archive_retention_days=None)
    assert api.maintain(lake).archived == []
    assert (Path(str(lake.archive)) / "processed" / "2026-01-06" / "customers_2026_01_06.csv").is_file()


def test_dry_run_lists_what_would_go_and_changes_nothing(lake: Settings) -> None:
    api.maintain(lake)  # leaves replaced files behind, for a retention of 0 to find
    age_archive(lake, "customers_2026_01_06.csv", days=100)
    files, versions = on_disk(lake), {p: table(lake, p).version() for p in ("bronze/customers", "silver/customers")}
    config = lake.landing.parent / "shoplake.yml"
    config.write_text("maintenance: {vacuum_retention_hours: 0, archive_retention_days: 90}\n", encoding="utf-8")
    result = shoplake(lake, "maintain", "--dry-run", config=config)
    assert result.exit_code == 0, result.output
    assert "maintain (dry run: nothing was changed)" in result.output
    assert "would vacuum bronze/customers/part-" in result.output
    assert "would delete archived file " in result.output and "customers_2026_01_06.csv" in result.output
    assert on_disk(lake) == files
    assert {p: table(lake, p).version() for p in versions} == versions
    assert (Path(str(lake.archive)) / "processed" / "2026-01-06" / "customers_2026_01_06.csv").is_file()
    real = shoplake(lake, "maintain", config=config)
    assert real.exit_code == 0, real.output
    assert "small file(s) compacted" in real.output and "bytes freed" in real.output
    assert on_disk(lake) < files


def test_maintain_never_runs_beside_a_batch(lake: Settings) -> None:
    ledger = L.Ledger(lake.state_db_url)
    try:
        ledger.acquire_lock(LOCK, "elsewhere:1#batch", 60, dead=lambda owner: False)
        files = on_disk(lake)
        with pytest.raises(LakeBusy):
            api.maintain(lake)
        busy = shoplake(lake, "maintain")
        assert busy.exit_code == 1 and "error: the lake is in use by elsewhere:1#batch" in busy.output
        assert on_disk(lake) == files
    finally:
        ledger.close()


def test_compaction_and_vacuum_refuse_a_table_a_later_holder_wrote(lake: Settings) -> None:
    """A maintain that stalled past its lease draws a fence below the one the table carries: refused."""
    engine = open_engine("duckdb", temp_dir=Path(lake.tables_root) / "_tmp")
    bronze, silver = f"{lake.tables_root}/bronze/customers", f"{lake.tables_root}/silver/customers"
    versions = {p: DeltaTable(p).version() for p in (bronze, silver)}
    files = on_disk(lake)
    try:
        engine.set_fence(lambda: 1)
        with pytest.raises(LeaseLost):
            engine.compact(bronze)
        # the merges left replaced files in silver: a real vacuum would delete them, a dry run lists them
        assert engine.vacuum(silver, retention_hours=0, dry_run=True).files
        with pytest.raises(LeaseLost):
            engine.vacuum(silver, retention_hours=0, dry_run=False)
    finally:
        engine.close()
    assert {p: DeltaTable(p).version() for p in versions} == versions
    assert on_disk(lake) == files


def test_the_lake_loads_on_after_maintain(lake: Settings) -> None:
    lake.maintenance = Maintenance(vacuum_retention_hours=0)
    api.maintain(lake)
    (Path(lake.landing) / "customers_2026_01_09.csv").write_text(
        HEADER + "1,Ann,Lee,ann@example.com,+14155550123,1990-01-01,Nantes,FR,consumer,active,"
        "2026-01-01 10:00:00,2026-01-09 10:00:00\n", encoding="utf-8")
    report = run(lake)
    assert [b.status for b in report.batches] == [L.SUCCEEDED]
    assert sorted(r["city"] for r in table(lake, "silver/customers").to_pyarrow_table().to_pylist()
                  if r["customer_id"] == 1) == sorted(["Paris", *CITIES, "Nantes"])


@pytest.mark.parametrize(("setting", "message"), [
    ("maintenance: {vacuum_retention_hours: -1}", "maintenance.vacuum_retention_hours"),
    ("maintenance: {compact_target_size: lots}", "is not a size"),
    ("maintenance: {keep: forever}", "maintenance.keep"),
])
def test_a_bad_maintenance_setting_is_a_configuration_error(lake: Settings, setting: str, message: str) -> None:
    config = lake.landing.parent / "shoplake.yml"
    config.write_text(setting + "\n", encoding="utf-8")
    files = on_disk(lake)
    result = shoplake(lake, "maintain", config=config)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: invalid settings") and message in result.output
    assert on_disk(lake) == files


@pytest.mark.parametrize("engine", ENGINES)
def test_compact_and_vacuum_on_each_engine(lake: Settings, engine: str) -> None:
    """The engine methods maintain calls, on one table (maintain itself runs them over every table)."""
    path = f"{lake.tables_root}/bronze/customers"
    before = rows(lake, "bronze/customers")
    replaced = {Path(p) for p in table(lake, "bronze/customers").file_uris()}
    replaced_bytes = sum(p.stat().st_size for p in replaced)
    opened = open_engine(engine, temp_dir=Path(lake.tables_root) / "_tmp")
    try:
        compacted = opened.compact(path)
        assert (compacted.files_removed, compacted.files_added) == (4, 1)
        assert compacted.bytes_removed > 0 and compacted.bytes_added > 0
        kept = opened.vacuum(path, retention_hours=1, dry_run=False)  # the replaced files are younger
        assert kept.files == [] and replaced <= on_disk(lake)
        listed = opened.vacuum(path, retention_hours=0, dry_run=True)
        assert len(listed.files) == 4 and replaced <= on_disk(lake)
        gone = opened.vacuum(path, retention_hours=0, dry_run=False)
        assert len(gone.files) == 4 and gone.bytes == replaced_bytes
    finally:
        opened.close()
    assert not replaced & on_disk(lake)
    assert len(table(lake, "bronze/customers").file_uris()) == 1
    assert rows(lake, "bronze/customers") == before
