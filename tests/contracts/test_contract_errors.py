"""Contract errors say where the mistake is as the YAML says it (a column's or rule's name, not its
position); YAML's numeric map keys are what the author wrote; the run table shows a whole reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shoplake.cli import app
from shoplake.contracts import load_contracts
from shoplake.errors import ContractError

ORDERS = Path(__file__).parents[2] / "src/shoplake/contracts/pack/orders.yml"
STATUS = "  status: {type: string, required: true, case: lower, "


def orders_with(tmp_path: Path, old: str, new: str) -> Path:
    text = ORDERS.read_text()
    assert old in text
    folder = tmp_path / "contracts"
    folder.mkdir(exist_ok=True)
    (folder / "orders.yml").write_text(text.replace(old, new))
    return folder


def refused(folder: Path) -> str:
    with pytest.raises(ContractError) as caught:
        load_contracts([folder])
    return str(caught.value)


def test_a_column_mistake_names_the_column(tmp_path: Path) -> None:
    message = refused(orders_with(tmp_path, STATUS, STATUS + "map: {shipped_out: [shipped]}, "))
    assert "columns.status.map.shipped_out: Input should be a valid string" in message
    assert "columns.2" not in message


def test_a_rule_mistake_names_the_rule(tmp_path: Path) -> None:
    message = refused(orders_with(tmp_path, "    message: an order needs at least one item",
                                  "    message: an order needs at least one item\n    severity: sometimes"))
    assert "rules.at_least_one_item.severity" in message and "rules.0" not in message


def test_numeric_map_keys_and_values_are_taken_as_written(tmp_path: Path) -> None:
    folder = orders_with(tmp_path, STATUS, STATUS + "map: {1: created, 2: shipped, 3.5: returned, x: 7}, ")
    status = load_contracts([folder])["orders"].column("status")
    assert status.map == {"1": "created", "2": "shipped", "3.5": "returned", "x": "7"}


def test_a_boolean_map_key_asks_to_be_quoted(tmp_path: Path) -> None:
    message = refused(orders_with(tmp_path, STATUS, STATUS + "map: {yes: shipped}, "))
    assert "columns.status.map" in message and "was read as a boolean; quote it" in message


def test_the_run_table_shows_a_rejected_files_whole_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "landing").mkdir()
    (tmp_path / "shoplake.yml").write_text("landing: landing\nlake: lake\narchive: archive\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "landing" / "orders_2026_01_05.csv").write_text("alpha,beta\n1,2\n")
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 1, result.output
    # The note column wraps: read its cells back, line by line, and join them.
    notes = [line.split("│")[-2].strip() for line in result.output.splitlines()
             if line.count("│") >= 10 and "files loaded" not in line]
    reason = " ".join(n for n in notes if n and n != "note")
    assert "names no column of feed orders (expected order_id, customer_id, status, num_items, order_amount, " \
           "currency, created_at, updated_at)" in " ".join(reason.split()), result.output
