"""Rule and derived-column SQL that would fail or leak at run time is refused when the contract loads.

Each case edits the built-in orders contract in a project folder and expects one line naming the file,
the rule and what to do; the legitimate rules of the pack and of the TheLook overlay still load.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.errors import ConfigError, ContractError
from shoplake.pipeline import run
from tests.conftest import FIXTURES, copy_fixture

ORDERS = Path(__file__).parents[2] / "src/shoplake/contracts/pack/orders.yml"
THELOOK_CONTRACTS = FIXTURES / "thelook" / "contracts"
RULE = "expr: num_items >= 1"  # the orders rule `at_least_one_item` every case rewrites


def orders_folder(tmp_path: Path, old: str, new: str) -> Path:
    text = ORDERS.read_text()
    assert old in text
    folder = tmp_path / "contracts"
    folder.mkdir(parents=True)
    (folder / "orders.yml").write_text(text.replace(old, new))
    return folder


def with_rule(tmp_path: Path, expr: str) -> Path:
    return orders_folder(tmp_path, RULE, f"expr: {quoted(expr)}")


def with_derived(tmp_path: Path, derived: dict[str, str], rule: str | None = None) -> Path:
    lines = "".join(f"  {name}: {quoted(text)}\n" for name, text in derived.items())
    folder = orders_folder(tmp_path, "freshness:", f"derived:\n{lines}freshness:")
    if rule is not None:
        path = folder / "orders.yml"
        path.write_text(path.read_text().replace(RULE, f"expr: {quoted(rule)}"))
    return folder


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def refused(folder: Path) -> str:
    with pytest.raises(ContractError) as caught:
        load_contracts([folder])
    message = str(caught.value)
    assert str(folder / "orders.yml") in message
    assert "\n" not in message, f"one line expected, got {message!r}"
    return message


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # Functions that read files or settings, however they are spelled.
        ("read_text('/etc/passwd') is not null", "read_text() reads files or settings"),
        ("READ_TEXT('/etc/passwd') is not null", "reads files or settings"),
        ('"read_text"(\'/etc/passwd\') is not null', "reads files or settings"),
        ("main.read_text('/etc/passwd') is not null", "reads files or settings"),
        ("read_csv('/etc/passwd') is not null", "reads files or settings"),
        ("length(read_blob('/etc/passwd')) > 0", "reads files or settings"),
        ("current_setting('home_directory') <> ''", "current_setting() reads files or settings"),
        ("getvariable('secret') is null", "reads files or settings"),
        ("glob('/etc/*') is not null", "reads files or settings"),
        # Many rows at once.
        ("count(*) over () > 0", "window function"),
        ("num_items > avg(num_items) over (partition by customer_id)", "window function"),
        ("sum(order_amount) > 0", "aggregate"),
        ("count(*) > 0", "aggregate"),
        # Parameters nothing binds.
        ("num_items > ?", "parameter"),
        ("num_items > $1", "parameter"),
        ("num_items > $limit", "parameter"),
        # Names beyond one row of the feed.
        ("a.b.c > 0", "'a.b.c' is a qualified name"),
        ("orders.num_items >= 1", "'orders.num_items' is a qualified name"),
        # Functions a row rule has no use for, and constructs outside the allowed set.
        ("random() > 0.5", "random() is not a row-level function"),
        ("hash(order_id) > 0", "hash() is not a row-level function"),
        ("[num_items][1] >= 1", "is not allowed in a rule"),
        ("list_filter([num_items], x -> x > 1) = [2]", "is not a row-level function"),
    ],
)
def test_a_rule_that_would_leak_or_fail_is_refused(tmp_path: Path, expr: str, expected: str) -> None:
    message = refused(with_rule(tmp_path, expr))
    assert "rule at_least_one_item" in message
    assert expected in message


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("order_amount > 'abc'", 'Could not convert string "abc"'),
        ("length(num_items) > 0", "length(BIGINT)"),
        ("status > 5", "Cannot compare values of type VARCHAR"),
        ("starts_with(created_at, '2026')", "starts_with(TIMESTAMP"),
        ("regexp_matches(status, '(')", "missing )"),
        ("cast(status as integer) > 0", "use try_cast"),
    ],
)
def test_a_rule_is_type_checked_against_the_typed_columns(tmp_path: Path, expr: str, expected: str) -> None:
    message = refused(with_rule(tmp_path, expr))
    assert "rule at_least_one_item" in message
    assert expected in message
    # A cast of text says what to write instead; any other type error asks for the rule to be fixed.
    assert ("use try_cast" if "cast(" in expr else "fix the rule") in message


def test_an_unknown_column_is_still_named(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"rule at_least_one_item: .* names unknown column\(s\) amount_int"):
        load_contracts([with_rule(tmp_path, "amount_int > 0")])


@pytest.mark.parametrize(
    ("derived", "expected"),
    [
        ({"bad": "length(num_items)"}, "derived.bad: 'length(num_items)'"),
        ({"leak": "read_text('/etc/passwd')"}, "derived.leak: read_text() reads files or settings"),
        ({"total": "sum(order_amount)"}, "derived.total:"),
        ({"n": "cast(currency as integer)"}, "use try_cast"),
    ],
)
def test_a_derived_column_is_checked_like_a_rule(tmp_path: Path, derived: dict[str, str], expected: str) -> None:
    assert expected in refused(with_derived(tmp_path, derived))


def test_rules_see_the_types_of_derived_columns(tmp_path: Path) -> None:
    derived = {"items_text": "cast(num_items as varchar)"}
    message = refused(with_derived(tmp_path, derived, rule="items_text > 5"))
    assert "rule at_least_one_item" in message and "items_text is VARCHAR" in message
    loaded = load_contracts([with_derived(tmp_path / "ok", derived, rule="length(items_text) >= 1")])
    assert {name: spec.expr for name, spec in loaded["orders"].derived.items()} == derived


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("x>0 /*", "cannot parse"),
        ("(" * 3000 + "num_items >= 1" + ")" * 3000, "nested too deeply"),
        ("'unterminated", "cannot parse"),
    ],
)
def test_unparseable_text_is_one_clear_line(tmp_path: Path, expr: str, expected: str) -> None:
    message = refused(with_rule(tmp_path, expr))
    assert "rule at_least_one_item" in message and expected in message
    assert len(message) < 400


@pytest.mark.parametrize(
    "expr",
    [
        "num_items between 1 and 100",
        "lower(status) in ('created', 'processing')",
        "regexp_matches(currency, '^[A-Z]{3}$')",
        "date_diff('day', created_at, updated_at) >= 0",
        "created_at + interval 1 day > updated_at",
        "extract(year from created_at) >= 2000",
        "status <> 'cancelled' or order_amount > 0",
        "coalesce(num_items, 0) >= 1 and abs(order_amount) < 1000000",
        "try_cast(status as integer) is null",
        "cast(created_at as date) <= current_date",
        "round(order_amount, 0) >= 0 and order_amount::double >= 0",
        "strftime(created_at, '%Y') >= '2000'",
        "starts_with(status, 'c') or length(trim(status)) > 0",
        "(((num_items >= 1)))",
        "created_at <= current_timestamp",
    ],
)
def test_legitimate_row_rules_load(tmp_path: Path, expr: str) -> None:
    contracts = load_contracts([with_rule(tmp_path, expr)])
    assert any(rule.expr == expr for rule in contracts["orders"].rules)


def test_the_pack_and_the_thelook_overlay_load() -> None:
    pack = load_contracts()
    assert pack["customers"].derived and pack["shipping"].derived
    assert {rule.name for rule in pack["shipping"].rules} == {"delivered_after_shipped", "delivered_has_date"}
    thelook = load_contracts([THELOOK_CONTRACTS])
    assert "distribution_centers" in thelook


def test_a_bad_rule_stops_the_run_before_any_file_moves(workspace: Settings, tmp_path: Path) -> None:
    copy_fixture("mini", workspace.landing)
    before = sorted(p.name for p in workspace.landing.iterdir())
    workspace.contracts = [with_rule(tmp_path, "order_amount > 'abc'")]
    with pytest.raises(ConfigError, match="rule at_least_one_item"):
        run(workspace)
    assert sorted(p.name for p in workspace.landing.iterdir()) == before
    archive = Path(workspace.archive_dir)
    assert not list(archive.rglob("*.csv")), "no file was archived"
