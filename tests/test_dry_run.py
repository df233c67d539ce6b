"""`shoplake run --dry-run`: real exports go from `init --from` to a clean dry run, and nothing is written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shoplake import api
from shoplake.cli import app
from shoplake.config import load_settings
from tests.conftest import FIXTURES

runner = CliRunner()
EXPORTS = {"thelook_sample": FIXTURES / "thelook_sample" / "data",
           "transactions_clickstream": FIXTURES / "transactions_clickstream" / "data"}


def data_rows(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) - 1


def listing(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under the folders, with size and modification time (absent folders: none)."""
    out = {}
    for folder in folders:
        for path in [folder, *folder.rglob("*")] if folder.exists() else []:
            stat = path.stat()
            out[str(path)] = (stat.st_size if path.is_file() else -1, stat.st_mtime_ns)
    return out


def init_from(export: Path, project: Path) -> None:
    result = runner.invoke(app, ["init", str(project), "--from", str(export)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_an_export_goes_from_init_from_to_a_clean_dry_run(name: str, tmp_path: Path) -> None:
    """No edit is needed: every file matches a feed, every row would load (the samples are coherent)."""
    export = tmp_path / "export"
    shutil.copytree(EXPORTS[name], export)
    project = tmp_path / "shop"
    init_from(export, project)
    config = project / "shoplake.yml"
    result = runner.invoke(app, ["run", "--dry-run", "--config", str(config), "--landing", str(export)])
    assert result.exit_code == 0, result.output
    assert "nothing was written" in result.output and "matches no contract" not in result.output
    report = api.dry_run(load_settings(config, landing=str(export)))
    files = sorted(export.glob("*.csv"))
    assert sorted(f.file for f in report.files) == [p.name for p in files]
    for f in report.files:
        assert f.error is None and f.reasons == []
        assert f.rows_read == data_rows(export / f.file) > 0
        assert f.rows_loaded + f.rows_duplicate == f.rows_read and f.rows_quarantined == 0
        assert f.missing_model_columns == []  # the generated placeholders give the models their columns
        assert f.file in result.output


def test_the_dry_run_shows_quarantine_reasons_and_missing_model_columns(tmp_path: Path) -> None:
    export = tmp_path / "export"
    shutil.copytree(EXPORTS["thelook_sample"], export)
    project = tmp_path / "shop"
    init_from(export, project)
    # Two edits a user might make: drop the subcategory placeholder, and a product with a negative cost.
    products = project / "contracts" / "products.yml"
    text = products.read_text(encoding="utf-8")
    assert "  subcategory: cast(null as VARCHAR)\n" in text
    products.write_text(text.replace("  subcategory: cast(null as VARCHAR)\n", "  brand_copy: brand\n"),
                        encoding="utf-8")
    lines = (export / "products.csv").read_text(encoding="utf-8").splitlines()
    header, first = lines[0].split(","), lines[1].split(",")
    first[header.index("cost")] = "-1"
    (export / "products.csv").write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["run", "--dry-run", "--config", str(project / "shoplake.yml"),
                                 "--landing", str(export)])
    assert result.exit_code == 0, result.output
    report = api.dry_run(load_settings(project / "shoplake.yml", landing=str(export)))
    plan = next(f for f in report.files if f.file == "products.csv")
    assert plan.rows_quarantined == 1
    assert [(r.rule, r.rows) for r in plan.reasons] == [("cost_not_negative", 1)]
    assert plan.reasons[0].example == "cost_not_negative: cost must not be negative"
    assert plan.missing_model_columns == ["subcategory (dim_product)"]
    assert "products.csv: quarantine cost_not_negative: 1 row(s)" in result.output
    assert "lacks column(s) the gold models read: subcategory (dim_product)" in result.output


def test_a_dry_run_writes_nothing_even_beside_an_existing_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    project = tmp_path / "shop"
    init_from(EXPORTS["thelook_sample"], project)
    monkeypatch.chdir(project)
    landing, lake, archive = project / "landing", project / "lake", project / "archive"
    for path in EXPORTS["thelook_sample"].glob("*.csv"):
        shutil.copy(path, landing / path.name)
    before = listing(project)
    result = runner.invoke(app, ["run", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert listing(project) == before  # no lake, no state store, no archive, landing untouched
    assert not lake.exists() and not archive.exists()
    # A real run creates the lake; the files dropped again are dry-run against its silver tables.
    assert runner.invoke(app, ["run"]).exit_code == 0
    for path in EXPORTS["thelook_sample"].glob("*.csv"):
        shutil.copy(path, landing / path.name)
        os.utime(landing / path.name, ns=(1, 1))
    # And one file of new content, which checks against the silver tables the run wrote.
    lines = (landing / "orders.csv").read_text(encoding="utf-8").splitlines()
    (landing / "orders_2025_10_01.csv").write_text("\n".join([lines[0], lines[1]]) + "\n", encoding="utf-8")
    before = listing(lake, landing, archive)
    result = runner.invoke(app, ["run", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert listing(lake, landing, archive) == before
    assert len([p for p in before if "/archive/" in p and p.endswith(".csv")]) == 5
    report = api.dry_run(load_settings(project / "shoplake.yml"))
    again = {f.file: f for f in report.files}
    assert str(again["users.csv"].duplicate_of).endswith("landing/users.csv")  # a run skips content it loaded
    assert again["users.csv"].rows_read == 0 and "duplicate of" in result.output
    fresh = again["orders_2025_10_01.csv"]
    assert (fresh.duplicate_of, fresh.rows_read, fresh.rows_loaded, fresh.reasons) == (None, 1, 1, [])
