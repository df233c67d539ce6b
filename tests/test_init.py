"""`shoplake init`: a project with commented settings; `init --from` fits overlay contracts to an export."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from shoplake.cli import app
from shoplake.config import Settings, load_settings
from shoplake.contracts import ColumnType, load_contracts
from shoplake.onboarding.profile import infer_type
from tests.conftest import FIXTURES

runner = CliRunner()
THELOOK = FIXTURES / "thelook_sample" / "data"
TRANSACTIONS = FIXTURES / "transactions_clickstream" / "data"


def contract_text(project: Path, feed: str) -> str:
    return (project / "contracts" / f"{feed}.yml").read_text(encoding="utf-8")


def columns(project: Path, feed: str) -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(contract_text(project, feed))["columns"])


def test_init_writes_a_project_whose_settings_list_every_setting(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    result = runner.invoke(app, ["init", str(project)])
    assert result.exit_code == 0, result.output
    assert (project / "README.md").is_file() and (project / "landing").is_dir()
    assert (project / "contracts").is_dir() and not list((project / "contracts").iterdir())
    text = (project / "shoplake.yml").read_text(encoding="utf-8")
    for name in Settings.model_fields:  # a setting added to config.py must be documented here too
        assert re.search(rf"^#? ?{name}:", text, re.MULTILINE), name
    settings = load_settings(project / "shoplake.yml")
    assert settings.landing == project / "landing"
    assert settings.contracts == [project / "contracts"]
    assert settings.engine == "duckdb" and settings.memory_limit == Settings().memory_limit


def test_init_never_overwrites_a_file(tmp_path: Path) -> None:
    (tmp_path / "shoplake.yml").write_text("engine: spark\n", encoding="utf-8")
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 2
    assert "shoplake.yml exists already" in result.output and "Traceback" not in result.output
    assert (tmp_path / "shoplake.yml").read_text(encoding="utf-8") == "engine: spark\n"
    assert not (tmp_path / "README.md").exists()  # nothing written when one file is in the way


def test_init_from_thelook_maps_ids_synonyms_and_nulls(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    result = runner.invoke(app, ["init", str(project), "--from", str(THELOOK)])
    assert result.exit_code == 0, result.output
    assert "users.csv -> feed customers" in result.output
    assert "distribution_centers.csv -> new feed distribution_centers" in result.output
    customers = yaml.safe_load(contract_text(project, "customers"))
    assert customers["files"] == ["users*.csv", "users/*.csv"]
    assert customers["null_values"] == ["", "null"]  # users.city holds the text null
    assert customers["columns"]["customer_id"] == {"type": "integer", "required": True, "source": "id"}
    assert customers["columns"]["postal_code"]["type"] == "string"  # 69980-000
    assert customers["columns"]["gender"]["type"] == "string"  # F and M are no booleans
    orders = columns(project, "orders")
    assert orders["customer_id"]["source"] == "user_id" and orders["num_items"]["source"] == "num_of_item"
    assert "complete" in orders["status"]["accepted_values"]  # TheLook's status, seen in the sample
    assert columns(project, "order_items")["order_item_id"]["source"] == "id"
    assert columns(project, "products")["distribution_center_id"]["references"] == (
        "distribution_centers.distribution_center_id")
    products = contract_text(project, "products")
    assert re.search(r"# TODO: subcategory .* gold model\(s\) dim_product read it.*\n  subcategory: ", products)
    # No currency in TheLook: NULL, which fact_sales takes as the reporting currency.
    assert re.search(r"# TODO: currency .* gold model\(s\) fact_sales read it.*\n  currency: cast\(null as VARCHAR\)",
                     contract_text(project, "orders"))
    assert "# TODO order_amount (decimal, required): no header of orders.csv matched" in contract_text(
        project, "orders")
    contracts = load_contracts([project / "contracts"])  # everything written loads
    assert contracts["customers"].column("created_at").type is ColumnType.TIMESTAMP


def test_init_from_transactions_matches_by_synonym_and_names_what_is_missing(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    assert runner.invoke(app, ["init", str(project), "--from", str(TRANSACTIONS)]).exit_code == 0
    orders = columns(project, "orders")
    assert orders["created_at"]["source"] == "order_time" and orders["order_amount"]["source"] == "total_usd"
    assert columns(project, "customers")["created_at"]["source"] == "signup_date"
    assert columns(project, "customers")["marketing_opt_in"]["type"] == "boolean"
    assert columns(project, "products")["retail_price"]["source"] == "price_usd"
    reviews = columns(project, "reviews")
    assert reviews["order_id"]["references"] == "orders.order_id"
    assert yaml.safe_load(contract_text(project, "reviews"))["primary_key"] == ["review_id"]
    text = contract_text(project, "orders")
    assert re.search(r"# TODO: status \(string, required\) is not in orders.csv .*counts no sale", text)
    settings_text = (project / "shoplake.yml").read_text(encoding="utf-8")
    assert "reviews.csv -> new feed reviews (matches no built-in feed)" in settings_text


def test_init_from_matches_an_email_column_by_content_and_reports_an_unreadable_file(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "clients.csv").write_text("client_id,contact,joined\n1,a@example.com,2025-01-02\n"
                                        "2,b@example.org,2025-01-03\n", encoding="utf-8")
    (export / "legacy.csv").write_bytes("name\nJos\xe9\n".encode("latin-1"))
    result = runner.invoke(app, ["init", str(tmp_path / "shop"), "--from", str(export)])
    assert result.exit_code == 0, result.output
    assert "legacy.csv: not UTF-8 encoded" in result.output
    customers = columns(tmp_path / "shop", "customers")
    assert customers["email"]["source"] == "contact"
    assert customers["customer_id"]["source"] == "client_id"
    assert "matched by content" in contract_text(tmp_path / "shop", "customers")


def test_init_from_matches_a_feed_by_its_folder_and_keeps_the_folder_in_the_patterns(tmp_path: Path) -> None:
    folder = tmp_path / "export" / "raw-data" / "order-items"
    folder.mkdir(parents=True)
    (folder / "part-0000.csv").write_text("order_item_id,order_id,product_id,status,sale_price,created_at\n"
                                          "1,10,100,placed,9.99,2026-01-05 10:00:00\n", encoding="utf-8")
    result = runner.invoke(app, ["init", str(tmp_path / "shop"), "--from", str(tmp_path / "export")])
    assert result.exit_code == 0, result.output
    assert "raw-data/order-items/part-0000.csv -> feed order_items" in result.output
    contract = yaml.safe_load(contract_text(tmp_path / "shop", "order_items"))
    assert contract["files"] == ["raw-data/order-items/*.csv"]


def test_init_from_keeps_built_in_derived_columns_and_drops_references_to_feeds_not_exported(tmp_path: Path
                                                                                          ) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "shipments_2026_01_05.csv").write_text(
        "tracking_number,order_id,carrier,status,promised_at,delivered_at,event_at\n"
        "1Z1,10,ups,delivered,2026-01-06 00:00:00,2026-01-07 09:00:00,2026-01-07 09:00:00\n", encoding="utf-8")
    assert runner.invoke(app, ["init", str(tmp_path / "shop"), "--from", str(export)]).exit_code == 0
    text = contract_text(tmp_path / "shop", "shipping")
    contract = yaml.safe_load(text)
    assert contract["files"] == ["shipments*.csv", "shipments/*.csv"]
    assert "delay_days" in contract["derived"]  # it reads promised_at and delivered_at, both exported
    assert "references" not in contract["columns"]["order_id"]
    assert "references orders.order_id dropped: the export has no orders file" in text
    # gold.fact_shipments reads shipped_at, so it is derived as NULL with a TODO and the rule reading it stays
    assert "gold model(s) fact_shipments read it" in text
    assert contract["derived"]["shipped_at"] == "cast(null as TIMESTAMP)"
    assert "delivered_after_shipped" in [rule["name"] for rule in contract["rules"]]


def test_init_from_a_folder_without_csv_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "notes.txt").write_text("hello", encoding="utf-8")
    result = runner.invoke(app, ["init", str(tmp_path / "shop"), "--from", str(tmp_path / "export")])
    assert result.exit_code == 2
    assert "holds no readable CSV file" in result.output
    assert not (tmp_path / "shop").exists()


@pytest.mark.parametrize(("values", "expected"), [
    (["35603", "69980-000"], ColumnType.STRING),
    (["01234", "12345"], ColumnType.STRING),
    (["1050", "1050.0"], ColumnType.INTEGER),
    (["6.9899997711181641", "188.0"], ColumnType.DOUBLE),
    (["107.15", "85.7"], ColumnType.DECIMAL),
    (["True", "False"], ColumnType.BOOLEAN),
    (["F", "M"], ColumnType.STRING),
    (["2020-09-04"], ColumnType.DATE),
    (["2025-09-12 02:16:00.000000 UTC", "2025-01-31T23:07:42", "2020-01-01"], ColumnType.TIMESTAMP),
])
def test_types_inferred_from_a_sample(values: list[str], expected: ColumnType) -> None:
    assert infer_type(values) is expected


def test_fixture_samples_are_small() -> None:
    for folder in (THELOOK, TRANSACTIONS):
        for path in folder.glob("*.csv"):
            assert path.stat().st_size < 100_000, path
